package txn_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/embedded"
	"github.com/idemkv/idemkv/txn"
)

// countDB counts, through its transactions, the reads of marker slots
// (snapshot reads included) and the commits sent.
type countDB struct {
	kv.Database
	reads, commits atomic.Int64
}

func (db *countDB) CreateTransaction(ctx context.Context) (kv.Transaction, error) {
	tr, err := db.Database.CreateTransaction(ctx)
	if err != nil {
		return nil, err
	}
	return &countTx{Transaction: tr, db: db}, nil
}

type countTx struct {
	kv.Transaction
	db *countDB
}

func (t *countTx) Get(key []byte) *kv.Future[[]byte] {
	if txn.SlotRange(txn.DefaultPrefix).Contains(key) {
		t.db.reads.Add(1)
	}
	return t.Transaction.Get(key)
}

func (t *countTx) Snapshot() kv.ReadTransaction {
	return &countSnap{ReadTransaction: t.Transaction.Snapshot(), db: t.db}
}

func (t *countTx) Commit() *kv.Future[struct{}] {
	t.db.commits.Add(1)
	return t.Transaction.Commit()
}

type countSnap struct {
	kv.ReadTransaction
	db *countDB
}

func (s *countSnap) Get(key []byte) *kv.Future[[]byte] {
	if txn.SlotRange(txn.DefaultPrefix).Contains(key) {
		s.db.reads.Add(1)
	}
	return s.ReadTransaction.Get(key)
}

// openStill opens an in-memory engine whose clock stands still, so that its
// versions advance only by commits and AdvanceVersion: the pool's
// one-second trust in a sighting does not run out under a slow, shared test
// machine.
func openStill(t *testing.T) *embedded.DB {
	t.Helper()
	now := time.Now()
	db, err := embedded.OpenMem(&embedded.Options{Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func foreignClear(t *testing.T, db kv.Database) {
	t.Helper()
	all, err := kv.PrefixRange(txn.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := txn.StockTransact(context.Background(), db, func(tr kv.Transaction) (struct{}, error) {
		tr.ClearRange(all)
		return struct{}{}, nil
	}); err != nil {
		t.Fatal(err)
	}
}

// call runs one blind add through db and returns its ID, its error and
// how many times fn ran.
func call(t *testing.T, db kv.Database, opts *txn.Options) (txn.ID, int, error) {
	t.Helper()
	var id txn.ID
	o := txn.Options{MaxRetryDelay: time.Millisecond}
	if opts != nil {
		o = *opts
	}
	o.Observe = func(s txn.Stats) { id = s.ID }
	runs := 0
	_, err := txn.Transact(context.Background(), db, incr([]byte("c"), &runs), &o)
	return id, runs, err
}

// Calls one after another hold the same slot in turn: one key, the
// sequence counting calls, the slot holding the last call's commit.
func TestSlotReuse(t *testing.T) {
	inner := openStill(t)
	var ids []txn.ID
	for i := range 5 {
		id, runs, err := call(t, inner, nil)
		if err != nil || runs != 1 {
			t.Fatalf("call %d: %v after %d runs", i, err, runs)
		}
		ids = append(ids, id)
	}
	for i, id := range ids {
		if !id.IsSlot() || id.Owner != ids[0].Owner || id.Slot != 0 || id.Seq != uint64(i+1) {
			t.Fatalf("IDs %v: want one owner, slot 0, sequences 1 to 5", ids)
		}
	}
	kvs := dumpPrefix(t, inner)
	if len(kvs) != 1 {
		t.Fatalf("%d keys under the prefix after 5 calls; want 1 slot", len(kvs))
	}
	if st := readSlot(t, inner, kvs[0].Key); st.Seq != 5 || st.Attempt != 1 {
		t.Fatalf("slot = %+v; want the fifth call's first attempt", st)
	}
	if n := readCount(t, inner, []byte("c")); n != 5 {
		t.Fatalf("counter = %d, want 5", n)
	}
	if slots, pinned := txn.PoolSlots(inner, nil, 0); slots != 1 || pinned != 0 {
		t.Fatalf("PoolSlots = %d, %d; want 1, 0", slots, pinned)
	}
}

// An attempt of an earlier call still in flight when the slot's next call
// runs can never land: it read the slot before anything of the next call
// wrote it. Here the earlier call's first attempt is held on the wire; the
// call itself ends — committed by its second attempt, or fenced after fn
// failed — and the next call reuses the slot; then the held attempt lands,
// before the next call's commit or after it, and must fail.
func TestSlotReuseFencesEarlierAttemptInFlight(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name string
		// fail: the first call's fn fails on its second run, so the call
		// fences its ID and returns fn's error.
		fail bool
		// release: land the held attempt just before the second call's
		// commit (else after it).
		before bool
		want   int64
	}{
		{name: "committed/after", want: 2},
		{name: "committed/before", before: true, want: 2},
		{name: "fenced/after", fail: true, want: 1},
		{name: "fenced/before", fail: true, before: true, want: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inner := openStill(t)
			db := &scriptDB{Database: inner, plan: func(n int) action {
				switch {
				case n == 1:
					return held1021
				case n == 3 && tc.before:
					return releaseThenPass
				}
				return pass
			}}
			runs := 0
			_, err := txn.Transact(context.Background(), db, func(tr kv.Transaction) (int, error) {
				runs++
				if tc.fail && runs > 1 {
					return 0, boom
				}
				return incr([]byte("c"), new(int))(tr)
			}, fastRetries)
			if tc.fail != errors.Is(err, boom) || (!tc.fail && err != nil) {
				t.Fatalf("first call: %v", err)
			}
			first, _ := db.lastMarker()
			second, runs2, err := call(t, db, nil)
			if err != nil || runs2 != 1 || second.Slot != first.Slot || second.Seq != first.Seq+1 {
				t.Fatalf("second call %v: %v after %d runs; want the first's slot %v again, next sequence", second, err, runs2, first)
			}
			db.release()
			if len(db.landed) != 1 || !errors.Is(db.landed[0], kv.ErrNotCommitted) {
				t.Fatalf("the first call's held attempt: %v; want not_committed", db.landed)
			}
			if n := readCount(t, inner, []byte("c")); n != tc.want {
				t.Fatalf("counter = %d, want %d", n, tc.want)
			}
		})
	}
}

// A call whose outcome is unknown keeps its slot, pinned, so that Resolve
// of its ID answers: the next calls take another slot. Past the resolve
// window the slot is reused, and Resolve of the old ID reports the outcome
// lost (Reused) — never a wrong answer.
func TestUnknownOutcomePinsSlot(t *testing.T) {
	for _, act := range []action{applied1031, notApplied1031} {
		t.Run(map[action]string{applied1031: "applied", notApplied1031: "not-applied"}[act], func(t *testing.T) {
			inner := openStill(t)
			want := map[action]txn.Outcome{applied1031: txn.Committed, notApplied1031: txn.NotCommitted}[act]
			db := &scriptDB{Database: inner, plan: firstCommit(act)}
			_, _, err := call(t, db, nil)
			var unknown *txn.UnknownResultError
			if !errors.As(err, &unknown) {
				t.Fatalf("first call: %v; want *UnknownResultError", err)
			}
			if slots, pinned := txn.PoolSlots(db, nil, 0); slots != 1 || pinned != 1 {
				t.Fatalf("PoolSlots = %d, %d; want 1 slot, pinned", slots, pinned)
			}
			for range 3 {
				id, _, err := call(t, db, nil)
				if err != nil || id.Slot == unknown.ID.Slot {
					t.Fatalf("call after the unknown one: %v, %v; want another slot than %v", id, err, unknown.ID)
				}
			}
			for range 2 {
				if o, err := txn.Resolve(context.Background(), inner, unknown.ID, nil); err != nil || o != want {
					t.Fatalf("Resolve = %v, %v; want %v", o, err, want)
				}
			}

			// A resolve window of a nanosecond: the slot is free again at
			// once, and the next call reuses it.
			short := &txn.Options{MaxRetryDelay: time.Millisecond, ResolveWindow: time.Nanosecond}
			db = &scriptDB{Database: inner, plan: firstCommit(act)}
			_, _, err = call(t, db, short)
			if !errors.As(err, &unknown) {
				t.Fatalf("call: %v; want *UnknownResultError", err)
			}
			time.Sleep(time.Millisecond)
			next, _, err := call(t, db, short)
			if err != nil || next.Slot != unknown.ID.Slot || next.Seq != unknown.ID.Seq+1 {
				t.Fatalf("next call %v, %v; want the unknown call's slot %v reused", next, err, unknown.ID)
			}
			var lost *txn.OutcomeLostError
			if o, err := txn.Resolve(context.Background(), inner, unknown.ID, nil); !errors.As(err, &lost) || !lost.Reused {
				t.Fatalf("Resolve after the slot's reuse = %v, %v; want *OutcomeLostError (Reused)", o, err)
			}
		})
	}
}

// Before a call's first commit its slot must be known present and written
// within five seconds of versions (see "Liveness" in the package doc): a
// new slot is created first, a slot idle longer is refreshed first — each a
// commit of its own, fn run once — and a slot seen within the last second
// needs nothing; in between, the call reads it, overlapping fn.
func TestSlotRefreshBeforeFirstCommit(t *testing.T) {
	inner := openStill(t)
	db := &countDB{Database: inner}
	step := func(name string, advance int64, wantReads, wantCommits int64) txn.ID {
		t.Helper()
		if advance > 0 {
			if err := inner.AdvanceVersion(advance); err != nil {
				t.Fatal(err)
			}
		}
		r0, c0 := db.reads.Load(), db.commits.Load()
		id, runs, err := call(t, db, nil)
		if err != nil || runs != 1 {
			t.Fatalf("%s: %v after %d runs", name, err, runs)
		}
		if r, c := db.reads.Load()-r0, db.commits.Load()-c0; r != wantReads || c != wantCommits {
			t.Fatalf("%s: %d slot reads, %d commits; want %d, %d", name, r, c, wantReads, wantCommits)
		}
		return id
	}
	// The refresh reads the slot too (it must, for its conflict range).
	first := step("new slot", 0, 1, 2)
	if st := readSlot(t, inner, txn.SlotKey(txn.DefaultPrefix, first.Owner, first.Slot)); st.Seq != 1 || st.Attempt != 1 {
		t.Fatalf("slot after the first call = %+v", st)
	}
	step("seen just now", 0, 0, 1)
	step("seen two seconds ago", 2*kv.VersionsPerSecond, 1, 1)
	step("idle six seconds", 6*kv.VersionsPerSecond, 1, 2)
	step("seen just now again", 0, 0, 1)
	if n := readCount(t, inner, []byte("c")); n != 5 {
		t.Fatalf("counter = %d, want 5", n)
	}
}

// A foreign clear of the prefix (a misuse: a test reset, a "delete
// everything" job) after the pool saw its slot: the pool's sighting is
// stale. A call that trusts it commits with no slot under it; if it then
// needs a reader (a maybe-committed error), the reader finds the slot
// absent and reports the outcome lost — never runs fn again — even when
// the attempt did not commit. That is the cost of the sighting (liveness
// after a misuse). The reader marks the slot gone, so the next call
// creates it first and settles the same fault by running fn again. A
// sighting older than a second is read: the call then finds the slot gone
// before its commit, refreshes it, and runs fn again at once.
func TestSlotSightingAfterForeignClear(t *testing.T) {
	t.Run("applied-then-cleared", func(t *testing.T) {
		inner := openStill(t)
		var fireAt atomic.Int64 // the commit to apply and report 1021 for
		sdb := &scriptDB{Database: inner,
			plan: func(n int) action {
				if int64(n) == fireAt.Load() {
					return applied1021
				}
				return pass
			},
			after: func(int) { foreignClear(t, inner) }} // removes the slot just committed
		if _, _, err := call(t, sdb, nil); err != nil {
			t.Fatal(err)
		}
		sdb.mu.Lock()
		fireAt.Store(int64(sdb.n) + 1)
		sdb.mu.Unlock()
		_, runs, err := call(t, sdb, nil)
		var lost *txn.OutcomeLostError
		if !errors.As(err, &lost) || !lost.Cleared || runs != 1 {
			t.Fatalf("Transact = %v after %d runs; want *OutcomeLostError with Cleared after 1 run", err, runs)
		}
		if n := readCount(t, inner, []byte("c")); n != 2 {
			t.Fatalf("counter = %d, want 2: one add per call", n)
		}
	})
	t.Run("not-applied", func(t *testing.T) {
		inner := openStill(t)
		var arm atomic.Bool
		sdb := &scriptDB{Database: inner, plan: func(int) action {
			if arm.CompareAndSwap(true, false) {
				return notApplied1021
			}
			return pass
		}}
		db := &countDB{Database: sdb}
		if _, _, err := call(t, db, nil); err != nil {
			t.Fatal(err)
		}
		foreignClear(t, inner)
		arm.Store(true)
		_, runs, err := call(t, db, nil)
		var lost *txn.OutcomeLostError
		if !errors.As(err, &lost) || !lost.Cleared || runs != 1 {
			t.Fatalf("Transact = %v after %d runs; want *OutcomeLostError with Cleared after 1 run", err, runs)
		}
		if n := readCount(t, inner, []byte("c")); n != 1 {
			t.Fatalf("counter = %d, want 1 (the first call's add only)", n)
		}
		arm.Store(true)
		r0 := db.reads.Load()
		_, runs, err = call(t, db, nil)
		if err != nil || runs != 2 {
			t.Fatalf("Transact after the reader marked the slot gone = %v after %d runs; want success after 2", err, runs)
		}
		if n := db.reads.Load() - r0; n != 2 {
			t.Fatalf("%d slot reads; want 2: the refresh's and the second attempt's", n)
		}
		if n := readCount(t, inner, []byte("c")); n != 2 {
			t.Fatalf("counter = %d, want 2", n)
		}
	})
	t.Run("sighting-read", func(t *testing.T) {
		inner := openStill(t)
		if _, _, err := call(t, inner, nil); err != nil {
			t.Fatal(err)
		}
		foreignClear(t, inner)
		if err := inner.AdvanceVersion(2 * kv.VersionsPerSecond); err != nil {
			t.Fatal(err)
		}
		id, runs, err := call(t, inner, nil)
		if err != nil || runs != 2 {
			t.Fatalf("Transact = %v after %d runs; want success after 2 (the read found the slot gone: refreshed, attempted again)", err, runs)
		}
		if st := readSlot(t, inner, txn.SlotKey(txn.DefaultPrefix, id.Owner, id.Slot)); st.Seq != id.Seq || !st.Committed() {
			t.Fatalf("slot = %+v; want %v's commit", st, id)
		}
		if n := readCount(t, inner, []byte("c")); n != 2 {
			t.Fatalf("counter = %d, want 2", n)
		}
	})
}

// Something other than the slot's pool wrote a sequence the pool has not
// issued into a slot (a Resolve of a made-up ID): a call that finds it
// before its first commit fails, having committed nothing, and the pool
// never uses that slot again; a reader that finds it reports the outcome
// lost, never runs fn again.
func TestSlotTakenBySecondWriter(t *testing.T) {
	inner := openStill(t)
	first, _, err := call(t, inner, nil)
	if err != nil {
		t.Fatal(err)
	}
	made := first
	made.Seq += 5
	if o, err := txn.Resolve(context.Background(), inner, made, nil); err != nil || o != txn.NotCommitted {
		t.Fatalf("Resolve of a made-up ID = %v, %v", o, err)
	}
	if err := inner.AdvanceVersion(2 * kv.VersionsPerSecond); err != nil {
		t.Fatal(err)
	}
	_, runs, err := call(t, inner, nil)
	if !errors.Is(err, txn.ErrSlotTaken) || errors.Is(err, txn.ErrUnknownResult) {
		t.Fatalf("call on the taken slot: %v after %d runs; want ErrSlotTaken", err, runs)
	}
	next, _, err := call(t, inner, nil)
	if err != nil || next.Slot == first.Slot {
		t.Fatalf("next call %v, %v; want another slot", next, err)
	}

	// A reader finds a later sequence.
	var db *scriptDB
	db = &scriptDB{Database: inner, plan: firstCommit(notApplied1021), before: func(n int) {
		if n != 1 {
			return
		}
		id, err := db.lastMarker()
		if err != nil {
			panic(err)
		}
		id.Seq += 3
		if _, err := txn.Resolve(context.Background(), inner, id, nil); err != nil {
			panic(err)
		}
	}}
	_, runs, err = call(t, db, nil)
	var lost *txn.OutcomeLostError
	if !errors.As(err, &lost) || !lost.Reused || runs != 1 {
		t.Fatalf("reader finding a later sequence: %v after %d runs; want *OutcomeLostError (Reused) after 1 run", err, runs)
	}
	if n := readCount(t, inner, []byte("c")); n != 2 {
		t.Fatalf("counter = %d, want 2 (the first call's and the next's)", n)
	}
}

// A refresh whose commit is still in flight when its call goes on (its
// client saw commit_unknown_result and retried it) can never land over a
// later write of the slot: it read the slot, a conflict range, before any
// of them. Were it to land, the slot would hold the call before's sequence
// again, and a reader after an ambiguous commit would run fn twice. Here
// the first call's first refresh is held; the call commits, and so does
// the next one on the same slot; then the held refresh tries to land.
func TestRefreshInFlightNeverLandsOverACommit(t *testing.T) {
	for _, calls := range []int{1, 2} {
		inner := openStill(t)
		db := &scriptDB{Database: inner, plan: func(int) action { return pass },
			refreshPlan: func(n int) action {
				if n == 1 {
					return held1021
				}
				return pass
			}}
		var last txn.ID
		for i := range calls {
			id, runs, err := call(t, db, nil)
			if err != nil || runs != 1 {
				t.Fatalf("call %d: %v after %d runs", i, err, runs)
			}
			last = id
		}
		if db.refreshes != 2 {
			t.Fatalf("%d refresh commits; want the held one and its retry", db.refreshes)
		}
		db.release()
		if len(db.landed) != 1 || !errors.Is(db.landed[0], kv.ErrNotCommitted) {
			t.Fatalf("the held refresh: %v; want not_committed", db.landed)
		}
		if st := readSlot(t, inner, txn.SlotKey(txn.DefaultPrefix, last.Owner, last.Slot)); st.Seq != last.Seq || st.Attempt != 1 {
			t.Fatalf("slot = %+v; want the last call's commit (%v)", st, last)
		}
	}
}
