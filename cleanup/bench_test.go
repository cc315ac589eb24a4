package cleanup_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/idemkv/idemkv/cleanup"
	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/embedded"
	"github.com/idemkv/idemkv/txn"
)

// BenchmarkSweep measures one automatic sweep against the number of markers
// it removes, in memory and on disk: it should be flat, since a sweep is a
// snapshot read of each shard's first two keys, a range clear per shard
// with old markers and an atomic max, whatever the markers' number.
//
// Each iteration writes n markers over txn.DefaultShards shards (untimed),
// moves the clock past the minimum age and times one Step, which removes
// them. Iterations after the first therefore also read through the range
// the previous Step cleared, as every sweep but a store's first does; the
// engine is given a second of real time between the two, standing for the
// sweep interval, in which it does what it does after a large clear. Run
// with several iterations:
//
//	go test ./cleanup -run '^$' -bench Sweep -benchtime 4x -count 3
func BenchmarkSweep(b *testing.B) {
	for _, backend := range []string{"mem", "disk"} {
		for _, n := range []int{0, 10_000, 100_000, 500_000} {
			b.Run(fmt.Sprintf("%s/markers=%d", backend, n), func(b *testing.B) {
				benchmarkSweep(b, backend, n)
			})
		}
	}
}

func benchmarkSweep(b *testing.B, backend string, n int) {
	clk := embedded.NewManualClock(time.Unix(1_700_000_000, 0))
	opts := &embedded.Options{Clock: clk.Now}
	var db *embedded.DB
	var err error
	if backend == "mem" {
		db, err = embedded.OpenMem(opts)
	} else {
		db, err = embedded.Open(b.TempDir(), opts)
	}
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	j := newJanitor(b, db, &cleanup.Options{Clock: clk.Now, MinAge: minAge})
	ctx := context.Background()
	val := []byte{1, 0, 0, 0, 1}
	tick := func() {
		do(b, db, func(tr kv.Transaction) (struct{}, error) {
			tr.Set([]byte("bench/tick"), nil)
			return struct{}{}, nil
		})
	}
	for i := range b.N {
		b.StopTimer()
		if i > 0 {
			// The time between sweeps: the previous Step's snapshots age
			// out (the engine's clock moves past its five-second window)
			// and the engine gets a second of real time to act on them.
			clk.Advance(6 * time.Second)
			tick()
			time.Sleep(time.Second)
		}
		rv := do(b, db, func(tr kv.Transaction) (int64, error) { return tr.GetReadVersion().Get() })
		for done := 0; done < n; {
			batch := min(n-done, 10_000)
			do(b, db, func(tr kv.Transaction) (struct{}, error) {
				for k := range batch {
					id := txn.ID{Shard: uint8((done + k) % txn.DefaultShards), Version: rv, Rand: uuid.New()}
					tr.Set(txn.MarkerKey(txn.DefaultPrefix, id), val)
				}
				return struct{}{}, nil
			})
			done += batch
		}
		// A clock sample above the markers' versions, so that once the
		// clock has moved MinAge on, the clock bound lets them go.
		if _, err := j.Step(ctx); err != nil {
			b.Fatal(err)
		}
		clk.Advance(minAge + time.Second)
		// An untimed commit lets the engine prune its conflict history and
		// release the snapshots of the markers' writes, work that would
		// otherwise land on the sweep's commit and that is the engine's
		// (any first commit after the clock jump pays it), not the sweep's.
		tick()
		b.StartTimer()
		if _, err := j.Step(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if n > 0 && len(markers(b, db)) != 0 {
		b.Fatal("markers left after the sweep")
	}
}
