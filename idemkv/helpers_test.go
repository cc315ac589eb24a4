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
			t.Logf("seed %d; replay: go test ./idemkv/ -count=1 -run '^%s$' -seed %d", s, t.Name(), s)
		}
	})
	return s
}

// openClocked opens an in-memory store on a manual clock, without the
// background janitor (tests sweep with Store.Sweep).
func openClocked(t testing.TB, opts *idemkv.Options) (*idemkv.Store, *embedded.ManualClock) {
	t.Helper()
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
