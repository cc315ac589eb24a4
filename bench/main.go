package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := mainErr(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// mainErr is main with its arguments and outputs as parameters, for tests.
func mainErr(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		workloadFlag = fs.String("workload", "all", "comma-separated workloads: "+workloadNames()+", or all")
		duration     = fs.Duration("duration", 5*time.Second, "run time of each mode in each cell")
		concurrency  = fs.Int("concurrency", 16, "concurrent calls per mode")
		faultsFlag   = fs.String("faults", "0,1,5", "comma-separated commit_unknown_result rates in percent")
		backendFlag  = fs.String("backend", "mem,disk", "comma-separated backends: mem (in memory), disk (durable, in a temporary directory), or a directory to hold durable engines (a fresh subdirectory per cell, removed after it)")
		out          = fs.String("out", "bench-results", "directory for results.md, results.csv, throughput.png, p99.png and ratio.png")
		seed         = fs.Uint64("seed", 1, "seed of the fault schedules and key choices")
		runs         = fs.Int("runs", 1, "times the whole matrix is run: ratios are then reported as the median and the min–max of the runs")
		quiet        = fs.Bool("quiet", false, "no progress line on stderr (there is none anyway when stderr is not a terminal)")
	)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: go run ./bench [flags]\n\nRuns the stock retry loop and exactly-once txn.Transact side by side and writes\nthe comparison to -out.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench: unexpected argument %q; every setting is a flag (see -h)", fs.Arg(0))
	}
	cfg := config{duration: *duration, concurrency: *concurrency, seed: *seed, runs: *runs}
	var err error
	if cfg.workloads, err = parseWorkloads(*workloadFlag); err != nil {
		return err
	}
	if cfg.faults, err = parseFaults(*faultsFlag); err != nil {
		return err
	}
	if cfg.backends, err = parseList("-backend", *backendFlag); err != nil {
		return err
	}
	switch {
	case cfg.duration <= 0:
		return fmt.Errorf("bench: -duration %v must be positive", cfg.duration)
	case cfg.concurrency < 1 || cfg.concurrency > 10_000:
		return fmt.Errorf("bench: -concurrency %d must be 1 to 10000", cfg.concurrency)
	case cfg.runs < 1 || cfg.runs > 100:
		return fmt.Errorf("bench: -runs %d must be 1 to 100", cfg.runs)
	}
	if !*quiet && isTerminal(stderr) {
		cfg.progress = func(s string) { fmt.Fprintf(stderr, "\r\033[K%s", s) }
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("bench: -out: %w", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()
	cells, err := runMatrix(ctx, cfg)
	if cfg.progress != nil {
		// End the progress line before anything else is printed, on
		// stdout (the summary) or stderr (an error).
		fmt.Fprintln(stderr)
	}
	if err != nil {
		return err
	}
	info := runInfo{
		Args:        append([]string{"go", "run", "./bench"}, args...),
		Concurrency: cfg.concurrency,
		Duration:    cfg.duration,
		Seed:        cfg.seed,
		Started:     start.UTC(),
		Took:        time.Since(start).Round(time.Second),
	}
	if err := writeAll(*out, info, cells); err != nil {
		return err
	}
	fmt.Fprint(stdout, summary(cells))
	fmt.Fprintf(stdout, "wrote %s/{results.md,results.csv,throughput.png,p99.png,ratio.png}\n", *out)
	return nil
}

func workloadNames() string {
	var names []string
	for _, w := range workloads {
		names = append(names, w.name)
	}
	return strings.Join(names, ", ")
}

func parseList(flagName, s string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("bench: %s is empty", flagName)
	}
	return out, nil
}

func parseWorkloads(s string) ([]workload, error) {
	if s == "all" {
		return workloads, nil
	}
	names, err := parseList("-workload", s)
	if err != nil {
		return nil, err
	}
	var out []workload
	for _, n := range names {
		w, ok := workloadNamed(n)
		if !ok {
			return nil, fmt.Errorf("bench: -workload %q is not one of %s, all", n, workloadNames())
		}
		out = append(out, w)
	}
	return out, nil
}

// parseFaults reads percentages ("0,1,5" or "0%,1%,5%") as probabilities.
func parseFaults(s string) ([]float64, error) {
	parts, err := parseList("-faults", s)
	if err != nil {
		return nil, err
	}
	var out []float64
	for _, p := range parts {
		v, err := strconv.ParseFloat(strings.TrimSuffix(p, "%"), 64)
		if err != nil || v < 0 || v > 100 {
			return nil, fmt.Errorf("bench: -faults %q: want a percentage from 0 to 100", p)
		}
		out = append(out, v/100)
	}
	return out, nil
}

// isTerminal reports whether w is a character device (a terminal), where a
// redrawn progress line makes sense.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
