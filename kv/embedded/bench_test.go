package embedded

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// BenchmarkCommitRatio measures the ratios BenchmarkCommit's figures are
// read as, robustly on a shared machine: the durable engine, raw Pebble
// synced batches and the in-memory engine, each with 16 committers, take
// turns in 100 ms slices (the order rotating every round), so all three
// see the same background load. Each of b.N rounds gives one ratio per
// pair; the metrics are the medians, beside each mode's commits/s over the
// whole run.
//
//	go test ./kv/embedded -run '^$' -bench CommitRatio -benchtime 40x -count 5
func BenchmarkCommitRatio(b *testing.B) {
	const committers = 16
	const slice = 100 * time.Millisecond
	durable, err := Open(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer durable.Close()
	mem, err := OpenMem(nil)
	if err != nil {
		b.Fatal(err)
	}
	defer mem.Close()
	pdb, err := pebble.Open(b.TempDir(), &pebble.Options{Logger: newFailLogger(newFailure())})
	if err != nil {
		b.Fatal(err)
	}
	defer pdb.Close()
	var seq atomic.Uint64
	engineCommit := func(db *DB) func() error {
		return func() error {
			tr, err := db.CreateTransaction(context.Background())
			if err != nil {
				return err
			}
			tr.Set(binary.BigEndian.AppendUint64([]byte("benchkey"), seq.Add(1)), benchValue)
			return tr.Commit().Err()
		}
	}
	modes := []func() error{
		engineCommit(durable),
		func() error {
			batch := pdb.NewBatch()
			batch.Set(binary.BigEndian.AppendUint64([]byte("ubenchkey"), seq.Add(1)), benchValue, nil)
			return pdb.Apply(batch, pebble.Sync)
		},
		engineCommit(mem),
	}
	var total [3]int64
	var elapsed [3]time.Duration
	var durableVsPebble, memVsPebble []float64
	b.ResetTimer()
	for round := range b.N {
		var rate [3]float64
		for k := range modes {
			i := (round + k) % len(modes)
			var n atomic.Int64
			var wg sync.WaitGroup
			start := time.Now()
			deadline := start.Add(slice)
			for range committers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for time.Now().Before(deadline) {
						if err := modes[i](); err != nil {
							b.Error(err)
							return
						}
						n.Add(1)
					}
				}()
			}
			wg.Wait()
			d := time.Since(start)
			rate[i] = float64(n.Load()) / d.Seconds()
			total[i] += n.Load()
			elapsed[i] += d
		}
		durableVsPebble = append(durableVsPebble, rate[0]/rate[1])
		memVsPebble = append(memVsPebble, rate[2]/rate[1])
	}
	b.StopTimer()
	median := func(xs []float64) float64 {
		slices.Sort(xs)
		return xs[len(xs)/2]
	}
	b.ReportMetric(median(durableVsPebble), "durable/pebble")
	b.ReportMetric(median(memVsPebble), "mem/pebble")
	for i, unit := range []string{"durable-commits/s", "pebble-commits/s", "mem-commits/s"} {
		b.ReportMetric(float64(total[i])/elapsed[i].Seconds(), unit)
	}
	if bt := durable.stats.batches.Load(); bt > 0 {
		b.ReportMetric(float64(durable.stats.commits.Load())/float64(bt), "durable-commits/batch")
	}
}
