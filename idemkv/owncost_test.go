package idemkv_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/kvtest"
)

// BenchmarkKeyedOwnCost is what Transact and TransactKey's first call cost
// in idemkv's and txn's own code, one goroutine, on kvtest.NullDB: the difference
// is TransactKey's (the record's key, fingerprint and encoding, the
// age-index entry, the result's Codec) before any engine stores a byte.
//
//	go test ./idemkv/ -run '^$' -bench KeyedOwnCost -benchtime 200000x
func BenchmarkKeyedOwnCost(b *testing.B) {
	ctx := context.Background()
	s, err := idemkv.Open(ctx, "mem:", &idemkv.Options{NoJanitor: true, WrapDatabase: func(kv.Database) kv.Database { return &kvtest.NullDB{} }})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	key, one := []byte("counter"), []byte{1, 0, 0, 0, 0, 0, 0, 0}
	add := func(tr kv.Transaction) (int, error) { tr.Atomic(kv.Add, key, one); return 1, nil }
	b.Run("transact", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := idemkv.Transact(ctx, s, add); err != nil {
				b.Fatal(err)
			}
		}
	})
	var seq atomic.Int64
	b.Run("transactkey-first", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := idemkv.TransactKey(ctx, s, fmt.Sprintf("k%d", seq.Add(1)), nil, add, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
