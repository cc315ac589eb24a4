package embedded

import (
	"cmp"
	"slices"
	"strings"
)

// sortedRun indexes the point writes of consecutive full blocks of the
// conflict window's log by key, for range checks. The log alone made a
// range read far behind the newest write pay a binary search per block
// newer than its read version: ~500 of them, 60-80 us, for a narrow range
// 250,000 writes behind (BenchmarkConflictWindow's narrow case). Runs are
// built by range checks only (catchUpRuns), so a workload of point reads
// pays nothing for them: each full block becomes a run, and two runs of
// the same number of blocks merge into one, as a binary counter carries,
// so there are O(log blocks) runs and each write is merged O(log blocks)
// times. A range check then searches each run wholly newer than its read
// version once, and looks inside the one run straddling its read version
// only at the entries in its ranges — or, if they are many, block by
// block as before.
//
// A run keeps entries the log has since pruned; they are older than every
// read version a check can be asked about (an older one fails as too old
// first), so they never conflict, and they make the run straddle rather
// than be wholly newer. A run goes once all its blocks are pruned; dropFrom
// drops every run holding a dropped write.
type sortedRun struct {
	from, to   int64 // the blocks it covers: sequence numbers [from, to)
	minV, maxV int64
	ents       []pointVersion // by key, then version
}

// defaultRunScan is how many entries of a straddling run a range check
// scans one by one before it checks the run's blocks instead, per block
// (one binary search of a block costs about this many entry comparisons).
const defaultRunScan = 16

func cmpPointVersion(a, b pointVersion) int {
	if c := strings.Compare(a.key, b.key); c != 0 {
		return c
	}
	return cmp.Compare(a.version, b.version)
}

// catchUpRuns adds the full blocks not yet in a run to the runs, merging
// runs of equal size.
func (w *conflictWindow) catchUpRuns() {
	if w.runTo < w.seq0 {
		w.runTo = w.seq0
	}
	for {
		i := int(w.runTo - w.seq0)
		if i >= len(w.log) || len(w.log[i].ents) < w.blockSize {
			return
		}
		b := w.log[i]
		ents := slices.Clone(b.ents)
		slices.SortFunc(ents, cmpPointVersion)
		w.runs = append(w.runs, &sortedRun{from: w.runTo, to: w.runTo + 1, minV: b.ents[0].version, maxV: b.ents[len(b.ents)-1].version, ents: ents})
		w.runTo++
		for n := len(w.runs); n >= 2 && w.runs[n-2].to-w.runs[n-2].from == w.runs[n-1].to-w.runs[n-1].from; n-- {
			w.runs[n-2] = mergeRuns(w.runs[n-2], w.runs[n-1])
			w.runs[n-1] = nil
			w.runs = w.runs[:n-1]
		}
	}
}

// mergeRuns merges a and the run right after it.
func mergeRuns(a, b *sortedRun) *sortedRun {
	ents := make([]pointVersion, 0, len(a.ents)+len(b.ents))
	i, j := 0, 0
	for i < len(a.ents) && j < len(b.ents) {
		if cmpPointVersion(b.ents[j], a.ents[i]) < 0 {
			ents = append(ents, b.ents[j])
			j++
		} else {
			ents = append(ents, a.ents[i])
			i++
		}
	}
	ents = append(append(ents, a.ents[i:]...), b.ents[j:]...)
	return &sortedRun{from: a.from, to: b.to, minV: a.minV, maxV: b.maxV, ents: ents}
}

// dropRuns forgets the runs of blocks pruned from the log (before seq0)
// and, with from > 0, every run holding a write at version from or above.
func (w *conflictWindow) dropRuns(from int64) {
	n := 0
	for n < len(w.runs) && w.runs[n].to <= w.seq0 {
		n++
	}
	if n > 0 {
		clear(w.runs[:n])
		w.runs = w.runs[n:]
	}
	if from > 0 {
		j := len(w.runs)
		for j > 0 && w.runs[j-1].maxV >= from {
			j--
		}
		clear(w.runs[j:])
		w.runs = w.runs[:j]
		w.runTo = w.seq0
		if j > 0 {
			w.runTo = w.runs[j-1].to
		}
	}
	w.runTo = max(w.runTo, w.seq0)
}

// bounds returns the positions in r of the entries with keys in sp.
func (r *sortedRun) bounds(sp span) (lo, hi int) {
	lo, _ = slices.BinarySearchFunc(r.ents, sp.begin, func(p pointVersion, k string) int { return strings.Compare(p.key, k) })
	hi, _ = slices.BinarySearchFunc(r.ents[lo:], sp.end, func(p pointVersion, k string) int { return strings.Compare(p.key, k) })
	return lo, lo + hi
}

// span is a read conflict range as strings, for comparing with the
// window's keys.
type span struct{ begin, end string }

// runsConflict reports whether a point write in a block with sequence
// number below runTo, at a version above rv, lies in one of spans: the
// runs from the newest back to the one straddling rv.
func (w *conflictWindow) runsConflict(rv int64, spans []span) bool {
	for k := len(w.runs) - 1; k >= 0; k-- {
		r := w.runs[k]
		if r.maxV <= rv {
			return false
		}
		if r.minV > rv {
			// Wholly newer than rv: any entry in a span conflicts.
			for _, sp := range spans {
				if lo, hi := r.bounds(sp); lo < hi {
					return true
				}
			}
			continue
		}
		// Straddling rv, and the last run to look at: the entries in the
		// spans one by one, or, if they are many, the blocks.
		n := 0
		for _, sp := range spans {
			lo, hi := r.bounds(sp)
			n += hi - lo
		}
		if n <= w.runScan*int(r.to-r.from) {
			for _, sp := range spans {
				lo, hi := r.bounds(sp)
				for _, p := range r.ents[lo:hi] {
					if p.version > rv {
						return true
					}
				}
			}
			return false
		}
		for s := r.to - 1; s >= max(r.from, w.seq0); s-- {
			conflict, older := w.blockConflicts(int(s-w.seq0), rv, spans)
			if conflict {
				return true
			}
			if older {
				return false
			}
		}
		return false
	}
	return false
}
