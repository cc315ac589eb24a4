package txn_test

import (
	"context"
	"testing"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/kvtest"
	"github.com/idemkv/idemkv/txn"
)

// BenchmarkOwnCost is txn's own cost per call, on kvtest.NullDB: a blind add
// through the stock loop and through Transact, one goroutine. The
// difference is what the protocol's code adds to every call on any
// backend, before the engine does anything with the marker.
func BenchmarkOwnCost(b *testing.B) {
	ctx := context.Background()
	db := &kvtest.NullDB{}
	key := []byte("counter")
	fn := func(tr kv.Transaction) (struct{}, error) {
		tr.Atomic(kv.Add, key, one)
		return struct{}{}, nil
	}
	opts := &txn.Options{Prefix: []byte("\xfdowncost/"), Observe: func(txn.Stats) {}}
	b.Run("stock", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := txn.StockTransact(ctx, db, fn); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("exactly-once", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := txn.Transact(ctx, db, fn, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("exactly-once/options", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := txn.Transact(ctx, db, fn, opts); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("commit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := txn.TransactCommit(ctx, db, fn, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
