package embedded

import (
	"bytes"
	"slices"
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
	ops     []atomicOp // entryAtomic; starts in first
	first   [1]atomicOp
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

// writeMap is a transaction's read-your-writes state: per-key entries
// (entryIndex) plus the ranges it has cleared (sorted, disjoint, merged).
// Keys in a cleared range with no entry are known absent.
type writeMap struct {
	keys entryIndex
	// spare holds places for the first entries made (newEntry): the
	// attempt's commit request carries a few (transaction.request), so a
	// small transaction's entries cost no allocations of their own, and
	// its transaction stays small. Nothing refers to an entry beyond its
	// attempt, which forgets the write map before the request is reused.
	spare   []entry
	cleared []kv.Range
	// unreadable holds the ranges where a versionstamped key may land:
	// reads that touch them fail with accessed_unreadable until commit.
	unreadable []kv.Range
}

// entryIndex holds a write map's entries by key: a sorted slice while there
// are at most smallEntries, a B-tree beyond. Most transactions write a few
// keys, and a B-tree cost them three allocations before the first entry
// (its header, a node, the node's items) and one per lookup (the pivot).
type entryIndex struct {
	small []*entry // ascending key, while tree is nil
	tree  *btree.BTreeG[*entry]
}

// smallEntries is how many entries an entryIndex keeps in its slice: a
// binary search and a short copy per insert, cheaper than the tree's nodes
// up to here.
const smallEntries = 32

// entryFreeList is shared by every write map's tree: btree.NewG would make
// each its own, an allocation per tree. (Nodes go back to it only when
// deleted, so it is mostly empty; what it saves is its own allocation. It
// is safe for concurrent use.)
var entryFreeList = btree.NewFreeListG[*entry](btree.DefaultFreeListSize)

func entryLess(a, b *entry) bool { return bytes.Compare(a.key, b.key) < 0 }

// search returns the position of the first small entry with key >= key and
// whether it is key.
func (x *entryIndex) search(key []byte) (int, bool) {
	lo, hi := 0, len(x.small)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if bytes.Compare(x.small[m].key, key) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(x.small) && bytes.Equal(x.small[lo].key, key)
}

func (x *entryIndex) get(key []byte) (*entry, bool) {
	if x.tree != nil {
		return x.tree.Get(&entry{key: key})
	}
	if i, ok := x.search(key); ok {
		return x.small[i], true
	}
	return nil, false
}

// put inserts e, replacing the entry with its key if there is one.
func (x *entryIndex) put(e *entry) {
	if x.tree != nil {
		x.tree.ReplaceOrInsert(e)
		return
	}
	i, ok := x.search(e.key)
	if ok {
		x.small[i] = e
		return
	}
	if len(x.small) == smallEntries {
		x.tree = btree.NewWithFreeListG(16, entryLess, entryFreeList)
		for _, o := range x.small {
			x.tree.ReplaceOrInsert(o)
		}
		x.small = nil
		x.tree.ReplaceOrInsert(e)
		return
	}
	if x.small == nil { // else it starts in the commit request
		x.small = make([]*entry, 0, 4)
	}
	x.small = slices.Insert(x.small, i, e)
}

// del removes the entry with e's key, if any.
func (x *entryIndex) del(e *entry) {
	if x.tree != nil {
		x.tree.Delete(e)
		return
	}
	if i, ok := x.search(e.key); ok {
		x.small = slices.Delete(x.small, i, i+1)
	}
}

// ascendRange calls fn for the entries with keys in [begin, end), in
// order, until it returns false.
func (x *entryIndex) ascendRange(begin, end []byte, fn func(*entry) bool) {
	if x.tree != nil {
		x.tree.AscendRange(&entry{key: begin}, &entry{key: end}, fn)
		return
	}
	i, _ := x.search(begin)
	for ; i < len(x.small) && bytes.Compare(x.small[i].key, end) < 0; i++ {
		if !fn(x.small[i]) {
			return
		}
	}
}

// ascend calls fn for every entry, in order, until it returns false.
func (x *entryIndex) ascend(fn func(*entry) bool) {
	if x.tree != nil {
		x.tree.Ascend(fn)
		return
	}
	for _, e := range x.small {
		if !fn(e) {
			return
		}
	}
}

func (w *writeMap) get(key []byte) (*entry, bool) { return w.keys.get(key) }

// newEntry returns e in a place of its own: one of w.spare while they
// last.
func (w *writeMap) newEntry(e entry) *entry {
	var p *entry
	if len(w.spare) > 0 {
		p = &w.spare[0]
		w.spare = w.spare[1:]
	} else {
		p = new(entry)
	}
	*p = e
	return p
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
	w.keys.put(w.newEntry(entry{key: key, kind: entryKnown, present: true, value: value}))
}

func (w *writeMap) clear(key []byte) {
	w.keys.put(w.newEntry(entry{key: key, kind: entryKnown}))
}

// setUnreadable records a SetVersionstampedValue of param on key.
func (w *writeMap) setUnreadable(key, param []byte) {
	w.keys.put(w.newEntry(entry{key: key, kind: entryUnreadable, value: param}))
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
		w.keys.put(w.newEntry(entry{key: key, kind: entryKnown, present: present, value: v}))
	default:
		e := w.newEntry(entry{key: key, kind: entryAtomic})
		e.ops = append(e.first[:0], atomicOp{op, param})
		w.keys.put(e)
	}
}

// clearRange drops the entries in r and merges r into the cleared ranges.
func (w *writeMap) clearRange(r kv.Range) {
	var drop []*entry
	w.keys.ascendRange(r.Begin, r.End, func(e *entry) bool {
		drop = append(drop, e)
		return true
	})
	for _, e := range drop {
		w.keys.del(e)
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
	w.keys.ascendRange(begin, end, func(e *entry) bool {
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
