package idemkv_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/embedded"
)

// What holds for keyed leases across a FoundationDB recovery (issue 11,
// item 9, and the wall-clock samples it left for later). A recovery
// advances versions by about 100 seconds' worth at once, which passes the
// version deadline of every lease shorter than that (the default is 30 s).
// A lease also has a wall-clock deadline, and expires only once both have
// passed: so after the jump a second caller is told the key is in progress
// (with the wall time left as RetryAfter), and only once the lease's wall
// time has passed too does it take the key over — with a larger fencing
// token, the displaced caller getting ErrLeaseLost and one result stored.
//
// Until the wall deadline existed this test stated the opposite: the
// takeover ran right after the jump, so an outside effect ran twice.
func TestLeaseAcrossVersionJump(t *testing.T) {
	needsEngine(t, "its version jump (AdvanceVersion)")
	ctx := context.Background()
	wall := embedded.NewManualClock(time.Unix(1_700_000_000, 0))
	s, err := idemkv.Open(ctx, "mem:", &idemkv.Options{NoJanitor: true, Clock: wall.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	eng, ok := s.Database().(*embedded.DB)
	if !ok {
		t.Fatalf("store database is %T, want *embedded.DB", s.Database())
	}
	h := hold(t, s, "k", nil)
	// A recovery: 100 s of versions at once, no wall time.
	if err := eng.AdvanceVersion(100 * kv.VersionsPerSecond); err != nil {
		t.Fatal(err)
	}
	ran := false
	_, err = idemkv.Do(ctx, s, "k", []byte("p"), func(ctx context.Context) (string, error) {
		ran = true
		return "second", nil
	}, nil)
	var busy *idemkv.InProgressError
	if !errors.As(err, &busy) || ran {
		t.Fatalf("Do after the jump: ran %v, err %v; want *InProgressError without running (the lease's wall time has not passed)", ran, err)
	}
	if busy.RetryAfter != idemkv.DefaultLease {
		t.Fatalf("RetryAfter = %v; want the lease's wall time left, %v (no wall time passed)", busy.RetryAfter, idemkv.DefaultLease)
	}
	// The lease's wall time passes too: now the takeover runs.
	wall.Advance(idemkv.DefaultLease)
	var tok2 uint64
	v, err := idemkv.Do(ctx, s, "k", []byte("p"), func(ctx context.Context) (string, error) {
		tok2, _ = idemkv.LeaseToken(ctx)
		return "second", nil
	}, nil)
	if err != nil || v != "second" {
		t.Fatalf("Do after the jump and the lease's wall time = %q, %v; want the takeover to run and succeed", v, err)
	}
	if tok2 <= h.tok {
		t.Fatalf("fencing tokens %d then %d; want the takeover's larger", h.tok, tok2)
	}
	if r := h.finish(t); !errors.Is(r.err, idemkv.ErrLeaseLost) {
		t.Fatalf("displaced caller: %q, %v; want ErrLeaseLost", r.v, r.err)
	}
	v, err = idemkv.Do(ctx, s, "k", []byte("p"), func(context.Context) (string, error) {
		return "third", nil
	}, nil)
	if err != nil || v != "second" {
		t.Fatalf("replay = %q, %v; want the one stored result, %q", v, err, "second")
	}
}

// TestLeaseNeedsBothDeadlines steps the database's versions (the engine's
// clock) and the store's wall clock apart: a lease expires only when both
// have passed its deadlines, so neither a version jump alone nor a wall
// clock running ahead alone hands the key to a second caller.
func TestLeaseNeedsBothDeadlines(t *testing.T) {
	const lease = 30 * time.Second
	for _, tc := range []struct {
		name           string
		versions, wall time.Duration
		takeover       bool
		// retryAfter is the RetryAfter a refused caller must see, within
		// a millisecond (each commit advances versions by one).
		retryAfter time.Duration
	}{
		{name: "version jump alone", versions: 100 * time.Second, retryAfter: lease},
		{name: "wall clock alone", wall: time.Hour, retryAfter: lease},
		{name: "wall short of its deadline", versions: time.Hour, wall: lease - time.Second, retryAfter: time.Second},
		{name: "versions short of their deadline", versions: lease - time.Second, wall: time.Hour, retryAfter: time.Second},
		{name: "both", versions: lease, wall: lease, takeover: true},
		{name: "both, far past", versions: time.Hour, wall: 100 * time.Second, takeover: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, versions, wall := openTwoClocks(t, &idemkv.Options{Lease: lease})
			h := hold(t, s, "k", nil)
			versions.Advance(tc.versions)
			wall.Advance(tc.wall)
			kr, err := s.KeyedRecord(context.Background(), "", "k")
			if err != nil {
				t.Fatal(err)
			}
			ran := false
			v, err := idemkv.Do(context.Background(), s, "k", []byte("p"), func(context.Context) (string, error) {
				ran = true
				return "second", nil
			}, nil)
			if tc.takeover {
				if kr.State != idemkv.KeyedStateExpired {
					t.Errorf("KeyedRecord state %q; want %q", kr.State, idemkv.KeyedStateExpired)
				}
				if err != nil || !ran || v != "second" {
					t.Fatalf("Do = %q, %v (ran %v); want the takeover to run", v, err, ran)
				}
				if r := h.finish(t); !errors.Is(r.err, idemkv.ErrLeaseLost) {
					t.Fatalf("displaced caller: %q, %v; want ErrLeaseLost", r.v, r.err)
				}
				return
			}
			if kr.State != idemkv.KeyedStateInProgress || !near(kr.LeaseLeft, tc.retryAfter) {
				t.Errorf("KeyedRecord state %q, lease left %v; want %q, %v", kr.State, kr.LeaseLeft, idemkv.KeyedStateInProgress, tc.retryAfter)
			}
			var busy *idemkv.InProgressError
			if !errors.As(err, &busy) || ran {
				t.Fatalf("Do: ran %v, err %v; want *InProgressError without running", ran, err)
			}
			if !near(busy.RetryAfter, tc.retryAfter) {
				t.Fatalf("RetryAfter = %v; want %v, the later deadline's time left", busy.RetryAfter, tc.retryAfter)
			}
			if r := h.finish(t); r.err != nil || r.v != "first" {
				t.Fatalf("holder = %q, %v; want its result stored", r.v, r.err)
			}
		})
	}
}

// TestLeaseWallClockSteppedAhead runs in the shim run too (the database's
// versions move with real time there): a process whose wall clock is
// stepped far ahead (an NTP step, a misconfigured host) does not see the
// lease expire while its versions have not passed, and the holder's result
// is stored.
func TestLeaseWallClockSteppedAhead(t *testing.T) {
	wall := embedded.NewManualClock(time.Now())
	s := openMem(t, &idemkv.Options{NoJanitor: true, Clock: wall.Now})
	h := hold(t, s, "k", nil)
	wall.Advance(24 * time.Hour)
	ran := false
	_, err := idemkv.Do(context.Background(), s, "k", []byte("p"), func(context.Context) (string, error) {
		ran = true
		return "second", nil
	}, nil)
	var busy *idemkv.InProgressError
	if !errors.As(err, &busy) || ran {
		t.Fatalf("Do after the wall clock stepped a day ahead: ran %v, err %v; want *InProgressError (versions have not passed the lease)", ran, err)
	}
	if busy.RetryAfter <= 0 || busy.RetryAfter > idemkv.DefaultLease {
		t.Fatalf("RetryAfter = %v; want the version deadline's time left, in (0, %v]", busy.RetryAfter, idemkv.DefaultLease)
	}
	if r := h.finish(t); r.err != nil || r.v != "first" {
		t.Fatalf("holder = %q, %v; want its result stored", r.v, r.err)
	}
}

// TestLeaseWallDeadlineOnRealVersions runs in the shim run too, through
// FoundationDB's bindings: with versions moving in real time past a short
// lease, the key stays in progress until the store's wall clock passes the
// lease's wall deadline (RetryAfter is exactly the wall time left, the
// clock being manual), then the next caller takes it over.
func TestLeaseWallDeadlineOnRealVersions(t *testing.T) {
	const lease = 50 * time.Millisecond
	wall := embedded.NewManualClock(time.Now())
	s := openMem(t, &idemkv.Options{NoJanitor: true, Clock: wall.Now, Lease: lease})
	h := hold(t, s, "k", nil)
	time.Sleep(4 * lease) // versions pass the version deadline; the wall clock stands still
	ran := false
	_, err := idemkv.Do(context.Background(), s, "k", []byte("p"), func(context.Context) (string, error) {
		ran = true
		return "second", nil
	}, nil)
	var busy *idemkv.InProgressError
	if !errors.As(err, &busy) || ran || busy.RetryAfter != lease {
		t.Fatalf("Do past the version deadline only: ran %v, err %v; want *InProgressError with RetryAfter %v (the wall time left)", ran, err, lease)
	}
	wall.Advance(lease)
	v, err := idemkv.Do(context.Background(), s, "k", []byte("p"), func(context.Context) (string, error) {
		return "second", nil
	}, nil)
	if err != nil || v != "second" {
		t.Fatalf("Do past both deadlines = %q, %v; want the takeover to run", v, err)
	}
	if r := h.finish(t); !errors.Is(r.err, idemkv.ErrLeaseLost) {
		t.Fatalf("displaced caller: %q, %v; want ErrLeaseLost", r.v, r.err)
	}
}

// TestRenewLeaseExtendsBothDeadlines: RenewLease moves the version and the
// wall deadline. Each check below passes only if the deadline it leaves
// standing was renewed: the other one is already past.
func TestRenewLeaseExtendsBothDeadlines(t *testing.T) {
	const lease = 30 * time.Second
	for _, tc := range []struct {
		name           string
		versions, wall time.Duration // after the renewal, 20 s into the lease
	}{
		{name: "wall deadline renewed", versions: time.Hour, wall: 20 * time.Second},
		{name: "version deadline renewed", versions: 20 * time.Second, wall: time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, versions, wall := openTwoClocks(t, &idemkv.Options{Lease: lease})
			h := hold(t, s, "k", nil)
			versions.Advance(20 * time.Second)
			wall.Advance(20 * time.Second)
			if err := h.inside(func(ctx context.Context) error {
				got, err := idemkv.RenewLease(ctx)
				if err == nil && got != lease {
					t.Errorf("RenewLease = %v; want %v", got, lease)
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
			// 40 s after the claim, one deadline far past: only the
			// renewed other one holds the key.
			versions.Advance(tc.versions)
			wall.Advance(tc.wall)
			_, err := idemkv.Do(context.Background(), s, "k", []byte("p"), func(context.Context) (string, error) {
				return "second", nil
			}, nil)
			var busy *idemkv.InProgressError
			if !errors.As(err, &busy) || !near(busy.RetryAfter, lease-20*time.Second) {
				t.Fatalf("Do after the renewal: %v; want *InProgressError with RetryAfter %v", err, lease-20*time.Second)
			}
			if r := h.finish(t); r.err != nil || r.v != "first" {
				t.Fatalf("holder = %q, %v; want its result stored", r.v, r.err)
			}
		})
	}
}

// TestLeaseShorterRetentionSurvivesJanitor: a record whose retention is
// shorter than its lease is indexed due when its version deadline passes;
// a version jump brings that due while the lease still holds by the wall
// clock. The janitor keeps such a record (indexing it again), so the key
// is not freed under its holder.
func TestLeaseShorterRetentionSurvivesJanitor(t *testing.T) {
	ctx := context.Background()
	s, versions, wall := openTwoClocks(t, nil)
	h := hold(t, s, "k", &idemkv.DoOptions{Retention: time.Second})
	versions.Advance(100 * time.Second)
	if _, err := s.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	kr, err := s.KeyedRecord(ctx, "", "k")
	if err != nil || kr.State != idemkv.KeyedStateInProgress {
		t.Fatalf("after the sweep: %+v, %v; want the record kept in progress", kr, err)
	}
	if kr.RemovalIn <= 0 {
		t.Fatalf("RemovalIn = %v; want the record indexed again for after its lease", kr.RemovalIn)
	}
	ran := false
	_, err = idemkv.Do(ctx, s, "k", []byte("p"), func(context.Context) (string, error) {
		ran = true
		return "second", nil
	}, nil)
	if !errors.Is(err, idemkv.ErrInProgress) || ran {
		t.Fatalf("Do after the sweep: ran %v, err %v; want ErrInProgress", ran, err)
	}
	if r := h.finish(t); r.err != nil || r.v != "first" {
		t.Fatalf("holder = %q, %v; want its result stored", r.v, r.err)
	}
	// Once the lease is over by both clocks and the record is completed,
	// its short retention applies again.
	wall.Advance(time.Minute)
	versions.Advance(time.Minute)
	if _, err := s.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if kr, err := s.KeyedRecord(ctx, "", "k"); !errors.Is(err, idemkv.ErrNotFound) {
		t.Fatalf("after retention: %+v, %v; want the record removed", kr, err)
	}
}

// openTwoClocks opens an in-memory store whose database versions follow
// one manual clock and whose wall clock (Options.Clock) is another, so a
// test can move either alone.
func openTwoClocks(t *testing.T, opts *idemkv.Options) (s *idemkv.Store, versions, wall *embedded.ManualClock) {
	t.Helper()
	needsEngine(t, "a manual clock for its versions")
	versions = embedded.NewManualClock(time.Unix(1_700_000_000, 0))
	wall = embedded.NewManualClock(time.Unix(1_800_000_000, 0))
	var o idemkv.Options
	if opts != nil {
		o = *opts
	}
	o.Embedded = &embedded.Options{Clock: versions.Now}
	o.Clock = wall.Now
	o.NoJanitor = true
	s, err := idemkv.Open(context.Background(), "mem:", &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	// The store's first call creates its marker slot, in a commit of its
	// own before the call's read version. The tests count versions to the
	// microsecond from a holder's claim, the first commit after a step of
	// the clock: so the slot is made first, and the clock stepped after it
	// (within the second in which the store trusts its sighting of the
	// slot, so the claim does not read it again).
	if _, err := idemkv.Transact(context.Background(), s, func(kv.Transaction) (struct{}, error) { return struct{}{}, nil }); err != nil {
		t.Fatal(err)
	}
	versions.Advance(500 * time.Millisecond)
	return s, versions, wall
}

// holder is a Do call holding its key, its fn blocked until finish.
type holder struct {
	tok  uint64
	do   chan func(context.Context) error
	errs chan error
	done chan holderResult
}

type holderResult struct {
	v   string
	err error
}

// hold starts Do(key, payload "p") whose fn returns "first" once finish
// is called, and returns when fn is running, with its fencing token.
func hold(t *testing.T, s *idemkv.Store, key string, opts *idemkv.DoOptions) *holder {
	t.Helper()
	h := &holder{do: make(chan func(context.Context) error), errs: make(chan error), done: make(chan holderResult, 1)}
	started := make(chan uint64, 1)
	go func() {
		v, err := idemkv.Do(context.Background(), s, key, []byte("p"), func(ctx context.Context) (string, error) {
			tok, _ := idemkv.LeaseToken(ctx)
			started <- tok
			for f := range h.do {
				h.errs <- f(ctx)
			}
			return "first", nil
		}, opts)
		h.done <- holderResult{v, err}
	}()
	select {
	case h.tok = <-started:
	case r := <-h.done:
		t.Fatalf("holder ended before running: %q, %v", r.v, r.err)
	case <-time.After(30 * time.Second):
		t.Fatal("holder did not start")
	}
	t.Cleanup(func() {
		select {
		case <-h.done:
		default:
			h.finish(t)
		}
	})
	return h
}

// inside runs f in the holder's fn, with its context.
func (h *holder) inside(f func(context.Context) error) error {
	h.do <- f
	return <-h.errs
}

// finish lets the holder's fn return and waits for its Do.
func (h *holder) finish(t *testing.T) holderResult {
	t.Helper()
	close(h.do)
	select {
	case r := <-h.done:
		h.done <- r // for the cleanup's check
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("holder did not return")
		return holderResult{}
	}
}

// near reports whether got is want within a millisecond below (each
// commit advances versions by one, a microsecond).
func near(got, want time.Duration) bool { return got <= want && got > want-time.Millisecond }
