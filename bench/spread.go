package main

import (
	"slices"
	"time"
)

// spread is one figure over the runs of a cell: its median and range.
type spread struct {
	Median, Min, Max float64
}

func spreadOf(vals []float64) spread {
	if len(vals) == 0 {
		return spread{}
	}
	s := slices.Clone(vals)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return spread{Median: med, Min: s[0], Max: s[len(s)-1]}
}

// cellKey names a cell of the matrix, whatever the run.
type cellKey struct {
	Backend, Workload string
	Fault             float64
}

func (c *cell) key() cellKey { return cellKey{c.Backend, c.Workload, c.Fault} }

// cellRuns is every run of one cell, with its ratios' spread.
type cellRuns struct {
	cellKey
	Runs     []*cell
	Ratio    spread // exactly-once throughput over stock's
	P99Ratio spread // exactly-once p99 over stock's
}

// byCell groups cells by their key, in the matrix's order.
func byCell(cells []cell) []cellRuns {
	var out []cellRuns
	idx := map[cellKey]int{}
	for i := range cells {
		c := &cells[i]
		j, ok := idx[c.key()]
		if !ok {
			j = len(out)
			idx[c.key()] = j
			out = append(out, cellRuns{cellKey: c.key()})
		}
		out[j].Runs = append(out[j].Runs, c)
	}
	for i := range out {
		var r, p []float64
		for _, c := range out[i].Runs {
			r = append(r, c.ratio())
			p = append(p, c.p99Ratio())
		}
		out[i].Ratio, out[i].P99Ratio = spreadOf(r), spreadOf(p)
	}
	return out
}

// runCount is how many runs of the matrix cells holds.
func runCount(cells []cell) int {
	n := 1
	for _, c := range cells {
		n = max(n, c.Run)
	}
	return n
}

// medianCells is one cell per key whose modes' throughput and p99 are the
// medians over the runs (the other figures are the first run's), for the
// throughput and p99 plots.
func medianCells(cells []cell) []cell {
	groups := byCell(cells)
	out := make([]cell, 0, len(groups))
	for _, g := range groups {
		c := *g.Runs[0]
		for m := range c.Modes {
			var tp, p99 []float64
			for _, r := range g.Runs {
				tp = append(tp, r.Modes[m].Throughput)
				p99 = append(p99, float64(r.Modes[m].P99))
			}
			c.Modes[m].Throughput = spreadOf(tp).Median
			c.Modes[m].P99 = time.Duration(spreadOf(p99).Median)
		}
		out = append(out, c)
	}
	return out
}
