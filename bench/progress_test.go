package main

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestTimeLeft(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// 11 s into the run, 1 s into a cell of two 5 s modes, two cells after
	// it: 9 s + 2×10 s remain.
	if got, want := timeLeft(t0, t0.Add(10*time.Second), t0.Add(11*time.Second), 2, 5*time.Second), "11s elapsed, ~29s left"; got != want {
		t.Fatalf("timeLeft = %q, want %q", got, want)
	}
	// A cell that overran its estimate counts as done, not negative.
	if got, want := timeLeft(t0, t0, t0.Add(12*time.Second), 0, 5*time.Second), "12s elapsed, ~0s left"; got != want {
		t.Fatalf("timeLeft = %q, want %q", got, want)
	}
}

// The progress line names the fault rate as such and carries the clock.
func TestProgressLine(t *testing.T) {
	w, ok := workloadNamed("blind-add")
	if !ok {
		t.Fatal("no blind-add workload")
	}
	var mu sync.Mutex
	var lines []string
	cfg := config{workloads: []workload{w}, backends: []string{"mem"}, faults: []float64{0.05},
		duration: 60 * time.Millisecond, concurrency: 2, seed: 1,
		progress: func(s string) { mu.Lock(); lines = append(lines, s); mu.Unlock() }}
	if _, err := runMatrix(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lines) == 0 {
		t.Fatal("no progress line reported")
	}
	last := lines[len(lines)-1]
	for _, want := range []string{"[1/1] mem blind-add fault rate 5%", "exactly-once", " elapsed, ~", " left"} {
		if !strings.Contains(last, want) {
			t.Errorf("progress line %q lacks %q", last, want)
		}
	}
}

// Every legend entry stays inside the figure, however narrow: a single
// cell's plot is one panel wide, and its legend takes a second line.
func TestLegendFits(t *testing.T) {
	for _, w := range []int{panelW, 2 * panelW, 4 * panelW} {
		items, header := legend(w)
		if len(items) != len(modes)+1 {
			t.Fatalf("width %d: %d legend items, want %d", w, len(items), len(modes)+1)
		}
		for _, it := range items {
			if it.x+it.width() > w-10 {
				t.Errorf("width %d: legend item %q spans x %d to %d, past the figure's edge", w, it.text, it.x, it.x+it.width())
			}
			if it.y+3 > header {
				t.Errorf("width %d: legend item %q at y %d is below the header (%d px)", w, it.text, it.y, header)
			}
		}
		if w == 4*panelW && header != headerH {
			t.Errorf("width %d: header %d px, want %d (one legend line)", w, header, headerH)
		}
	}

	// The single-cell figure draws the note where the layout put it.
	img := singleCellPlot(t)
	items, header := legend(panelW)
	if b := img.Bounds(); b.Dx() != panelW || b.Dy() != header+panelH {
		t.Fatalf("single-cell plot is %v, want %dx%d", b, panelW, header+panelH)
	}
	note := items[len(items)-1]
	inked := false
	for y := note.y - 10; y <= note.y+2 && !inked; y++ {
		for x := note.x; x < note.x+note.width(); x++ {
			if r, g, b, _ := img.At(x, y).RGBA(); r>>8 == uint32(colAxis.R) && g>>8 == uint32(colAxis.G) && b>>8 == uint32(colAxis.B) {
				inked = true
				break
			}
		}
	}
	if !inked {
		t.Errorf("the x-axis note is not drawn at (%d, %d) in the single-cell plot", note.x, note.y)
	}
}

func singleCellPlot(t *testing.T) image.Image {
	t.Helper()
	c := cell{Backend: "mem", Workload: "blind-add", Fault: 0}
	c.Modes[0] = modeResult{Mode: "stock", Throughput: 1000}
	c.Modes[1] = modeResult{Mode: "exactly-once", Throughput: 500}
	b, err := plotPNG("Throughput (calls/s, higher is better)", []cell{c}, func(r *modeResult) float64 { return r.Throughput }, formatCount)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return img
}
