package embedded

import (
	"bytes"
	"sort"

	"github.com/google/btree"

	"github.com/idemkv/idemkv/kv"
)

// entryKind says what a transaction knows about a key it has written.
type entryKind uint8

const (
	// entryKnown: the value is fully determined by the transaction's own
	// writes (set, clear, or atomic ops on a known base); present says
	// whether the key exists.
	entryKnown entryKind = iota
	// entryAtomic: atomic ops on a base the transaction has not read; a
	// read evaluates them against the snapshot value.
	entryAtomic
	// entryUnreadable: written by SetVersionstampedValue, whose value is
	// only known at commit (reads fail with accessed_unreadable).
	entryUnreadable
)

type atomicOp struct {
	op    kv.MutationType
	param []byte
}

// entry is the transaction's own state for one key.
type entry struct {
	key     []byte
	kind    entryKind
	present bool
	value   []byte
	ops     []atomicOp // entryAtomic
}

// resolve returns the key's value given the snapshot's (base, basePresent).
func (e *entry) resolve(base []byte, basePresent bool) ([]byte, bool) {
	switch e.kind {
	case entryKnown:
		return e.value, e.present
	case entryAtomic:
		v, ok := base, basePresent
		for _, o := range e.ops {
			v, ok = kv.ApplyAtomic(o.op, v, ok, o.param)
		}
		return v, ok
	}
	return nil, false
}

// writeMap is a transaction's read-your-writes state: per-key entries in a
// B-tree plus the ranges it has cleared (sorted, disjoint, merged). Keys in
// a cleared range with no entry are known absent.
type writeMap struct {
	keys    *btree.BTreeG[*entry]
	cleared []kv.Range
	// unreadable holds the ranges where a versionstamped key may land:
	// reads that touch them fail with accessed_unreadable until commit.
	unreadable []kv.Range
}

// entryFreeList is shared by every write map: btree.NewG would make each
// its own, an allocation per transaction attempt. (Nodes go back to it
// only when deleted, so it is mostly empty; what it saves is its own
// allocation. It is safe for concurrent use.)
var entryFreeList = btree.NewFreeListG[*entry](btree.DefaultFreeListSize)

func entryLess(a, b *entry) bool { return bytes.Compare(a.key, b.key) < 0 }

func newWriteMap() writeMap {
	return writeMap{keys: btree.NewWithFreeListG(16, entryLess, entryFreeList)}
}

func (w *writeMap) get(key []byte) (*entry, bool) {
	return w.keys.Get(&entry{key: key})
}

// inCleared reports whether key lies in a cleared range.
func (w *writeMap) inCleared(key []byte) bool {
	_, in := w.clearedAt(key)
	return in
}

// clearedAt returns the cleared range holding key, if any.
func (w *writeMap) clearedAt(key []byte) (kv.Range, bool) {
	i := sort.Search(len(w.cleared), func(i int) bool { return bytes.Compare(w.cleared[i].End, key) > 0 })
	if i < len(w.cleared) && bytes.Compare(w.cleared[i].Begin, key) <= 0 {
		return w.cleared[i], true
	}
	return kv.Range{}, false
}

func (w *writeMap) set(key, value []byte) {
	w.keys.ReplaceOrInsert(&entry{key: key, kind: entryKnown, present: true, value: value})
}

func (w *writeMap) clear(key []byte) {
	w.keys.ReplaceOrInsert(&entry{key: key, kind: entryKnown})
}

// setUnreadable records a SetVersionstampedValue of param on key.
func (w *writeMap) setUnreadable(key, param []byte) {
	w.keys.ReplaceOrInsert(&entry{key: key, kind: entryUnreadable, value: param})
}

// unreadableRange records the range a versionstamped key may land in.
func (w *writeMap) unreadableRange(r kv.Range) {
	w.unreadable = append(w.unreadable, r)
}

// touchesUnreadable reports whether r intersects a range where a
// versionstamped key may land.
func (w *writeMap) touchesUnreadable(r kv.Range) bool {
	for _, u := range w.unreadable {
		if bytes.Compare(u.Begin, r.End) < 0 && bytes.Compare(r.Begin, u.End) < 0 {
			return true
		}
	}
	return false
}

// atomic records op on key: evaluated now if the base is known, queued on
// an unknown base otherwise.
func (w *writeMap) atomic(key []byte, op kv.MutationType, param []byte) {
	e, ok := w.get(key)
	switch {
	case ok && e.kind == entryKnown:
		e.value, e.present = kv.ApplyAtomic(op, e.value, e.present, param)
	case ok && e.kind == entryAtomic:
		e.ops = append(e.ops, atomicOp{op, param})
	case ok && e.kind == entryUnreadable:
		// The base is only known at commit; so is the result.
	case w.inCleared(key):
		v, present := kv.ApplyAtomic(op, nil, false, param)
		w.keys.ReplaceOrInsert(&entry{key: key, kind: entryKnown, present: present, value: v})
	default:
		w.keys.ReplaceOrInsert(&entry{key: key, kind: entryAtomic, ops: []atomicOp{{op, param}}})
	}
}

// clearRange drops the entries in r and merges r into the cleared ranges.
func (w *writeMap) clearRange(r kv.Range) {
	var drop []*entry
	w.keys.AscendRange(&entry{key: r.Begin}, &entry{key: r.End}, func(e *entry) bool {
		drop = append(drop, e)
		return true
	})
	for _, e := range drop {
		w.keys.Delete(e)
	}
	// Merge: ranges that overlap or touch r are absorbed.
	begin, end := r.Begin, r.End
	out := w.cleared[:0:0]
	inserted := false
	for _, c := range w.cleared {
		switch {
		case bytes.Compare(c.End, begin) < 0:
			out = append(out, c)
		case bytes.Compare(end, c.Begin) < 0:
			if !inserted {
				out = append(out, kv.Range{Begin: begin, End: end})
				inserted = true
			}
			out = append(out, c)
		default:
			if bytes.Compare(c.Begin, begin) < 0 {
				begin = c.Begin
			}
			if bytes.Compare(c.End, end) > 0 {
				end = c.End
			}
		}
	}
	if !inserted {
		out = append(out, kv.Range{Begin: begin, End: end})
	}
	w.cleared = out
}

// entriesIn returns the entries in [begin, end), ascending or descending.
func (w *writeMap) entriesIn(begin, end []byte, reverse bool) []*entry {
	var out []*entry
	w.keys.AscendRange(&entry{key: begin}, &entry{key: end}, func(e *entry) bool {
		out = append(out, e)
		return true
	})
	if reverse {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out
}
