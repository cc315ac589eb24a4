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

// BenchmarkKeyed compares, in one run on the in-memory engine, a counter
// add made exactly once with Transact, the same add as a keyed request's
// first call with TransactKey (the add and the key's record in one
// transaction; target: at least 0.9 of Transact's throughput), a
// TransactKey replay (one point read, no commit), and Do's first call and
// replay for the same work (claim, the add's own Transact, completion).
// It reports commits per call, counted by a wrapper.
//
//	go test ./idemkv/ -run '^$' -bench Keyed -benchtime 2000x
func BenchmarkKeyed(b *testing.B) {
	ctx := context.Background()
	var commits atomic.Int64
	s, err := idemkv.Open(ctx, "mem:", &idemkv.Options{NoJanitor: true, WrapDatabase: func(db kv.Database) kv.Database {
		return &commitCounter{Database: db, n: &commits}
	}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c := s.Counter("bench")
	add := func(tr kv.Transaction) (int, error) { c.AddTx(tr, 1); return 1, nil }
	var seq atomic.Int64
	key := func() string { return fmt.Sprintf("k%d", seq.Add(1)) }
	if _, err := idemkv.TransactKey(ctx, s, "replayed", nil, add, nil); err != nil {
		b.Fatal(err)
	}
	if _, err := idemkv.Do(ctx, s, "replayed", nil, func(ctx context.Context) (int, error) { return 1, c.Add(ctx, 1) }, nil); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		call func() error
	}{
		{"transact", func() error { _, err := idemkv.Transact(ctx, s, add); return err }},
		{"transactkey-first", func() error { _, err := idemkv.TransactKey(ctx, s, key(), nil, add, nil); return err }},
		{"transactkey-replay", func() error { _, err := idemkv.TransactKey(ctx, s, "replayed", nil, add, nil); return err }},
		{"do-first", func() error {
			_, err := idemkv.Do(ctx, s, key(), nil, func(ctx context.Context) (int, error) { return 1, c.Add(ctx, 1) }, nil)
			return err
		}},
		{"do-replay", func() error {
			_, err := idemkv.Do(ctx, s, "replayed", nil, func(ctx context.Context) (int, error) { return 1, c.Add(ctx, 1) }, nil)
			return err
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			before := commits.Load()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := bc.call(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(commits.Load()-before)/float64(b.N), "commits/op")
		})
	}
}

// commitCounter counts the commits that succeed.
type commitCounter struct {
	kv.Database
	n *atomic.Int64
}

func (c *commitCounter) CreateTransaction(ctx context.Context) (kv.Transaction, error) {
	tr, err := c.Database.CreateTransaction(ctx)
	if err != nil {
		return nil, err
	}
	return &countedTxn{Transaction: tr, n: c.n}, nil
}

type countedTxn struct {
	kv.Transaction
	n *atomic.Int64
}

func (t *countedTxn) Commit() *kv.Future[struct{}] {
	err := t.Transaction.Commit().Err()
	if err == nil {
		t.n.Add(1)
	}
	return kv.Ready(struct{}{}, err)
}
