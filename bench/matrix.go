package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/idemkv/idemkv/cleanup"
	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/embedded"
	"github.com/idemkv/idemkv/kv/faulty"
	"github.com/idemkv/idemkv/txn"
)

// config is what one run measures: the matrix backends × fault rates ×
// workloads, each cell running both modes.
type config struct {
	workloads   []workload
	backends    []string  // "mem", "disk" (a temporary directory) or a directory
	faults      []float64 // commit_unknown_result probabilities, 0 to 1
	duration    time.Duration
	concurrency int
	seed        uint64
	runs        int // times the whole matrix is run; 0 means 1
	// progress, if non-nil, is called every progressEvery while a cell runs.
	progress func(string)
}

const progressEvery = 500 * time.Millisecond

// mode is one way of running a call.
type mode struct {
	name string
	run  func(ctx context.Context, db kv.Database, fn call) error
}

var modes = [2]mode{
	{"stock", func(ctx context.Context, db kv.Database, fn call) error {
		_, err := txn.StockTransact(ctx, db, fn)
		return err
	}},
	{"exactly-once", func(ctx context.Context, db kv.Database, fn call) error {
		_, err := txn.Transact(ctx, db, fn, nil)
		return err
	}},
}

// modeResult is what one mode did in one cell.
type modeResult struct {
	Mode             string
	Calls, Errors    int64
	FirstError       string
	Elapsed          time.Duration // time spent running this mode
	Throughput       float64       // acknowledged calls per second
	P50, P99, P999   time.Duration
	Attempts, Keys   float64 // per call
	Bytes            float64 // per call
	Injected         int64   // commit_unknown_result faults injected
	AppliedButFailed int64   // commits applied while reported failed
	Applied          int64   // calls whose effects are in the database
	Duplicates       int64   // Applied − Calls
	hist             histogram
}

// cell is one point of the matrix.
type cell struct {
	Backend, Workload string
	Fault             float64
	Run               int // 1-based: which run of the matrix
	Modes             [2]modeResult
	// MarkersAlive is the number of exactly-once markers after the run;
	// MarkersAfterSweep after one janitor Step with the clock moved past the
	// minimum age; SweepTime that Step's duration; CatchUpTime the duration
	// of the commit before it, the first after the clock's move.
	MarkersAlive, MarkersAfterSweep int64
	SweepTime, CatchUpTime          time.Duration
}

// ratio is exactly-once throughput over stock's.
func (c *cell) ratio() float64 { return safeDiv(c.Modes[1].Throughput, c.Modes[0].Throughput) }

// p99Ratio is exactly-once p99 over stock's.
func (c *cell) p99Ratio() float64 {
	return safeDiv(float64(c.Modes[1].P99), float64(c.Modes[0].P99))
}

func safeDiv(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// runMatrix runs every cell in order, the whole matrix cfg.runs times, and
// returns their results. Repeating the matrix, rather than each cell back to
// back, spreads the machine's changing background over every cell's runs.
// Every run uses the same seeds, so the spread is the machine's, not the
// schedules'.
func runMatrix(ctx context.Context, cfg config) ([]cell, error) {
	var cells []cell
	runs := max(cfg.runs, 1)
	perRun := len(cfg.backends) * len(cfg.faults) * len(cfg.workloads)
	total := runs * perRun
	start := time.Now()
	done := 0
	for run := 1; run <= runs; run++ {
		i := 0
		for _, b := range cfg.backends {
			for _, f := range cfg.faults {
				for _, w := range cfg.workloads {
					i++
					done++
					label := fmt.Sprintf("[%d/%d] %s %s fault rate %g%%", i, perRun, b, w.name, f*100)
					if runs > 1 {
						label = fmt.Sprintf("[run %d/%d, cell %d/%d] %s %s fault rate %g%%", run, runs, i, perRun, b, w.name, f*100)
					}
					cellCfg := cfg
					if cfg.progress != nil {
						cellStart, left := time.Now(), total-done
						cellCfg.progress = func(s string) {
							cfg.progress(s + "  " + timeLeft(start, cellStart, time.Now(), left, cfg.duration))
						}
					}
					c, err := runCell(ctx, cellCfg, b, f, w, uint64(i), label)
					if err != nil {
						return cells, fmt.Errorf("bench: %s: %w", label, err)
					}
					c.Run = run
					cells = append(cells, c)
				}
			}
		}
	}
	return cells, nil
}

// timeLeft is the progress line's clock: the time since the run started
// and about how much remains, counting each cell as its two modes'
// durations (setup and the janitor's sweep come on top).
func timeLeft(start, cellStart, now time.Time, cellsAfter int, d time.Duration) string {
	rest := max(2*d-now.Sub(cellStart), 0) + time.Duration(cellsAfter)*2*d
	return fmt.Sprintf("%s elapsed, ~%s left", now.Sub(start).Round(time.Second), rest.Round(time.Second))
}

// engine is an opened backend with a clock the runner can move forward, so
// that the janitor's sweep can be measured on markers past their minimum
// age without waiting for it.
type engine struct {
	db   *embedded.DB
	dir  string // removed on close, if set
	skew atomic.Int64
}

func openEngine(backend string, cellNo uint64) (*engine, error) {
	e := &engine{}
	opts := &embedded.Options{Clock: func() time.Time { return time.Now().Add(time.Duration(e.skew.Load())) }}
	var err error
	switch backend {
	case "mem":
		e.db, err = embedded.OpenMem(opts)
		return e, err
	case "disk":
		e.dir, err = os.MkdirTemp("", "idemkv-bench-")
	default:
		if err = os.MkdirAll(backend, 0o755); err == nil {
			e.dir, err = os.MkdirTemp(backend, fmt.Sprintf("cell%02d-", cellNo))
		}
	}
	if err != nil {
		return nil, err
	}
	if e.db, err = embedded.Open(e.dir, opts); err != nil {
		os.RemoveAll(e.dir)
		return nil, err
	}
	return e, nil
}

func (e *engine) close() error {
	err := e.db.Close()
	if e.dir != "" {
		err = errors.Join(err, os.RemoveAll(e.dir))
	}
	return err
}

// sliceLen is how long one mode runs before the other takes over: short, so
// that both modes see the same background (other processes, compactions,
// the engine's growing state), and in ABBA order so that a trend favors
// neither.
func sliceLen(d time.Duration) time.Duration {
	return min(250*time.Millisecond, max(d/8, 10*time.Millisecond))
}

func runCell(ctx context.Context, cfg config, backend string, fault float64, w workload, cellNo uint64, label string) (c cell, err error) {
	c = cell{Backend: backend, Workload: w.name, Fault: fault}
	e, err := openEngine(backend, cellNo)
	if err != nil {
		return c, err
	}
	defer func() { err = errors.Join(err, e.close()) }()

	var dbs [2]*faulty.DB
	var counted [2]*countingDB
	var spaces [2][]byte
	for m := range modes {
		// Each mode has its own fault schedule and counters over the one
		// engine; a third of the faults each applied, not applied and late.
		p := fault / 3
		dbs[m] = faulty.Wrap(e.db, faulty.Config{
			Seed:                    cfg.seed ^ cellNo<<8 ^ uint64(m),
			UnknownResultApplied:    p,
			UnknownResultNotApplied: p,
			UnknownResultLate:       p,
		})
		counted[m] = &countingDB{Database: dbs[m]}
		spaces[m] = fmt.Appendf(nil, "bench/%s/", modes[m].name)
		c.Modes[m].Mode = modes[m].name
	}

	execs, closeStore, err := executors(ctx, w, counted, spaces)
	if err != nil {
		return c, err
	}
	defer func() { err = errors.Join(err, closeStore()) }()

	var live [2]atomic.Int64 // calls so far, for the progress line
	stopProgress := startProgress(cfg.progress, func() string {
		return fmt.Sprintf("%s  stock %d  exactly-once %d calls", label, live[0].Load(), live[1].Load())
	})
	defer stopProgress()

	rng := rand.New(rand.NewPCG(cfg.seed, cellNo))
	slice := sliceLen(cfg.duration)
	for round := 0; c.Modes[0].Elapsed < cfg.duration || c.Modes[1].Elapsed < cfg.duration; round++ {
		order := [2]int{0, 1}
		if round%2 == 1 {
			order = [2]int{1, 0}
		}
		for _, m := range order {
			r := &c.Modes[m]
			if r.Elapsed >= cfg.duration {
				continue
			}
			d := min(slice, cfg.duration-r.Elapsed)
			if err := runSlice(ctx, cfg.concurrency, d, execs[m], rng.Uint64(), r, &live[m]); err != nil {
				return c, err
			}
		}
	}

	if err := closeStore(); err != nil {
		return c, err
	}
	for m := range modes {
		dbs[m].Wait() // late commits land (or fail) before counting
		r := &c.Modes[m]
		r.Elapsed = max(r.Elapsed, time.Nanosecond)
		r.Throughput = float64(r.Calls) / r.Elapsed.Seconds()
		r.P50, r.P99, r.P999 = r.hist.quantile(0.50), r.hist.quantile(0.99), r.hist.quantile(0.999)
		n := float64(max(r.Calls+r.Errors, 1))
		r.Attempts = float64(counted[m].commits.Load()) / n
		r.Keys = float64(counted[m].keys.Load()) / n
		r.Bytes = float64(counted[m].bytes.Load()) / n
		st := dbs[m].Stats()
		for _, k := range []faulty.Kind{faulty.UnknownResultApplied, faulty.UnknownResultNotApplied, faulty.UnknownResultLate} {
			r.Injected += st.ByKind[k].Injected
		}
		r.AppliedButFailed = st.AppliedButFailed()
		if r.Applied, err = w.applied(ctx, e.db, spaces[m]); err != nil {
			return c, err
		}
		r.Duplicates = r.Applied - r.Calls
		if err := dbs[m].Close(); err != nil {
			return c, err
		}
	}
	return c, sweep(ctx, e, &c)
}

// execFunc makes worker w's next call, with rng for any choice it needs.
type execFunc func(ctx context.Context, w int, rng *rand.Rand) error

// executors returns each mode's way of making one call of w on dbs, and a
// function that closes what they opened (idempotent).
//
// A transaction workload runs its function through each mode's loop. The
// keyed workload compares a raw request, its effect (a counter add) run by
// the stock loop with no idempotency key, against the same request under a
// unique key through idemkv.Do, whose function makes the add with
// txn.Transact: a claim, the add and a completion, three exactly-once
// transactions per call. The keyed-tx workload runs the add under a unique
// key through idemkv.TransactKey instead: the add and the key's record in
// one exactly-once transaction. The Store is opened over the cell's engine, via
// Options.WrapDatabase (the "mem:" engine Open makes for the URI stays
// idle).
func executors(ctx context.Context, w workload, dbs [2]*countingDB, spaces [2][]byte) ([2]execFunc, func() error, error) {
	var execs [2]execFunc
	if w.keyed == "" {
		for m := range modes {
			execs[m] = func(ctx context.Context, i int, rng *rand.Rand) error {
				return modes[m].run(ctx, dbs[m], w.next(spaces[m], i, rng))
			}
		}
		return execs, func() error { return nil }, nil
	}
	store, err := idemkv.Open(ctx, "mem:", &idemkv.Options{
		NoJanitor:    true, // the cell's janitor is timed separately
		WrapDatabase: func(kv.Database) kv.Database { return dbs[1] },
	})
	if err != nil {
		return execs, nil, err
	}
	var once sync.Once
	var closeErr error
	closeStore := func() error {
		once.Do(func() { closeErr = store.Close() })
		return closeErr
	}
	execs[0] = func(ctx context.Context, i int, rng *rand.Rand) error {
		return modes[0].run(ctx, dbs[0], w.next(spaces[0], i, rng))
	}
	var seq atomic.Int64
	payload := []byte(`{"amount":1}`)
	if w.keyed == "tx" {
		execs[1] = func(ctx context.Context, i int, rng *rand.Rand) error {
			fn := w.next(spaces[1], i, rng)
			_, err := idemkv.TransactKey(ctx, store, fmt.Sprintf("req-%d", seq.Add(1)), payload, fn, nil)
			return err
		}
		return execs, closeStore, nil
	}
	execs[1] = func(ctx context.Context, i int, rng *rand.Rand) error {
		fn := w.next(spaces[1], i, rng)
		key := fmt.Sprintf("req-%d", seq.Add(1))
		_, err := idemkv.Do(ctx, store, key, payload, func(ctx context.Context) (int, error) {
			_, err := txn.Transact(ctx, dbs[1], fn, nil)
			return 1, err
		}, nil)
		return err
	}
	return execs, closeStore, nil
}

// runSlice runs exec with n workers for d and adds what they did to r.
func runSlice(ctx context.Context, n int, d time.Duration, exec execFunc, seed uint64, r *modeResult, live *atomic.Int64) error {
	type workerResult struct {
		hist          histogram
		calls, errors int64
		firstErr      error
	}
	results := make([]workerResult, n)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := &results[i]
			rng := rand.New(rand.NewPCG(seed, uint64(i)))
			for time.Now().Before(deadline) {
				t0 := time.Now()
				err := exec(ctx, i, rng)
				if err != nil {
					res.errors++
					if res.firstErr == nil {
						res.firstErr = err
					}
					if ctx.Err() != nil {
						return
					}
					continue
				}
				res.hist.record(time.Since(t0))
				res.calls++
				live.Add(1)
			}
		}()
	}
	wg.Wait()
	r.Elapsed += time.Since(start)
	for i := range results {
		res := &results[i]
		r.hist.merge(&res.hist)
		r.Calls += res.calls
		r.Errors += res.errors
		if res.firstErr != nil && r.FirstError == "" {
			r.FirstError = res.firstErr.Error()
		}
	}
	return ctx.Err()
}

// sweep counts the markers left, moves the engine's clock past the
// janitor's minimum age, times one Step, and counts again.
func sweep(ctx context.Context, e *engine, c *cell) error {
	r, err := kv.PrefixRange(txn.DefaultPrefix)
	if err != nil {
		return err
	}
	count := func() (int64, error) {
		var n int64
		err := scan(ctx, e.db, r, func(kv kv.KeyValue) error {
			if _, _, err := txn.ParseSlotKey(txn.DefaultPrefix, kv.Key); err == nil {
				n++ // a marker slot
			} else if _, err := txn.ParseMarkerKey(txn.DefaultPrefix, kv.Key); err == nil {
				n++ // a legacy marker: not the watermark, not a shard's sentinel
			}
			return nil
		})
		return n, err
	}
	if c.MarkersAlive, err = count(); err != nil {
		return err
	}
	j, err := cleanup.New(e.db, &cleanup.Options{MinAge: cleanup.MinMinAge})
	if err != nil {
		return err
	}
	defer j.Close()
	e.skew.Add(int64(cleanup.MinMinAge + time.Second))
	// The first commit after the clock's jump pays for the engine's
	// catching up: the five seconds of conflict history and snapshots it
	// held age out at once. A database in use ages them a little at every
	// commit; the jump is the bench's, so that commit is timed on its own
	// and the sweep after it.
	start := time.Now()
	if _, err := txn.StockTransact(ctx, e.db, func(tr kv.Transaction) (struct{}, error) {
		tr.Set([]byte("bench/tick"), nil)
		return struct{}{}, nil
	}); err != nil {
		return err
	}
	c.CatchUpTime = time.Since(start)
	res, err := j.Step(ctx)
	if err != nil {
		return err
	}
	c.SweepTime = res.Duration
	c.MarkersAfterSweep, err = count()
	return err
}

// startProgress calls report with line() every progressEvery until the
// returned stop is called; a nil report does nothing.
func startProgress(report func(string), line func() string) (stop func()) {
	if report == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				report(line())
				return
			case <-t.C:
				report(line())
			}
		}
	}()
	return func() { close(done); <-finished }
}
