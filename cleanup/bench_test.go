package cleanup_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/idemkv/idemkv/cleanup"
	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/txn"
)

// BenchmarkSweep measures one automatic sweep against the number of markers
// it removes: it should be flat, since a sweep is range clears and an atomic
// max, reading nothing. Markers are written (untimed) before each sweep.
//
//	go test ./cleanup -run '^$' -bench Sweep -benchtime 5x
func BenchmarkSweep(b *testing.B) {
	for _, n := range []int{0, 1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("markers=%d", n), func(b *testing.B) {
			db, clk := openClocked(b)
			j := newJanitor(b, db, &cleanup.Options{Clock: clk.Now, MinAge: minAge})
			ctx := context.Background()
			val := []byte{1, 0, 0, 0, 1}
			for range b.N {
				b.StopTimer()
				rv := do(b, db, func(tr kv.Transaction) (int64, error) { return tr.GetReadVersion().Get() })
				for done := 0; done < n; {
					batch := min(n-done, 10_000)
					do(b, db, func(tr kv.Transaction) (struct{}, error) {
						for i := range batch {
							id := txn.ID{Shard: uint8((done + i) % txn.DefaultShards), Version: rv, Rand: uuid.New()}
							tr.Set(txn.MarkerKey(txn.DefaultPrefix, id), val)
						}
						return struct{}{}, nil
					})
					done += batch
				}
				clk.Advance(minAge + time.Second)
				// An untimed commit lets the engine prune its conflict
				// history of the markers' writes, work that would otherwise
				// land on the sweep's commit and that is the engine's, not
				// the sweep's.
				do(b, db, func(tr kv.Transaction) (struct{}, error) {
					tr.Set([]byte("bench/tick"), nil)
					return struct{}{}, nil
				})
				b.StartTimer()
				if _, err := j.Step(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if n > 0 && len(markers(b, db)) != 0 {
				b.Fatal("markers left after the sweep")
			}
		})
	}
}
