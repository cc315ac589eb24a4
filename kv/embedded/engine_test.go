package embedded

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/idemkv/idemkv/kv"
)

var seedFlag = flag.Uint64("seed", 0, "replay one seed of the randomized tests (0: a random seed)")

// testSeed returns the seed for a randomized test and arranges for it to be
// printed, with a replay command, if the test fails.
func testSeed(t *testing.T) uint64 {
	s := *seedFlag
	if s == 0 {
		s = rand.Uint64()
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d; replay: go test ./kv/embedded/ -run '^%s$' -count=1 -seed=%d", s, t.Name(), s)
		}
	})
	return s
}

// newStepClock is the clock tests move by hand.
func newStepClock() *ManualClock { return NewManualClock(time.Unix(1_700_000_000, 0)) }

func commitSet(t *testing.T, db *DB, key, value string) int64 {
	t.Helper()
	tr := newTr(t, db)
	tr.Set([]byte(key), []byte(value))
	if err := tr.Commit().Err(); err != nil {
		t.Fatalf("commit %s=%s: %v", key, value, err)
	}
	v, _ := tr.GetCommittedVersion()
	return v
}

func wantCode(t *testing.T, what string, err error, c kv.Code) {
	t.Helper()
	if got, ok := kv.ErrorCode(err); !ok || got != c {
		t.Fatalf("%s: got %v, want %s (%d)", what, err, c, int(c))
	}
}

func TestVersionsFollowClockAndStayMonotone(t *testing.T) {
	clk := newStepClock()
	db := openMem(t, &Options{Clock: clk.Now})
	rv := func() int64 { return newTr(t, db).GetReadVersion().MustGet() }
	v0 := rv()
	clk.Advance(time.Second)
	v1 := rv()
	if v1-v0 != kv.VersionsPerSecond {
		t.Fatalf("idle GRV advanced %d in one second, want %d", v1-v0, kv.VersionsPerSecond)
	}
	clk.Advance(-10 * time.Second) // a clock going backwards must not move versions back
	if v2 := rv(); v2 < v1 {
		t.Fatalf("GRV went back from %d to %d", v1, v2)
	}
	// With the clock frozen, a commit still gets a version above every read
	// version handed out, and the next GRV sees it.
	before := rv()
	cv := commitSet(t, db, "k", "v")
	if cv <= before {
		t.Fatalf("commit version %d not above read version %d", cv, before)
	}
	if after := rv(); after < cv {
		t.Fatalf("GRV %d after commit at %d", after, cv)
	}
}

func TestReopenContinuesAboveLastVersion(t *testing.T) {
	dir := t.TempDir()
	clk := newStepClock()
	db, err := Open(dir, &Options{Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour) // far ahead of the next open's clock
	tr := newTr(t, db)
	tr.Set([]byte("k"), []byte("v"))
	if err := tr.Commit().Err(); err != nil {
		t.Fatal(err)
	}
	cv, _ := tr.GetCommittedVersion()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(dir, &Options{Clock: newStepClock().Now}) // clock back at the start
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tr = newTr(t, db)
	if rv := tr.GetReadVersion().MustGet(); rv < cv {
		t.Fatalf("read version %d after reopen is below the last commit %d", rv, cv)
	}
	if v := tr.Get([]byte("k")).MustGet(); string(v) != "v" {
		t.Fatalf("after reopen got %q", v)
	}
}

func TestIdleVersionsSurviveRestart(t *testing.T) {
	// Read versions handed out while idle (no commit persists them) must
	// still be below every version after a restart: the timeline continues
	// from the last commit's clock time.
	dir := t.TempDir()
	clk := newStepClock()
	db, err := Open(dir, &Options{Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	commitSet(t, db, "k", "v")
	clk.Advance(10 * time.Second)
	idle := newTr(t, db).GetReadVersion().MustGet()
	db.Close()
	clk.Advance(time.Second)
	db, err = Open(dir, &Options{Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if rv := newTr(t, db).GetReadVersion().MustGet(); rv <= idle {
		t.Fatalf("read version %d after restart is not above %d handed out before it", rv, idle)
	}
	if cv := commitSet(t, db, "k", "w"); cv <= idle {
		t.Fatalf("commit version %d after restart is not above %d", cv, idle)
	}
}

func TestConflictWithinOneBatch(t *testing.T) {
	// Two transactions read k at the same version and both write it; if the
	// committer puts them in one batch, the second must still fail.
	db := openMem(t, nil)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	trs := make([]kv.Transaction, n)
	for i := range trs {
		trs[i] = newTr(t, db)
		trs[i].Get([]byte("k")).MustGet()
		trs[i].Set([]byte("k"), []byte{byte(i)})
	}
	for i := range trs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = trs[i].Commit().Err() }()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else if !errors.Is(err, kv.ErrNotCommitted) {
			t.Fatalf("unexpected error %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of %d conflicting transactions committed, want exactly 1", ok, n)
	}
}

func TestGroupCommitBatches(t *testing.T) {
	// Concurrent blind writers on a durable DB: while the committer syncs one
	// group the others queue, so batches must be fewer than commits. The
	// hook stretches each apply a little so that this holds even on a disk
	// whose fsync is free (tmpfs); it slows the test, it asserts no timing.
	db, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.testHookBeforeApply = func() { time.Sleep(200 * time.Microsecond) }
	const workers, each = 16, 20
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				tr, _ := db.CreateTransaction(context.Background())
				tr.Set([]byte{byte(w), byte(i)}, []byte("v"))
				if err := tr.Commit().Err(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	batches, commits := db.stats.batches.Load(), db.stats.commits.Load()
	t.Logf("%d commits in %d batches", commits, batches)
	if commits != workers*each {
		t.Fatalf("%d commits counted, want %d", commits, workers*each)
	}
	if batches >= commits {
		t.Fatalf("no batching: %d batches for %d commits", batches, commits)
	}
}

func TestSnapshotReleaseIsTooOld(t *testing.T) {
	engines(t, testSnapshotReleaseIsTooOld)
}

func testSnapshotReleaseIsTooOld(t *testing.T, open func(testing.TB, *Options) *DB) {
	clk := newStepClock()
	db := open(t, &Options{Clock: clk.Now})
	commitSet(t, db, "k", "1")
	old := newTr(t, db)
	if v := old.Get([]byte("k")).MustGet(); string(v) != "1" {
		t.Fatalf("got %q", v)
	}
	oldRV := old.GetReadVersion().MustGet()
	commitSet(t, db, "k", "2")
	// A recent version can be read again, at the state it had.
	again := newTr(t, db)
	again.SetReadVersion(oldRV)
	if v := again.Get([]byte("k")).MustGet(); string(v) != "1" {
		t.Fatalf("SetReadVersion(%d): got %q, want the old value", oldRV, v)
	}
	clk.Advance(6 * time.Second)
	commitSet(t, db, "k", "3") // this commit releases the aged-out state
	if db.store != nil {
		if f := db.store.floor.Load(); f <= oldRV {
			t.Fatalf("store floor %d not above %d after five seconds", f, oldRV)
		}
		// Only the newest version at or below the floor is kept.
		n := db.store.seekGE([]byte("k"), nil)
		var vals []string
		for mv := n.versions.Load(); mv != nil; mv = mv.older.Load() {
			vals = append(vals, string(mv.value))
		}
		if len(vals) != 2 || vals[0] != "3" || vals[1] != "2" {
			t.Fatalf("versions of k after aging: %q, want [3 2]", vals)
		}
	} else {
		db.mu.Lock()
		oldest := db.mu.snaps[0].version
		db.mu.Unlock()
		if oldest <= oldRV {
			t.Fatalf("snapshot at %d still retained after five seconds", oldest)
		}
	}
	_, err := old.Get([]byte("other")).Get()
	wantCode(t, "read on an aged-out read version", err, kv.CodeTransactionTooOld)
	old.Set([]byte("k"), []byte("x"))
	wantCode(t, "commit of an aged-out transaction", old.Commit().Err(), kv.CodeTransactionTooOld)

	if db.store != nil {
		// A read at a version the store aged out while it was reading
		// fails rather than answering from what is left.
		s := &snapshot{version: oldRV, mem: db.store}
		_, _, err = s.get([]byte("k"))
		wantCode(t, "read below the store's floor", err, kv.CodeTransactionTooOld)
		err = s.scan([]byte("a"), []byte("z"), false, func(k, v []byte) (bool, []byte) { return true, nil })
		wantCode(t, "scan below the store's floor", err, kv.CodeTransactionTooOld)
		return
	}
	// A snapshot released while a transaction holds it (Close does that)
	// fails the read rather than touching a closed Pebble snapshot.
	s := &snapshot{version: 1, ps: db.pdb.NewSnapshot()}
	s.release()
	_, _, err = s.get([]byte("k"))
	wantCode(t, "read of a released snapshot", err, kv.CodeTransactionTooOld)
}

func TestIdleReadVersionAgesOut(t *testing.T) {
	// No commits, so nothing is released: the read still fails once its
	// version is five seconds old, as in FoundationDB.
	clk := newStepClock()
	db := openMem(t, &Options{Clock: clk.Now})
	tr := newTr(t, db)
	tr.Get([]byte("k")).MustGet()
	clk.Advance(5*time.Second + time.Millisecond)
	_, err := tr.Get([]byte("k")).Get()
	wantCode(t, "read after five idle seconds", err, kv.CodeTransactionTooOld)
	if err := tr.OnError(err); err != nil {
		t.Fatalf("OnError(too old): %v", err)
	}
	if _, err := tr.Get([]byte("k")).Get(); err != nil {
		t.Fatalf("read after OnError: %v", err)
	}
}

func TestFutureVersion(t *testing.T) {
	clk := newStepClock()
	db := openMem(t, &Options{Clock: clk.Now})
	tr := newTr(t, db)
	rv := tr.GetReadVersion().MustGet()
	tr2 := newTr(t, db)
	tr2.SetReadVersion(rv + kv.VersionsPerSecond)
	_, err := tr2.Get([]byte("k")).Get()
	wantCode(t, "read at a future version", err, kv.CodeFutureVersion)
}

func TestDeferredWriteErrors(t *testing.T) {
	db := openMem(t, nil)
	big := bytes.Repeat([]byte("x"), kv.MaxKeySize+1)
	cases := []struct {
		name  string
		write func(kv.Transaction)
		code  kv.Code
	}{
		{"key too large", func(tr kv.Transaction) { tr.Set(big, []byte("v")) }, kv.CodeKeyTooLarge},
		{"value too large", func(tr kv.Transaction) { tr.Set([]byte("k"), make([]byte, kv.MaxValueSize+1)) }, kv.CodeValueTooLarge},
		{"system key", func(tr kv.Transaction) { tr.Set([]byte("\xffsys"), []byte("v")) }, kv.CodeKeyOutsideLegalRange},
		{"inverted clear", func(tr kv.Transaction) { tr.ClearRange(kv.Range{Begin: []byte("b"), End: []byte("a")}) }, kv.CodeInvertedRange},
		{"atomic value too large", func(tr kv.Transaction) { tr.Atomic(kv.Add, []byte("k"), make([]byte, kv.MaxValueSize+1)) }, kv.CodeValueTooLarge},
		{"bad versionstamp offset", func(tr kv.Transaction) { tr.Atomic(kv.SetVersionstampedKey, []byte("k\x00\x00\x00\x00"), []byte("v")) }, kv.CodeClientInvalidOperation},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := newTr(t, db)
			tr.Set([]byte("good"), []byte("1"))
			c.write(tr)
			tr.Set([]byte("after"), []byte("1")) // ignored once an error is deferred
			_, err := tr.Get([]byte("good")).Get()
			wantCode(t, "read after the bad write", err, c.code)
			wantCode(t, "commit", tr.Commit().Err(), c.code)
			check := newTr(t, db)
			for _, k := range []string{"good", "after", "k"} {
				if v := check.Get([]byte(k)).MustGet(); v != nil {
					t.Fatalf("%s written (%q) by a failed transaction", k, v)
				}
			}
		})
	}
	// Reading a key longer than the limit is not an error: no such key exists.
	tr := newTr(t, db)
	if v, err := tr.Get(big).Get(); v != nil || err != nil {
		t.Fatalf("Get(oversized key) = %q, %v; want absent, nil", v, err)
	}
}

func TestSizeLimit(t *testing.T) {
	db := openMem(t, nil)
	tr := newTr(t, db)
	if err := tr.Options().SetSizeLimit(1000); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "SetSizeLimit(10)", tr.Options().SetSizeLimit(10), kv.CodeInvalidOptionValue)
	for i := range 20 {
		tr.Set([]byte{byte(i)}, make([]byte, 100))
	}
	if sz := tr.GetApproximateSize().MustGet(); sz <= 1000 {
		t.Fatalf("approximate size %d, want > 1000", sz)
	}
	wantCode(t, "commit over the size limit", tr.Commit().Err(), kv.CodeTransactionTooLarge)
}

func TestCloseAndOpenErrors(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, nil); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open of an open directory: %v, want ErrLocked", err)
	}
	tr := newTr(t, db)
	tr.Set([]byte("k"), []byte("v"))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := tr.Commit().Err(); !errors.Is(err, kv.ErrClosed) {
		t.Fatalf("commit after Close: %v, want kv.ErrClosed", err)
	}
	if _, err := tr.Get([]byte("k")).Get(); !errors.Is(err, kv.ErrClosed) {
		t.Fatalf("read after Close: %v, want kv.ErrClosed", err)
	}
	if _, err := db.CreateTransaction(context.Background()); !errors.Is(err, kv.ErrClosed) {
		t.Fatalf("CreateTransaction after Close: %v", err)
	}

	foreign := t.TempDir()
	if err := os.WriteFile(filepath.Join(foreign, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(foreign, nil); !errors.Is(err, ErrNotEmbeddedDir) {
		t.Fatalf("Open of a foreign directory: %v, want ErrNotEmbeddedDir", err)
	}
	if b, err := os.ReadFile(filepath.Join(foreign, "notes.txt")); err != nil || string(b) != "mine" {
		t.Fatalf("foreign file disturbed: %q, %v", b, err)
	}
	if ents, _ := os.ReadDir(foreign); len(ents) != 1 {
		t.Fatalf("Open left %d entries in a foreign directory", len(ents))
	}
	file := filepath.Join(foreign, "notes.txt")
	if _, err := Open(file, nil); err == nil {
		t.Fatal("Open of a regular file succeeded")
	}
	if _, err := OpenMem(&Options{MaxBatchTransactions: -1}); err == nil {
		t.Fatal("bad option accepted")
	}
}

func TestForeignPebbleStores(t *testing.T) {
	// A Pebble store that is not ours (keys but no marker, or another
	// marker) is refused and left as it was.
	for name, key := range map[string][]byte{"no marker": []byte("user-data"), "other marker": metaFormat} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			pdb, err := pebble.Open(dir, &pebble.Options{Logger: newFailLogger(newFailure())})
			if err != nil {
				t.Fatal(err)
			}
			if err := pdb.Set(key, []byte("someone else's"), pebble.Sync); err != nil {
				t.Fatal(err)
			}
			pdb.Close()
			if _, err := Open(dir, nil); !errors.Is(err, ErrNotEmbeddedDir) {
				t.Fatalf("Open: %v, want ErrNotEmbeddedDir", err)
			}
			pdb, err = pebble.Open(dir, &pebble.Options{Logger: newFailLogger(newFailure())})
			if err != nil {
				t.Fatal(err)
			}
			defer pdb.Close()
			v, closer, err := pdb.Get(key)
			if err != nil || string(v) != "someone else's" {
				t.Fatalf("foreign store changed: %q, %v", v, err)
			}
			closer.Close()
		})
	}
}

func TestTimeoutCancelAndContext(t *testing.T) {
	db := openMem(t, nil)
	tr := newTr(t, db)
	tr.Cancel()
	_, err := tr.Get([]byte("k")).Get()
	wantCode(t, "read after Cancel", err, kv.CodeTransactionCancelled)
	tr.Reset()
	if _, err := tr.Get([]byte("k")).Get(); err != nil {
		t.Fatalf("read after Reset: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	tr, _ = db.CreateTransaction(ctx)
	cancel()
	err = tr.Commit().Err()
	wantCode(t, "commit after ctx cancel", err, kv.CodeTransactionCancelled)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cause lost: %v", err)
	}

	ctx, cancel = context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	tr, _ = db.CreateTransaction(ctx)
	_, err = tr.Get([]byte("k")).Get()
	wantCode(t, "read past ctx deadline", err, kv.CodeTransactionTimedOut)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cause lost: %v", err)
	}

	tr = newTr(t, db)
	if err := tr.Options().SetTimeout(time.Nanosecond); err != nil {
		t.Fatal(err)
	}
	for tr.Get([]byte("k")).Err() == nil {
	}
	err = tr.OnError(kv.NewError(kv.CodeNotCommitted))
	wantCode(t, "OnError after the timeout", err, kv.CodeTransactionTimedOut)
}

func TestOnErrorRetryLimitAndPersistence(t *testing.T) {
	db := openMem(t, nil)
	tr := newTr(t, db)
	o := tr.Options()
	if err := o.SetRetryLimit(2); err != nil {
		t.Fatal(err)
	}
	o.SetMaxRetryDelay(time.Millisecond)
	tr.Set([]byte("k"), []byte("v"))
	retry := kv.NewError(kv.CodeNotCommitted)
	for i := range 2 {
		if err := tr.OnError(retry); err != nil {
			t.Fatalf("retry %d: %v", i, err)
		}
	}
	// OnError discarded the write.
	if v := tr.Get([]byte("k")).MustGet(); v != nil {
		t.Fatalf("write survived OnError: %q", v)
	}
	wantCode(t, "OnError(nil)", tr.OnError(nil), kv.CodeClientInvalidOperation)
	if err := tr.OnError(retry); !errors.Is(err, kv.ErrNotCommitted) {
		t.Fatalf("third retry with limit 2: %v", err)
	}
	// The refusal cancelled the transaction until Reset (FoundationDB,
	// API >= 610): whatever OnError gets next, and every operation, report
	// transaction_cancelled.
	wantCode(t, "OnError after a refusal", tr.OnError(kv.NewError(kv.CodeKeyTooLarge)), kv.CodeTransactionCancelled)
	_, err := tr.Get([]byte("k")).Get()
	wantCode(t, "Get after a refusal", err, kv.CodeTransactionCancelled)
	// Reset drops the retry limit and the cancellation.
	tr.Reset()
	if err := newTr(t, db).OnError(kv.NewError(kv.CodeKeyTooLarge)); !errors.Is(err, kv.ErrKeyTooLarge) {
		t.Fatalf("non-retryable passed through as %v", err)
	}
	if err := tr.OnError(retry); err != nil {
		t.Fatalf("after Reset the retry limit should be gone: %v", err)
	}
}

func TestVersionstamps(t *testing.T) {
	db := openMem(t, nil)
	tr := newTr(t, db)
	f := tr.GetVersionstamp()
	key := append([]byte("log/"), make([]byte, 10)...)
	key = append(key, 4, 0, 0, 0)
	tr.Atomic(kv.SetVersionstampedKey, key, []byte("entry"))
	val := append(make([]byte, 10), 0, 0, 0, 0)
	tr.Atomic(kv.SetVersionstampedValue, []byte("latest"), val)
	_, err := tr.Get([]byte("latest")).Get()
	wantCode(t, "read of a versionstamped value", err, kv.CodeAccessedUnreadable)
	if err := tr.Commit().Err(); err != nil {
		t.Fatal(err)
	}
	vs, err := f.Get()
	if err != nil {
		t.Fatal(err)
	}
	cv, _ := tr.GetCommittedVersion()
	if vs.Version() != cv {
		t.Fatalf("versionstamp version %d, committed %d", vs.Version(), cv)
	}
	r := newTr(t, db)
	if v := r.Get([]byte("latest")).MustGet(); !bytes.Equal(v, vs[:]) {
		t.Fatalf("stamped value %x, want %x", v, vs)
	}
	if v := r.Get(append([]byte("log/"), vs[:]...)).MustGet(); string(v) != "entry" {
		t.Fatalf("stamped key holds %q", v)
	}
	ro := newTr(t, db)
	ro.Get([]byte("x"))
	rf := ro.GetVersionstamp()
	if err := ro.Commit().Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := rf.Get(); err == nil {
		t.Fatal("versionstamp of a read-only transaction resolved without error")
	}
}

func TestOneGroupResolvesInArrivalOrder(t *testing.T) {
	// Drive commitGroup directly with one group, as the committer would:
	// earlier transactions of the group conflict with later readers, and
	// batch order is the position in the group, failed transactions
	// included, as a commit proxy numbers its batch.
	db := openMem(t, nil)
	rv := newTr(t, db).GetReadVersion().MustGet()
	mk := func(reads bool, key string) *commitReq {
		r := &commitReq{
			muts:   []mutation{{kind: mutSet, key: []byte(key), value: []byte("v")}},
			writes: []kv.Range{kv.SingleKeyRange([]byte(key))},
			done:   make(chan struct{}, 1), // room for the committer's one answer
			rv:     rv,
		}
		if reads {
			r.reads = []kv.Range{kv.SingleKeyRange([]byte(key))}
		}
		return r
	}
	group := []*commitReq{mk(true, "k"), mk(true, "k"), mk(false, "k"), mk(true, "other")}
	db.commitGroup(group)
	wantErr := []bool{false, true, false, false}
	wantOrder := []uint16{0, 1, 2, 3}
	for i, r := range group {
		<-r.done
		if (r.err != nil) != wantErr[i] {
			t.Fatalf("transaction %d: err %v, want error %v", i, r.err, wantErr[i])
		}
		if r.err == nil && r.stamp.BatchOrder() != wantOrder[i] {
			t.Fatalf("transaction %d: batch order %d, want %d", i, r.stamp.BatchOrder(), wantOrder[i])
		}
	}
	wantCode(t, "second reader of k", group[1].err, kv.CodeNotCommitted)
	if b := db.stats.batches.Load(); b != 1 {
		t.Fatalf("%d batches, want 1", b)
	}
}

func TestCloseUnderLoadLosesNoAcknowledgedCommit(t *testing.T) {
	// Committers race Close: each commit either succeeds (and must then be
	// on disk after reopen) or fails with kv.ErrClosed; none hangs.
	dir := t.TempDir()
	db, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	const workers = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	var acked [][]byte
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				tr, err := db.CreateTransaction(context.Background())
				if err != nil {
					if !errors.Is(err, kv.ErrClosed) {
						t.Errorf("CreateTransaction: %v", err)
					}
					return
				}
				k := []byte{byte(w), byte(i >> 8), byte(i)}
				tr.Set(k, []byte("v"))
				if err := tr.Commit().Err(); err != nil {
					if !errors.Is(err, kv.ErrClosed) {
						t.Errorf("commit: %v", err)
					}
					return
				}
				mu.Lock()
				acked = append(acked, k)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(30 * time.Millisecond) // let commits flow; not a timing assertion
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	db, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tr := newTr(t, db)
	for _, k := range acked {
		if tr.Get(k).MustGet() == nil {
			t.Fatalf("acknowledged key %x lost across Close", k)
		}
	}
	t.Logf("%d acknowledged commits survived Close", len(acked))
}

func TestCancelFromAnotherGoroutine(t *testing.T) {
	db := openMem(t, nil)
	tr := newTr(t, db)
	tr.Options().SetMaxRetryDelay(time.Hour)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tr.Cancel()
	}()
	var err error
	for err == nil {
		_, err = tr.Get([]byte("k")).Get()
	}
	<-done
	wantCode(t, "read after a concurrent Cancel", err, kv.CodeTransactionCancelled)
	// OnError's backoff is abandoned for a canceled transaction.
	wantCode(t, "OnError of a canceled transaction", tr.OnError(kv.NewError(kv.CodeNotCommitted)), kv.CodeTransactionCancelled)
	wantCode(t, "commit of a canceled transaction", tr.Commit().Err(), kv.CodeTransactionCancelled)
}

func TestNoSyncStillPersistsOnClose(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	commitSet(t, db, "k", "v")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v := newTr(t, db).Get([]byte("k")).MustGet(); string(v) != "v" {
		t.Fatalf("NoSync commit lost across a clean Close: %q", v)
	}
}

func TestSystemKeys(t *testing.T) {
	engines(t, func(t *testing.T, open func(testing.TB, *Options) *DB) { testSystemKeys(t, open(t, nil)) })
}

func testSystemKeys(t *testing.T, db *DB) {
	sys := []byte("\xff/meta")
	tr := newTr(t, db)
	_, err := tr.Get(sys).Get()
	wantCode(t, "Get of a system key without options", err, kv.CodeKeyOutsideLegalRange)
	_, err = tr.GetRange(kv.Range{Begin: []byte("a"), End: []byte("\xff\x01")}, kv.RangeOptions{}).Get()
	wantCode(t, "GetRange into the system keyspace", err, kv.CodeKeyOutsideLegalRange)
	if _, err := tr.GetRange(kv.Range{Begin: []byte("a"), End: []byte("\xff")}, kv.RangeOptions{}).Get(); err != nil {
		t.Fatalf("GetRange up to \\xff: %v", err)
	}
	wantCode(t, "AddWriteConflictRange into the system keyspace",
		tr.AddWriteConflictRange(kv.Range{Begin: sys, End: kv.KeyAfter(sys)}), kv.CodeKeyOutsideLegalRange)
	wantCode(t, "inverted AddReadConflictRange",
		tr.AddReadConflictRange(kv.Range{Begin: []byte("b"), End: []byte("a")}), kv.CodeInvertedRange)

	w := newTr(t, db)
	w.Options().SetAccessSystemKeys()
	w.Set(sys, []byte("v"))
	if err := w.Commit().Err(); err != nil {
		t.Fatal(err)
	}
	r := newTr(t, db)
	r.Options().SetReadSystemKeys()
	if v := r.Get(sys).MustGet(); string(v) != "v" {
		t.Fatalf("system key read back %q", v)
	}
	r.Set([]byte("\xffx"), []byte("v")) // read-only access: writing is refused
	wantCode(t, "write with only SetReadSystemKeys", r.Commit().Err(), kv.CodeKeyOutsideLegalRange)
	// User keys never collide with engine metadata, whatever their bytes.
	u := newTr(t, db)
	u.Set(metaVersion, []byte("user"))
	u.Set(metaFormat, []byte("user"))
	if err := u.Commit().Err(); err != nil {
		t.Fatal(err)
	}
	if v := newTr(t, db).Get(metaFormat).MustGet(); string(v) != "user" {
		t.Fatalf("user key %q = %q", metaFormat, v)
	}
	if db.pdb == nil {
		return // the store keeps no metadata beside user keys
	}
	if base, _, err := checkFormat(db.pdb, time.Now(), pebble.NoSync); err != nil || base <= 0 {
		t.Fatalf("metadata disturbed by user keys: version %d, %v", base, err)
	}
}

func TestCommitTimeoutInFlightMayStillCommit(t *testing.T) {
	// The committer is held inside the group's apply; the commit's timeout
	// fires meanwhile and reports transaction_timed_out, yet the commit
	// lands once the committer goes on: FoundationDB's maybe-committed
	// timeout, which package txn resolves.
	db := openMem(t, nil)
	entered, release := make(chan struct{}), make(chan struct{})
	db.testHookBeforeApply = func() {
		close(entered)
		<-release
	}
	tr := newTr(t, db)
	tr.Options().SetTimeout(50 * time.Millisecond)
	tr.Set([]byte("k"), []byte("v"))
	errc := make(chan error, 1)
	go func() { errc <- tr.Commit().Err() }()
	<-entered
	err := <-errc
	wantCode(t, "commit timed out in flight", err, kv.CodeTransactionTimedOut)
	db.testHookBeforeApply = nil // the committer reads it again only for the next group
	close(release)
	var v []byte
	for v == nil { // the group publishes right after release
		v = newTr(t, db).Get([]byte("k")).MustGet()
	}
	if string(v) != "v" {
		t.Fatalf("got %q", v)
	}
}

func TestReadsRaceSnapshotRelease(t *testing.T) {
	engines(t, testReadsRaceSnapshotRelease)
}

func testReadsRaceSnapshotRelease(t *testing.T, open func(testing.TB, *Options) *DB) {
	// Readers hold old read versions while a writer commits and the clock
	// runs past five seconds, so snapshots are released (or the store's
	// versions dropped, and a key that comes and goes unlinked) under them:
	// each read returns what its version saw or transaction_too_old, never
	// anything else, and -race sees no unsynchronized access.
	clk := newStepClock()
	db := open(t, &Options{Clock: clk.Now})
	commitSet(t, db, "k", "0")
	all := kv.Range{Begin: []byte("a"), End: []byte("z")}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				tr, _ := db.CreateTransaction(context.Background())
				first, err := tr.Get([]byte("k")).Get()
				if err != nil {
					continue // even the first read may find its version aged out
				}
				firstRange, err := tr.GetRange(all, kv.RangeOptions{}).Get()
				if err != nil {
					continue
				}
				for i := range 20 {
					v, err := tr.Get([]byte("k")).Get()
					var kvs []kv.KeyValue
					if err == nil {
						kvs, err = tr.GetRange(all, kv.RangeOptions{Reverse: i%2 == 1}).Get()
						if i%2 == 1 {
							slices.Reverse(kvs)
						}
					}
					if err != nil {
						if !errors.Is(err, kv.ErrTransactionTooOld) {
							t.Errorf("read: %v", err)
						}
						break
					}
					if !bytes.Equal(v, first) {
						t.Errorf("value changed under a fixed read version: %q then %q", first, v)
						return
					}
					if fmt.Sprint(kvs) != fmt.Sprint(firstRange) {
						t.Errorf("range changed under a fixed read version: %q then %q", firstRange, kvs)
						return
					}
				}
			}
		}()
	}
	for i := range 300 {
		tr := newTr(t, db)
		tr.Set([]byte("k"), []byte(fmt.Sprint(i)))
		if i%3 == 0 {
			tr.Clear([]byte("j"))
		} else {
			tr.Set([]byte("j"), []byte(fmt.Sprint(i)))
		}
		if err := tr.Commit().Err(); err != nil {
			t.Fatal(err)
		}
		clk.Advance(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	commitSet(t, db, "k", "last") // with the readers gone, this releases all it can
	if db.store != nil {
		n := db.store.seekGE([]byte("k"), nil)
		versions := 0
		for mv := n.versions.Load(); mv != nil; mv = mv.older.Load() {
			versions++
		}
		if versions > 52 { // five seconds at 100 ms per commit
			t.Fatalf("%d versions of k retained, want about 50", versions)
		}
		return
	}
	db.mu.Lock()
	n, dying := len(db.mu.snaps), len(db.mu.dying)
	db.mu.Unlock()
	if n > 52 || dying != 0 { // five seconds at 100 ms per commit
		t.Fatalf("%d snapshots retained and %d dying, want about 50 and 0", n, dying)
	}
}
