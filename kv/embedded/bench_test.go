package embedded

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/idemkv/idemkv/kv"
)

// runConcurrent runs op b.N times split across c goroutines and reports
// commits/s. op gets a unique sequence number.
func runConcurrent(b *testing.B, c int, op func(n uint64) error) {
	var next atomic.Uint64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := next.Add(1)
				if n > uint64(b.N) {
					return
				}
				if err := op(n); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
}

var benchValue = make([]byte, 100)

// BenchmarkCommit compares, in one run, the engine's commit rate with its
// floor: Pebble's own synced batch commits and the disk's raw fsync rate.
// Each engine commit is a fresh transaction writing one 16-byte key and a
// 100-byte value.
func BenchmarkCommit(b *testing.B) {
	for _, durable := range []bool{true, false} {
		for _, c := range []int{1, 16} {
			name := fmt.Sprintf("engine/mem/c=%d", c)
			if durable {
				name = fmt.Sprintf("engine/durable/c=%d", c)
			}
			b.Run(name, func(b *testing.B) {
				var db *DB
				var err error
				if durable {
					db, err = Open(b.TempDir(), nil)
				} else {
					db, err = OpenMem(nil)
				}
				if err != nil {
					b.Fatal(err)
				}
				defer db.Close()
				runConcurrent(b, c, func(n uint64) error {
					tr, err := db.CreateTransaction(context.Background())
					if err != nil {
						return err
					}
					tr.Set(binary.BigEndian.AppendUint64([]byte("benchkey"), n), benchValue)
					return tr.Commit().Err()
				})
				db.mu.Lock()
				b.ReportMetric(float64(len(db.mu.snaps)), "snapshots")
				db.mu.Unlock()
				if bt := db.stats.batches.Load(); bt > 0 {
					b.ReportMetric(float64(db.stats.commits.Load())/float64(bt), "commits/batch")
				}
			})
		}
	}
	for _, g := range []int{1, 16} {
		b.Run(fmt.Sprintf("pebble-sync/g=%d", g), func(b *testing.B) {
			pdb, err := pebble.Open(b.TempDir(), &pebble.Options{Logger: newFailLogger(newFailure())})
			if err != nil {
				b.Fatal(err)
			}
			defer pdb.Close()
			runConcurrent(b, g, func(n uint64) error {
				batch := pdb.NewBatch()
				batch.Set(binary.BigEndian.AppendUint64([]byte("ubenchkey"), n), benchValue, nil)
				return pdb.Apply(batch, pebble.Sync)
			})
		})
	}
	b.Run("fsync", func(b *testing.B) {
		f, err := os.Create(filepath.Join(b.TempDir(), "fsync"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		block := make([]byte, 512)
		runConcurrent(b, 1, func(n uint64) error {
			if _, err := f.WriteAt(block, int64(n%64)*512); err != nil {
				return err
			}
			return fdatasync(f)
		})
	})
}

// BenchmarkConflictWindow measures the resolver's window holding n recent
// single-key writes (the five-second window at n/5 commits per second).
// add: one fresh key written per version, the oldest pruned (the steady
// state, one marker per commit). point: two point reads, n commits behind.
// range: a range read spanning all n keys, 100 writes (elsewhere) newer
// than its read version, so the check is bounded by those 100, not by n.
// narrow: a range read over one recent key, n/2 writes since its read
// version (the worst case of the block log: every block since rv is
// searched).
func BenchmarkConflictWindow(b *testing.B) {
	for _, n := range []int{1_000, 100_000, 500_000} {
		var w conflictWindow
		for i := range n {
			k := binary.BigEndian.AppendUint64([]byte("w"), uint64(i))
			w.add(int64(i+1), []kv.Range{kv.SingleKeyRange(k)})
		}
		for i := range 100 {
			k := binary.BigEndian.AppendUint64([]byte("y"), uint64(i))
			w.add(int64(n+1+i), []kv.Range{kv.SingleKeyRange(k)})
		}
		b.Run(fmt.Sprintf("point/behind=%d", n), func(b *testing.B) {
			last := binary.BigEndian.AppendUint64([]byte("w"), uint64(n-1))
			reads := []kv.Range{kv.SingleKeyRange([]byte("r1")), kv.SingleKeyRange(last)}
			for range b.N {
				if w.conflicts(0, reads[:1]) || !w.conflicts(0, reads[1:]) {
					b.Fatal("wrong answer")
				}
			}
		})
		b.Run(fmt.Sprintf("range/keys=%d", n), func(b *testing.B) {
			reads := []kv.Range{{Begin: []byte("w"), End: []byte("x")}}
			for range b.N {
				if w.conflicts(int64(n), reads) {
					b.Fatal("unexpected conflict")
				}
			}
		})
		b.Run(fmt.Sprintf("narrow/behind=%d", n/2), func(b *testing.B) {
			k := binary.BigEndian.AppendUint64([]byte("w"), uint64(n/4))
			reads := []kv.Range{{Begin: k, End: kv.KeyAfter(k)}, {Begin: []byte("x"), End: []byte("y")}}
			for range b.N {
				if w.conflicts(int64(n/2), reads[1:]) || !w.conflicts(int64(n/8), reads[:1]) {
					b.Fatal("wrong answer")
				}
			}
		})
		b.Run(fmt.Sprintf("add/window=%d", n), func(b *testing.B) {
			var w conflictWindow
			keys := make([][]kv.Range, 4096) // made outside the timer
			next := 0
			for v := int64(1); v <= int64(b.N); v++ {
				if next == 0 {
					b.StopTimer()
					for i := range keys {
						k := binary.BigEndian.AppendUint64([]byte("m"), uint64(v)+uint64(i))
						keys[i] = []kv.Range{kv.SingleKeyRange(k)}
					}
					b.StartTimer()
				}
				w.prune(v - int64(n))
				w.add(v, keys[next])
				next = (next + 1) % len(keys)
			}
		})
	}
}
