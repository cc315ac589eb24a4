package embedded

import (
	"bytes"
	"math/bits"
	"slices"
	"sync/atomic"

	"github.com/idemkv/idemkv/kv"
)

// memStore is the in-memory engine's storage (OpenMem): a multi-version
// map from user key to values by commit version, read at any version of
// the five-second window without snapshots. It replaced Pebble on a memory
// filesystem, whose costs bought nothing for a store lost on Close: a
// memtable insert and a copy into the WAL per key, an indexed batch read
// per atomic operation, a Pebble snapshot per commit group (five seconds
// of them, ~30% of throughput at in-memory rates) and their release, which
// schedules compactions.
//
// Keys sit in a skiplist with one writer (the committer) and lock-free
// readers; each key holds its versions newest first. Only the committer
// writes, and it writes a group's versions at the group's commit version
// cv directly into the store: no reader can see them before the group is
// published, because no read version >= cv is handed out or accepted
// until then (db.mu.inflight), and every read resolves a key's versions at
// its read version. A group that fails is rolled back before it is
// published (abort).
//
// Versions no read version in the window can need are dropped as groups
// age: once the floor f (five seconds before the newest commit) passes a
// group, each key it wrote keeps only its newest version <= f and the
// newer ones, and a key whose only version left is a deletion leaves the
// skiplist. A read at v < f may have lost what it needs, so every read
// checks the floor after it has read and fails with transaction_too_old
// if the floor passed v: what Pebble's released snapshots did, as
// FoundationDB's storage servers do once they forget a version. The floor
// is raised before anything is dropped, so a read that saw a dropped
// version also sees the raised floor.
type memStore struct {
	head memNode // sentinel; its tower is maxMemHeight high
	// height is the tallest tower in use; readers start there.
	height atomic.Int32
	// floor: versions below it may have been dropped (see above).
	floor atomic.Int64
	// dels holds the range deletions still in the window, ascending
	// version; replaced, never modified, so readers load it once.
	dels atomic.Pointer[[]memRangeDel]

	// The rest belongs to the committer.
	rnd uint64 // tower heights
	// cv is the commit version being applied, 0 between groups; touched
	// holds the nodes the group wrote, for abort and for aging.
	cv      int64
	seq     int32 // order of the group's writes and range deletions
	touched []*memNode
	// slab is what is left of the block the next versions are cut from
	// (newVersion).
	slab []memVersion
	// clearLimit is how many present keys a range clear deletes one by
	// one before it records a range deletion instead (pointClearLimit;
	// tests lower it).
	clearLimit int
	// writes holds the versions the published groups still in the window
	// wrote, oldest first; groups holds those groups, each with its count
	// of writes. Chunked queues, so a group costs no allocation of its own
	// and nothing is copied as they grow (a slice resliced from its head
	// reallocated and copied five seconds of writes each time it grew).
	writes fifo[memWrite]
	groups fifo[memGroup]
}

const maxMemHeight = 20

// memRangeDel is a ClearRange over more than clearLimit present keys,
// recorded in O(1): it hides every version of a key in [begin, end)
// written before it (by version, then by order within the group). Once it
// ages below the floor the keys it hides are dropped in one pass and it
// goes (see age).
type memRangeDel struct {
	begin, end []byte
	version    int64
	seq        int32
}

// hides reports whether d deletes mv, a version of key.
func (d *memRangeDel) hides(key []byte, mv *memVersion) bool {
	return (d.version > mv.version || d.version == mv.version && d.seq > mv.seq) &&
		bytes.Compare(key, d.begin) >= 0 && bytes.Compare(key, d.end) < 0
}

type memGroup struct {
	version int64
	writes  int // its entries in memStore.writes
}

// memWrite is one version a group wrote, of node n.
type memWrite struct {
	n  *memNode
	mv *memVersion
}

// memNode is one key. Readers reach it through atomic loads only; key
// never changes.
type memNode struct {
	key      []byte
	versions atomic.Pointer[memVersion] // newest first
	next     []atomic.Pointer[memNode]  // tower, level 0 first
	// low is the tower of a node one level high (three in four): next
	// points into it, saving an allocation.
	low [1]atomic.Pointer[memNode]
}

// memVersion is a key's value (or deletion) as of a commit version.
// value is never modified once stored.
type memVersion struct {
	version int64
	seq     int32 // order within its group (see memRangeDel)
	present bool
	value   []byte
	older   atomic.Pointer[memVersion]
}

func newMemStore() *memStore {
	s := &memStore{rnd: 0x9e3779b97f4a7c15, clearLimit: pointClearLimit}
	s.head.next = make([]atomic.Pointer[memNode], maxMemHeight)
	s.height.Store(1)
	return s
}

// at returns the version of n visible at v, nil if none.
func (n *memNode) at(v int64) *memVersion {
	mv := n.versions.Load()
	for mv != nil && mv.version > v {
		mv = mv.older.Load()
	}
	return mv
}

// seekGE returns the first node with key >= key, nil if none; with preds
// non-nil it also fills each level's last node before key (the writer's
// splice).
func (s *memStore) seekGE(key []byte, preds *[maxMemHeight]*memNode) *memNode {
	x := &s.head
	var nx *memNode
	for l := int(s.height.Load()) - 1; l >= 0; l-- {
		for {
			nx = x.next[l].Load()
			if nx == nil || bytes.Compare(nx.key, key) >= 0 {
				break
			}
			x = nx
		}
		if preds != nil {
			preds[l] = x
		}
	}
	// nx is the node level 0 compared, not a second load of x.next[0]: the
	// writer may have linked a smaller key after x in between.
	return nx
}

// seekLT returns the last node with key < key, nil if none.
func (s *memStore) seekLT(key []byte) *memNode {
	x := &s.head
	for l := int(s.height.Load()) - 1; l >= 0; l-- {
		for {
			nx := x.next[l].Load()
			if nx == nil || bytes.Compare(nx.key, key) >= 0 {
				break
			}
			x = nx
		}
	}
	if x == &s.head {
		return nil
	}
	return x
}

// visible returns n's value at version v (the group being applied
// included, at s.cv), nil if it has none there or a range deletion in dels
// (at most v) hides it.
func visible(n *memNode, v int64, dels []memRangeDel) *memVersion {
	mv := n.at(v)
	if mv == nil || !mv.present {
		return nil
	}
	for i := len(dels) - 1; i >= 0; i-- {
		d := &dels[i]
		if d.version < mv.version || d.version == mv.version && d.seq < mv.seq {
			break // this one and older ones predate mv
		}
		if d.version <= v && d.hides(n.key, mv) {
			return nil
		}
	}
	return mv
}

func (s *memStore) loadDels() []memRangeDel {
	if d := s.dels.Load(); d != nil {
		return *d
	}
	return nil
}

// floorErr is the error of a read at v made while or after the floor
// passed v.
func (s *memStore) floorErr(v int64) error {
	if f := s.floor.Load(); v < f {
		return kv.Errorf(kv.CodeTransactionTooOld, "read version %d is older than the oldest retained state (%d)", v, f)
	}
	return nil
}

// get reads key at version v. The value is shared and must not be
// modified.
func (s *memStore) get(key []byte, v int64) (value []byte, present bool, err error) {
	if n := s.seekGE(key, nil); n != nil && bytes.Equal(n.key, key) {
		if mv := visible(n, v, s.loadDels()); mv != nil {
			value, present = mv.value, true
		}
	}
	if err := s.floorErr(v); err != nil {
		return nil, false, err
	}
	return value, present, nil
}

// scan is snapshot.scan at version v: fn gets the present keys of
// [begin, end) in order (reversed if reverse), until it returns false; a
// non-nil seek skips forward to the first key >= seek, or reversed to the
// last key < seek.
func (s *memStore) scan(v int64, begin, end []byte, reverse bool, fn func(k, val []byte) (bool, []byte)) error {
	dels := s.loadDels()
	var n *memNode
	if reverse {
		n = s.seekLT(end)
	} else {
		n = s.seekGE(begin, nil)
	}
	for n != nil {
		if reverse && bytes.Compare(n.key, begin) < 0 || !reverse && bytes.Compare(n.key, end) >= 0 {
			break
		}
		var seek []byte
		if mv := visible(n, v, dels); mv != nil {
			more, sk := fn(n.key, mv.value)
			if !more {
				break
			}
			seek = sk
		}
		switch {
		case seek != nil && reverse:
			n = s.seekLT(seek)
		case seek != nil:
			n = s.seekGE(seek, nil)
		case reverse:
			n = s.seekLT(n.key)
		default:
			n = n.next[0].Load()
		}
	}
	return s.floorErr(v)
}

// ---- the committer's side ----

// begin starts applying the group at commit version cv.
func (s *memStore) begin(cv int64) { s.cv, s.seq = cv, 0 }

// node returns key's node, inserting it if absent.
func (s *memStore) node(key []byte) *memNode {
	var preds [maxMemHeight]*memNode
	if n := s.seekGE(key, &preds); n != nil && bytes.Equal(n.key, key) {
		return n
	}
	h := s.randomHeight()
	if cur := int(s.height.Load()); h > cur {
		for l := cur; l < h; l++ {
			preds[l] = &s.head
		}
		s.height.Store(int32(h))
	}
	n := &memNode{key: key}
	if h == 1 {
		n.next = n.low[:]
	} else {
		n.next = make([]atomic.Pointer[memNode], h)
	}
	for l := range h {
		n.next[l].Store(preds[l].next[l].Load())
	}
	// Linked bottom up: a reader that finds n at some level finds it at
	// every level below.
	for l := range h {
		preds[l].next[l].Store(n)
	}
	return n
}

// versionSlab is how many versions newVersion cuts from one allocation.
const versionSlab = 64

// newVersion returns a zero version, cut from a block of versionSlab: a
// key overwritten in every commit (a counter, a marker slot) gets a
// version per write, and one allocation for 64 of them cost less than 64.
// A block stays allocated while any of its versions is reachable; most
// are dropped within five seconds (age), and age moves the ones kept
// longer — the newest version of a key no longer written — out to
// allocations of their own, so a long-lived key never holds a block.
func (s *memStore) newVersion() *memVersion {
	if len(s.slab) == 0 {
		s.slab = make([]memVersion, versionSlab)
	}
	mv := &s.slab[0]
	s.slab = s.slab[1:]
	return mv
}

func (s *memStore) randomHeight() int {
	s.rnd ^= s.rnd << 13
	s.rnd ^= s.rnd >> 7
	s.rnd ^= s.rnd << 17
	// P(height > h) = 4^-h.
	h := 1 + bits.TrailingZeros64(s.rnd|1<<62)/2
	return min(h, maxMemHeight)
}

// write records key's value (present) or deletion at s.cv. A second write
// of the key in the same group replaces the first.
func (s *memStore) write(n *memNode, value []byte, present bool) {
	s.seq++
	mv := s.newVersion()
	mv.version, mv.seq, mv.present, mv.value = s.cv, s.seq, present, value
	head := n.versions.Load()
	if head != nil && head.version == s.cv {
		head = head.older.Load()
	} else {
		s.touched = append(s.touched, n)
	}
	mv.older.Store(head)
	n.versions.Store(mv)
}

// current is key's node and present value as of everything written so
// far, the group being applied included (nil if absent).
func (s *memStore) current(key []byte) (*memNode, *memVersion) {
	n := s.seekGE(key, nil)
	if n == nil || !bytes.Equal(n.key, key) {
		return nil, nil
	}
	return n, visible(n, s.cv, s.loadDels())
}

// set writes key = value at s.cv. key and value are kept: the caller must
// not modify them afterwards.
func (s *memStore) set(key, value []byte) {
	s.write(s.node(key), value, true)
}

// del deletes key at s.cv; a key already absent is left alone.
func (s *memStore) del(key []byte) {
	if n, mv := s.current(key); mv != nil {
		s.write(n, nil, false)
	}
}

// clearRange deletes the present keys of [begin, end) at s.cv: one by
// one if there are at most clearLimit of them, else as one range deletion
// (O(1) however many keys it covers; see memRangeDel). begin and end are
// kept.
func (s *memStore) clearRange(begin, end []byte) {
	dels := s.loadDels()
	var present []*memNode
	for n := s.seekGE(begin, nil); n != nil && bytes.Compare(n.key, end) < 0; n = n.next[0].Load() {
		if visible(n, s.cv, dels) != nil {
			if len(present) == s.clearLimit {
				s.seq++
				nd := append(dels[:len(dels):len(dels)], memRangeDel{begin: begin, end: end, version: s.cv, seq: s.seq})
				s.dels.Store(&nd)
				return
			}
			present = append(present, n)
		}
	}
	for _, n := range present {
		s.write(n, nil, false)
	}
}

// commit ends the group at s.cv, which is about to be published.
func (s *memStore) commit() {
	if len(s.touched) > 0 {
		for _, n := range s.touched {
			s.writes.push(memWrite{n, n.versions.Load()}) // the group's last write of n
		}
		s.groups.push(memGroup{version: s.cv, writes: len(s.touched)})
		clear(s.touched)
		s.touched = s.touched[:0]
	}
	s.cv = 0
}

// abort undoes the group at s.cv, which is never published: every version
// it wrote goes, and keys it created with them.
func (s *memStore) abort() {
	for _, n := range s.touched {
		if head := n.versions.Load(); head != nil && head.version == s.cv {
			n.versions.Store(head.older.Load())
		}
		if n.versions.Load() == nil {
			s.unlink(n)
		}
	}
	clear(s.touched)
	s.touched = s.touched[:0]
	if dels := s.loadDels(); len(dels) > 0 && dels[len(dels)-1].version == s.cv {
		i := len(dels)
		for i > 0 && dels[i-1].version == s.cv {
			i--
		}
		nd := dels[:i:i]
		s.dels.Store(&nd)
	}
	s.cv = 0
}

// unlink removes n from the skiplist. Readers standing on n go on through
// its own tower, which still leads to the rest of the list; a key inserted
// after n's removal has a version above every read version in use, so
// they miss nothing they could see.
func (s *memStore) unlink(n *memNode) {
	var preds [maxMemHeight]*memNode
	s.seekGE(n.key, &preds)
	for l := len(n.next) - 1; l >= 0; l-- {
		if preds[l].next[l].Load() == n {
			preds[l].next[l].Store(n.next[l].Load())
		}
	}
}

// age drops what no read version >= floor needs, group by group as they
// fall below it (see memStore): a version v <= floor written by a group
// answers every read at floor or above that older versions of its key
// could, so they go; and if v is a deletion with nothing newer, the key
// goes. Each version is dropped once, so aging costs O(1) per write.
func (s *memStore) age(floor int64) {
	if floor <= s.floor.Load() {
		return
	}
	s.floor.Store(floor) // before dropping anything
	for s.groups.len() > 0 && s.groups.front().version <= floor {
		g := s.groups.pop()
		for range g.writes {
			w := s.writes.pop()
			w.mv.older.Store(nil)
			if w.n.versions.Load() != w.mv {
				continue // a newer version drops this one when it ages
			}
			if !w.mv.present {
				w.n.versions.Store(nil)
				s.unlink(w.n)
				continue
			}
			// The key's only version now, kept until it is written
			// again: out of its block (see newVersion). A reader that
			// loaded the old one reads the same fields.
			w.n.versions.Store(&memVersion{version: w.mv.version, seq: w.mv.seq, present: true, value: w.mv.value})
		}
	}
	// Range deletions at or below the floor: drop what each hides, then
	// the deletion itself (in that order, so a reader that no longer sees
	// the deletion no longer sees what it hid either).
	if dels := s.loadDels(); len(dels) > 0 && dels[0].version <= floor {
		i := 0
		for i < len(dels) && dels[i].version <= floor {
			s.sweep(&dels[i])
			i++
		}
		nd := slices.Clone(dels[i:])
		s.dels.Store(&nd)
	}
}

// sweep drops the versions d hides, once no read version it does not
// apply to is in use (d.version <= floor): each key of [d.begin, d.end)
// loses its versions older than d, and a key left with none leaves the
// skiplist, spliced out in one pass over the range (O(keys in range), not
// a search per key). Readers at or above the floor never saw what goes.
func (s *memStore) sweep(d *memRangeDel) {
	var preds [maxMemHeight]*memNode
	s.seekGE(d.begin, &preds)
	for n := preds[0].next[0].Load(); n != nil && bytes.Compare(n.key, d.end) < 0; {
		next := n.next[0].Load()
		var newer *memVersion // the oldest version d does not hide
		mv := n.versions.Load()
		for mv != nil && !d.hides(n.key, mv) {
			newer, mv = mv, mv.older.Load()
		}
		switch {
		case mv == nil: // nothing hidden
		case newer != nil:
			newer.older.Store(nil)
		default: // every version hidden: the key goes
			n.versions.Store(nil)
			for l := range n.next {
				preds[l].next[l].Store(n.next[l].Load())
			}
			n = next
			continue
		}
		for l := range n.next {
			preds[l] = n
		}
		n = next
	}
}

// fifo is a queue in chunks of fifoChunk entries: pushing never copies what
// is queued, and a drained chunk is reused.
type fifo[T any] struct {
	chunks [][]T // chunks[0][head:] is the front
	head   int
	n      int
	spare  []T
}

const fifoChunk = 1024

func (q *fifo[T]) len() int { return q.n }

func (q *fifo[T]) front() *T { return &q.chunks[0][q.head] }

func (q *fifo[T]) push(x T) {
	last := len(q.chunks) - 1
	if last < 0 || len(q.chunks[last]) == fifoChunk {
		c := q.spare
		q.spare = nil
		if c == nil {
			c = make([]T, 0, fifoChunk)
		}
		q.chunks = append(q.chunks, c)
		last++
	}
	q.chunks[last] = append(q.chunks[last], x)
	q.n++
}

// pop removes and returns the front; the queue must not be empty.
func (q *fifo[T]) pop() T {
	c := q.chunks[0]
	x := c[q.head]
	var zero T
	c[q.head] = zero
	q.head++
	q.n--
	if q.head == len(c) && (len(c) == fifoChunk || q.n == 0) {
		q.head = 0
		q.spare = c[:0]
		q.chunks[0] = nil
		q.chunks = q.chunks[1:]
	}
	return x
}
