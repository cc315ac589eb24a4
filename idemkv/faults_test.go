package idemkv_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/faulty"
	"github.com/idemkv/idemkv/txn"
)

// ambiguous is a fault schedule of maybe-committed and spurious errors:
// every call should succeed exactly once despite it.
func ambiguous(seed uint64) faulty.Config {
	return faulty.Config{
		Seed:                            seed,
		UnknownResultApplied:            0.08,
		UnknownResultNotApplied:         0.04,
		UnknownResultLate:               0.04,
		ClusterVersionChangedApplied:    0.03,
		ClusterVersionChangedNotApplied: 0.02,
		NotCommitted:                    0.03,
		TransactionTooOld:               0.01,
		FutureVersion:                   0.01,
		LateDelay:                       2 * time.Millisecond,
	}
}

func openFaulty(t *testing.T, cfg faulty.Config) (*idemkv.Store, *faulty.DB) {
	t.Helper()
	var f *faulty.DB
	s := openMem(t, &idemkv.Options{
		NoJanitor:     true,
		MaxRetryDelay: 2 * time.Millisecond,
		WrapDatabase:  func(db kv.Database) kv.Database { f = faulty.Wrap(db, cfg); return f },
	})
	return s, f
}

func TestCounterAddExactlyOnceUnderFaults(t *testing.T) {
	sd := seed(t)
	s, f := openFaulty(t, ambiguous(sd))
	ctx := context.Background()
	plain, sharded := s.Counter("n"), s.ShardedCounter("n", 4)
	var want atomic.Int64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(sd, uint64(w)))
			for range 100 {
				d := r.Int64N(100) + 1
				if err := plain.Add(ctx, d); err != nil {
					t.Errorf("plain Add: %v", err)
					return
				}
				if err := sharded.Add(ctx, d); err != nil {
					t.Errorf("sharded Add: %v", err)
					return
				}
				want.Add(d)
			}
		}()
	}
	wg.Wait()
	f.Wait()
	for _, c := range []*idemkv.Counter{plain, sharded} {
		if v, err := c.Get(ctx); err != nil || v != want.Load() {
			t.Fatalf("counter %d, %v; want %d (faults: %+v)", v, err, want.Load(), f.Stats().Total())
		}
	}
	// The schedule must have applied commits that reported failure, or the
	// test proves nothing.
	if f.Stats().AppliedButFailed() == 0 {
		t.Fatalf("no applied-but-failed commits were injected: %+v", f.Stats().Total())
	}
}

// Timeouts are never retried: the caller gets the ID, and Resolve says
// definitively whether the add happened.
func TestCounterAddTimeoutsResolve(t *testing.T) {
	sd := seed(t)
	cfg := ambiguous(sd)
	cfg.TimedOutApplied, cfg.TimedOutNotApplied, cfg.TimedOutLate = 0.05, 0.05, 0.05
	s, f := openFaulty(t, cfg)
	ctx := context.Background()
	c := s.Counter("n")
	var acked, resolved, unknown int64
	for range 300 {
		err := c.Add(ctx, 1)
		var ur *txn.UnknownResultError
		switch {
		case err == nil:
			acked++
		case errors.As(err, &ur):
			unknown++
			// Resolve is idempotent: a fence commit that itself timed out
			// (the schedule injects those too) is simply resolved again.
			var o txn.Outcome
			var err error
			for range 20 {
				if o, err = s.Resolve(ctx, ur.ID); !errors.Is(err, kv.ErrTransactionTimedOut) {
					break
				}
			}
			if err != nil {
				t.Fatalf("Resolve(%v): %v", ur.ID, err)
			}
			if o == txn.Committed {
				resolved++
			}
		default:
			t.Fatalf("Add: %v", err)
		}
	}
	f.Wait()
	v, err := c.Get(ctx)
	if err != nil || v != acked+resolved {
		t.Fatalf("counter %d, %v; want %d acknowledged + %d resolved committed", v, err, acked, resolved)
	}
	if unknown == 0 {
		t.Fatal("no call timed out; the schedule tests nothing")
	}
}

func TestDoExactlyOnceUnderFaults(t *testing.T) {
	sd := seed(t)
	s, f := openFaulty(t, ambiguous(sd))
	ctx := context.Background()
	const keys, callers = 40, 3
	var runs [keys]atomic.Int32
	results := make([][callers]string, keys)
	var wg sync.WaitGroup
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(sd, uint64(c)+100))
			for _, k := range r.Perm(keys) {
				v, err := idemkv.Do(ctx, s, fmt.Sprintf("req-%d", k), []byte("payload"), func(ctx context.Context) (string, error) {
					tok, _ := idemkv.LeaseToken(ctx)
					runs[k].Add(1)
					return fmt.Sprintf("key %d by caller %d token %d", k, c, tok), nil
				}, &idemkv.DoOptions{Wait: true})
				if err != nil {
					t.Errorf("Do(req-%d): %v", k, err)
					continue
				}
				results[k][c] = v
			}
		}()
	}
	wg.Wait()
	f.Wait()
	for k := range keys {
		if n := runs[k].Load(); n != 1 {
			t.Errorf("req-%d: fn ran %d times, want 1", k, n)
		}
		for c := 1; c < callers; c++ {
			if results[k][c] != results[k][0] {
				t.Errorf("req-%d: callers saw %q and %q", k, results[k][0], results[k][c])
			}
		}
	}
	if f.Stats().AppliedButFailed() == 0 {
		t.Fatalf("no applied-but-failed commits were injected: %+v", f.Stats().Total())
	}
}
