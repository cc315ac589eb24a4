package embedded

import (
	"bytes"
	"slices"
	"sort"
	"unsafe"

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
//     read checks in O(1)), and every write in a log of fixed-size blocks
//     in version order. A range read checks the writes newer than rv: up
//     to runAfterBlocks blocks back, each full block wholly newer than rv
//     by a binary search of its keys, sorted the first time a range read
//     needs them, the block straddling rv and the open last block entry by
//     entry; further back, through sorted runs of merged blocks
//     (conflictruns.go): a binary search per run, O(log blocks) runs, and
//     in the run straddling rv the entries in the range or its blocks,
//     whichever are fewer. Nothing is sorted or indexed for workloads
//     that only read points, and no run is built for range reads at
//     recent read versions;
//   - ranges (ClearRange, versionstamped keys, explicit write conflict
//     ranges): a list by version, scanned from the newest down to rv.
//
// The block log replaced a B-tree by key plus a growing FIFO slice: both
// were paid for on every written key (a B-tree insert, the FIFO's
// reallocation), ~18% of commit CPU with one fresh key per commit in
// memory, though only range reads use the order. Only the committer
// goroutine uses the window, so it has no lock.
type conflictWindow struct {
	points map[string]int64
	// log holds every point write, ascending version; entries before head
	// in log[0] have been pruned. Every block but the last is full.
	log  []*writeBlock
	head int
	// spare is a pruned block kept for reuse, so a steady load allocates
	// no blocks.
	spare *writeBlock
	// blockSize is the entries per block (defaultConflictBlock unless a
	// test sets it before the first add).
	blockSize int
	// seq0 is the sequence number of log[0]: log[i] is block seq0+i, a
	// number runs keep as log is resliced.
	seq0 int64
	// runs index the full blocks before block runTo by key, oldest first;
	// range checks build them (conflictruns.go).
	runs  []*sortedRun
	runTo int64
	// runScan is defaultRunScan unless a test sets it before the first
	// add (negative: never scan a straddling run's entries).
	runScan int

	ranges []rangeEntry // ascending version
}

// defaultConflictBlock is the point writes per block of the log: small
// enough that scanning the straddling block is a few microseconds, large
// enough that a five-second window at 100,000 commits/s is ~500 blocks.
const defaultConflictBlock = 512

type writeBlock struct {
	ents []pointVersion // ascending version
	// sorted is ents' keys in order, built by the first range check that
	// needs it once the block is full (a full block never changes, except
	// by dropFrom, which clears it).
	sorted []string
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
		if w.blockSize <= 0 {
			w.blockSize = defaultConflictBlock
		}
		if w.runScan == 0 {
			w.runScan = defaultRunScan
		}
	}
}

// isPoint reports whether r is exactly one key: [k, k+"\x00").
func isPoint(r kv.Range) bool {
	return len(r.End) == len(r.Begin)+1 && r.End[len(r.End)-1] == 0 && bytes.HasPrefix(r.End, r.Begin)
}

// add records ranges as written at version v, which is not below any
// version added before. It keeps the ranges' bytes without copying them:
// a committed transaction's conflict ranges are never modified (write.go
// copies what it is given; versionstamped keys are made fresh at commit).
func (w *conflictWindow) add(v int64, ranges []kv.Range) {
	w.init()
	for _, r := range ranges {
		if !isPoint(r) {
			w.ranges = append(w.ranges, rangeEntry{v, r})
			continue
		}
		k := unsafeString(r.Begin)
		w.points[k] = v
		w.appendLog(pointVersion{k, v})
	}
}

func (w *conflictWindow) appendLog(p pointVersion) {
	n := len(w.log)
	if n == 0 || len(w.log[n-1].ents) == w.blockSize {
		b := w.spare
		w.spare = nil
		if b == nil {
			b = &writeBlock{ents: make([]pointVersion, 0, w.blockSize)}
		}
		w.log = append(w.log, b)
		n++
	}
	w.log[n-1].ents = append(w.log[n-1].ents, p)
}

// prune drops what was written at versions below floor.
func (w *conflictWindow) prune(floor int64) {
	w.init()
	for len(w.log) > 0 {
		b := w.log[0]
		for w.head < len(b.ents) && b.ents[w.head].version < floor {
			p := b.ents[w.head]
			if w.points[p.key] == p.version { // not rewritten since
				delete(w.points, p.key)
			}
			w.head++
		}
		if w.head < len(b.ents) {
			break
		}
		// All of b is pruned: drop it (or, if it is the open last block,
		// empty it in place).
		clear(b.ents)
		b.ents, b.sorted = b.ents[:0], nil
		w.head = 0
		w.seq0++ // b goes, or is refilled as a new block
		if len(w.log) == 1 {
			break
		}
		w.log[0] = nil
		w.log = w.log[1:] // reslice: append reallocates, copying only the live part
		w.spare = b
	}
	if len(w.runs) > 0 && w.runs[0].to <= w.seq0 {
		w.dropRuns(0)
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
	dropped := make(map[string]bool)
	for len(w.log) > 0 {
		b := w.log[len(w.log)-1]
		lo := 0
		if len(w.log) == 1 {
			lo = w.head
		}
		i := len(b.ents)
		for i > lo && b.ents[i-1].version >= v {
			i--
		}
		if i == len(b.ents) {
			break
		}
		for _, p := range b.ents[i:] {
			dropped[p.key] = true
			delete(w.points, p.key)
		}
		clear(b.ents[i:])
		b.ents, b.sorted = b.ents[:i], nil
		if i > lo || len(w.log) == 1 {
			break
		}
		w.log[len(w.log)-1] = nil
		w.log = w.log[:len(w.log)-1]
	}
	if len(dropped) > 0 {
		w.eachLive(func(p pointVersion) {
			if dropped[p.key] {
				w.points[p.key] = p.version
			}
		})
	}
	j := len(w.ranges)
	for j > 0 && w.ranges[j-1].version >= v {
		j--
	}
	clear(w.ranges[j:])
	w.ranges = w.ranges[:j]
	w.dropRuns(v)
}

// eachLive calls fn for every unpruned point write, in version order.
func (w *conflictWindow) eachLive(fn func(pointVersion)) {
	for i, b := range w.log {
		ents := b.ents
		if i == 0 {
			ents = ents[w.head:]
		}
		for _, p := range ents {
			fn(p)
		}
	}
}

// newestPoint is the version of the latest point write, 0 if none.
func (w *conflictWindow) newestPoint() int64 {
	if n := len(w.log); n > 0 {
		if ents := w.log[n-1].ents; len(ents) > 0 {
			return ents[len(ents)-1].version
		}
	}
	return 0
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
	if w.newestPoint() <= rv {
		return false // no point write since rv
	}
	var spans []span
	for _, rr := range reads {
		if !isPoint(rr) {
			spans = append(spans, span{unsafeString(rr.Begin), unsafeString(rr.End)})
			continue
		}
		if v, ok := w.points[string(rr.Begin)]; ok && v > rv {
			return true
		}
	}
	if len(spans) == 0 {
		return false
	}
	// The blocks not in a run, newest first, while they are few; a check
	// reaching further back first adds the full ones to the runs, so a
	// workload whose range reads are recent never builds any.
	for i, n := len(w.log)-1, 0; i >= 0 && w.seq0+int64(i) >= w.runTo; i, n = i-1, n+1 {
		if n == runAfterBlocks {
			w.catchUpRuns()
			break
		}
		conflict, older := w.blockConflicts(i, rv, spans)
		if conflict {
			return true
		}
		if older {
			return false
		}
	}
	return w.runsConflict(rv, spans)
}

// runAfterBlocks is how many blocks not yet in runs a range check looks at
// one by one before it indexes them (catchUpRuns).
const runAfterBlocks = 8

// blockConflicts reports whether a write in log[i] at a version above rv
// lies in one of spans, and whether everything in the blocks before it is
// at or below rv. A full block wholly newer than rv is searched by key
// (its keys sorted the first time one is needed), any other entry by
// entry, newest first, down to rv.
func (w *conflictWindow) blockConflicts(i int, rv int64, spans []span) (conflict, older bool) {
	b := w.log[i]
	ents := b.ents
	if i == 0 {
		ents = ents[w.head:]
	}
	if len(ents) == 0 {
		return false, true
	}
	if ents[0].version > rv && len(b.ents) == w.blockSize && (i > 0 || w.head == 0) {
		if b.sorted == nil {
			b.sorted = make([]string, len(b.ents))
			for j, p := range b.ents {
				b.sorted[j] = p.key
			}
			slices.Sort(b.sorted)
		}
		for _, sp := range spans {
			j := sort.SearchStrings(b.sorted, sp.begin)
			if j < len(b.sorted) && b.sorted[j] < sp.end {
				return true, false
			}
		}
		return false, false
	}
	for j := len(ents) - 1; j >= 0 && ents[j].version > rv; j-- {
		k := ents[j].key
		for _, sp := range spans {
			if k >= sp.begin && k < sp.end {
				return true, false
			}
		}
	}
	return false, ents[0].version <= rv
}

// pointCount is the number of unpruned point writes (for tests).
func (w *conflictWindow) pointCount() int {
	n := 0
	w.eachLive(func(pointVersion) { n++ })
	return n
}

// unsafeString is b as a string without a copy; b must never change.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
