package idemkv_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/embedded"
	"github.com/idemkv/idemkv/kv/faulty"
)

// TestDoUnderRecoveriesRunsOnce drives Do on contended keys through
// kv/faulty's recovery fault: commits (the holders' own transactions
// inside fn among them) fail as a cluster recovery makes them fail, and
// each one advances versions by 100 s — more than the 30 s lease. The
// store's wall clock stands still, so no lease may expire: whatever the
// schedule, each key's fn runs at most once, and no caller is displaced
// (ErrLeaseLost). With leases in versions alone, the first recovery while
// a holder runs lets a waiter take its key over.
func TestDoUnderRecoveriesRunsOnce(t *testing.T) {
	needsEngine(t, "kv/faulty's recovery fault (AdvanceVersion)")
	sd := seed(t)
	wall := embedded.NewManualClock(time.Unix(1_800_000_000, 0))
	cfg := faulty.Config{Seed: sd, RecoveryApplied: 0.1, RecoveryNotApplied: 0.05}
	s := openMem(t, &idemkv.Options{
		NoJanitor:     true,
		MaxRetryDelay: 2 * time.Millisecond,
		Clock:         wall.Now,
		WrapDatabase:  func(db kv.Database) kv.Database { return faulty.Wrap(db, cfg) },
	})
	const keys, callers = 6, 3
	var mu sync.Mutex
	runs := map[string]int{}
	var wg sync.WaitGroup
	errs := make(chan error, keys*callers)
	for k := range keys {
		key := fmt.Sprintf("k%d", k)
		for c := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(sd, uint64(k*callers+c)))
				time.Sleep(time.Duration(r.IntN(3)) * time.Millisecond)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				_, err := idemkv.Do(ctx, s, key, []byte("p"), func(ctx context.Context) (string, error) {
					mu.Lock()
					runs[key]++
					mu.Unlock()
					// Commits while holding the key: each may be a recovery.
					for i := range 4 {
						if _, err := idemkv.Transact(ctx, s, func(tr kv.Transaction) (struct{}, error) {
							tr.Set([]byte(fmt.Sprintf("side/%s/%d", key, i)), []byte("x"))
							return struct{}{}, nil
						}); err != nil {
							return "", err
						}
					}
					return "done " + key, nil
				}, &idemkv.DoOptions{Wait: true})
				var unknown *idemkv.OutcomeUnknownError
				switch {
				case err == nil, errors.As(err, &unknown):
					// A result, or a claim or completion whose own
					// commit outcome a recovery made unknown.
				case errors.Is(err, idemkv.ErrInProgress) && ctx.Err() != nil:
					// Waited out on a key whose claim landed without a
					// holder (its lease never ends: the wall clock
					// stands still).
				case errors.Is(err, idemkv.ErrLeaseLost):
					errs <- fmt.Errorf("key %s: a caller was displaced: %w", key, err)
				default:
					// fn's own Transact can fail on the schedule (an
					// unknown result that Resolve could not settle):
					// allowed, the oracle is the run count.
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for key, n := range runs {
		if n > 1 {
			t.Errorf("key %s: fn ran %d times; want at most once (no lease can expire with the wall clock standing still)", key, n)
		}
	}
}
