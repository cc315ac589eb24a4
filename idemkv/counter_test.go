package idemkv_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/kv"
)

func TestCounters(t *testing.T) {
	ctx := context.Background()
	s := openUnstepped(t, nil)
	r := rand.New(rand.NewPCG(seed(t), 1))
	plain, sharded := s.Counter("hits"), s.ShardedCounter("hits", 8)
	var want int64
	var wg sync.WaitGroup
	deltas := make([]int64, 200)
	for i := range deltas {
		deltas[i] = r.Int64N(2001) - 1000 // negative deltas subtract
		want += deltas[i]
	}
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(deltas); i += 4 {
				if err := plain.Add(ctx, deltas[i]); err != nil {
					t.Error(err)
				}
				if err := sharded.Add(ctx, deltas[i]); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	for _, c := range []*idemkv.Counter{plain, sharded, s.ShardedCounter("hits", 3)} {
		if v, err := c.Get(ctx); err != nil || v != want {
			t.Fatalf("Get: %d, %v; want %d", v, err, want)
		}
	}
	if n := len(dump(t, s, "s/")); n < 2 || n > 8 {
		t.Fatalf("sharded counter used %d keys, want 2 to 8", n)
	}
	// The plain and sharded counters of one name are distinct, and names
	// that extend each other do not mix.
	if v, _ := s.Counter("hit").Get(ctx); v != 0 {
		t.Fatalf("counter \"hit\" = %d, want 0", v)
	}
	if v, _ := s.ShardedCounter("hit", 8).Get(ctx); v != 0 {
		t.Fatalf("sharded counter \"hit\" = %d, want 0", v)
	}
	// AddTx joins the caller's exactly-once transaction.
	_, err := idemkv.Transact(ctx, s, func(tr kv.Transaction) (struct{}, error) {
		plain.AddTx(tr, 5)
		sharded.AddTx(tr, 5)
		return struct{}{}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := plain.Get(ctx); v != want+5 {
		t.Fatalf("after AddTx: %d, want %d", v, want+5)
	}
	v, err := idemkv.ReadTransact(ctx, s, sharded.GetTx)
	if err != nil || v != want+5 {
		t.Fatalf("GetTx: %d, %v; want %d", v, err, want+5)
	}
}
