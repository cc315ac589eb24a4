package faulty

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/embedded"
)

var seedFlag = flag.Uint64("seed", 0, "seed for the randomized tests (0 picks one from the clock)")

// testSeed returns the seed to use and, if the test fails, logs it with the
// command that replays the run.
func testSeed(t testing.TB) uint64 {
	s := *seedFlag
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d; replay: go test ./kv/faulty -run '^%s$' -count=1 -seed %d",
				s, strings.SplitN(t.Name(), "/", 2)[0], s)
		}
	})
	return s
}

func openMem(t testing.TB) *embedded.DB {
	t.Helper()
	e, err := embedded.OpenMem(nil)
	if err != nil {
		t.Fatalf("embedded.OpenMem: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// wrap wraps e and registers a Close (which waits for late commits) that
// runs before e's.
func wrap(t testing.TB, e kv.Database, cfg Config) *DB {
	t.Helper()
	db := Wrap(e, cfg)
	t.Cleanup(func() { db.Close() })
	return db
}

func newTxn(t testing.TB, db kv.Database) kv.Transaction {
	t.Helper()
	tr, err := db.CreateTransaction(context.Background())
	if err != nil {
		t.Fatalf("CreateTransaction: %v", err)
	}
	// Keep backoff short: the tests retry a lot and assert no timing.
	if err := tr.Options().SetMaxRetryDelay(time.Millisecond); err != nil {
		t.Fatalf("SetMaxRetryDelay: %v", err)
	}
	return tr
}

// read reads key from the unwrapped engine.
func read(t testing.TB, e kv.Database, key string) []byte {
	t.Helper()
	tr, err := e.CreateTransaction(context.Background())
	if err != nil {
		t.Fatalf("CreateTransaction: %v", err)
	}
	v, err := tr.Get([]byte(key)).Get()
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return v
}

func counter(t testing.TB, e kv.Database, key string) int64 {
	t.Helper()
	v := read(t, e, key)
	if v == nil {
		return 0
	}
	if len(v) != 8 {
		t.Fatalf("counter %q holds %d bytes, want 8", key, len(v))
	}
	return int64(binary.LittleEndian.Uint64(v))
}

func le64(n int64) []byte {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, uint64(n))
	return b
}

// stockAdd increments key by one with the stock retry loop (Commit, and
// OnError on failure), the loop that is unsafe for non-idempotent work.
func stockAdd(t testing.TB, db kv.Database, key string) error {
	tr := newTxn(t, db)
	for {
		tr.Atomic(kv.Add, []byte(key), le64(1))
		err := tr.Commit().Err()
		if err == nil {
			return nil
		}
		if err = tr.OnError(err); err != nil {
			return err
		}
	}
}

// allKinds gives every fault kind probability p.
func allKinds(seed uint64, p float64) Config {
	return Config{Seed: seed,
		UnknownResultApplied: p, UnknownResultNotApplied: p, UnknownResultLate: p,
		TimedOutApplied: p, TimedOutNotApplied: p, TimedOutLate: p,
		ClusterVersionChangedApplied: p, ClusterVersionChangedNotApplied: p,
		NotCommitted: p, TransactionTooOld: p, FutureVersion: p,
		RecoveryApplied: p, RecoveryNotApplied: p,
		LateDelay: 200 * time.Microsecond}
}

// within reports whether count is within 6 standard deviations of the
// binomial mean n*p.
func within(count int64, n int, p float64) bool {
	mean := float64(n) * p
	sd := math.Sqrt(float64(n) * p * (1 - p))
	return math.Abs(float64(count)-mean) <= 6*sd+1
}

// TestFaultRates commits N blind writes to distinct keys from one goroutine
// and checks each commit against its drawn fate: the error code, whether the
// key landed, the counters, and each kind's rate.
func TestFaultRates(t *testing.T) {
	seed := testSeed(t)
	const n = 3000
	cfg := allKinds(seed, 0.04)
	cfg.Latency, cfg.MaxLatency = 0.05, 50*time.Microsecond
	e := openMem(t)
	db := wrap(t, e, cfg)

	for i := range n {
		tr := newTxn(t, db)
		tr.Set(fmt.Appendf(nil, "k%05d", i), []byte("v"))
		err := tr.Commit().Err()
		want := cfg.fateOf(uint64(i)).kind
		code, _ := kv.ErrorCode(err)
		if (want == None && err != nil) || (want != None && code != want.Code()) {
			t.Fatalf("commit %d: err %v, want fate %v (code %d)", i, err, want, want.Code())
		}
	}
	db.Wait()

	for i := range n {
		f := cfg.fateOf(uint64(i))
		got := read(t, e, fmt.Sprintf("k%05d", i)) != nil
		if want := kindInfo[f.kind].form != formNotApplied; got != want {
			t.Errorf("commit %d (%v): key present %v, want %v", i, f.kind, got, want)
		}
	}

	st := db.Stats()
	if st.Commits != n {
		t.Errorf("Stats.Commits = %d, want %d", st.Commits, n)
	}
	if !within(st.Delayed, n, cfg.Latency) {
		t.Errorf("Stats.Delayed = %d, want about %v", st.Delayed, n*cfg.Latency)
	}
	for _, k := range Kinds() {
		o := st.ByKind[k]
		if !within(o.Injected, n, cfg.prob(k)) {
			t.Errorf("%v injected %d times, want about %v", k, o.Injected, float64(n)*cfg.prob(k))
		}
		if o.Injected == 0 {
			t.Errorf("%v never injected", k)
		}
		// No two commits touch the same key, so nothing conflicts and
		// every fault has its nominal outcome.
		var got int64
		switch kindInfo[k].form {
		case formApplied:
			got = o.Applied
		case formNotApplied:
			got = o.NotApplied
		case formLate:
			got = o.LateApplied
		}
		if got != o.Injected || o.Pending() != 0 {
			t.Errorf("%v: outcomes %+v, want all %d with the nominal outcome", k, o, o.Injected)
		}
	}
}

// TestStockLoopDuplicates is the proof that the faults bite: the stock
// retry loop, incrementing a counter with a blind atomic add, leaves it
// ahead of the acknowledged increments by exactly the commits that were
// applied although reported failed.
func TestStockLoopDuplicates(t *testing.T) {
	seed := testSeed(t)
	const n = 600
	e := openMem(t)
	db := wrap(t, e, allKinds(seed, 0.05))

	var acked, gaveUp int64
	for range n {
		if err := stockAdd(t, db, "ctr"); err != nil {
			if !errors.Is(err, kv.ErrTransactionTimedOut) {
				t.Fatalf("stock loop gave up with %v, want only transaction_timed_out", err)
			}
			gaveUp++
			continue
		}
		acked++
	}
	db.Wait()

	st := db.Stats()
	got := counter(t, e, "ctr")
	if want := acked + st.AppliedButFailed(); got != want {
		t.Fatalf("counter = %d, want acknowledged %d + applied-but-failed %d = %d (stats %+v)",
			got, acked, st.AppliedButFailed(), want, st.ByKind)
	}
	// Timeouts are not retried, so the applied ones are lost acks, not
	// duplicates; the retried kinds' applied commits are the duplicates.
	var lostAcks int64
	for _, k := range []Kind{TimedOutApplied, TimedOutLate} {
		lostAcks += st.ByKind[k].Applied + st.ByKind[k].LateApplied
	}
	dups := got - acked - lostAcks
	if dups <= 0 {
		t.Fatalf("no duplicates over %d increments: the faults did not bite (stats %+v)", n, st.ByKind)
	}
	if tot := st.Total(); tot.NotApplied == 0 || tot.LateApplied == 0 {
		t.Fatalf("want not-applied and late-applied faults too, got %+v", tot)
	}
	t.Logf("%d increments: %d acknowledged, %d gave up on a timeout, counter %d: %d duplicates, %d lost acks",
		n, acked, gaveUp, got, dups, lostAcks)
}

// TestLateCommitLandsAfterError holds a late commit until the caller has
// seen its error and checked the database, then lets it land.
func TestLateCommitLandsAfterError(t *testing.T) {
	e := openMem(t)
	db := wrap(t, e, Config{Seed: 1, UnknownResultLate: 1})
	release := make(chan struct{})
	db.beforeLateCommit = func(uint64) { <-release }

	tr := newTxn(t, db)
	tr.Set([]byte("k"), []byte("late"))
	if err := tr.Commit().Err(); !errors.Is(err, kv.ErrCommitUnknownResult) {
		t.Fatalf("Commit = %v, want commit_unknown_result", err)
	}
	if v := read(t, e, "k"); v != nil {
		t.Fatalf("k = %q before the late commit was released, want absent", v)
	}
	if o := db.Stats().ByKind[UnknownResultLate]; o.Injected != 1 || o.Pending() != 1 {
		t.Fatalf("outcomes %+v, want one injected and pending", o)
	}
	close(release)
	db.Wait()
	if v := read(t, e, "k"); string(v) != "late" {
		t.Fatalf("k = %q after the late commit, want %q", v, "late")
	}
	if o := db.Stats().ByKind[UnknownResultLate]; o.LateApplied != 1 {
		t.Fatalf("outcomes %+v, want one late-applied", o)
	}
}

// seedWith returns the first seed from 1 whose first fates are kinds.
func seedWith(t testing.TB, cfg Config, kinds ...Kind) Config {
	t.Helper()
	for s := uint64(1); s < 10_000; s++ {
		cfg.Seed = s
		ok := true
		for i, k := range kinds {
			if cfg.fateOf(uint64(i)).kind != k {
				ok = false
				break
			}
		}
		if ok {
			return cfg
		}
	}
	t.Fatalf("no seed below 10000 starts with %v", kinds)
	return cfg
}

// TestLateCommitLosesToRetry: the caller retries after a late 1021 and its
// retry commits first; the late commit, which read the same key at its old
// read version, then fails on the conflict and does not land.
func TestLateCommitLosesToRetry(t *testing.T) {
	e := openMem(t)
	db := wrap(t, e, seedWith(t, Config{UnknownResultLate: 0.5}, UnknownResultLate, None))
	release := make(chan struct{})
	db.beforeLateCommit = func(uint64) { <-release }

	tr := newTxn(t, db)
	write := func(v string) error {
		if _, err := tr.Get([]byte("k")).Get(); err != nil {
			return err
		}
		tr.Set([]byte("k"), []byte(v))
		return tr.Commit().Err()
	}
	err := write("first")
	if !errors.Is(err, kv.ErrCommitUnknownResult) {
		t.Fatalf("first commit = %v, want commit_unknown_result", err)
	}
	if _, err := tr.GetCommittedVersion(); err == nil {
		t.Errorf("GetCommittedVersion after a fault succeeded, want the fault")
	}
	if _, err := tr.Get([]byte("k")).Get(); !errors.Is(err, kv.ErrCommitUnknownResult) {
		t.Errorf("Get between a late fault and OnError = %v, want the fault", err)
	}
	if err := tr.OnError(err); err != nil {
		t.Fatalf("OnError(1021) = %v, want nil", err)
	}
	if err := write("retry"); err != nil {
		t.Fatalf("retry: %v", err)
	}
	close(release)
	db.Wait()
	if v := read(t, e, "k"); string(v) != "retry" {
		t.Fatalf("k = %q, want %q: the late commit should have lost to the retry", v, "retry")
	}
	if o := db.Stats().ByKind[UnknownResultLate]; o.LateNotApplied != 1 {
		t.Fatalf("outcomes %+v, want one late-not-applied", o)
	}
}

// TestSameSeedSameSchedule replays a single-goroutine run and checks that
// every commit's outcome repeats, and that another seed gives another run.
func TestSameSeedSameSchedule(t *testing.T) {
	seed := testSeed(t)
	run := func(seed uint64) []string {
		e := openMem(t)
		db := wrap(t, e, allKinds(seed, 0.07))
		var out []string
		for i := range 300 {
			tr := newTxn(t, db)
			tr.Set(fmt.Appendf(nil, "k%d", i), []byte("v"))
			code, _ := kv.ErrorCode(tr.Commit().Err())
			out = append(out, fmt.Sprint(code))
		}
		db.Wait()
		for i := range out {
			out[i] += fmt.Sprintf("/%v", read(t, e, fmt.Sprintf("k%d", i)) != nil)
		}
		return out
	}
	a, b, c := run(seed), run(seed), run(seed+1)
	if strings.Join(a, " ") != strings.Join(b, " ") {
		t.Fatalf("seed %d gave two schedules:\n%v\n%v", seed, a, b)
	}
	if strings.Join(a, " ") == strings.Join(c, " ") {
		t.Fatalf("seeds %d and %d gave the same schedule", seed, seed+1)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{UnknownResultApplied: -0.1}, "Config.UnknownResultApplied"},
		{Config{TimedOutLate: 1.5}, "Config.TimedOutLate"},
		{Config{FutureVersion: math.NaN()}, "Config.FutureVersion"},
		{Config{NotCommitted: 0.6, TransactionTooOld: 0.6}, "sum to 1.2"},
		{Config{Latency: 2}, "Config.Latency"},
		{Config{MaxLatency: -time.Second}, "Config.MaxLatency"},
		{Config{LateDelay: -1}, "Config.LateDelay"},
	} {
		err := tc.cfg.validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("validate(%+v) = %v, want an error naming %q", tc.cfg, err, tc.want)
		}
		// Wrap does not fail; the transactions do.
		if _, err := Wrap(openMem(t), tc.cfg).CreateTransaction(context.Background()); err == nil ||
			!strings.Contains(err.Error(), tc.want) {
			t.Errorf("CreateTransaction with %+v = %v, want an error naming %q", tc.cfg, err, tc.want)
		}
	}
	ok := Config{UnknownResultApplied: 0.1, UnknownResultNotApplied: 0.2, UnknownResultLate: 0.7, Latency: 1}
	if err := ok.validate(); err != nil {
		t.Errorf("validate(%+v) = %v, want nil", ok, err)
	}
	if _, err := Wrap(nil, Config{}).CreateTransaction(context.Background()); err == nil ||
		!strings.Contains(err.Error(), "nil kv.Database") {
		t.Errorf("CreateTransaction on Wrap(nil) = %v, want an error naming the nil database", err)
	}
}

func TestOnErrorPolicy(t *testing.T) {
	t.Run("RetryLimitAcrossLateHandoffs", func(t *testing.T) {
		db := wrap(t, openMem(t), Config{UnknownResultLate: 1, LateDelay: time.Microsecond})
		tr := newTxn(t, db)
		if err := tr.Options().SetRetryLimit(2); err != nil {
			t.Fatal(err)
		}
		attempts := 0
		for {
			attempts++
			tr.Set([]byte("k"), []byte("v"))
			err := tr.Commit().Err()
			if err = tr.OnError(err); err != nil {
				if !errors.Is(err, kv.ErrCommitUnknownResult) {
					t.Fatalf("OnError gave up with %v, want the last error", err)
				}
				break
			}
		}
		if attempts != 3 {
			t.Fatalf("%d attempts with retry limit 2, want 3", attempts)
		}
	})
	t.Run("TimeoutNotRetried", func(t *testing.T) {
		tr := newTxn(t, wrap(t, openMem(t), Config{TimedOutNotApplied: 1}))
		tr.Set([]byte("k"), []byte("v"))
		err := tr.Commit().Err()
		if !errors.Is(err, kv.ErrTransactionTimedOut) {
			t.Fatalf("Commit = %v, want transaction_timed_out", err)
		}
		if got := tr.OnError(err); got != err {
			t.Fatalf("OnError(1031) = %v, want the error back", got)
		}
	})
	t.Run("ClusterVersionChangedRetried", func(t *testing.T) {
		e := openMem(t)
		tr := newTxn(t, wrap(t, e, Config{ClusterVersionChangedNotApplied: 1}))
		tr.Set([]byte("k"), []byte("v"))
		err := tr.Commit().Err()
		if !errors.Is(err, kv.ErrClusterVersionChanged) || !kv.MaybeCommitted(err) {
			t.Fatalf("Commit = %v, want cluster_version_changed", err)
		}
		if err := tr.OnError(err); err != nil {
			t.Fatalf("OnError(1039) = %v, want nil", err)
		}
		if v := read(t, e, "k"); v != nil {
			t.Fatalf("k = %q after a not-applied fault, want absent", v)
		}
	})
	t.Run("OptionsReappliedToFreshInner", func(t *testing.T) {
		// After a late fault the next attempt runs on a fresh inner
		// transaction. It gets only the options OnError keeps
		// (FoundationDB's persistent ones), not the size limit, which
		// OnError drops as on a cluster.
		db := wrap(t, openMem(t), seedWith(t, Config{UnknownResultLate: 0.5}, UnknownResultLate, None))
		tr := newTxn(t, db)
		if err := tr.Options().SetSizeLimit(1000); err != nil {
			t.Fatal(err)
		}
		tr.Set([]byte("k"), []byte("small"))
		err := tr.Commit().Err()
		if err = tr.OnError(err); err != nil {
			t.Fatalf("OnError = %v", err)
		}
		tr.Set([]byte("k"), make([]byte, 2000))
		if err := tr.Commit().Err(); err != nil {
			t.Fatalf("2000-byte commit after OnError dropped the 1000-byte size limit = %v", err)
		}
	})
	t.Run("ReadOnlyNotFaulted", func(t *testing.T) {
		tr := newTxn(t, wrap(t, openMem(t), Config{UnknownResultApplied: 1}))
		if _, err := tr.Get([]byte("k")).Get(); err != nil {
			t.Fatal(err)
		}
		if err := tr.Commit().Err(); err != nil {
			t.Fatalf("read-only Commit = %v, want nil", err)
		}
	})
	for _, k := range []Kind{UnknownResultApplied, UnknownResultNotApplied, UnknownResultLate} {
		t.Run("VersionstampFails/"+k.String(), func(t *testing.T) {
			e := openMem(t)
			var cfg Config
			switch k {
			case UnknownResultApplied:
				cfg.UnknownResultApplied = 1
			case UnknownResultNotApplied:
				cfg.UnknownResultNotApplied = 1
			case UnknownResultLate:
				cfg.UnknownResultLate = 1
			}
			db := wrap(t, e, cfg)
			tr := newTxn(t, db)
			vs := tr.GetVersionstamp() // before the commit, as a caller would
			tr.Atomic(kv.SetVersionstampedValue, []byte("k"), []byte("vvvvvvvvvv\x00\x00\x00\x00"))
			if err := tr.Commit().Err(); !errors.Is(err, kv.ErrCommitUnknownResult) {
				t.Fatalf("Commit = %v, want commit_unknown_result", err)
			}
			if _, err := vs.Get(); !errors.Is(err, kv.ErrCommitUnknownResult) {
				t.Errorf("versionstamp after the fault: %v, want the fault", err)
			}
			if _, err := tr.GetCommittedVersion(); !errors.Is(err, kv.ErrCommitUnknownResult) {
				t.Errorf("GetCommittedVersion after the fault: %v, want the fault", err)
			}
			db.Wait()
			if got, want := read(t, e, "k") != nil, k != UnknownResultNotApplied; got != want {
				t.Fatalf("k present = %v after %v, want %v", got, k, want)
			}
		})
	}
}

// TestConcurrentReadModifyWrite runs the stock loop from several goroutines
// on one counter by read-modify-write, so that real conflicts meet injected
// faults (an "applied" fault whose inner commit conflicts must count as not
// applied) and late commits race retries. Serializability makes the counter
// equal the number of inner commits that succeeded: the acknowledged ones
// plus the applied-but-failed ones.
func TestConcurrentReadModifyWrite(t *testing.T) {
	seed := testSeed(t)
	const workers, each = 4, 40
	e := openMem(t)
	cfg := allKinds(seed, 0.05)
	cfg.Latency, cfg.MaxLatency = 0.2, 100*time.Microsecond
	db := wrap(t, e, cfg)

	incr := func() error {
		tr, err := db.CreateTransaction(context.Background())
		if err != nil {
			return err
		}
		if err := tr.Options().SetMaxRetryDelay(time.Millisecond); err != nil {
			return err
		}
		for {
			v, err := tr.Get([]byte("ctr")).Get()
			if err == nil {
				n := int64(0)
				if v != nil {
					n = int64(binary.LittleEndian.Uint64(v))
				}
				tr.Set([]byte("ctr"), le64(n+1))
				err = tr.Commit().Err()
			}
			if err == nil {
				return nil
			}
			if err = tr.OnError(err); err != nil {
				return err
			}
		}
	}
	var mu sync.Mutex
	var acked int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				if incr() == nil {
					mu.Lock()
					acked++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	db.Wait()

	st := db.Stats()
	if got, want := counter(t, e, "ctr"), acked+st.AppliedButFailed(); got != want {
		t.Fatalf("counter = %d, want acknowledged %d + applied-but-failed %d = %d (stats %+v)",
			got, acked, st.AppliedButFailed(), want, st.ByKind)
	}
	if tot := st.Total(); tot.Pending() != 0 {
		t.Fatalf("%d late commits still pending after Wait", tot.Pending())
	}
}

// TestCloseWaitsAndOwnership: Close waits for a late commit in flight,
// closes the inner database only when it owns it, refuses later
// transactions and commits, and may be called twice.
func TestCloseWaitsAndOwnership(t *testing.T) {
	for _, owns := range []bool{false, true} {
		t.Run(fmt.Sprintf("CloseInner=%v", owns), func(t *testing.T) {
			e := openMem(t)
			db := Wrap(e, Config{UnknownResultLate: 1, LateDelay: 5 * time.Millisecond, CloseInner: owns})
			tr := newTxn(t, db)
			tr.Set([]byte("k"), []byte("late"))
			if err := tr.Commit().Err(); !errors.Is(err, kv.ErrCommitUnknownResult) {
				t.Fatalf("Commit = %v, want commit_unknown_result", err)
			}
			open := newTxn(t, db) // still open at Close
			open.Set([]byte("j"), []byte("v"))
			if err := db.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if o := db.Stats().ByKind[UnknownResultLate]; o.LateApplied != 1 {
				t.Fatalf("after Close: outcomes %+v, want the late commit landed", o)
			}
			if err := open.Commit().Err(); !errors.Is(err, kv.ErrClosed) {
				t.Errorf("Commit after Close = %v, want kv.ErrClosed", err)
			}
			if _, err := db.CreateTransaction(context.Background()); !errors.Is(err, kv.ErrClosed) {
				t.Errorf("CreateTransaction after Close = %v, want kv.ErrClosed", err)
			}
			if err := db.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			_, err := e.CreateTransaction(context.Background())
			if closed := errors.Is(err, kv.ErrClosed); closed != owns {
				t.Fatalf("inner CreateTransaction after Close = %v; want closed = %v", err, owns)
			}
			if !owns {
				if v := read(t, e, "k"); string(v) != "late" {
					t.Fatalf("k = %q, want the late commit's %q", v, "late")
				}
			}
		})
	}
}

// A commit on the wire is not recalled when its client gives up: a late
// commit lands after the caller's context is canceled or its transaction's
// timeout passes, and is counted as landed (issue 11, item 7).
func TestLateCommitOutlivesItsCaller(t *testing.T) {
	for _, how := range []string{"cancel", "timeout"} {
		t.Run(how, func(t *testing.T) {
			e := openMem(t)
			db := wrap(t, e, Config{Seed: 1, UnknownResultLate: 1})
			release := make(chan struct{})
			db.beforeLateCommit = func(uint64) { <-release }
			ctx, cancel := context.WithCancel(context.Background())
			tr, err := db.CreateTransaction(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if how == "timeout" {
				if err := tr.Options().SetTimeout(20 * time.Millisecond); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := tr.Get([]byte("other")).Get(); err != nil {
				t.Fatal(err)
			}
			tr.Set([]byte("k"), []byte("late"))
			if err := tr.Commit().Err(); !errors.Is(err, kv.ErrCommitUnknownResult) {
				t.Fatalf("Commit = %v, want commit_unknown_result", err)
			}
			if how == "cancel" {
				cancel() // the caller's usual defer cancel()
			} else {
				time.Sleep(40 * time.Millisecond)
			}
			close(release)
			db.Wait()
			cancel()
			if v := read(t, e, "k"); string(v) != "late" {
				t.Fatalf("k = %q after the late commit, want %q: it was dropped with its caller", v, "late")
			}
			if o := db.Stats().ByKind[UnknownResultLate]; o.LateApplied != 1 || o.LateNotApplied != 0 {
				t.Fatalf("outcomes %+v, want one late-applied", o)
			}
		})
	}
}

// A recovery fault jumps the database's version while the commit is in
// flight: the commit fails with 1021, applied or not, and a transaction
// whose read version predates the jump fails with 1007 (issue 11, item 9).
func TestRecoveryFault(t *testing.T) {
	for _, k := range []Kind{RecoveryApplied, RecoveryNotApplied} {
		t.Run(k.String(), func(t *testing.T) {
			e := openMem(t)
			cfg := Config{RecoveryJump: 30 * time.Second}
			if k == RecoveryApplied {
				cfg.RecoveryApplied = 1
			} else {
				cfg.RecoveryNotApplied = 1
			}
			db := wrap(t, e, cfg)
			bystander := newTxn(t, db)
			before, err := bystander.GetReadVersion().Get()
			if err != nil {
				t.Fatal(err)
			}
			tr := newTxn(t, db)
			tr.Set([]byte("k"), []byte("v"))
			if err := tr.Commit().Err(); !errors.Is(err, kv.ErrCommitUnknownResult) {
				t.Fatalf("Commit = %v, want commit_unknown_result", err)
			}
			if v := read(t, e, "k"); (v != nil) != (k == RecoveryApplied) {
				t.Fatalf("k = %q after %v", v, k)
			}
			if _, err := bystander.Get([]byte("x")).Get(); !errors.Is(err, kv.ErrTransactionTooOld) {
				t.Fatalf("read at a read version from before the recovery: %v, want transaction_too_old", err)
			}
			after, err := newTxn(t, e).GetReadVersion().Get()
			if err != nil || after < before+30*kv.VersionsPerSecond {
				t.Fatalf("read version after the recovery = %d, %v; want a jump of at least 30 s of versions from %d", after, err, before)
			}
			o := db.Stats().ByKind[k]
			if o.Injected != 1 || (k == RecoveryApplied) != (o.Applied == 1) {
				t.Fatalf("outcomes %+v", o)
			}
		})
	}
	// A database that cannot jump is refused.
	if _, err := Wrap(noJump{openMem(t)}, Config{RecoveryApplied: 0.1}).CreateTransaction(context.Background()); err == nil || !strings.Contains(err.Error(), "Recoverer") {
		t.Fatalf("CreateTransaction over a database without AdvanceVersion: %v, want an error naming Recoverer", err)
	}
}

type noJump struct{ kv.Database }
