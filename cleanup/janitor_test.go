package cleanup_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/idemkv/idemkv/cleanup"
	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/embedded"
	"github.com/idemkv/idemkv/kv/faulty"
	"github.com/idemkv/idemkv/txn"
)

const minAge = cleanup.MinMinAge

func newJanitor(t testing.TB, db kv.Database, opts *cleanup.Options) *cleanup.Janitor {
	t.Helper()
	j, err := cleanup.New(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

// TestNeverTooEarlyEventually checks two janitors against an oracle across
// random commit timings: after every sweep, a marker slot is present,
// holding its last call's write, exactly when that write's version is at
// or above the highest cut-off yet — no slot written within the minimum age
// is ever removed, and every older one is gone. Calls go through three
// handles (three owners), several at once, so that pools hold several
// slots and reuse them, and slots are removed and created again. Legacy
// markers, written by hand as earlier versions of txn wrote them, are held
// to the same oracle by their version.
func TestNeverTooEarlyEventually(t *testing.T) {
	removed := 0
	for _, seed := range seeds() {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			removed += neverTooEarly(t, seed)
			if t.Failed() {
				t.Log(replay("TestNeverTooEarlyEventually", seed))
			}
		})
	}
	if *seedFlag == 0 && removed == 0 {
		t.Fatal("no seed's sweeps removed a slot: the oracle was never tested on a removal")
	}
}

// slotWrite is the last write a test saw of a slot: the call's ID and
// commit version, and when (by the test's clock) it committed.
type slotWrite struct {
	id      txn.ID
	version int64
	born    time.Time
}

// callsAt runs k calls at once through h and records each one's slot write.
func callsAt(t testing.TB, h kv.Database, k int, clk *embedded.ManualClock, last map[slotRef]slotWrite) {
	t.Helper()
	commits := make([]txn.Commit, k)
	errs := make([]error, k)
	var wg sync.WaitGroup
	for i := range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, commits[i], errs[i] = txn.TransactCommit(context.Background(), h, incr([]byte("c")), nil)
		}()
	}
	wg.Wait()
	for i, c := range commits {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		// Calls at once may take turns on one slot: its last write is its
		// highest sequence's.
		ref := slotRef{c.ID.Owner, c.ID.Slot}
		if w, ok := last[ref]; !ok || c.ID.Seq > w.id.Seq {
			last[ref] = slotWrite{id: c.ID, version: c.Version(), born: clk.Now()}
		}
	}
}

// legacyMarker writes a marker as earlier versions of txn did (format 2)
// at the database's current version, and returns its ID.
func legacyMarker(t testing.TB, db kv.Database, rng *rand.Rand) txn.ID {
	return do(t, db, func(tr kv.Transaction) (txn.ID, error) {
		rv, err := tr.GetReadVersion().Get()
		if err != nil {
			return txn.ID{}, err
		}
		id := txn.ID{Shard: uint8(rng.IntN(16)), Version: rv, Rand: uuid.New()}
		tr.Set(txn.MarkerKey(txn.DefaultPrefix, id), append([]byte{2, 0, 0, 0, 1}, make([]byte, 10)...))
		return id, nil
	})
}

func neverTooEarly(t *testing.T, seed uint64) (slotsRemoved int) {
	rng := rand.New(rand.NewPCG(seed, 0))
	db, clk := openClocked(t)
	ctx := context.Background()
	janitors := []*cleanup.Janitor{
		newJanitor(t, db, &cleanup.Options{Clock: clk.Now, MinAge: minAge}),
		newJanitor(t, db, &cleanup.Options{Clock: clk.Now, MinAge: minAge}),
	}
	handles := []kv.Database{&handle{db}, &handle{db}, &handle{db}}
	last := map[slotRef]slotWrite{}
	var legacy []txn.ID
	born := map[txn.ID]time.Time{}
	var cutoff int64
	var removed, reused int
	for round := range 60 {
		clk.Advance(time.Duration(rng.Int64N(int64(3 * time.Second))))
		for range rng.IntN(3) {
			callsAt(t, handles[rng.IntN(len(handles))], 1+rng.IntN(3), clk, last)
		}
		if rng.IntN(2) == 0 {
			id := legacyMarker(t, db, rng)
			legacy = append(legacy, id)
			born[id] = clk.Now()
		}
		if rng.IntN(3) > 0 {
			continue
		}
		res, err := janitors[rng.IntN(2)].Step(ctx)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		// The cut-off is the lower of the version bound and the clock
		// samples' bound (issue 11 item 9: a version jump must not eat
		// into the minimum age), so it is at most the version bound.
		if want := max(res.ReadVersion-int64(minAge/time.Microsecond), 0); res.VersionCutoff != want || res.Cutoff > want {
			t.Fatalf("cutoff %d, version cutoff %d; want the version cutoff read version %d minus the minimum age = %d, and the cutoff no later", res.Cutoff, res.VersionCutoff, res.ReadVersion, want)
		}
		cutoff = max(cutoff, res.Cutoff)
		removed += res.SlotsRemoved
		live := slots(t, db)
		for ref, w := range last {
			st, alive := live[ref]
			if alive && (st.Seq != w.id.Seq || !st.Committed() || st.Stamp.Version() != w.version) {
				t.Fatalf("round %d: slot of %v holds %+v, not its last write (version %d)", round, w.id, st, w.version)
			}
			if !alive && clk.Now().Sub(w.born) < minAge {
				t.Fatalf("round %d: slot of %v removed %v after its call, under the minimum age %v", round, w.id, clk.Now().Sub(w.born), minAge)
			}
			if old := w.version < cutoff; alive == old {
				t.Fatalf("round %d: slot of %v (written at %d, cutoff %d, read version %d): alive=%v", round, w.id, w.version, cutoff, res.ReadVersion, alive)
			}
			if w.id.Seq > 1 {
				reused++
			}
		}
		alive := markers(t, db)
		for _, id := range legacy {
			if !alive[id] && clk.Now().Sub(born[id]) < minAge {
				t.Fatalf("round %d: legacy marker %v removed %v after it was written, under the minimum age %v", round, id, clk.Now().Sub(born[id]), minAge)
			}
			if old := id.Version < cutoff; alive[id] == old {
				t.Fatalf("round %d: legacy marker %v (version %d, cutoff %d, read version %d): alive=%v", round, id, id.Version, cutoff, res.ReadVersion, alive[id])
			}
		}
	}
	if len(last) == 0 || cutoff == 0 {
		t.Fatalf("the run swept nothing (%d slots, %d legacy markers, cutoff %d)", len(last), len(legacy), cutoff)
	}
	t.Logf("%d slots, %d removed, %d reuses seen, %d legacy markers", len(last), removed, reused, len(legacy))
	return removed
}

// TestMarkersBounded runs a steady load from processes that come and go on
// a stepped clock: four live handles (owners), each making one to four
// calls at once every tick, and now and then one replaced by a new one (a
// process that crashed or a handle dropped). Space is bounded by what was
// written recently: the slots alive never exceed those written within the
// minimum age plus two sweep intervals, so dead owners' slots go; and no
// slot is removed under the minimum age. Longer under -cleanup.soak.
func TestMarkersBounded(t *testing.T) {
	const (
		interval = time.Second
		tick     = 100 * time.Millisecond
	)
	seed := uint64(1)
	if *seedFlag != 0 {
		seed = *seedFlag
	}
	rng := rand.New(rand.NewPCG(seed, 2))
	db, clk := openClocked(t)
	j := newJanitor(t, db, &cleanup.Options{Clock: clk.Now, MinAge: minAge, Interval: interval})
	ctx := context.Background()
	procs := []kv.Database{&handle{db}, &handle{db}, &handle{db}, &handle{db}}
	last := map[slotRef]slotWrite{}
	peak, deaths, finalBound := 0, 0, 0
	for now := time.Duration(0); now < *soakFlag; now += tick {
		clk.Advance(tick)
		for _, p := range procs {
			callsAt(t, p, 1+rng.IntN(4), clk, last)
		}
		if rng.IntN(30) == 0 {
			procs[rng.IntN(len(procs))] = &handle{db}
			deaths++
		}
		if now%interval == 0 {
			if _, err := j.Step(ctx); err != nil {
				t.Fatal(err)
			}
		}
		live := slots(t, db)
		bound := 0
		for ref, w := range last {
			age := clk.Now().Sub(w.born)
			if age < minAge+2*interval+tick {
				bound++
			}
			if _, alive := live[ref]; !alive && age < minAge {
				t.Fatalf("%s: at %v: slot of %v removed %v after its call, under the minimum age", replay("TestMarkersBounded", seed), now, w.id, age)
			}
		}
		peak = max(peak, len(live))
		if len(live) > bound {
			t.Fatalf("%s: at %v: %d slots alive, bound %d (written within the minimum age and two intervals)", replay("TestMarkersBounded", seed), now, len(live), bound)
		}
		finalBound = bound
	}
	if deaths == 0 || len(last) < 2*finalBound {
		t.Fatalf("%d owners died and %d slots were written, against a bound of %d at the end: the run never needed the janitor, so the bound proves nothing", deaths, len(last), finalBound)
	}
	t.Logf("peak %d slots alive; %d written in all by %d owners' deaths and the live ones, over %v simulated", peak, len(last), deaths, *soakFlag)
}

// A janitor's clear of a slot whose call has an attempt in flight makes
// that attempt conflict (the clear writes the key the attempt read). A
// call's first commit cannot meet it: the call checked its slot was written
// within five seconds of versions before that attempt's read version, and
// the janitor removes nothing younger than ten, by which time the attempt
// is too old to commit. A later attempt can: here the first attempt fails
// ambiguously (not applied) after the clock jumped an hour, and the janitor
// sweeps the now old slot between the second attempt's read of it and its
// commit. The second attempt must not commit; the third finds the slot
// gone and reports the outcome lost — fn ran twice, its effect never.
func TestSweepConflictsWithAttemptInFlight(t *testing.T) {
	inner, clk := openClocked(t)
	j := newJanitor(t, inner, &cleanup.Options{Clock: clk.Now, MinAge: minAge})
	ctx := context.Background()
	var swept int
	db := &hookDB{Database: inner, before: func(n int) error {
		switch n {
		case 1:
			clk.Advance(time.Hour)
			return kv.NewError(kv.CodeCommitUnknownResult)
		case 2:
			res, err := j.Step(ctx)
			if err != nil {
				t.Error(err)
			}
			swept = res.SlotsRemoved
		}
		return nil
	}}
	runs := 0
	_, err := txn.Transact(ctx, db, func(tr kv.Transaction) (struct{}, error) {
		runs++
		return incr([]byte("c"))(tr)
	}, &txn.Options{MaxRetryDelay: time.Millisecond})
	var lost *txn.OutcomeLostError
	if !errors.As(err, &lost) || !lost.Cleared || runs != 2 || swept != 1 {
		t.Fatalf("Transact = %v after %d runs, %d slots swept; want *OutcomeLostError (Cleared) after 2 runs and one slot swept", err, runs, swept)
	}
	if n := readCount(t, inner, []byte("c")); n != 0 {
		t.Fatalf("counter = %d, want 0: the second attempt committed over the sweep", n)
	}
}

// sweepHookDB runs hook once, before the commit of the first transaction
// through it that clears a marker slot: a janitor's slot sweep.
type sweepHookDB struct {
	kv.Database
	once sync.Once
	hook func()
}

func (db *sweepHookDB) CreateTransaction(ctx context.Context) (kv.Transaction, error) {
	tr, err := db.Database.CreateTransaction(ctx)
	if err != nil {
		return nil, err
	}
	return &sweepHookTx{Transaction: tr, db: db}, nil
}

type sweepHookTx struct {
	kv.Transaction
	db     *sweepHookDB
	clears bool
}

func (t *sweepHookTx) Clear(key []byte) {
	if txn.SlotRange(txn.DefaultPrefix).Contains(key) {
		t.clears = true
	}
	t.Transaction.Clear(key)
}

func (t *sweepHookTx) Reset()                  { t.clears = false; t.Transaction.Reset() }
func (t *sweepHookTx) OnError(err error) error { t.clears = false; return t.Transaction.OnError(err) }

func (t *sweepHookTx) Commit() *kv.Future[struct{}] {
	if t.clears {
		t.db.once.Do(t.db.hook)
	}
	return t.Transaction.Commit()
}

// The janitor reads the slots as a snapshot, but each slot it removes gets
// a read conflict: a slot written between the sweep's read and its commit
// (here, its owner's next call) makes the sweep conflict, and the retry
// finds it recent and keeps it.
func TestSweepSparesSlotWrittenDuringIt(t *testing.T) {
	inner, clk := openClocked(t)
	ctx := context.Background()
	var c txn.Commit
	var err error
	if _, _, err = txn.TransactCommit(ctx, inner, incr([]byte("c")), nil); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour) // the slot is old now
	db := &sweepHookDB{Database: inner, hook: func() {
		// The owner's next call rewrites the slot (it refreshes it first:
		// its sighting is an hour old).
		if _, c, err = txn.TransactCommit(ctx, inner, incr([]byte("c")), nil); err != nil {
			t.Error(err)
		}
	}}
	j := newJanitor(t, db, &cleanup.Options{Clock: clk.Now, MinAge: minAge})
	res, serr := j.Step(ctx)
	if serr != nil || c.ID.Seq != 2 || res.SlotsRemoved != 0 {
		t.Fatalf("Step = %+v, %v, with the call during it %+v; want nothing removed and the owner's second call committed", res, serr, c)
	}
	st, ok := slots(t, inner)[slotRef{c.ID.Owner, c.ID.Slot}]
	if !ok || st.Seq != c.ID.Seq || st.Stamp != c.Versionstamp {
		t.Fatalf("slot after the sweep = %+v (present %v); want the second call's write %+v", st, ok, c)
	}
	if n := readCount(t, inner, []byte("c")); n != 2 {
		t.Fatalf("counter = %d, want 2", n)
	}
}

// A premature cleanup — forced here by jumping the version clock past the
// minimum age between two attempts of one call — must turn an ambiguous
// commit into "outcome lost", never into a second run.
func TestPrematureCleanupIsOutcomeLost(t *testing.T) {
	inner, clk := openClocked(t)
	j := newJanitor(t, inner, &cleanup.Options{Clock: clk.Now, MinAge: minAge})
	ctx := context.Background()
	db := &hookDB{Database: inner, before: func(n int) error {
		if n != 1 {
			return nil
		}
		// The first attempt's commit is lost with commit_unknown_result,
		// and the janitor sweeps past its marker before the retry.
		clk.Advance(time.Hour)
		if _, err := j.Step(ctx); err != nil {
			t.Error(err)
		}
		return kv.NewError(kv.CodeCommitUnknownResult)
	}}
	runs := 0
	_, err := txn.Transact(ctx, db, func(tr kv.Transaction) (struct{}, error) {
		runs++
		return incr([]byte("c"))(tr)
	}, &txn.Options{MaxRetryDelay: time.Millisecond})
	if !errors.Is(err, txn.ErrOutcomeLost) || runs != 1 {
		t.Fatalf("Transact = %v after %d runs; want ErrOutcomeLost after 1", err, runs)
	}
	if n := readCount(t, inner, []byte("c")); n != 0 {
		t.Fatalf("counter = %d, want 0", n)
	}
}

// Several janitors sweep while workers increment through every fault kind;
// each call moves the version clock 200 ms, so that markers age out during
// the run whatever the machine's speed. Exactly-once must hold: the counter is at least the calls known
// committed and at most those plus the calls whose outcome was lost.
func TestConcurrentJanitorsKeepExactlyOnce(t *testing.T) {
	for _, seed := range seeds()[:min(len(seeds()), 8)] {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			concurrentJanitors(t, seed)
			if t.Failed() {
				t.Log(replay("TestConcurrentJanitorsKeepExactlyOnce", seed))
			}
		})
	}
}

func concurrentJanitors(t *testing.T, seed uint64) {
	inner, clk := openClocked(t)
	clk.Advance(minAge) // the database is already old enough to sweep
	db := faulty.Wrap(inner, faulty.Config{
		Seed: seed, UnknownResultApplied: 0.05, UnknownResultNotApplied: 0.03, UnknownResultLate: 0.05,
		TimedOutApplied: 0.02, TimedOutLate: 0.02, ClusterVersionChangedApplied: 0.03, NotCommitted: 0.03,
		LateDelay: 2 * time.Millisecond,
	})
	ctx, stop := context.WithCancel(context.Background())
	var jwg sync.WaitGroup
	var janitors []*cleanup.Janitor
	for range 3 {
		j := newJanitor(t, inner, &cleanup.Options{Clock: clk.Now, MinAge: minAge})
		janitors = append(janitors, j)
		jwg.Add(1)
		go func() {
			defer jwg.Done()
			for ctx.Err() == nil {
				if _, err := j.Step(ctx); err != nil && ctx.Err() == nil {
					t.Errorf("janitor: %v", err)
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	var committed, lost atomic.Int64
	var wg sync.WaitGroup
	opts := &txn.Options{MaxRetryDelay: time.Millisecond}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 60 {
				clk.Advance(200 * time.Millisecond)
				_, err := txn.Transact(context.Background(), db, incr([]byte("c")), opts)
				var unknown *txn.UnknownResultError
				if errors.As(err, &unknown) {
					var o txn.Outcome
					for range 20 {
						if o, err = txn.Resolve(context.Background(), db, unknown.ID, opts); !errors.Is(err, kv.ErrTransactionTimedOut) {
							break
						}
					}
					if err == nil && o == txn.NotCommitted {
						continue
					}
				}
				switch {
				case err == nil:
					committed.Add(1)
				case errors.Is(err, txn.ErrOutcomeLost):
					lost.Add(1)
				case kv.IsRetryableNotCommitted(err):
				default:
					t.Errorf("unexpected error: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	db.Wait()
	stop()
	jwg.Wait()
	got := readCount(t, inner, []byte("c"))
	if got < committed.Load() || got > committed.Load()+lost.Load() {
		t.Fatalf("counter = %d, want between %d committed and %d (+%d lost)", got, committed.Load(), committed.Load()+lost.Load(), lost.Load())
	}
	var sweeps, watermark int64
	for _, j := range janitors {
		s := j.Stats()
		sweeps += s.Sweeps
		watermark = max(watermark, s.Watermark)
	}
	if sweeps == 0 || watermark == 0 || db.Stats().Total().Injected == 0 {
		t.Fatalf("no progress: %d sweeps, watermark %d, %d faults", sweeps, watermark, db.Stats().Total().Injected)
	}
	if alive := len(markers(t, inner)); int64(alive) >= committed.Load() {
		t.Fatalf("%d markers alive for %d committed calls: the janitors removed none during the run", alive, committed.Load())
	}
}

func TestKeyedIndex(t *testing.T) {
	db, clk := openClocked(t)
	ctx := context.Background()
	idx := cleanup.KeyedIndex{
		Name:   "requests",
		Prefix: []byte("idx/"),
		Remove: func(tr kv.Transaction, ref, token []byte) error {
			key := append([]byte("req/"), ref...)
			cur, err := tr.Get(key).Get()
			if err != nil {
				return err
			}
			if string(cur) == string(token) {
				tr.Clear(key)
			}
			return nil
		},
	}
	rv := do(t, db, func(tr kv.Transaction) (int64, error) { return tr.GetReadVersion().Get() })
	// 40 keyed markers due one second from now; ref 7 is then written again
	// with a new token and a later due version, so its old entry must not
	// remove it.
	do(t, db, func(tr kv.Transaction) (struct{}, error) {
		for i := range 40 {
			ref := fmt.Appendf(nil, "%02d", i)
			tr.Set(append([]byte("req/"), ref...), []byte("t1"))
			tr.Set(idx.IndexKey(rv+1_000_000, ref), []byte("t1"))
		}
		tr.Set([]byte("req/07"), []byte("t2"))
		tr.Set(idx.IndexKey(rv+3_600_000_000, []byte("07")), []byte("t2"))
		return struct{}{}, nil
	})
	j := newJanitor(t, db, &cleanup.Options{Clock: clk.Now, MinAge: minAge, BatchSize: 3, Keyed: []cleanup.KeyedIndex{idx}})
	res, err := j.Step(ctx)
	if err != nil || res.KeyedRemoved != 0 {
		t.Fatalf("before the due version: %+v, %v; want nothing removed", res, err)
	}
	clk.Advance(2 * time.Second)
	res, err = j.Step(ctx)
	if err != nil || res.KeyedRemoved != 3*16 || !res.KeyedMore {
		// 40 due entries, 3 per batch, at most 16 batches a step: 40 < 48,
		// so one step finishes them.
		if err != nil || res.KeyedRemoved != 40 || res.KeyedMore {
			t.Fatalf("after the due version: %+v, %v; want 40 entries removed", res, err)
		}
	}
	left := do(t, db, func(tr kv.Transaction) ([]kv.KeyValue, error) {
		return tr.GetRange(kv.Range{Begin: []byte("req/"), End: []byte("req0")}, kv.RangeOptions{}).Get()
	})
	if len(left) != 1 || string(left[0].Key) != "req/07" || string(left[0].Value) != "t2" {
		t.Fatalf("markers left = %q, want only req/07 = t2", left)
	}
	if s := j.Stats(); s.KeyedRemoved != 40 || s.Sweeps != 2 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestBadInput(t *testing.T) {
	db, _ := openClocked(t)
	for _, tc := range []struct {
		opts cleanup.Options
		want string
	}{
		{cleanup.Options{MinAge: time.Second}, "MinAge"},
		{cleanup.Options{MinAge: 4 * time.Second}, "five-second"},
		{cleanup.Options{Interval: -time.Second}, "Interval"},
		{cleanup.Options{Shards: 256}, "Shards"},
		{cleanup.Options{BatchSize: cleanup.MaxBatchSize + 1}, "BatchSize"},
		{cleanup.Options{Prefix: []byte{}}, "Prefix is empty"},
		{cleanup.Options{Prefix: []byte("\xffp")}, "system keyspace"},
		{cleanup.Options{Keyed: []cleanup.KeyedIndex{{Name: "k", Prefix: []byte("k/")}}}, "no Remove"},
		{cleanup.Options{Keyed: []cleanup.KeyedIndex{{Name: "k", Prefix: txn.DefaultPrefix, Remove: func(kv.Transaction, []byte, []byte) error { return nil }}}}, "overlaps"},
	} {
		_, err := cleanup.New(db, &tc.opts)
		if !errors.Is(err, cleanup.ErrInvalidOptions) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want ErrInvalidOptions mentioning %q", tc.opts, err, tc.want)
		}
	}
	if _, err := cleanup.New(nil, nil); err == nil {
		t.Error("nil database: no error")
	}
}

// A prefix that holds user data is refused before anything is cleared, and
// the error names the key. The background loop does not stop on it (it used
// to, leaving only Stats to show it): it retries with backoff, and resumes
// once the foreign key is gone.
func TestForeignPrefixRefused(t *testing.T) {
	db, clk := openClocked(t)
	do(t, db, func(tr kv.Transaction) (struct{}, error) {
		tr.Set([]byte("users/alice"), []byte("{}"))
		return struct{}{}, nil
	})
	clk.Advance(time.Hour)
	var mu sync.Mutex
	var stepErrs []error
	j := newJanitor(t, db, &cleanup.Options{Prefix: []byte("users/"), Interval: time.Millisecond, OnStep: func(_ cleanup.StepResult, err error) {
		mu.Lock()
		defer mu.Unlock()
		stepErrs = append(stepErrs, err)
	}})
	_, err := j.Step(context.Background())
	var fk *cleanup.ForeignKeyError
	if !errors.Is(err, cleanup.ErrForeignPrefix) || !errors.As(err, &fk) || string(fk.Key) != "users/alice" {
		t.Fatalf("Step = %v, want a *ForeignKeyError naming users/alice", err)
	}
	if err := j.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, j, "four failed sweeps in the loop", func(s cleanup.Stats) bool { return s.Failures >= 4 && s.Running })
	v := do(t, db, func(tr kv.Transaction) ([]byte, error) { return tr.Get([]byte("users/alice")).Get() })
	if string(v) != "{}" {
		t.Fatalf("users/alice = %q after the refused sweeps", v)
	}
	if s := j.Stats(); s.Sweeps != 0 || !errors.Is(s.LastError, cleanup.ErrForeignPrefix) || s.NextSweep.IsZero() {
		t.Fatalf("stats while refusing = %+v", s)
	}
	mu.Lock()
	if len(stepErrs) < 4 || !errors.Is(stepErrs[0], cleanup.ErrForeignPrefix) {
		t.Errorf("OnStep saw %v, want the refusals", stepErrs)
	}
	mu.Unlock()
	do(t, db, func(tr kv.Transaction) (struct{}, error) {
		tr.Clear([]byte("users/alice"))
		return struct{}{}, nil
	})
	// Backoff is capped by MaxBackoff; with a 1 ms interval and a few
	// failures the next retry is well within the wait.
	waitFor(t, j, "sweep after the key was removed", func(s cleanup.Stats) bool { return s.Sweeps > 0 && s.Failures == 0 && s.LastError == nil })
	j.Close()
	if s := j.Stats(); s.Running || !s.NextSweep.IsZero() {
		t.Fatalf("stats after Close = %+v, want not running", s)
	}
}

// waitFor polls j's stats until ok, for at most a minute.
func waitFor(t *testing.T, j *cleanup.Janitor, what string, ok func(cleanup.Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !ok(j.Stats()) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within a minute: stats %+v", what, j.Stats())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestStartClose(t *testing.T) {
	db, _ := openClocked(t)
	j := newJanitor(t, db, &cleanup.Options{Interval: time.Millisecond})
	if err := j.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for j.Stats().Sweeps < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if s := j.Stats(); s.Sweeps < 3 || s.Errors != 0 {
		t.Fatalf("stats = %+v, want sweeps and no errors", s)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Step(context.Background()); !errors.Is(err, cleanup.ErrClosed) {
		t.Fatalf("Step after Close = %v", err)
	}
	if err := j.Start(); !errors.Is(err, cleanup.ErrClosed) {
		t.Fatalf("Start after Close = %v", err)
	}
	j.Close() // twice is fine
}

// A version jump — a FoundationDB recovery advances versions by 100 s at
// once, a forced one by far more — must not eat into the minimum age: the
// janitor removes a marker only when the clock samples it keeps beside the
// versions show it old by the wall clock too (issue 11, item 9). A call in
// progress across the jump keeps its answer.
func TestVersionJumpKeepsMinAge(t *testing.T) {
	inner, clk := openClocked(t)
	clk.Advance(minAge) // the database is old enough to sweep
	j := newJanitor(t, inner, &cleanup.Options{Clock: clk.Now, MinAge: minAge})
	ctx := context.Background()
	if _, err := j.Step(ctx); err != nil { // the first clock sample
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	var earlier txn.ID
	if _, err := txn.Transact(ctx, inner, incr([]byte("c")), &txn.Options{Observe: func(s txn.Stats) { earlier = s.ID }}); err != nil {
		t.Fatal(err)
	}
	jump := func() {
		// A forced recovery: ten minimum ages of versions at once, one
		// second of wall time.
		if err := inner.AdvanceVersion(10 * int64(minAge/time.Microsecond)); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
		res, err := j.Step(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("sweep after the jump: %+v", res)
	}
	db := &hookDB{Database: inner, before: func(n int) error {
		if n == 1 {
			jump() // between the call's ambiguous attempt and its retry
			return kv.NewError(kv.CodeCommitUnknownResult)
		}
		return nil
	}}
	runs := 0
	_, err := txn.Transact(ctx, db, func(tr kv.Transaction) (struct{}, error) {
		runs++
		return incr([]byte("c"))(tr)
	}, &txn.Options{MaxRetryDelay: time.Millisecond})
	if err != nil || runs != 2 {
		t.Fatalf("call across a version jump: %v after %d runs; want success after 2 (the first attempt did not land)", err, runs)
	}
	if !markers(t, inner)[earlier] {
		t.Fatalf("marker %v, two seconds old by the wall clock, was removed after a version jump", earlier)
	}
	// The minimum age by the wall clock too: now it goes.
	clk.Advance(minAge)
	if _, err := j.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if markers(t, inner)[earlier] {
		t.Fatalf("marker %v outlived the minimum age by both clocks", earlier)
	}
	if n := readCount(t, inner, []byte("c")); n != 2 {
		t.Fatalf("counter = %d, want 2", n)
	}
}

// writeSlots writes n marker slots of n owners, as calls would leave them,
// stamped now.
func writeSlots(t testing.TB, db kv.Database, n int) {
	t.Helper()
	param := append(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64([]byte{3}, 1), 1), make([]byte, 10)...)
	param = binary.LittleEndian.AppendUint32(param, 13)
	for done := 0; done < n; done += 500 {
		do(t, db, func(tr kv.Transaction) (struct{}, error) {
			for range min(500, n-done) {
				tr.Atomic(kv.SetVersionstampedValue, txn.SlotKey(txn.DefaultPrefix, uuid.New(), 0), param)
			}
			return struct{}{}, nil
		})
	}
}

// The slot sweep reads the slots a page at a time: more dead owners' slots
// than a page are all removed in one Step, and the recent ones between
// them all kept.
func TestSweepSlotsInPages(t *testing.T) {
	db, clk := openClocked(t)
	writeSlots(t, db, 2_500)
	clk.Advance(time.Hour)
	writeSlots(t, db, 300)
	j := newJanitor(t, db, &cleanup.Options{Clock: clk.Now, MinAge: minAge})
	res, err := j.Step(context.Background())
	if err != nil || res.SlotsRemoved != 2_500 || res.SlotsMore {
		t.Fatalf("Step = %+v, %v; want the 2500 old slots removed, none left for later", res, err)
	}
	if n := len(slots(t, db)); n != 300 {
		t.Fatalf("%d slots left; want the 300 recent ones", n)
	}
	if s := j.Stats(); s.SlotsRemoved != 2_500 {
		t.Fatalf("stats = %+v", s)
	}
}
