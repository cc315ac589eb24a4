package idemkv_test

import (
	"context"
	"testing"
	"time"

	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/embedded"
	"github.com/idemkv/idemkv/txn"
)

// The shard layout is a property of the data, not of each opening's
// options: a store reopened with another Shards sweeps every marker and
// resolves every ID the earlier opening made (issue 11, item 2).
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
	var ids []txn.ID
	for range 600 {
		_, c, err := idemkv.TransactCommit(ctx, s, add)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(4)
	defer s.Close()
	high := 0
	for _, id := range ids {
		if id.Shard >= 4 {
			high++
		}
		if o, err := s.Resolve(ctx, id); err != nil || o != txn.Committed {
			t.Fatalf("Resolve(%v) with Shards 4 = %v, %v; want committed", id, o, err)
		}
	}
	if high == 0 {
		t.Fatal("no ID landed on a shard above 3: the test proves nothing")
	}
	clk.Advance(idemkv.DefaultLease + 11*time.Minute)
	if _, err := s.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	left := 0
	for _, e := range dump(t, s, "tx/") {
		if _, err := txn.ParseMarkerKey(append([]byte(string(idemkv.DefaultPrefix)), "tx/"...), e.Key); err == nil {
			left++
		}
	}
	if left != 0 {
		t.Fatalf("%d of %d expired markers left after a sweep", left, len(ids))
	}
}
