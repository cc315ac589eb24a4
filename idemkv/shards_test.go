package idemkv_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/embedded"
	"github.com/idemkv/idemkv/txn"
)

// Options.Shards no longer shapes anything: calls write marker slots,
// whatever it says. A store reopened with another Shards resolves the IDs
// the earlier opening made — committed for the last call of each slot,
// outcome lost (the slot reused, never a wrong answer) for the calls
// before it, which returned long ago — and its janitor sweeps every
// marker (issue 11, item 2; issue 14).
func TestStoreReopenedWithOtherShards(t *testing.T) {
	needsEngine(t, "a directory reopened, on a manual clock")
	dir := t.TempDir()
	clk := embedded.NewManualClock(time.Unix(1_700_000_000, 0))
	open := func(shards int) *idemkv.Store {
		s, err := idemkv.Open(context.Background(), "file:"+dir, &idemkv.Options{
			Shards: shards, NoJanitor: true, Embedded: &embedded.Options{Clock: clk.Now}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ctx := context.Background()
	add := func(tr kv.Transaction) (struct{}, error) {
		tr.Atomic(kv.Add, []byte("c"), []byte{1, 0, 0, 0, 0, 0, 0, 0})
		return struct{}{}, nil
	}

	s := open(txn.MaxShards)
	var mu sync.Mutex
	var ids []txn.ID
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 150 {
				_, c, err := idemkv.TransactCommit(ctx, s, add)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				ids = append(ids, c.ID)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	last := map[uint32]uint64{} // slot -> its last call's sequence
	for _, id := range ids {
		last[id.Slot] = max(last[id.Slot], id.Seq)
	}

	s = open(4)
	defer s.Close()
	committed := 0
	for _, id := range ids {
		o, err := s.Resolve(ctx, id)
		var lost *txn.OutcomeLostError
		switch {
		case id.Seq == last[id.Slot]:
			if err != nil || o != txn.Committed {
				t.Fatalf("Resolve(%v), its slot's last call, with Shards 4 = %v, %v; want committed", id, o, err)
			}
			committed++
		case !errors.As(err, &lost) || !lost.Reused:
			t.Fatalf("Resolve(%v), an earlier call of a reused slot, = %v, %v; want *OutcomeLostError (Reused)", id, o, err)
		}
	}
	if committed != len(last) || len(ids) != 600 {
		t.Fatalf("%d committed answers for %d slots, %d calls", committed, len(last), len(ids))
	}
	clk.Advance(idemkv.DefaultLease + 11*time.Minute)
	if _, err := s.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	left := 0
	for _, e := range dump(t, s, "tx/") {
		if _, _, err := txn.ParseSlotKey(append([]byte(string(idemkv.DefaultPrefix)), "tx/"...), e.Key); err == nil {
			left++
		}
	}
	if left != 0 {
		t.Fatalf("%d of %d expired marker slots left after a sweep", left, len(last))
	}
}
