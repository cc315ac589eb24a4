package idemkv_test

import (
	"bytes"
	"context"
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/embedded"
)

// seedFlag replays one randomized run: go test ./idemkv/ -run NAME -seed N.
var seedFlag = flag.Uint64("seed", 0, "seed for randomized tests (0: derive from the time)")

func seed(t testing.TB) uint64 {
	s := *seedFlag
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	t.Cleanup(func() {
		if t.Failed() {
			// The shim run is built with its tags and the fdb_c headers
			// (the Makefile's race-fdb target): a replay without them runs
			// the test on the embedded engine instead.
			how := "go test"
			if onShim() {
				how = `CGO_CFLAGS="-I$PWD/kv/fdbc/include" go test -tags fdb,fdbc`
			}
			t.Logf("seed %d; replay: %s ./idemkv/ -count=1 -run '^%s$' -seed %d", s, how, t.Name(), s)
		}
	})
	return s
}

// shimOpen, when set, opens the store of every test that opens it through
// openMem or openUnstepped: shim_test.go (build tags fdb and fdbc) sets it
// to open an "fdb:" store served by kv/fdbc, the in-process fdb_c shim, so
// the same tests run unchanged through FoundationDB's Go bindings. Tests
// that need the embedded engine itself (its manual clock, a directory
// reopened) skip in that run, saying why; they run in the untagged one.
var shimOpen func(t testing.TB, opts *idemkv.Options) *idemkv.Store

// onShim reports whether this is the shim run (build tags fdb and fdbc).
func onShim() bool { return shimOpen != nil }

// needsEngine skips t in the shim run: it needs the embedded engine (why
// says what of it), and runs in the untagged run.
func needsEngine(t testing.TB, why string) {
	t.Helper()
	if onShim() {
		t.Skip("needs the embedded engine (" + why + "); runs without the fdb,fdbc tags")
	}
}

// openMem opens idemkv.Open("mem:", opts), or in the shim run an "fdb:"
// store on a fresh in-memory store of the shim with the same options.
func openMem(t testing.TB, opts *idemkv.Options) *idemkv.Store {
	t.Helper()
	if onShim() {
		return shimOpen(t, opts)
	}
	s, err := idemkv.Open(context.Background(), "mem:", opts)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// openUnstepped is openClocked for tests that never step the clock, without
// the background janitor: in the shim run, an "fdb:" store instead.
func openUnstepped(t testing.TB, opts *idemkv.Options) *idemkv.Store {
	t.Helper()
	if onShim() {
		var o idemkv.Options
		if opts != nil {
			o = *opts
		}
		o.NoJanitor = true
		return shimOpen(t, &o)
	}
	s, _ := openClocked(t, opts)
	return s
}

// openClocked opens an in-memory store on a manual clock, without the
// background janitor (tests sweep with Store.Sweep).
func openClocked(t testing.TB, opts *idemkv.Options) (*idemkv.Store, *embedded.ManualClock) {
	t.Helper()
	needsEngine(t, "a manual clock")
	// Versions advance only when a test steps the clock (and by one per
	// commit), so leases and retention expire exactly when the test says.
	c := embedded.NewManualClock(time.Unix(1_700_000_000, 0))
	var o idemkv.Options
	if opts != nil {
		o = *opts
	}
	o.Embedded = &embedded.Options{Clock: c.Now}
	o.NoJanitor = true
	s, err := idemkv.Open(context.Background(), "mem:", &o)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s, c
}

// dump returns every key under the store's prefix (default), for checks
// that nothing was written.
func dump(t testing.TB, s *idemkv.Store, family string) []kv.KeyValue {
	t.Helper()
	r, err := kv.PrefixRange(append(bytes.Clone(idemkv.DefaultPrefix), family...))
	require.NoError(t, err)
	tr, err := s.Database().CreateTransaction(context.Background())
	require.NoError(t, err)
	kvs, err := tr.GetRange(r, kv.RangeOptions{}).Get()
	require.NoError(t, err)
	return kvs
}

// warmSlot makes one call on s, so that its marker slot exists: the first
// call of a store creates it in a commit of its own (a refresh, see txn's
// doc), which tests that count a call's commits or writes leave out.
func warmSlot(t testing.TB, s *idemkv.Store) {
	t.Helper()
	_, err := idemkv.Transact(context.Background(), s, func(kv.Transaction) (struct{}, error) { return struct{}{}, nil })
	require.NoError(t, err)
}
