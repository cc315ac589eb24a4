package main

import (
	"bytes"
	"encoding/csv"
	"flag"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var seedFlag = flag.Uint64("seed", 1, "seed of the tiny matrix's fault schedules (replay a failure with the seed it printed)")

// TestTinyMatrix runs every workload (keyed requests included) in memory and on disk at 0% and 5%
// commit_unknown_result for a few slices, then checks what the outputs must
// say whatever the machine's speed: every file is written and readable,
// exactly-once shows no duplicates and no errors, and the stock loop's
// duplicates equal the commits the injector applied while reporting them
// failed.
func TestTinyMatrix(t *testing.T) {
	seed := *seedFlag
	out := t.TempDir()
	args := []string{"-duration", "60ms", "-concurrency", "4", "-faults", "0,5", "-backend", "mem," + t.TempDir(),
		"-seed", strconv.FormatUint(seed, 10), "-out", out, "-quiet"}
	var stdout, stderr bytes.Buffer
	if err := mainErr(args, &stdout, &stderr); err != nil {
		t.Fatalf("seed %d: %v\nstderr: %s\nreplay: go test ./bench -run TestTinyMatrix -seed %d", seed, err, stderr.String(), seed)
	}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("seed %d: "+format, append([]any{seed}, args...)...)
		t.Logf("replay: go test ./bench -run TestTinyMatrix -seed %d", seed)
	}
	if !strings.Contains(stdout.String(), "duplicates over all cells") {
		fail("stdout lacks the summary:\n%s", stdout.String())
	}

	md, err := os.ReadFile(filepath.Join(out, "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| mem | blind-add | 0% | stock |", "| ten-key | 5% | exactly-once |", "## Markers and the janitor", "throughput.png",
		"## Ratios", "| mem | read-modify-write | 0% | 1 |", "ratio.png"} {
		if !bytes.Contains(md, []byte(want)) {
			fail("results.md lacks %q", want)
		}
	}
	for _, name := range []string{"throughput.png", "p99.png", "ratio.png"} {
		f, err := os.Open(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			fail("%s: %v", name, err)
		} else if b := img.Bounds(); b.Dx() < 400 || b.Dy() < 300 {
			fail("%s is only %v", name, b)
		}
	}

	rows := readCSV(t, filepath.Join(out, "results.csv"))
	cells := 2 * 2 * len(workloads) // backends × faults × workloads
	if len(rows) != 1+2*cells {
		t.Fatalf("seed %d: results.csv has %d rows, want a header and %d", seed, len(rows), 2*cells)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	var stockABF int64
	for _, r := range rows[1:] {
		get := func(name string) int64 { return atoi(t, r[col[name]]) }
		where := strings.Join(r[:4], " ")
		if get("calls") == 0 {
			fail("%s: no calls acknowledged", where)
		}
		switch r[col["mode"]] {
		case "exactly-once":
			if d := get("duplicates"); d != 0 {
				fail("%s: %d duplicates, want 0", where, d)
			}
			if e := get("errors"); e != 0 {
				fail("%s: %d errors, want 0", where, e)
			}
			// Marker slots: one per call in flight at once — at most the
			// concurrency (4) — however many calls the cell ran (the
			// injected faults are all retried, so no slot is pinned).
			if m := get("markers_alive"); m > 4 {
				fail("%s: %d markers alive after %d calls, want at most 4 (one slot per concurrent caller)", where, m, get("calls"))
			}
			if get("markers_after_sweep") != 0 {
				fail("%s: %d markers left after the janitor's sweep", where, get("markers_after_sweep"))
			}
		case "stock":
			if d, abf := get("duplicates"), get("applied_but_failed"); d != abf {
				fail("%s: %d duplicates but %d commits applied while reported failed", where, d, abf)
			}
			stockABF += get("applied_but_failed")
		}
	}
	if stockABF == 0 {
		// At 5% over hundreds of commits, none applied-but-failed would mean
		// the injector was not in the path.
		fail("the stock loop saw no applied-but-failed commits at 5%% faults")
	}
}

// TestFlags checks that bad flags are refused with a message naming the
// flag, before anything runs.
func TestFlags(t *testing.T) {
	for _, tc := range []struct{ args, want string }{
		{"-workload nope", "-workload \"nope\""},
		{"-faults 150", "-faults \"150\""},
		{"-faults x", "-faults \"x\""},
		{"-concurrency 0", "-concurrency 0"},
		{"-duration -1s", "-duration -1s"},
		{"-backend ,", "-backend is empty"},
		{"-runs 0", "-runs 0 must be 1 to 100"},
		{"extra", "unexpected argument"},
	} {
		var stdout, stderr bytes.Buffer
		err := mainErr(strings.Fields(tc.args), &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}

// TestHistogram checks the quantiles against a sorted sample: within the
// histogram's 1/64 relative precision.
func TestHistogram(t *testing.T) {
	var h histogram
	var vals []time.Duration
	for i := 1; i <= 100_000; i++ {
		v := time.Duration(i*i) % (50 * time.Millisecond)
		vals = append(vals, v)
		h.record(v)
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		want := vals[max(int(q*float64(len(vals))+0.999999)-1, 0)]
		got := h.quantile(q)
		if diff := got - want; diff < -want/64-1 || diff > want/64+1 {
			t.Errorf("quantile(%v) = %v, want %v within 1/64", q, got, want)
		}
	}
	if got := (&histogram{}).quantile(0.5); got != 0 {
		t.Errorf("empty quantile = %v, want 0", got)
	}
}

func atoi(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("results.csv: %q is not an integer", s)
	}
	return n
}

// TestRuns repeats a one-cell matrix three times: every run is in the CSV
// and the Markdown, and the ratio table's median and range are the runs'.
func TestRuns(t *testing.T) {
	out := t.TempDir()
	args := []string{"-duration", "40ms", "-concurrency", "2", "-faults", "0", "-backend", "mem",
		"-workload", "blind-add", "-runs", "3", "-out", out, "-quiet"}
	var stdout, stderr bytes.Buffer
	if err := mainErr(args, &stdout, &stderr); err != nil {
		t.Fatalf("%v\nstderr: %s", err, stderr.String())
	}
	rows := readCSV(t, filepath.Join(out, "results.csv"))
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	var ratios []float64
	runs := map[string]bool{}
	for _, r := range rows[1:] {
		runs[r[col["run"]]] = true
		if r[col["mode"]] == "exactly-once" {
			v, err := strconv.ParseFloat(r[col["ratio_vs_stock"]], 64)
			if err != nil {
				t.Fatal(err)
			}
			ratios = append(ratios, v)
		}
	}
	if len(rows) != 1+3*2 || len(runs) != 3 || len(ratios) != 3 {
		t.Fatalf("results.csv: %d rows, runs %v, %d ratios; want 6 rows over runs 1-3", len(rows)-1, runs, len(ratios))
	}
	slices.Sort(ratios)
	md, err := os.ReadFile(filepath.Join(out, "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("| mem | blind-add | 0%% | 3 | %.2f | %.2f–%.2f |", ratios[1], ratios[0], ratios[2])
	if !bytes.Contains(md, []byte(want)) {
		t.Errorf("results.md lacks the ratio row %q:\n%s", want, md)
	}
	for _, want := range []string{"| mem | blind-add | 0% | 2 | stock |", "run 3 times"} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("results.md lacks %q", want)
		}
	}
}

func TestSpread(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want spread
	}{
		{nil, spread{}},
		{[]float64{0.7}, spread{0.7, 0.7, 0.7}},
		{[]float64{0.9, 0.5, 0.7}, spread{0.7, 0.5, 0.9}},
		{[]float64{0.9, 0.5, 0.7, 0.6}, spread{0.65, 0.5, 0.9}},
	} {
		got := spreadOf(tc.in)
		if math.Abs(got.Median-tc.want.Median) > 1e-12 || got.Min != tc.want.Min || got.Max != tc.want.Max {
			t.Errorf("spreadOf(%v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

// readCSV reads a whole CSV file.
func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}
