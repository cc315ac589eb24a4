package idemkv_test

import (
	"bytes"
	"context"
	"flag"
	"sync"
	"testing"
	"time"

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

// clock is a manual clock for the embedded engine: versions advance only
// when a test steps it (and by one per commit), so leases and retention
// expire exactly when the test says.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_700_000_000, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// openClocked opens an in-memory store on a manual clock, without the
// background janitor (tests sweep with Store.Sweep).
func openClocked(t testing.TB, opts *idemkv.Options) (*idemkv.Store, *clock) {
	t.Helper()
	c := newClock()
	var o idemkv.Options
	if opts != nil {
		o = *opts
	}
	o.Embedded = &embedded.Options{Clock: c.Now}
	o.NoJanitor = true
	s, err := idemkv.Open(context.Background(), "mem:", &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, c
}

// dump returns every key under the store's prefix (default), for checks
// that nothing was written.
func dump(t testing.TB, s *idemkv.Store, family string) []kv.KeyValue {
	t.Helper()
	r, err := kv.PrefixRange(append(bytes.Clone(idemkv.DefaultPrefix), family...))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := s.Database().CreateTransaction(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	kvs, err := tr.GetRange(r, kv.RangeOptions{}).Get()
	if err != nil {
		t.Fatal(err)
	}
	return kvs
}
