// Command counter is idemkv's demonstration: many goroutines increment a
// counter through injected commit_unknown_result faults, once with
// FoundationDB's stock retry loop and once exactly-once, side by side on the
// embedded engine. The stock loop's counter overshoots by its duplicates;
// the exactly-once counter equals the number of increments acknowledged.
//
//	go run ./examples/counter [-workers 8] [-calls 250] [-faults 0.05] [-seed 1] [-dir DIR|-mem]
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/embedded"
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

func run(ctx context.Context, w io.Writer, c config) error {
	switch {
	case c.workers < 1 || c.calls < 1:
		return fmt.Errorf("-workers and -calls must be at least 1 (got %d and %d)", c.workers, c.calls)
	case c.faults < 0 || c.faults > 1:
		return fmt.Errorf("-faults must be a probability from 0 to 1 (got %v)", c.faults)
	}
	open, where, cleanup, err := opener(c)
	if err != nil {
		return err
	}
	defer cleanup()

	fmt.Fprintf(w, "idemkv counter: %d goroutines × %d increments, %.1f%% of commits fail with commit_unknown_result (seed %d)\n",
		c.workers, c.calls, 100*c.faults, c.seed)
	fmt.Fprintf(w, "engine: embedded, %s\n\n", where)

	stock, err := tally(ctx, open, "stock", c, func(db kv.Database, fn func(kv.Transaction) (struct{}, error)) error {
		_, err := txn.StockTransact(ctx, db, fn)
		return err
	})
	if err != nil {
		return err
	}
	exact, err := tally(ctx, open, "exactly-once", c, func(db kv.Database, fn func(kv.Transaction) (struct{}, error)) error {
		_, err := txn.Transact(ctx, db, fn, &txn.Options{MaxRetryDelay: 10 * time.Millisecond})
		return err
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

// tally runs workers × calls increments of one counter through a faulty
// wrapper and counts what was acknowledged and what the counter says.
func tally(ctx context.Context, open func(name string) (kv.Database, error), name string, c config,
	call func(kv.Database, func(kv.Transaction) (struct{}, error)) error) (result, error) {
	inner, err := open(name)
	if err != nil {
		return result{}, err
	}
	defer inner.Close()
	db := faulty.Wrap(inner, faulty.Config{
		Seed:                    c.seed,
		UnknownResultApplied:    c.faults / 2,
		UnknownResultNotApplied: c.faults / 4,
		UnknownResultLate:       c.faults / 4,
	})
	key := []byte("counter")
	one := binary.LittleEndian.AppendUint64(nil, 1)
	// A directory given with -dir may hold an earlier run's counter.
	before, err := readCounter(ctx, inner, key)
	if err != nil {
		return result{}, err
	}
	inc := func(tr kv.Transaction) (struct{}, error) {
		tr.Atomic(kv.Add, key, one)
		return struct{}{}, nil
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
				if err := call(db, inc); err != nil {
					once.Do(func() { firstErr = fmt.Errorf("%s: %w", name, err) })
					continue
				}
				acked.Add(1)
			}
		}()
	}
	wg.Wait()
	db.Wait() // late commits land (or fail) before counting
	if firstErr != nil {
		return result{}, firstErr
	}
	after, err := readCounter(ctx, inner, key)
	return result{acked: acked.Load(), counter: after - before, stats: db.Stats()}, err
}

func readCounter(ctx context.Context, db kv.Database, key []byte) (int64, error) {
	return txn.StockTransact(ctx, db, func(tr kv.Transaction) (int64, error) {
		b, err := tr.Get(key).Get()
		if err != nil || b == nil {
			return 0, err
		}
		return int64(binary.LittleEndian.Uint64(b)), nil
	})
}

// opener returns how to open each mode's database: in memory, or durable
// in a directory of its own under dir (a temporary one by default).
func opener(c config) (open func(name string) (kv.Database, error), where string, cleanup func(), err error) {
	if c.mem {
		return func(string) (kv.Database, error) { return embedded.OpenMem(nil) }, "in memory", func() {}, nil
	}
	dir, cleanup := c.dir, func() {}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "idemkv-counter-"); err != nil {
			return nil, "", nil, err
		}
		cleanup = func() { os.RemoveAll(dir) }
	}
	open = func(name string) (kv.Database, error) {
		path := dir + string(os.PathSeparator) + name
		db, err := embedded.Open(path, nil)
		if err != nil {
			return nil, fmt.Errorf("opening %s: %w", path, err)
		}
		return db, nil
	}
	return open, "durable in " + dir, cleanup, nil
}
