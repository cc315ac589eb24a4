//go:build fdb && fdbc

package fdbkv

// These tests run the adapter on the real FoundationDB bindings linked
// against kv/fdbc, the in-process fdb_c shim over kv/embedded: no cluster
// and no libfdb_c. Build tags fdb (the adapter) and fdbc (this file, which
// links the shim); `make test` runs them with the shim's include path in
// CGO_CFLAGS.

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/apple/foundationdb/bindings/go/src/fdb"

	_ "github.com/idemkv/idemkv/kv/fdbc"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/kvtest"
	"github.com/idemkv/idemkv/txn"
)

var shimStores atomic.Int64

// TestMain points FDB_CLUSTER_FILE, when unset, at a cluster file of the
// shim, so that the tests written for a real cluster (fdb_test.go,
// torture_test.go) run here too, on one shared in-memory store as they
// would on one shared cluster.
func TestMain(m *testing.M) {
	if os.Getenv(ClusterFileEnv) == "" {
		dir, err := os.MkdirTemp("", "fdbkv-shim")
		if err != nil {
			panic(err)
		}
		path := filepath.Join(dir, "fdb.cluster")
		if err := os.WriteFile(path, []byte("shim:shared@127.0.0.1:4500\n"), 0o644); err != nil {
			panic(err)
		}
		os.Setenv(ClusterFileEnv, path)
		code := m.Run()
		os.RemoveAll(dir)
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// shimClusterFile writes a cluster file whose connection string names a
// fresh in-memory store of the shim.
func shimClusterFile(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fdb.cluster")
	cs := "shim:t" + strconv.FormatInt(shimStores.Add(1), 10) + "@127.0.0.1:4500\n"
	if err := os.WriteFile(path, []byte(cs), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// openShim opens an fdbkv.DB on a fresh shim store.
func openShim(t testing.TB) *DB {
	t.Helper()
	db, err := Open(shimClusterFile(t), nil)
	if err != nil {
		t.Fatalf("Open on the shim: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestConformanceOnShim runs the backend conformance suite through the
// adapter and the unmodified bindings.
func TestConformanceOnShim(t *testing.T) {
	kvtest.Run(t, func(t *testing.T) kv.Database { return openShim(t) })
}

// FoundationDB answers get_versionstamp after commit with
// used_during_commit (2017); kv promises the stamp after a successful
// commit, so fdbkv asks for it before committing. Both halves are checked:
// the raw bindings refuse, the adapter answers.
func TestVersionstampAfterCommitOnShim(t *testing.T) {
	d := openShim(t)
	ftr, err := d.db.CreateTransaction()
	if err != nil {
		t.Fatal(err)
	}
	ftr.Set(fdb.Key("raw"), []byte("x"))
	if err := ftr.Commit().Get(); err != nil {
		t.Fatal(err)
	}
	var fe fdb.Error
	if _, err := ftr.GetVersionstamp().Get(); !errors.As(err, &fe) || fe.Code != int(kv.CodeUsedDuringCommit) {
		t.Fatalf("bindings' GetVersionstamp after commit = %v, want used_during_commit (2017)", err)
	}

	tr, err := d.CreateTransaction(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tr.Set([]byte("k"), []byte("v"))
	if err := tr.Commit().Err(); err != nil {
		t.Fatal(err)
	}
	vs, err := tr.GetVersionstamp().Get()
	if err != nil {
		t.Fatalf("fdbkv GetVersionstamp after commit: %v", err)
	}
	cv, err := tr.GetCommittedVersion()
	if err != nil || vs.Version() != cv {
		t.Fatalf("versionstamp version %d, committed version %d (%v)", vs.Version(), cv, err)
	}
	if _, err := tr.GetApproximateSize().Get(); !errors.Is(err, kv.ErrUsedDuringCommit) {
		t.Fatalf("GetApproximateSize after commit = %v, want used_during_commit", err)
	}
	// After Reset the transaction is fresh: a read-only commit has no
	// versionstamp (no_commit_version, 2021).
	tr.Reset()
	if _, err := tr.Get([]byte("k")).Get(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Commit().Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.GetVersionstamp().Get(); !errors.Is(err, kv.NewError(kv.CodeNoCommitVersion)) {
		t.Fatalf("read-only GetVersionstamp = %v, want no_commit_version (2021)", err)
	}
}

// fdbkv.Transact is the exactly-once drop-in for fdb.Database.Transact on a
// database opened with the bindings alone; fn uses the bindings' own API.
func TestTransactDropInOnShim(t *testing.T) {
	path := shimClusterFile(t)
	if err := fdb.APIVersion(DefaultAPIVersion); err != nil {
		t.Fatal(err)
	}
	db, err := fdb.OpenDatabase(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	counter := fdb.Key("dropin/counter")
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				_, err := Transact(context.Background(), db, func(tr fdb.Transaction) (struct{}, error) {
					tr.Add(counter, []byte{1, 0, 0, 0, 0, 0, 0, 0})
					return struct{}{}, nil
				}, nil)
				if err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	v, err := db.ReadTransact(func(rt fdb.ReadTransaction) (any, error) { return rt.Get(counter).Get() })
	if err != nil {
		t.Fatal(err)
	}
	if b := v.([]byte); len(b) != 8 || b[0] != 100 {
		t.Fatalf("counter bytes %x, want 100 little-endian", b)
	}
}

// fdbkv.Transact reuses one DB per fdb.Database, so txn's per-database
// slot pool works across its calls: calls one after another hold the same
// marker slot of the same owner, in turn, and leave one marker in all (see
// "Marker slots" in txn's doc).
func TestTransactUsesSlotPoolOnShim(t *testing.T) {
	if err := fdb.APIVersion(DefaultAPIVersion); err != nil {
		t.Fatal(err)
	}
	db, err := fdb.OpenDatabase(shimClusterFile(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if first, second := wrapped(db), wrapped(db); first != second {
		t.Fatal("Transact wraps the same fdb.Database in a new DB each call")
	}
	var ids []txn.ID
	opts := &txn.Options{Prefix: []byte("\xfdcache/"), Observe: func(st txn.Stats) { ids = append(ids, st.ID) }}
	add := func(tr fdb.Transaction) (struct{}, error) {
		tr.Add(fdb.Key("cache/counter"), []byte{1, 0, 0, 0, 0, 0, 0, 0})
		return struct{}{}, nil
	}
	for range 3 {
		if _, err := Transact(context.Background(), db, add, opts); err != nil {
			t.Fatal(err)
		}
	}
	r := txn.SlotRange(opts.Prefix)
	v, err := db.ReadTransact(func(rt fdb.ReadTransaction) (any, error) {
		return rt.GetRange(fdb.KeyRange{Begin: fdb.Key(r.Begin), End: fdb.Key(r.End)}, fdb.RangeOptions{}).GetSliceWithError()
	})
	if err != nil {
		t.Fatal(err)
	}
	if kvs := v.([]fdb.KeyValue); len(kvs) != 1 {
		t.Fatalf("%d marker slots after 3 calls in turn; want 1, reused", len(kvs))
	}
	for i, id := range ids {
		if !id.IsSlot() || id.Owner != ids[0].Owner || id.Slot != ids[0].Slot || id.Seq != uint64(i+1) {
			t.Fatalf("call %d's ID %v; want the first's owner and slot, sequence %d (IDs %v)", i, id, i+1, ids)
		}
	}
}

// BenchmarkTransactOnShim is fdbkv.Transact's blind add, one caller, on the
// shim: the bindings, the adapter and txn over the embedded engine.
func BenchmarkTransactOnShim(b *testing.B) {
	if err := fdb.APIVersion(DefaultAPIVersion); err != nil {
		b.Fatal(err)
	}
	db, err := fdb.OpenDatabase(shimClusterFile(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(db.Close)
	add := func(tr fdb.Transaction) (struct{}, error) {
		tr.Add(fdb.Key("bench/counter"), []byte{1, 0, 0, 0, 0, 0, 0, 0})
		return struct{}{}, nil
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Transact(context.Background(), db, add, nil); err != nil {
			b.Fatal(err)
		}
	}
}
