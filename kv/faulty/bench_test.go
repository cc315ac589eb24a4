package faulty_test

import (
	"context"
	"encoding/binary"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/embedded"
	"github.com/idemkv/idemkv/kv/faulty"
)

// BenchmarkCommit measures one small blind-write commit per op from
// parallel goroutines: the engine alone, the wrapper with no faults (its
// pass-through overhead), and the wrapper injecting faults on 30% of
// commits (the retry a fault costs is not included: each op is one
// Commit call, failed or not).
func BenchmarkCommit(b *testing.B) {
	mix := faulty.Config{Seed: 1, UnknownResultApplied: 0.1, UnknownResultNotApplied: 0.1,
		UnknownResultLate: 0.05, NotCommitted: 0.05, LateDelay: time.Millisecond}
	for _, bc := range []struct {
		name string
		wrap func(kv.Database) kv.Database
	}{
		{"engine", func(e kv.Database) kv.Database { return e }},
		{"faulty=none", func(e kv.Database) kv.Database { return faulty.Wrap(e, faulty.Config{}) }},
		{"faulty=30%", func(e kv.Database) kv.Database { return faulty.Wrap(e, mix) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e, err := embedded.OpenMem(nil)
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			db := bc.wrap(e)
			defer db.Close() // before e's: waits for late commits
			var next atomic.Uint64
			var failed atomic.Int64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				key := make([]byte, 9)
				key[0] = 'k'
				for pb.Next() {
					binary.BigEndian.PutUint64(key[1:], next.Add(1))
					tr, err := db.CreateTransaction(context.Background())
					if err != nil {
						b.Error(err)
						return
					}
					tr.Set(key, key)
					if tr.Commit().Err() != nil {
						failed.Add(1)
					}
				}
			})
			b.ReportMetric(float64(failed.Load())/float64(b.N), "failed/op")
		})
	}
}
