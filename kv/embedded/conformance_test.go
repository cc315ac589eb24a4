package embedded_test

import (
	"errors"
	"flag"
	"io"
	"testing"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/embedded"
	"github.com/idemkv/idemkv/kv/kvtest"
)

var (
	seedFlag  = uint64Flag("seed", "replay one seed of the randomized tests (0: the default seeds)")
	moreSeeds = flag.Int("kvtest.seeds", 0, "run this many strict-serializability seeds beyond the default 200 (the stress target)")
)

// uint64Flag defines -name unless another test file of this binary already
// has (both the embedded and embedded_test packages link into one binary,
// and a second flag.Uint64 of the same name would panic).
func uint64Flag(name, usage string) func() uint64 {
	if f := flag.Lookup(name); f != nil {
		return func() uint64 {
			v, _ := f.Value.(flag.Getter).Get().(uint64)
			return v
		}
	}
	p := flag.Uint64(name, 0, usage)
	return func() uint64 { return *p }
}

func openMem(t *testing.T) kv.Database {
	t.Helper()
	db, err := embedded.OpenMem(nil)
	if err != nil {
		t.Fatalf("OpenMem: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestConformance runs the backend conformance suite against the in-memory
// engine and against a durable one on disk.
func TestConformance(t *testing.T) {
	t.Run("Mem", func(t *testing.T) { kvtest.Run(t, openMem) })
	t.Run("Disk", func(t *testing.T) {
		// One durable database shared by every case, as a real cluster
		// would be: the cases keep to their own prefixes.
		db, err := embedded.Open(t.TempDir(), nil)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { db.Close() })
		kvtest.Run(t, func(*testing.T) kv.Database { return db })
	})
}

// workload is heavier than kvtest's default: more clients and keys make
// more transactions overlap, which is what finds isolation bugs.
var workload = &kvtest.HistoryOptions{Clients: 5, TxnsPerClient: 30, Keys: 6, MaxOps: 5}

const replay = "go test ./kv/embedded -run 'TestStrictSerializable$' -seed=%d"

// TestStrictSerializable checks 200 seeded concurrent histories (plus
// -kvtest.seeds more) with porcupine; -seed=S replays one.
func TestStrictSerializable(t *testing.T) {
	db := openMem(t)
	seeds := make([]uint64, 0, 200)
	if s := seedFlag(); s != 0 {
		seeds = append(seeds, s)
	} else {
		for s := range uint64(200 + max(*moreSeeds, 0)) {
			seeds = append(seeds, s+1)
		}
	}
	var total kvtest.Report
	for _, s := range seeds {
		rep := kvtest.CheckStrictSerializable(t, db, s, workload, replay)
		total.Committed += rep.Committed
		total.Dropped += rep.Dropped
		total.GaveUp += rep.GaveUp
	}
	if total.Committed == 0 {
		t.Fatal("no transaction committed in any history")
	}
	t.Logf("%d seeds: %d transactions checked, %d attempts dropped as not_committed, %d abandoned",
		len(seeds), total.Committed, total.Dropped, total.GaveUp)
}

// TestStrictSerializableDisk checks a few histories on the durable engine,
// where concurrent commits share group-committed batches.
func TestStrictSerializableDisk(t *testing.T) {
	db, err := embedded.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	seeds := []uint64{seedFlag()}
	if seeds[0] == 0 {
		seeds = []uint64{1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009, 1010}
	}
	for _, s := range seeds {
		kvtest.CheckStrictSerializable(t, db, s, workload,
			"go test ./kv/embedded -run 'TestStrictSerializableDisk$' -seed=%d")
	}
}

// TestStrictSerializableRejectsStaleReads shows the check can fail: a
// wrapper serving reads from an old version must be caught.
func TestStrictSerializableRejectsStaleReads(t *testing.T) {
	db := kvtest.StaleReads(openMem(t), 3)
	rejected := 0
	for s := range uint64(10) {
		_, err := kvtest.VerifyStrictSerializable(db, s+1, nil)
		switch {
		case errors.Is(err, kvtest.ErrNotStrictlySerializable):
			rejected++
			var he *kvtest.HistoryError
			if !errors.As(err, &he) {
				t.Fatalf("seed %d: %v is not a *kvtest.HistoryError", s+1, err)
			}
			if verr := he.Visualize(io.Discard); verr != nil {
				t.Fatalf("seed %d: Visualize: %v", s+1, verr)
			}
		case err != nil:
			t.Fatalf("seed %d: the run itself failed: %v", s+1, err)
		}
	}
	if rejected == 0 {
		t.Fatal("porcupine accepted every history from a backend that serves stale reads")
	}
	t.Logf("%d of 10 stale-read histories rejected", rejected)
}
