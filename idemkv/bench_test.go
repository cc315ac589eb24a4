package idemkv_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/txn"
)

// BenchmarkCounterAdd compares, on the in-memory engine, a raw atomic add
// under the stock retry loop, the exactly-once Add of a plain counter and
// of a sharded one, all from parallel goroutines.
//
//	go test ./idemkv/ -run '^$' -bench CounterAdd -benchtime 2000x
func BenchmarkCounterAdd(b *testing.B) {
	ctx := context.Background()
	s, err := idemkv.Open(ctx, "mem:", &idemkv.Options{NoJanitor: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	plain := s.Counter("bench")
	for _, bc := range []struct {
		name string
		add  func() error
	}{
		{"stock-raw", func() error {
			_, err := txn.StockTransact(ctx, s.Database(), func(tr kv.Transaction) (struct{}, error) {
				plain.AddTx(tr, 1)
				return struct{}{}, nil
			})
			return err
		}},
		{"plain", func() error { return plain.Add(ctx, 1) }},
		{"sharded-16", func() error { return s.ShardedCounter("bench16", 16).Add(ctx, 1) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := bc.add(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkDo measures a keyed request's first call (claim, fn, complete:
// two exactly-once transactions) and a replay (one).
//
//	go test ./idemkv/ -run '^$' -bench Do -benchtime 2000x
func BenchmarkDo(b *testing.B) {
	ctx := context.Background()
	s, err := idemkv.Open(ctx, "mem:", &idemkv.Options{NoJanitor: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	fn := func(context.Context) (string, error) { return "result", nil }
	var n atomic.Int64
	b.Run("first", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := idemkv.Do(ctx, s, fmt.Sprintf("k%d", n.Add(1)), nil, fn, nil); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("replay", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := idemkv.Do(ctx, s, "k1", nil, fn, nil); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
