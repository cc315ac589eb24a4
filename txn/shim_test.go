//go:build fdb && fdbc

package txn_test

// The torture tests on FoundationDB's real Go bindings, linked against
// kv/fdbc (the in-process fdb_c shim over kv/embedded) through kv/fdbkv:
// the same seeded fault schedules, wrapped around an "fdb" database
// instead of the engine directly. Build tags fdb and fdbc; `make test` runs
// them with the shim's include path in CGO_CFLAGS.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	_ "github.com/idemkv/idemkv/kv/fdbc"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/faulty"
	"github.com/idemkv/idemkv/kv/fdbkv"
	"github.com/idemkv/idemkv/txn"
)

// shimSeeds is how many of the torture seeds run on the shim in CI: the
// bindings' cgo calls make each run several times slower than on the
// engine directly, and the engine runs -txn.seeds of them.
const shimSeeds = 64

var shimStores atomic.Int64

// openShim opens kv/fdbkv on a fresh in-memory store of the shim.
func openShim(t testing.TB) *fdbkv.DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fdb.cluster")
	cs := fmt.Sprintf("txn:t%d@127.0.0.1:4500\n", shimStores.Add(1))
	if err := os.WriteFile(path, []byte(cs), 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := fdbkv.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// shimFaults is every fault but the recovery version jump, which needs a
// database that can jump its version (faulty.Recoverer): a client cannot
// make a cluster recover.
func shimFaults(seed uint64) faulty.Config {
	cfg := everyFault(seed)
	cfg.RecoveryApplied, cfg.RecoveryNotApplied = 0, 0
	return cfg
}

// shimReplay is replay with the tags and include path the shim needs.
func shimReplay(name string, seed uint64) string {
	return fmt.Sprintf("seed %d; replay with: CGO_CFLAGS=\"-O2 -g -I$PWD/kv/fdbc/include\" go test -tags fdb,fdbc ./txn -run '%s' -seed=%d -v", seed, name, seed)
}

// shimTortureSeeds is seeds(), at most shimSeeds of them.
func shimTortureSeeds() []uint64 {
	all := seeds()
	if len(all) > shimSeeds {
		all = all[:shimSeeds]
	}
	return all
}

func TestTortureCounterOnShim(t *testing.T) {
	all := shimTortureSeeds()
	var injected atomic.Int64
	t.Run("seeds", func(t *testing.T) {
		for _, seed := range all {
			t.Run(fmt.Sprint(seed), func(t *testing.T) {
				t.Parallel()
				key := []byte("counter")
				inner := openShim(t)
				db := faulty.Wrap(inner, shimFaults(seed))
				var committed atomic.Int64
				run(tortureWorkers, tortureCalls, func() {
					_, err := txn.Transact(context.Background(), db, func(tr kv.Transaction) (struct{}, error) {
						tr.Atomic(kv.Add, key, one)
						return struct{}{}, nil
					}, fastRetries)
					if settle(t, db, err) {
						committed.Add(1)
					}
				})
				db.Wait()
				if got := readCount(t, inner, key); got != committed.Load() {
					t.Errorf("exactly-once on the shim: counter = %d, want %d committed calls (faults: %+v)", got, committed.Load(), db.Stats().Total())
				}
				injected.Add(db.Stats().Total().Injected)
				if t.Failed() {
					t.Log(shimReplay("TestTortureCounterOnShim", seed))
				}
			})
		}
	})
	if injected.Load() == 0 {
		t.Fatal("no fault was injected: the torture did not torture")
	}
}

// TestTortureTransfersOnShim is TestTortureTransfers through the bindings:
// read-modify-write transfers with versionstamped ledger appends; money is
// conserved and every committed transfer has exactly one ledger entry.
func TestTortureTransfersOnShim(t *testing.T) {
	t.Run("seeds", func(t *testing.T) {
		for _, seed := range shimTortureSeeds() {
			t.Run(fmt.Sprint(seed), func(t *testing.T) {
				t.Parallel()
				tortureTransfers(t, openShim(t), shimFaults(seed))
				if t.Failed() {
					t.Log(shimReplay("TestTortureTransfersOnShim", seed))
				}
			})
		}
	})
}
