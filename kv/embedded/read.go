package embedded

import (
	"bytes"
	"sort"

	"github.com/idemkv/idemkv/kv"
)

// Reads: read-your-writes merge of the snapshot at the read version with
// the transaction's own writes, and the read conflict ranges they add.

func (t *transaction) Get(key []byte) *kv.Future[[]byte] { return t.get(key, false) }

func (t *transaction) GetRange(r kv.Range, opts kv.RangeOptions) *kv.Future[[]kv.KeyValue] {
	return t.getRange(r, opts, false)
}

func (t *transaction) GetReadVersion() *kv.Future[int64] {
	if err := t.live(); err != nil {
		return kv.Failed[int64](err)
	}
	if !t.a.hasRV {
		v, err := t.db.readVersion()
		if err != nil {
			return kv.Failed[int64](err)
		}
		t.a.rv, t.a.hasRV, t.a.read = v, true, true
	}
	return kv.Ready(t.a.rv, nil)
}

func (t *transaction) Snapshot() kv.ReadTransaction { return snapshotView{t} }

// snapshotView reads without adding read conflict ranges.
type snapshotView struct{ t *transaction }

func (s snapshotView) Get(key []byte) *kv.Future[[]byte] { return s.t.get(key, true) }
func (s snapshotView) GetRange(r kv.Range, opts kv.RangeOptions) *kv.Future[[]kv.KeyValue] {
	return s.t.getRange(r, opts, true)
}
func (s snapshotView) GetReadVersion() *kv.Future[int64] { return s.t.GetReadVersion() }

func (t *transaction) maxReadKey() []byte {
	if t.a.accessSystem || t.a.readSystem {
		return []byte{0xff, 0xff}
	}
	return []byte{0xff}
}

func (t *transaction) maxWriteKey() []byte {
	if t.a.accessSystem {
		return []byte{0xff, 0xff}
	}
	return []byte{0xff}
}

func (t *transaction) get(key []byte, snapshot bool) *kv.Future[[]byte] {
	if err := t.readCheck(); err != nil {
		return kv.Failed[[]byte](err)
	}
	if bytes.HasPrefix(key, specialKeyPrefix) {
		return t.getSpecial(key)
	}
	if bytes.Compare(key, t.maxReadKey()) >= 0 && !bytes.Equal(key, metadataVersionKey) {
		return kv.Failed[[]byte](kv.Errorf(kv.CodeKeyOutsideLegalRange, "key %q is in the system keyspace; use SetReadSystemKeys or SetAccessSystemKeys", trunc(key)))
	}
	if len(key) > maxKeySize(key) {
		// No key this long can exist (FoundationDB answers absent too).
		return kv.Ready[[]byte](nil, nil)
	}
	if len(t.a.writes.unreadable) > 0 && t.a.writes.touchesUnreadable(kv.SingleKeyRange(key)) {
		return kv.Failed[[]byte](kv.Errorf(kv.CodeAccessedUnreadable, "key %q is where a SetVersionstampedKey of this transaction may land", trunc(key)))
	}
	e, ok := t.a.writes.get(key)
	if ok && e.kind == entryUnreadable {
		return kv.Failed[[]byte](kv.Errorf(kv.CodeAccessedUnreadable, "key %q was written by SetVersionstampedValue", trunc(key)))
	}
	if ok && e.kind == entryKnown {
		return kv.Ready(clone(e.value, e.present), nil)
	}
	if !ok && t.a.writes.inCleared(key) {
		return kv.Ready[[]byte](nil, nil)
	}
	s, err := t.snapshotForRead()
	if err != nil {
		return kv.Failed[[]byte](err)
	}
	v, present, err := s.get(key)
	if err != nil {
		return kv.Failed[[]byte](t.readErr(err))
	}
	if ok {
		v, present = e.resolve(v, present)
	}
	if !snapshot {
		t.addRead(t.readCopyKey(key))
	}
	return kv.Ready(clone(v, present), nil)
}

func (t *transaction) getRange(r kv.Range, opts kv.RangeOptions, snapshot bool) *kv.Future[[]kv.KeyValue] {
	if err := t.readCheck(); err != nil {
		return kv.Failed[[]kv.KeyValue](err)
	}
	if opts.Limit < 0 {
		return kv.Failed[[]kv.KeyValue](kv.Errorf(codeRangeLimitsInvalid, "range limit %d is negative (0 means no limit)", opts.Limit))
	}
	if max := t.maxReadKey(); bytes.Compare(r.Begin, max) > 0 || bytes.Compare(r.End, max) > 0 {
		return kv.Failed[[]kv.KeyValue](kv.Errorf(kv.CodeKeyOutsideLegalRange, "range %v reaches the system keyspace; use SetReadSystemKeys or SetAccessSystemKeys", r))
	}
	if r.Empty() {
		return kv.Ready[[]kv.KeyValue](nil, nil)
	}
	s, err := t.snapshotForRead()
	if err != nil {
		return kv.Failed[[]kv.KeyValue](err)
	}
	out, full, err := t.mergeRange(s, r, opts)
	if err != nil {
		return kv.Failed[[]kv.KeyValue](t.readErr(err))
	}
	if len(t.a.writes.unreadable) > 0 {
		// The part of r the read went through: all of it, or up to the
		// last key a limit stopped at.
		covered := r
		if !full && len(out) > 0 {
			if last := out[len(out)-1].Key; opts.Reverse {
				covered.Begin = last
			} else {
				covered.End = kv.KeyAfter(last)
			}
		}
		if t.a.writes.touchesUnreadable(covered) {
			return kv.Failed[[]kv.KeyValue](kv.Errorf(kv.CodeAccessedUnreadable, "range %v reaches where a SetVersionstampedKey of this transaction may land", r))
		}
	}
	if !snapshot {
		cr := t.readCopy(r.Begin, r.End)
		if !full && len(out) > 0 {
			// A limited read conflicts only on the part it actually read.
			last := out[len(out)-1].Key
			if opts.Reverse {
				cr.Begin = clone(last, true)
			} else {
				cr.End = kv.KeyAfter(last)
			}
		}
		t.addReadExceptOwn(cr)
	}
	return kv.Ready(out, nil)
}

// mergeRange merges the snapshot's keys in r with the transaction's own
// writes. full reports whether the whole range was read (no limit cut it).
func (t *transaction) mergeRange(s *snapshot, r kv.Range, opts kv.RangeOptions) (out []kv.KeyValue, full bool, err error) {
	ents := t.a.writes.entriesIn(r.Begin, r.End, opts.Reverse)
	before := func(a, b []byte) bool { // a comes first in scan order
		if opts.Reverse {
			return bytes.Compare(a, b) > 0
		}
		return bytes.Compare(a, b) < 0
	}
	limitHit := func() bool { return opts.Limit > 0 && len(out) >= opts.Limit }
	emitEntry := func(e *entry, base []byte, present bool) error {
		if e.kind == entryUnreadable {
			return kv.Errorf(kv.CodeAccessedUnreadable, "range read reached key %q written by SetVersionstampedValue", trunc(e.key))
		}
		if v, ok := e.resolve(base, present); ok {
			out = append(out, kv.KeyValue{Key: clone(e.key, true), Value: clone(v, true)})
		}
		return nil
	}
	i := 0
	stopped := false
	serr := s.scan(r.Begin, r.End, opts.Reverse, func(k, v []byte) (bool, []byte) {
		// Entries strictly before k have no snapshot value.
		for i < len(ents) && before(ents[i].key, k) {
			if err = emitEntry(ents[i], nil, false); err != nil {
				return false, nil
			}
			i++
			if limitHit() {
				stopped = true
				return false, nil
			}
		}
		if i < len(ents) && bytes.Equal(ents[i].key, k) {
			err = emitEntry(ents[i], v, true)
			i++
		} else if c, in := t.a.writes.clearedAt(k); in {
			// Skip the rest of the cleared range in one seek; own writes
			// inside it are entries, emitted as the scan passes them.
			if opts.Reverse {
				return true, c.Begin
			}
			return true, c.End
		} else {
			out = append(out, kv.KeyValue{Key: clone(k, true), Value: clone(v, true)})
		}
		if err != nil {
			return false, nil
		}
		if limitHit() {
			stopped = true
			return false, nil
		}
		return true, nil
	})
	if serr != nil {
		return nil, false, serr
	}
	if err != nil {
		return nil, false, err
	}
	for !stopped && i < len(ents) {
		if err := emitEntry(ents[i], nil, false); err != nil {
			return nil, false, err
		}
		i++
		if limitHit() {
			stopped = true
		}
	}
	return out, !stopped, nil
}

// readErr prefers kv.ErrClosed to the transaction_too_old a snapshot
// released by Close reports.
func (t *transaction) readErr(err error) error {
	if t.db.closed.Load() {
		return errClosed("read")
	}
	return err
}

// clone copies v, keeping nil for absent and non-nil for present-but-empty.
func clone(v []byte, present bool) []byte {
	if !present {
		return nil
	}
	return append([]byte{}, v...)
}

// readCopy copies a read conflict range's bounds into the attempt's read
// arena, which its commit request carries, while it has room, else into
// one allocation. Read conflict ranges are only read by the committer's
// check, never kept, so the arena is reused with the request.
func (t *transaction) readCopy(begin, end []byte) kv.Range {
	buf, b := t.readBytes(len(begin)+len(end)), len(begin)
	copy(buf, begin)
	copy(buf[b:], end)
	return kv.Range{Begin: buf[:b:b], End: buf[b:]}
}

// readCopyKey is readCopy of the single key range of key.
func (t *transaction) readCopyKey(key []byte) kv.Range {
	k := len(key)
	buf := t.readBytes(k + k + 1)
	copy(buf, key)
	copy(buf[k:], key)
	buf[k+k] = 0
	return kv.Range{Begin: buf[:k:k], End: buf[k:]}
}

// readBytes returns n bytes of the read arena, or of a new allocation if
// it has no room left.
func (t *transaction) readBytes(n int) []byte {
	if t.a.req == nil {
		t.request()
	}
	a := t.a.arena
	if cap(a)-len(a) < n {
		return make([]byte, n)
	}
	t.a.arena = a[:len(a)+n]
	return a[len(a) : len(a)+n : len(a)+n]
}

// cloneRange copies r's bounds into one allocation, each capacity-limited.
func cloneRange(r kv.Range) kv.Range {
	b, e := len(r.Begin), len(r.End)
	buf := make([]byte, b+e)
	copy(buf, r.Begin)
	copy(buf[b:], r.End)
	return kv.Range{Begin: buf[:b:b], End: buf[b:]}
}

// trunc shortens a key for messages.
func trunc(k []byte) []byte {
	if len(k) > 64 {
		return k[:64]
	}
	return k
}

func (t *transaction) addRead(r kv.Range) {
	if t.a.req == nil {
		t.request()
	}
	t.a.reads = append(t.a.reads, r)
	t.a.size += int64(len(r.Begin) + len(r.End))
}

// addReadExceptOwn adds the read conflict ranges of a range read: r minus
// the parts the transaction's own writes fully determine (cleared ranges
// and keys with a known value), as FoundationDB's read-your-writes layer
// does, so that a concurrent write to a key this transaction overwrote
// blindly is not a conflict.
func (t *transaction) addReadExceptOwn(r kv.Range) {
	var holes []kv.Range
	for _, c := range t.a.writes.cleared {
		if bytes.Compare(c.End, r.Begin) > 0 && bytes.Compare(c.Begin, r.End) < 0 {
			holes = append(holes, c)
		}
	}
	for _, e := range t.a.writes.entriesIn(r.Begin, r.End, false) {
		if e.kind == entryKnown {
			holes = append(holes, kv.SingleKeyRange(e.key))
		}
	}
	if len(holes) == 0 {
		t.addRead(r)
		return
	}
	sort.Slice(holes, func(i, j int) bool { return bytes.Compare(holes[i].Begin, holes[j].Begin) < 0 })
	cur := r.Begin
	for _, h := range holes {
		if bytes.Compare(h.Begin, cur) > 0 {
			end := h.Begin
			if bytes.Compare(end, r.End) > 0 {
				end = r.End
			}
			if bytes.Compare(cur, end) < 0 {
				t.addRead(kv.Range{Begin: cur, End: end})
			}
		}
		if bytes.Compare(h.End, cur) > 0 {
			cur = h.End
		}
	}
	if bytes.Compare(cur, r.End) < 0 {
		t.addRead(kv.Range{Begin: cur, End: r.End})
	}
}

func (t *transaction) addWrite(r kv.Range) {
	if t.a.req == nil {
		t.request()
	}
	t.a.wconf = append(t.a.wconf, r)
	t.a.size += int64(len(r.Begin) + len(r.End))
}

func (t *transaction) checkConflictRange(r kv.Range, max []byte) error {
	if err := t.live(); err != nil {
		return err
	}
	if t.a.commitStarted {
		return usedDuringCommit()
	}
	if bytes.Compare(r.Begin, r.End) > 0 {
		return kv.Errorf(kv.CodeInvertedRange, "conflict range %v has begin after end", r)
	}
	if bytes.Compare(r.Begin, max) > 0 || bytes.Compare(r.End, max) > 0 {
		return kv.Errorf(kv.CodeKeyOutsideLegalRange, "conflict range %v reaches the system keyspace; use SetAccessSystemKeys", r)
	}
	return nil
}

func (t *transaction) AddReadConflictRange(r kv.Range) error {
	if err := t.checkConflictRange(r, t.maxReadKey()); err != nil {
		return err
	}
	if !r.Empty() {
		t.addRead(t.readCopy(r.Begin, r.End))
	}
	return nil
}

func (t *transaction) AddWriteConflictRange(r kv.Range) error {
	if err := t.checkConflictRange(r, t.maxWriteKey()); err != nil {
		return err
	}
	if !r.Empty() {
		t.addWrite(cloneRange(r))
	}
	return nil
}

func (t *transaction) GetApproximateSize() *kv.Future[int64] {
	if err := t.live(); err != nil {
		return kv.Failed[int64](err)
	}
	return kv.Ready(t.a.size, nil)
}
