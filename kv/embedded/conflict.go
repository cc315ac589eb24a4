package embedded

import (
	"bytes"
	"sort"

	"github.com/google/btree"

	"github.com/idemkv/idemkv/kv"
)

// conflictWindow holds the write conflict ranges committed in the last five
// seconds of versions, for the resolver's question: did anything committed
// after read version rv intersect one of these read ranges? Entries older
// than five seconds are pruned: a transaction whose read version is that
// old fails with transaction_too_old before the window is consulted.
//
// Most writes are single keys (Set, Clear, atomic ops), so they are kept
// apart from true ranges:
//   - points: the latest version that wrote each key, in a hash map (a point
//     read checks in O(1)) and in a B-tree by key; a range read scans the
//     keys written recently inside it, stopping at the first too-new one,
//     or, if that would take longer, checks each point write newer than its
//     read version (the FIFO's tail) against its ranges: O(min(recent keys
//     in range, writes since rv));
//   - ranges (ClearRange, versionstamped keys, explicit write conflict
//     ranges): a list by version, scanned from the newest down to rv.
//
// A FIFO of (version, key) drives pruning of points. Only the committer
// goroutine uses the window, so it has no lock.
type conflictWindow struct {
	points map[string]int64
	byKey  *btree.BTreeG[pointVersion]
	fifo   []pointVersion // ascending version; head at fifoHead
	head   int

	ranges []rangeEntry // ascending version
}

type pointVersion struct {
	key     string
	version int64
}

type rangeEntry struct {
	version int64
	r       kv.Range
}

func (w *conflictWindow) init() {
	if w.points == nil {
		w.points = make(map[string]int64)
		w.byKey = btree.NewG(32, func(a, b pointVersion) bool { return a.key < b.key })
	}
}

// isPoint reports whether r is exactly one key: [k, k+"\x00").
func isPoint(r kv.Range) bool {
	return len(r.End) == len(r.Begin)+1 && r.End[len(r.End)-1] == 0 && bytes.HasPrefix(r.End, r.Begin)
}

// add records ranges as written at version v, which is not below any
// version added before.
func (w *conflictWindow) add(v int64, ranges []kv.Range) {
	w.init()
	for _, r := range ranges {
		if !isPoint(r) {
			w.ranges = append(w.ranges, rangeEntry{v, r})
			continue
		}
		k := string(r.Begin)
		w.points[k] = v
		w.byKey.ReplaceOrInsert(pointVersion{k, v})
		w.fifo = append(w.fifo, pointVersion{k, v})
	}
}

// prune drops what was written at versions below floor.
func (w *conflictWindow) prune(floor int64) {
	w.init()
	for w.head < len(w.fifo) && w.fifo[w.head].version < floor {
		p := w.fifo[w.head]
		if w.points[p.key] == p.version { // not rewritten since
			delete(w.points, p.key)
			w.byKey.Delete(p)
		}
		w.fifo[w.head] = pointVersion{}
		w.head++
	}
	// Compact the FIFO once its dead head dominates, returning memory.
	if w.head > 1024 && w.head > len(w.fifo)/2 {
		w.fifo = append([]pointVersion(nil), w.fifo[w.head:]...)
		w.head = 0
	}
	n := 0
	for n < len(w.ranges) && w.ranges[n].version < floor {
		n++
	}
	if n > 0 {
		clear(w.ranges[:n]) // reslice: amortized O(1), append reallocates
		w.ranges = w.ranges[n:]
	}
}

// dropFrom forgets everything written at version v or above: the group at
// v failed to apply. Each key it had rewritten gets back its latest older
// version (a rare path, so a linear rebuild is fine).
func (w *conflictWindow) dropFrom(v int64) {
	w.init()
	i := len(w.fifo)
	for i > w.head && w.fifo[i-1].version >= v {
		i--
	}
	if i < len(w.fifo) {
		dropped := make(map[string]bool)
		for _, p := range w.fifo[i:] {
			dropped[p.key] = true
			delete(w.points, p.key)
			w.byKey.Delete(p)
		}
		clear(w.fifo[i:])
		w.fifo = w.fifo[:i]
		for _, p := range w.fifo[w.head:] {
			if dropped[p.key] {
				w.points[p.key] = p.version
				w.byKey.ReplaceOrInsert(p)
			}
		}
	}
	j := len(w.ranges)
	for j > 0 && w.ranges[j-1].version >= v {
		j--
	}
	clear(w.ranges[j:])
	w.ranges = w.ranges[:j]
}

// conflicts reports whether anything written after version rv intersects
// one of reads.
func (w *conflictWindow) conflicts(rv int64, reads []kv.Range) bool {
	w.init()
	for i := len(w.ranges) - 1; i >= 0 && w.ranges[i].version > rv; i-- {
		wr := w.ranges[i].r
		for _, rr := range reads {
			if bytes.Compare(wr.Begin, rr.End) < 0 && bytes.Compare(rr.Begin, wr.End) < 0 {
				return true
			}
		}
	}
	// Point writes newer than rv are the FIFO's tail from the first version
	// above rv.
	newer := w.fifo[w.head+sort.Search(len(w.fifo)-w.head, func(i int) bool { return w.fifo[w.head+i].version > rv }):]
	if len(newer) == 0 {
		return false
	}
	var spans []kv.Range
	for _, rr := range reads {
		if !isPoint(rr) {
			spans = append(spans, rr)
			continue
		}
		if v, ok := w.points[string(rr.Begin)]; ok && v > rv {
			return true
		}
	}
	if len(spans) == 0 {
		return false
	}
	// A range read either scans the keys written recently inside it (in the
	// B-tree) or checks each write newer than rv against the spans,
	// whichever is shorter: the scan gets a budget of len(newer) keys and
	// the check takes over when it runs out.
	budget := len(newer)
	for _, rr := range spans {
		hit, exhausted := false, false
		w.byKey.AscendRange(pointVersion{key: string(rr.Begin)}, pointVersion{key: string(rr.End)}, func(p pointVersion) bool {
			if budget--; budget < 0 {
				exhausted = true
				return false
			}
			hit = p.version > rv
			return !hit
		})
		if hit {
			return true
		}
		if exhausted {
			for _, p := range newer {
				for _, sp := range spans {
					if p.key >= string(sp.Begin) && p.key < string(sp.End) {
						return true
					}
				}
			}
			return false
		}
	}
	return false
}
