package cleanup_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idemkv/idemkv/cleanup"
	"github.com/idemkv/idemkv/kv"
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
// random commit timings: after every sweep, a marker is present exactly when
// its version is at or above the highest cut-off yet — no marker younger
// than the minimum age is ever removed, and every older one is gone.
func TestNeverTooEarlyEventually(t *testing.T) {
	for _, seed := range seeds() {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			neverTooEarly(t, seed)
			if t.Failed() {
				t.Log(replay("TestNeverTooEarlyEventually", seed))
			}
		})
	}
}

func neverTooEarly(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0))
	db, clk := openClocked(t)
	ctx := context.Background()
	janitors := []*cleanup.Janitor{
		newJanitor(t, db, &cleanup.Options{Clock: clk.Now, MinAge: minAge}),
		newJanitor(t, db, &cleanup.Options{Clock: clk.Now, MinAge: minAge}),
	}
	var ids []txn.ID
	born := map[txn.ID]time.Time{}
	var cutoff int64
	for round := range 60 {
		clk.Advance(time.Duration(rng.Int64N(int64(3 * time.Second))))
		for range rng.IntN(4) {
			var id txn.ID
			_, err := txn.Transact(ctx, db, incr([]byte("c")), &txn.Options{Observe: func(s txn.Stats) { id = s.ID }})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
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
		alive := markers(t, db)
		for _, id := range ids {
			if !alive[id] && clk.Now().Sub(born[id]) < minAge {
				t.Fatalf("round %d: marker %v removed %v after its call, under the minimum age %v", round, id, clk.Now().Sub(born[id]), minAge)
			}
			if old := id.Version < cutoff; alive[id] == old {
				t.Fatalf("round %d: marker %v (version %d, cutoff %d, read version %d): alive=%v", round, id, id.Version, cutoff, res.ReadVersion, alive[id])
			}
		}
	}
	if len(ids) == 0 || cutoff == 0 {
		t.Fatalf("the run swept nothing (%d markers, cutoff %d)", len(ids), cutoff)
	}
}

// TestMarkersBounded runs a steady load on a stepped clock and checks that
// the markers alive never exceed rate × (minimum age + interval) + slack.
// Longer under -cleanup.soak.
func TestMarkersBounded(t *testing.T) {
	const (
		rate     = 40 // calls per simulated second
		interval = time.Second
		tick     = 100 * time.Millisecond
	)
	db, clk := openClocked(t)
	j := newJanitor(t, db, &cleanup.Options{Clock: clk.Now, MinAge: minAge, Interval: interval})
	ctx := context.Background()
	bound := int(rate*(minAge+interval).Seconds()) + rate // one tick's worth of slack per side
	peak := 0
	for now := time.Duration(0); now < *soakFlag; now += tick {
		clk.Advance(tick)
		for range rate * tick / time.Second {
			if _, err := txn.Transact(ctx, db, incr([]byte("c")), nil); err != nil {
				t.Fatal(err)
			}
		}
		if now%interval == 0 {
			if _, err := j.Step(ctx); err != nil {
				t.Fatal(err)
			}
		}
		n := len(markers(t, db))
		peak = max(peak, n)
		if n > bound {
			t.Fatalf("at %v: %d markers alive, bound %d", now, n, bound)
		}
	}
	if peak < rate*int(minAge/time.Second) {
		t.Fatalf("peak %d markers: the load never filled the window, so the bound proves nothing", peak)
	}
	t.Logf("peak %d markers alive, bound %d, over %v simulated", peak, bound, *soakFlag)
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
