//go:build fdb

package fdbkv

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/txn"
)

// TestTxnExactlyOnceAgainstCluster runs txn.Transact increments from
// several goroutines against a real cluster, some of them with deadlines
// short enough to time out mid-commit, and checks the counter against the
// calls' outcomes: every acknowledged call and every call that Resolve
// reports committed is counted exactly once, and nothing else is.
func TestTxnExactlyOnceAgainstCluster(t *testing.T) {
	db := openCluster(t)
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 0x746f7274757265))
	prefix := fmt.Appendf(nil, "fdbkv-torture/%016x/", rng.Uint64())
	counter := append(append([]byte{}, prefix...), "counter"...)
	opts := &txn.Options{Prefix: append(append([]byte{}, prefix...), "markers/"...)}
	t.Cleanup(func() {
		r, err := kv.PrefixRange(prefix)
		if err != nil {
			t.Error(err)
			return
		}
		_, err = txn.StockTransact(context.Background(), db, func(tr kv.Transaction) (struct{}, error) {
			tr.ClearRange(r)
			return struct{}{}, nil
		})
		if err != nil {
			t.Errorf("cleaning up %q: %v", prefix, err)
		}
	})

	const workers, calls = 8, 100
	var (
		mu                    sync.Mutex
		acked, resolved, lost int
		unknownIDs            []txn.ID
		failures              []error
		workerSeeds           [workers]uint64
	)
	for i := range workerSeeds {
		workerSeeds[i] = rng.Uint64()
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(workerSeeds[w], uint64(w)))
			for i := 0; i < calls; i++ {
				ctx, cancel := context.Background(), context.CancelFunc(func() {})
				if r.IntN(10) == 0 {
					// Short enough that some commits are cut off in flight.
					ctx, cancel = context.WithTimeout(ctx, time.Duration(r.IntN(5000))*time.Microsecond)
				}
				_, err := txn.Transact(ctx, db, func(tr kv.Transaction) (struct{}, error) {
					tr.Atomic(kv.Add, counter, []byte{1, 0, 0, 0, 0, 0, 0, 0})
					return struct{}{}, nil
				}, opts)
				cancel()
				mu.Lock()
				var ur *txn.UnknownResultError
				switch {
				case err == nil:
					acked++
				case errors.As(err, &ur):
					unknownIDs = append(unknownIDs, ur.ID)
				case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
					// Ended before any commit was sent: nothing committed.
				default:
					failures = append(failures, err)
				}
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	for _, err := range failures {
		t.Errorf("call failed: %v", err)
	}
	for _, id := range unknownIDs {
		out, err := txn.Resolve(context.Background(), db, id, opts)
		switch {
		case err != nil:
			t.Errorf("Resolve(%v): %v", id, err)
			lost++
		case out == txn.Committed:
			resolved++
		}
	}
	got, err := txn.StockTransact(context.Background(), db, func(tr kv.Transaction) (uint64, error) {
		v, err := tr.Get(counter).Get()
		if err != nil || v == nil {
			return 0, err
		}
		return binary.LittleEndian.Uint64(v), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := uint64(acked + resolved)
	t.Logf("%d calls: %d acknowledged, %d unknown (%d resolved committed, %d unresolvable); counter %d",
		workers*calls, acked, len(unknownIDs), resolved, lost, got)
	if lost == 0 && got != want {
		t.Fatalf("counter = %d; want %d (acknowledged + resolved committed): a call was applied twice or lost", got, want)
	}
}
