package embedded

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/idemkv/idemkv/kv"
)

func openMem(t testing.TB, o *Options) *DB {
	t.Helper()
	db, err := OpenMem(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// openMemPebble is openMem on Pebble with a memory filesystem, for tests
// of the Pebble engine's snapshots.
func openMemPebble(t testing.TB, o *Options) *DB {
	t.Helper()
	db, err := openMemPebbleDB(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// engines runs f on the in-memory store and on Pebble (in memory).
func engines(t *testing.T, f func(t *testing.T, open func(testing.TB, *Options) *DB)) {
	t.Run("store", func(t *testing.T) { f(t, openMem) })
	t.Run("pebble", func(t *testing.T) { f(t, openMemPebble) })
}

func newTr(t testing.TB, db *DB) kv.Transaction {
	t.Helper()
	tr, err := db.CreateTransaction(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestSetGetCommit(t *testing.T) {
	db := openMem(t, nil)
	tr := newTr(t, db)
	tr.Set([]byte("a"), []byte("1"))
	tr.Set([]byte("b"), []byte{})
	if v, err := tr.Get([]byte("a")).Get(); err != nil || string(v) != "1" {
		t.Fatalf("own write: %q, %v", v, err)
	}
	if err := tr.Commit().Err(); err != nil {
		t.Fatal(err)
	}
	cv, err := tr.GetCommittedVersion()
	if err != nil || cv <= 0 {
		t.Fatalf("committed version %d, %v", cv, err)
	}
	tr2 := newTr(t, db)
	rv := tr2.GetReadVersion().MustGet()
	if rv < cv {
		t.Fatalf("read version %d below committed %d", rv, cv)
	}
	if v := tr2.Get([]byte("a")).MustGet(); string(v) != "1" {
		t.Fatalf("got %q", v)
	}
	if v := tr2.Get([]byte("b")).MustGet(); v == nil || len(v) != 0 {
		t.Fatalf("empty value: got %#v, want non-nil empty", v)
	}
	if v := tr2.Get([]byte("c")).MustGet(); v != nil {
		t.Fatalf("absent: got %q", v)
	}
	kvs := tr2.GetRange(kv.Range{Begin: []byte(""), End: []byte("\xff")}, kv.RangeOptions{}).MustGet()
	if len(kvs) != 2 || !bytes.Equal(kvs[0].Key, []byte("a")) {
		t.Fatalf("range: %q", kvs)
	}
	if err := tr2.Commit().Err(); err != nil {
		t.Fatal(err)
	}
	if v, _ := tr2.GetCommittedVersion(); v != -1 {
		t.Fatalf("read-only committed version %d, want -1", v)
	}
}

func TestConflict(t *testing.T) {
	db := openMem(t, nil)
	t1, t2 := newTr(t, db), newTr(t, db)
	t1.Get([]byte("k")).MustGet()
	t2.Get([]byte("k")).MustGet()
	t1.Set([]byte("k"), []byte("1"))
	t2.Set([]byte("k"), []byte("2"))
	if err := t1.Commit().Err(); err != nil {
		t.Fatal(err)
	}
	if err := t2.Commit().Err(); !errors.Is(err, kv.ErrNotCommitted) {
		t.Fatalf("second commit: %v, want not_committed", err)
	}
}

// AdvanceVersion jumps the version as a FoundationDB recovery does: read
// versions from before the jump are too old afterwards.
func TestAdvanceVersion(t *testing.T) {
	db, err := OpenMem(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	old, err := db.CreateTransaction(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rv, err := old.GetReadVersion().Get()
	if err != nil {
		t.Fatal(err)
	}
	if err := old.AddReadConflictRange(kv.SingleKeyRange([]byte("r"))); err != nil {
		t.Fatal(err)
	}
	if err := db.AdvanceVersion(0); err == nil {
		t.Fatal("AdvanceVersion(0) accepted")
	}
	if err := db.AdvanceVersion(100 * kv.VersionsPerSecond); err != nil {
		t.Fatal(err)
	}
	fresh, err := db.CreateTransaction(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := fresh.GetReadVersion().Get(); err != nil || v < rv+100*kv.VersionsPerSecond {
		t.Fatalf("read version after a 100 s jump = %d, %v; want at least %d", v, err, rv+100*kv.VersionsPerSecond)
	}
	old.Set([]byte("k"), []byte("v"))
	if _, err := old.Get([]byte("x")).Get(); !errors.Is(err, kv.ErrTransactionTooOld) {
		t.Fatalf("read at a version from before the jump: %v, want transaction_too_old", err)
	}
	// A commit that read something is checked against its read version
	// (a blind write never is, in FoundationDB either).
	if err := old.Commit().Err(); !errors.Is(err, kv.ErrTransactionTooOld) {
		t.Fatalf("commit at a version from before the jump: %v, want transaction_too_old", err)
	}
}
