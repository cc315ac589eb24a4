package txn_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/txn"
)

// BenchmarkProtocol measures the exactly-once protocol's cost against the
// stock loop on the same engine, for FoundationDB's worst case — a blind
// single-key atomic add, where the marker is most of the work — and for a
// read-modify-write of a key per goroutine. Compare the modes with
// benchstat, or read the ratio of their ns/op.
func BenchmarkProtocol(b *testing.B) {
	workloads := []struct {
		name string
		fn   func(key []byte) func(kv.Transaction) (struct{}, error)
	}{
		{"blind-add", func(key []byte) func(kv.Transaction) (struct{}, error) {
			return func(tr kv.Transaction) (struct{}, error) {
				tr.Atomic(kv.Add, key, one)
				return struct{}{}, nil
			}
		}},
		{"read-modify-write", func(key []byte) func(kv.Transaction) (struct{}, error) {
			return func(tr kv.Transaction) (struct{}, error) {
				v := tr.Get(key).MustGet()
				tr.Set(key, append(v[:0:0], byte(len(v))))
				return struct{}{}, nil
			}
		}},
	}
	modes := []struct {
		name string
		run  func(context.Context, kv.Database, func(kv.Transaction) (struct{}, error)) error
	}{
		{"stock", func(ctx context.Context, db kv.Database, fn func(kv.Transaction) (struct{}, error)) error {
			_, err := txn.StockTransact(ctx, db, fn)
			return err
		}},
		{"exactly-once", func(ctx context.Context, db kv.Database, fn func(kv.Transaction) (struct{}, error)) error {
			_, err := txn.Transact(ctx, db, fn, nil)
			return err
		}},
	}
	for _, w := range workloads {
		for _, par := range []int{1, 16} {
			for _, m := range modes {
				b.Run(fmt.Sprintf("%s/conc=%d/%s", w.name, par, m.name), func(b *testing.B) {
					db := openMem(b)
					ctx := context.Background()
					var g atomic.Int64
					b.SetParallelism(par)
					b.ResetTimer()
					b.RunParallel(func(pb *testing.PB) {
						key := fmt.Appendf(nil, "k%d", g.Add(1))
						if w.name == "blind-add" {
							key = []byte("counter") // one hot key: adds never conflict
						}
						fn := w.fn(key)
						for pb.Next() {
							if err := m.run(ctx, db, fn); err != nil {
								b.Fatal(err)
							}
						}
					})
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "txn/s")
				})
			}
		}
	}
}
