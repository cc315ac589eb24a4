// Command counter is idemkv's demonstration: many goroutines increment a
// counter through injected commit_unknown_result faults, once with
// FoundationDB's stock retry loop and once with idemkv's exactly-once
// Counter.Add, side by side on the embedded engine. The stock loop's
// counter overshoots by its duplicates; the exactly-once counter equals the
// number of increments acknowledged.
//
//	go run ./examples/counter [-workers 8] [-calls 250] [-faults 0.05] [-seed 1] [-dir DIR|-mem]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/faulty"
	"github.com/idemkv/idemkv/txn"
)

type config struct {
	workers, calls int
	faults         float64
	seed           uint64
	dir            string
	mem            bool
}

func main() {
	var c config
	flag.IntVar(&c.workers, "workers", 8, "concurrent goroutines")
	flag.IntVar(&c.calls, "calls", 250, "increments per goroutine")
	flag.Float64Var(&c.faults, "faults", 0.05, "probability that a commit fails with commit_unknown_result (0 to 1)")
	flag.Uint64Var(&c.seed, "seed", 1, "fault schedule seed")
	flag.StringVar(&c.dir, "dir", "", "data directory for the durable engine (default: a temporary directory, removed afterwards)")
	flag.BoolVar(&c.mem, "mem", false, "use the in-memory engine instead of a directory")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, c); err != nil {
		fmt.Fprintln(os.Stderr, "counter:", err)
		os.Exit(1)
	}
}

// result is one mode's tally.
type result struct {
	acked, counter int64
	stats          faulty.Stats
}

// increment is one mode's way of adding 1 to the counter on store s.
type increment func(ctx context.Context, s *idemkv.Store, c *idemkv.Counter) error

func run(ctx context.Context, w io.Writer, c config) error {
	switch {
	case c.workers < 1 || c.calls < 1:
		return fmt.Errorf("-workers and -calls must be at least 1 (got %d and %d)", c.workers, c.calls)
	case c.faults < 0 || c.faults > 1:
		return fmt.Errorf("-faults must be a probability from 0 to 1 (got %v)", c.faults)
	}
	uri, where, cleanup, err := location(c)
	if err != nil {
		return err
	}
	defer cleanup()

	fmt.Fprintf(w, "idemkv counter: %d goroutines × %d increments, %.1f%% of commits fail with commit_unknown_result (seed %d)\n",
		c.workers, c.calls, 100*c.faults, c.seed)
	fmt.Fprintf(w, "engine: embedded, %s\n\n", where)

	// The stock side runs FoundationDB's own retry loop on the store's
	// database: Counter.AddTx inside txn.StockTransact, which retries a
	// commit_unknown_result by adding again.
	stock, err := tally(ctx, uri("stock"), "stock", c, func(ctx context.Context, s *idemkv.Store, ctr *idemkv.Counter) error {
		_, err := txn.StockTransact(ctx, s.Database(), func(tr kv.Transaction) (struct{}, error) {
			ctr.AddTx(tr, 1)
			return struct{}{}, nil
		})
		return err
	})
	if err != nil {
		return err
	}
	exact, err := tally(ctx, uri("exactly-once"), "exactly-once", c, func(ctx context.Context, _ *idemkv.Store, ctr *idemkv.Counter) error {
		return ctr.Add(ctx, 1)
	})
	if err != nil {
		return err
	}

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "mode\tincrements\tacknowledged\tcounter\tduplicates\tapplied-but-unknown commits\t")
	for _, r := range []struct {
		name string
		r    result
	}{{"stock retry loop", stock}, {"idemkv exactly-once", exact}} {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t\n", r.name, c.workers*c.calls, r.r.acked, r.r.counter,
			r.r.counter-r.r.acked, r.r.stats.AppliedButFailed())
	}
	tw.Flush()
	if exact.counter != exact.acked {
		return fmt.Errorf("exactly-once counter %d != %d acknowledged increments", exact.counter, exact.acked)
	}
	fmt.Fprintf(w, "\nexactly-once: counter == acknowledged increments; the stock loop applied %d increments twice.\n", stock.counter-stock.acked)
	return nil
}

// tally opens the store at uri with a fault injector around its database,
// runs workers × calls increments of one counter, and counts what was
// acknowledged and what the counter says.
func tally(ctx context.Context, uri, name string, c config, inc increment) (result, error) {
	var f *faulty.DB
	s, err := idemkv.Open(ctx, uri, &idemkv.Options{
		// Short backoff: the faults are injected, not a loaded cluster.
		MaxRetryDelay: 10 * time.Millisecond,
		WrapDatabase: func(db kv.Database) kv.Database {
			f = faulty.Wrap(db, faulty.Config{
				Seed:                    c.seed,
				UnknownResultApplied:    c.faults / 2,
				UnknownResultNotApplied: c.faults / 4,
				UnknownResultLate:       c.faults / 4,
			})
			return f
		},
	})
	if err != nil {
		return result{}, fmt.Errorf("%s: %w", name, err)
	}
	defer s.Close()
	ctr := s.Counter("counter")
	// A directory given with -dir may hold an earlier run's counter.
	before, err := ctr.Get(ctx)
	if err != nil {
		return result{}, err
	}
	var acked atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range c.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range c.calls {
				if err := inc(ctx, s, ctr); err != nil {
					once.Do(func() { firstErr = fmt.Errorf("%s: %w", name, err) })
					continue
				}
				acked.Add(1)
			}
		}()
	}
	wg.Wait()
	f.Wait() // late commits land (or fail) before counting
	if firstErr != nil {
		return result{}, firstErr
	}
	after, err := ctr.Get(ctx)
	return result{acked: acked.Load(), counter: after - before, stats: f.Stats()}, err
}

// location returns each mode's store URI: in memory, or durable in a
// directory of its own under dir (a temporary one by default).
func location(c config) (uri func(name string) string, where string, cleanup func(), err error) {
	if c.mem {
		return func(string) string { return "mem:" }, "in memory", func() {}, nil
	}
	dir, cleanup := c.dir, func() {}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "idemkv-counter-"); err != nil {
			return nil, "", nil, err
		}
		cleanup = func() { os.RemoveAll(dir) }
	}
	return func(name string) string { return "file:" + filepath.Join(dir, name) }, "durable in " + dir, cleanup, nil
}
