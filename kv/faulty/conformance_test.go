package faulty_test

import (
	"testing"
	"time"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/embedded"
	"github.com/idemkv/idemkv/kv/faulty"
	"github.com/idemkv/idemkv/kv/kvtest"
)

func wrapMem(t *testing.T, cfg faulty.Config) *faulty.DB {
	t.Helper()
	e, err := embedded.OpenMem(nil)
	if err != nil {
		t.Fatalf("OpenMem: %v", err)
	}
	db := faulty.Wrap(e, cfg)
	t.Cleanup(func() {
		db.Close()
		e.Close()
	})
	return db
}

// TestConformance: with no faults configured the wrapper is a pass-through
// and must pass the backend conformance suite like the engine it wraps —
// including the options and OnError cases, which it implements itself.
func TestConformance(t *testing.T) {
	kvtest.Run(t, func(t *testing.T) kv.Database { return wrapMem(t, faulty.Config{}) })
}

// TestStrictSerializableUnderSpuriousFaults checks concurrent histories
// through the wrapper's own OnError and reset path, with the faults that
// leave no doubt about the outcome (kvtest's checker refuses maybe-committed
// errors, which need package txn to resolve).
func TestStrictSerializableUnderSpuriousFaults(t *testing.T) {
	for seed := uint64(1); seed <= 10; seed++ {
		db := wrapMem(t, faulty.Config{Seed: seed,
			NotCommitted: 0.1, TransactionTooOld: 0.05, FutureVersion: 0.05,
			Latency: 0.2, MaxLatency: 200 * time.Microsecond})
		rep := kvtest.CheckStrictSerializable(t, db, seed, nil,
			"go test ./kv/faulty -run 'TestStrictSerializableUnderSpuriousFaults$' -count=1")
		st := db.Stats()
		if st.Total().NotApplied == 0 || rep.Committed == 0 {
			t.Fatalf("seed %d: %d committed, stats %+v: the faults did not happen", seed, rep.Committed, st.Total())
		}
	}
}
