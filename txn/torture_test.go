package txn_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/embedded"
	"github.com/idemkv/idemkv/kv/faulty"
	"github.com/idemkv/idemkv/txn"
)

var (
	seedFlag  = flag.Uint64("seed", 0, "replay one torture seed (0: run -txn.seeds seeds)")
	seedsFlag = flag.Int("txn.seeds", 500, "how many seeds the torture tests run")
)

// seeds returns the seeds to run: the one given by -seed, or 1..-txn.seeds.
func seeds() []uint64 {
	if *seedFlag != 0 {
		return []uint64{*seedFlag}
	}
	s := make([]uint64, *seedsFlag)
	for i := range s {
		s[i] = uint64(i + 1)
	}
	return s
}

func replay(name string, seed uint64) string {
	return fmt.Sprintf("seed %d; replay with: go test ./txn -run '%s' -seed=%d -v", seed, name, seed)
}

// everyFault injects every kind FoundationDB has, at rates high enough that
// a short run sees each of them.
func everyFault(seed uint64) faulty.Config {
	return faulty.Config{
		Seed:                            seed,
		UnknownResultApplied:            0.06,
		UnknownResultNotApplied:         0.04,
		UnknownResultLate:               0.06,
		TimedOutApplied:                 0.02,
		TimedOutNotApplied:              0.02,
		TimedOutLate:                    0.02,
		ClusterVersionChangedApplied:    0.04,
		ClusterVersionChangedNotApplied: 0.02,
		NotCommitted:                    0.03,
		TransactionTooOld:               0.02,
		FutureVersion:                   0.02,
		RecoveryApplied:                 0.01,
		RecoveryNotApplied:              0.01,
		Latency:                         0.1,
		MaxLatency:                      time.Millisecond,
		LateDelay:                       3 * time.Millisecond,
	}
}

const (
	tortureWorkers = 4
	tortureCalls   = 8
)

// settle turns a Transact outcome into committed or not, resolving unknown
// outcomes. Resolve itself goes through the faulty database and is retried
// when it times out: it is idempotent.
func settle(t *testing.T, db kv.Database, err error) bool {
	if err == nil {
		return true
	}
	var unknown *txn.UnknownResultError
	if !errors.As(err, &unknown) {
		if kv.IsRetryableNotCommitted(err) || errors.Is(err, kv.ErrTransactionTimedOut) {
			return false // ended before any commit could have been applied
		}
		t.Errorf("unexpected error: %v", err)
		return false
	}
	for range 50 {
		o, err := txn.Resolve(context.Background(), db, unknown.ID, fastRetries)
		if err == nil {
			return o == txn.Committed
		}
		if !errors.Is(err, kv.ErrTransactionTimedOut) {
			t.Errorf("Resolve(%v): %v", unknown.ID, err)
			return false
		}
	}
	t.Errorf("Resolve(%v) timed out 50 times", unknown.ID)
	return false
}

// TestTortureCounter is the proof of exactly-once: K goroutines × M blind
// increments through every fault kind. The final count must equal the calls
// that succeeded plus the unknown ones Resolve reports committed — exactly.
// The stock loop runs on the same fault schedule and must show duplicates,
// exactly as many as the commits the injector applied while reporting
// failure: the proof that the faults bite.
func TestTortureCounter(t *testing.T) {
	var stockDuplicates, injected atomic.Int64
	t.Run("seeds", func(t *testing.T) {
		for _, seed := range seeds() {
			t.Run(fmt.Sprint(seed), func(t *testing.T) {
				t.Parallel()
				n, dup := tortureCounter(t, seed)
				injected.Add(n)
				stockDuplicates.Add(dup)
				if t.Failed() {
					t.Log(replay("TestTortureCounter", seed))
				}
			})
		}
	})
	t.Logf("faults injected into exactly-once runs: %d; stock-loop duplicates: %d", injected.Load(), stockDuplicates.Load())
	if *seedFlag == 0 && stockDuplicates.Load() == 0 {
		t.Fatal("the stock loop never duplicated an increment: the injected faults did not bite")
	}
}

func tortureCounter(t *testing.T, seed uint64) (injected, duplicates int64) {
	key := []byte("counter")
	inc := func(tr kv.Transaction) (struct{}, error) {
		tr.Atomic(kv.Add, key, one)
		return struct{}{}, nil
	}

	// Exactly-once.
	inner := openMem(t)
	db := faulty.Wrap(inner, everyFault(seed))
	var committed atomic.Int64
	run(tortureWorkers, tortureCalls, func() {
		_, err := txn.Transact(context.Background(), db, inc, fastRetries)
		if settle(t, db, err) {
			committed.Add(1)
		}
	})
	db.Wait()
	if got := readCount(t, inner, key); got != committed.Load() {
		t.Errorf("exactly-once: counter = %d, want %d committed calls (faults: %+v)", got, committed.Load(), db.Stats().Total())
	}

	// The stock loop, same schedule.
	stockInner := openMem(t)
	stock := faulty.Wrap(stockInner, everyFault(seed))
	var succeeded atomic.Int64
	run(tortureWorkers, tortureCalls, func() {
		if _, err := txn.StockTransact(context.Background(), stock, inc); err == nil {
			succeeded.Add(1)
		}
	})
	stock.Wait()
	got := readCount(t, stockInner, key)
	if want := succeeded.Load() + stock.Stats().AppliedButFailed(); got != want {
		t.Errorf("stock: counter = %d, want %d successes + %d applied-but-failed commits (%+v)", got, succeeded.Load(), stock.Stats().AppliedButFailed(), stock.Stats().ByKind)
	}
	return db.Stats().Total().Injected, got - succeeded.Load()
}

// run calls f calls times from each of workers goroutines and waits.
func run(workers, calls int, f func()) {
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range calls {
				f()
			}
		}()
	}
	wg.Wait()
}

var _ kv.Database = (*embedded.DB)(nil)
