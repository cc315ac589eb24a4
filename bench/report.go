package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// runInfo describes a run, for the reports' headers.
type runInfo struct {
	Args        []string
	Concurrency int
	Duration    time.Duration
	Seed        uint64
	Started     time.Time
	Took        time.Duration
}

// writeAll writes results.md, results.csv, throughput.png, p99.png and
// ratio.png to dir.
func writeAll(dir string, info runInfo, cells []cell) error {
	med := medianCells(cells)
	suffix := ""
	if n := runCount(cells); n > 1 {
		suffix = fmt.Sprintf(", median of %d runs", n)
	}
	files := []struct {
		name string
		data func() ([]byte, error)
	}{
		{"results.md", func() ([]byte, error) { return []byte(markdown(info, cells)), nil }},
		{"results.csv", func() ([]byte, error) { return csvBytes(cells) }},
		{"throughput.png", func() ([]byte, error) {
			return plotPNG("Throughput (calls/s, higher is better"+suffix+")", med, func(r *modeResult) float64 { return r.Throughput }, formatCount)
		}},
		{"p99.png", func() ([]byte, error) {
			return plotPNG("p99 latency (lower is better"+suffix+")", med, func(r *modeResult) float64 { return float64(r.P99) }, formatNanos)
		}},
		{"ratio.png", func() ([]byte, error) { return ratioPNG(cells) }},
	}
	var errs []error
	for _, f := range files {
		b, err := f.data()
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, f.name), b, 0o644)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("bench: writing %s: %w", f.name, err))
		}
	}
	return errors.Join(errs...)
}

func pct(f float64) string { return strconv.FormatFloat(f*100, 'g', -1, 64) + "%" }

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/1e6) }

// markdown renders the results as tables: the comparison per cell and mode,
// then the janitor's figures.
func markdown(info runInfo, cells []cell) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# idemkv bench: exactly-once against the stock retry loop\n\n")
	fmt.Fprintf(&b, "Command: `%s`  \n", strings.Join(info.Args, " "))
	runs := runCount(cells)
	fmt.Fprintf(&b, "Started %s, took %s; %d concurrent calls per mode, %v per mode per cell (alternating slices), seed %d",
		info.Started.Format(time.RFC3339), info.Took, info.Concurrency, info.Duration, info.Seed)
	if runs > 1 {
		fmt.Fprintf(&b, "; the whole matrix run %d times (every run with the same seeds), ratios given as the median and the min–max of the runs", runs)
	}
	b.WriteString(".\n\n")
	b.WriteString(summary(cells))
	b.WriteString("\n## Ratios\n\n")
	b.WriteString("Exactly-once over stock, per cell: the median over the runs, and the lowest and highest run (each run's ratio is measured within that run, the modes interleaved).\n\n")
	b.WriteString("| backend | workload | faults | runs | throughput ratio | min–max | p99 ratio | min–max |\n|---|---|--:|--:|--:|--:|--:|--:|\n")
	for _, g := range byCell(cells) {
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %.2f | %.2f–%.2f | %.2f | %.2f–%.2f |\n", g.Backend, g.Workload, pct(g.Fault), len(g.Runs),
			g.Ratio.Median, g.Ratio.Min, g.Ratio.Max, g.P99Ratio.Median, g.P99Ratio.Min, g.P99Ratio.Max)
	}
	b.WriteString("\n![exactly-once over stock](ratio.png)\n")
	runCol, runSep := "", ""
	if runs > 1 {
		runCol, runSep = " run |", "--:|"
	}
	b.WriteString("\n## Calls\n\n")
	b.WriteString("Faults are commit_unknown_result on that share of commits, a third each applied, not applied and late. " +
		"Ratios are exactly-once over stock. Attempts, keys and bytes are per acknowledged-or-failed call, every attempt counted. " +
		"Duplicates are calls applied minus calls acknowledged; the stock loop's should equal the applied-but-failed commits.\n\n")
	b.WriteString("| backend | workload | faults |" + runCol + " mode | calls/s | ratio | p50 ms | p99 ms | p99.9 ms | p99 ratio | attempts | keys | bytes | 1021 injected | applied but failed | duplicates | errors |\n")
	b.WriteString("|---|---|--:|" + runSep + "---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for i := range cells {
		c := &cells[i]
		for m := range c.Modes {
			r := &c.Modes[m]
			ratio, p99r := "", ""
			if m == 1 {
				ratio, p99r = fmt.Sprintf("%.2f", c.ratio()), fmt.Sprintf("%.2f", c.p99Ratio())
			}
			fmt.Fprintf(&b, "| %s | %s | %s |%s %s | %.0f | %s | %s | %s | %s | %s | %.3f | %.2f | %.1f | %d | %d | %d | %d |\n",
				c.Backend, c.Workload, pct(c.Fault), runColumn(runs, c.Run), r.Mode, r.Throughput, ratio, ms(r.P50), ms(r.P99), ms(r.P999), p99r,
				r.Attempts, r.Keys, r.Bytes, r.Injected, r.AppliedButFailed, r.Duplicates, r.Errors)
		}
	}
	var errs []string
	for _, c := range cells {
		for _, r := range c.Modes {
			if r.FirstError != "" {
				errs = append(errs, fmt.Sprintf("- %s %s %s %s: %d errors, first: %s", c.Backend, c.Workload, pct(c.Fault), r.Mode, r.Errors, r.FirstError))
			}
		}
	}
	if len(errs) > 0 {
		b.WriteString("\nErrors:\n\n" + strings.Join(errs, "\n") + "\n")
	}
	b.WriteString("\n## Markers and the janitor\n\n")
	b.WriteString("Markers alive after the cell: exactly-once's marker slots, one per call in flight at once (the concurrency), however many calls ran — plus any legacy markers; then the engine's clock is moved past the janitor's minimum age, " +
		"one commit is timed (catch-up: the first commit after the jump ages out the engine's five seconds of conflict history and snapshots at once, which a database in use does a little at every commit), " +
		"and one `cleanup.Janitor.Step` after it (its first Step also checks the prefix).\n\n")
	b.WriteString("| backend | workload | faults |" + runCol + " exactly-once calls | markers alive | catch-up ms | sweep ms | markers after sweep |\n|---|---|--:|" + runSep + "--:|--:|--:|--:|--:|\n")
	for _, c := range cells {
		fmt.Fprintf(&b, "| %s | %s | %s |%s %d | %d | %s | %s | %d |\n", c.Backend, c.Workload, pct(c.Fault), runColumn(runs, c.Run), c.Modes[1].Calls, c.MarkersAlive, ms(c.CatchUpTime), ms(c.SweepTime), c.MarkersAfterSweep)
	}
	b.WriteString("\n![throughput](throughput.png)\n\n![p99 latency](p99.png)\n")
	return b.String()
}

// Issue 14's targets at 0% faults, for blind adds and read-modify-write.
const (
	targetRatio    = 0.95 // exactly-once throughput over stock's, at least
	targetP99Ratio = 1.2  // exactly-once p99 over stock's, at most
)

// summary states the targets for blind adds and read-modify-write at 0%
// faults (medians over the runs, with their range when there are several)
// and the duplicate counts, as a Markdown list (also printed on stdout).
func summary(cells []cell) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Targets (0%% faults: throughput ratio ≥ %.2f, p99 ratio ≤ %.2f)\n\n", targetRatio, targetP99Ratio)
	any := false
	for _, g := range byCell(cells) {
		if (g.Workload != "blind-add" && g.Workload != "read-modify-write") || g.Fault != 0 {
			continue
		}
		any = true
		fmt.Fprintf(&b, "- %s %s: throughput ratio %s (%s), p99 ratio %s (%s)\n", g.Backend, g.Workload,
			g.Ratio.format(), verdict(g.Ratio.Median >= targetRatio), g.P99Ratio.format(), verdict(g.P99Ratio.Median <= targetP99Ratio))
	}
	if !any {
		b.WriteString("- not measured in this run (needs -workload blind-add or read-modify-write, and -faults 0)\n")
	}
	var stockDup, stockABF, eoDup int64
	for _, c := range cells {
		stockDup += c.Modes[0].Duplicates
		stockABF += c.Modes[0].AppliedButFailed
		eoDup += c.Modes[1].Duplicates
	}
	fmt.Fprintf(&b, "- duplicates over all cells: stock %d (applied-but-failed commits injected: %d), exactly-once %d\n", stockDup, stockABF, eoDup)
	return b.String()
}

// format gives a ratio's median, and its range over several runs.
func (s spread) format() string {
	if s.Min == s.Max {
		return fmt.Sprintf("%.2f", s.Median)
	}
	return fmt.Sprintf("%.2f (runs %.2f–%.2f)", s.Median, s.Min, s.Max)
}

// runColumn is the Markdown cell of the run column, present only with
// several runs.
func runColumn(runs, run int) string {
	if runs <= 1 {
		return ""
	}
	return fmt.Sprintf(" %d |", run)
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}

var csvHeader = []string{
	"backend", "workload", "fault_rate", "mode", "calls", "errors", "elapsed_s", "calls_per_s", "ratio_vs_stock",
	"p50_ns", "p99_ns", "p999_ns", "p99_ratio_vs_stock", "attempts_per_call", "keys_per_call", "bytes_per_call",
	"injected_1021", "applied_but_failed", "applied", "duplicates", "markers_alive", "sweep_ns", "markers_after_sweep", "run", "catch_up_ns",
}

func csvBytes(cells []cell) ([]byte, error) {
	var b strings.Builder
	w := csv.NewWriter(&b)
	if err := w.Write(csvHeader); err != nil {
		return nil, err
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	for ci := range cells {
		c := &cells[ci]
		for m := range c.Modes {
			r := &c.Modes[m]
			ratio, p99r := 1.0, 1.0
			if m == 1 {
				ratio, p99r = c.ratio(), c.p99Ratio()
			}
			rec := []string{
				c.Backend, c.Workload, f(c.Fault), r.Mode, i(r.Calls), i(r.Errors), f(r.Elapsed.Seconds()),
				f(r.Throughput), f(ratio), i(int64(r.P50)), i(int64(r.P99)), i(int64(r.P999)), f(p99r),
				f(r.Attempts), f(r.Keys), f(r.Bytes), i(r.Injected), i(r.AppliedButFailed), i(r.Applied),
				i(r.Duplicates), i(c.MarkersAlive), i(int64(c.SweepTime)), i(c.MarkersAfterSweep), strconv.Itoa(max(c.Run, 1)), i(int64(c.CatchUpTime)),
			}
			if err := w.Write(rec); err != nil {
				return nil, err
			}
		}
	}
	w.Flush()
	return []byte(b.String()), w.Error()
}
