package embedded

import (
	"bytes"
	"slices"

	"github.com/idemkv/idemkv/kv"
)

// Writes: validated when made (an invalid one becomes the deferred error),
// recorded in order for the committer, mirrored in the write map for reads,
// and covered by write conflict ranges.

// metadataVersionKey is FoundationDB's \xff/metadataVersion: readable
// without options, writable only by SetVersionstampedValue with
// metadataVersionRequiredValue (a stamp at offset 0), whatever the options.
var (
	metadataVersionKey           = []byte("\xff/metadataVersion")
	metadataVersionRequiredValue = make([]byte, 14)
)

// systemKeySizeLimit is FoundationDB's SYSTEM_KEY_SIZE_LIMIT: keys in the
// system keyspace may be up to 30,000 bytes.
const systemKeySizeLimit = 30_000

// maxKeySize is the size limit for key: kv.MaxKeySize, or
// systemKeySizeLimit in the system keyspace (getMaxWriteKeySize).
func maxKeySize(key []byte) int {
	if len(key) > 0 && key[0] == kv.SystemPrefix {
		return systemKeySizeLimit
	}
	return kv.MaxKeySize
}

// writable reports whether writes may be recorded: no deferred error yet
// and Commit not called. A write after Commit is dropped (FoundationDB
// makes it a deferred used_during_commit; every later read and Commit
// report that here too).
func (t *transaction) writable() bool {
	return t.a.deferred == nil && !t.a.commitStarted
}

// writeCheck validates a write's key and value; an error is deferred.
func (t *transaction) writeCheck(key []byte, valueLen int) bool {
	if !t.writable() {
		return false
	}
	var err error
	switch {
	case bytes.Equal(key, metadataVersionKey):
		err = kv.Errorf(kv.CodeClientInvalidOperation, "\xff/metadataVersion can only be written by SetVersionstampedValue with a stamp at offset 0")
	case bytes.Compare(key, t.maxWriteKey()) >= 0:
		err = kv.Errorf(kv.CodeKeyOutsideLegalRange, "key %q is in the system keyspace; use SetAccessSystemKeys", trunc(key))
	case len(key) > maxKeySize(key):
		err = kv.Errorf(kv.CodeKeyTooLarge, "key of %d bytes exceeds the limit of %d", len(key), maxKeySize(key))
	case valueLen > kv.MaxValueSize:
		err = kv.Errorf(kv.CodeValueTooLarge, "value of %d bytes exceeds the limit of %d", valueLen, kv.MaxValueSize)
	}
	if err != nil {
		t.a.deferred = err
		return false
	}
	return true
}

// record appends m to the mutations the commit replays. A Set or Clear
// supersedes the earlier point writes of its key (their values are
// dropped), so 200 overwrites of one key send one mutation, as
// FoundationDB's write map does; GetApproximateSize still counts every
// call. It runs before the write map is updated, so a key without an
// entry there has no earlier point write to supersede (or only ones a
// ClearRange already covered): the index of point writes by key is built
// only once some key is written twice, which most transactions never do.
func (t *transaction) record(m mutation) {
	t.a.size += int64(len(m.key) + len(m.end) + len(m.value))
	point := m.kind == mutSet || m.kind == mutClear ||
		m.kind == mutAtomic && m.op != kv.SetVersionstampedKey
	if point && t.a.points == nil {
		if _, rewrite := t.a.writes.get(m.key); rewrite {
			t.a.points = make(map[string][]int)
			for i, o := range t.a.muts {
				if o.kind == mutSet || o.kind == mutClear || o.kind == mutAtomic && o.op != kv.SetVersionstampedKey {
					t.a.points[string(o.key)] = append(t.a.points[string(o.key)], i)
				}
			}
		}
	}
	if point && t.a.points != nil {
		k := string(m.key)
		if m.kind != mutAtomic {
			for _, i := range t.a.points[k] {
				t.a.muts[i] = mutation{kind: mutSuperseded}
			}
			t.a.points[k] = t.a.points[k][:0]
		}
		t.a.points[k] = append(t.a.points[k], len(t.a.muts))
	}
	if t.a.req == nil {
		t.request()
	}
	t.a.muts = append(t.a.muts, m)
}

func (t *transaction) Set(key, value []byte) {
	if !t.writeCheck(key, len(value)) {
		return
	}
	kr, v := keyRangeWith(key, value)
	t.record(mutation{kind: mutSet, key: kr.Begin, value: v})
	t.a.writes.set(kr.Begin, v)
	t.addWrite(kr)
}

// sharedValueMax is the largest value keyRangeWith copies into its key's
// allocation. The key outlives its value there — the conflict window keeps
// it five seconds, the in-memory store as long as the key exists — so a
// large value gets its own.
const sharedValueMax = 64

// keyRange is kv.SingleKeyRange(key) on a copy of key, in one allocation:
// Begin is the copy (capacity-limited, so an append cannot reach End).
func keyRange(key []byte) kv.Range {
	buf := make([]byte, len(key)+1)
	copy(buf, key)
	return kv.Range{Begin: buf[:len(key):len(key)], End: buf}
}

// keyRangeWith is keyRange(key) and a copy of value (never nil), in one
// allocation when value is at most sharedValueMax bytes; each slice is
// capacity-limited, so none can grow into another.
func keyRangeWith(key, value []byte) (kv.Range, []byte) {
	if len(value) > sharedValueMax {
		return keyRange(key), clone(value, true)
	}
	k := len(key)
	buf := make([]byte, k+1+len(value))
	copy(buf, key)
	copy(buf[k+1:], value)
	return kv.Range{Begin: buf[:k:k], End: buf[: k+1 : k+1]}, buf[k+1:]
}

func (t *transaction) Clear(key []byte) {
	if t.writable() && len(key) > maxKeySize(key) && bytes.Compare(key, t.maxWriteKey()) < 0 {
		// No key that long exists: FoundationDB accepts the clear and
		// drops it.
		return
	}
	if !t.writeCheck(key, 0) {
		return
	}
	kr := keyRange(key)
	t.record(mutation{kind: mutClear, key: kr.Begin})
	t.a.writes.clear(kr.Begin)
	t.addWrite(kr)
}

func (t *transaction) ClearRange(r kv.Range) {
	if !t.writable() {
		return
	}
	if bytes.Compare(r.Begin, r.End) > 0 {
		t.a.deferred = kv.Errorf(kv.CodeInvertedRange, "ClearRange %v has begin after end", r)
		return
	}
	if max := t.maxWriteKey(); bytes.Compare(r.Begin, max) > 0 || bytes.Compare(r.End, max) > 0 {
		t.a.deferred = kv.Errorf(kv.CodeKeyOutsideLegalRange, "ClearRange %v reaches the system keyspace; use SetAccessSystemKeys", r)
		return
	}
	if r.Empty() {
		return
	}
	cr := kv.Range{Begin: clone(r.Begin, true), End: clone(r.End, true)}
	t.record(mutation{kind: mutClearRange, key: cr.Begin, end: cr.End})
	t.a.writes.clearRange(cr)
	t.addWrite(cr)
}

func (t *transaction) Atomic(op kv.MutationType, key, param []byte) {
	if !t.writable() {
		return
	}
	// FoundationDB's order of checks (RYW atomicOp): the metadata version
	// key, the key's range, the mutation type, then the sizes — of the key
	// and parameter as given, a versionstamp's four offset bytes included.
	switch {
	case bytes.Equal(key, metadataVersionKey):
		if op != kv.SetVersionstampedValue || !bytes.Equal(param, metadataVersionRequiredValue) {
			t.a.deferred = kv.Errorf(kv.CodeClientInvalidOperation, "\xff/metadataVersion can only be written by SetVersionstampedValue with a stamp at offset 0")
			return
		}
	case bytes.Compare(key, t.maxWriteKey()) >= 0:
		t.a.deferred = kv.Errorf(kv.CodeKeyOutsideLegalRange, "key %q is in the system keyspace; use SetAccessSystemKeys", trunc(key))
		return
	}
	if !op.Valid() {
		t.a.deferred = kv.Errorf(codeInvalidMutationType, "unknown atomic operation %d", int(op))
		return
	}
	if len(key) > maxKeySize(key) {
		t.a.deferred = kv.Errorf(kv.CodeKeyTooLarge, "key of %d bytes exceeds the limit of %d", len(key), maxKeySize(key))
		return
	}
	if len(param) > kv.MaxValueSize {
		t.a.deferred = kv.Errorf(kv.CodeValueTooLarge, "parameter of %d bytes exceeds the limit of %d", len(param), kv.MaxValueSize)
		return
	}
	switch op {
	case kv.SetVersionstampedKey:
		if _, err := kv.VersionstampOffset(key); err != nil {
			t.a.deferred = err
			return
		}
		// The key may land anywhere in [lo, hi): unreadable until commit
		// (accessed_unreadable), and not a write conflict range — the
		// committer adds the key it actually writes, as FoundationDB's
		// commit proxy does, so readers of the range are not conflicted
		// by every possible stamp. lo uses the read version, if any, as
		// getVersionstampKeyRange does: the stamp will be above it.
		k, p := clone(key, true), clone(param, true)
		var low kv.Versionstamp
		if t.a.hasRV {
			low = kv.NewVersionstamp(t.a.rv+1, 0)
		}
		lo, _ := kv.PlaceVersionstamp(k, low)
		hi, _ := kv.PlaceVersionstamp(k, kv.Versionstamp{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
		end := kv.KeyAfter(hi)
		if max := t.maxReadKey(); bytes.Compare(end, max) > 0 {
			end = max // clamped, as getVersionstampKeyRange does
		}
		t.record(mutation{kind: mutAtomic, op: op, key: k, value: p})
		t.a.writes.unreadableRange(kv.Range{Begin: lo, End: end})
		return
	case kv.SetVersionstampedValue:
		if _, err := kv.VersionstampOffset(param); err != nil {
			t.a.deferred = err
			return
		}
		kr, p := keyRangeWith(key, param)
		t.record(mutation{kind: mutAtomic, op: op, key: kr.Begin, value: p})
		t.a.writes.setUnreadable(kr.Begin, p)
		t.addWrite(kr)
		return
	}
	kr, p := keyRangeWith(key, param)
	t.record(mutation{kind: mutAtomic, op: op, key: kr.Begin, value: p})
	t.a.writes.atomic(kr.Begin, op, p)
	t.addWrite(kr)
}

// SetReadVersion fixes the read version. As FoundationDB's setVersion, it
// fails (deferred to the next read or Commit) with
// read_version_already_set (2010) once the transaction has a read version
// — from GetReadVersion, a read or an earlier SetReadVersion — and with
// version_invalid (2011) for a version <= 0.
func (t *transaction) SetReadVersion(v int64) {
	switch {
	case t.a.deferred != nil:
	case t.a.hasRV:
		t.a.deferred = kv.Errorf(codeReadVersionAlreadySet, "SetReadVersion(%d): the transaction already reads at %d", v, t.a.rv)
	case v <= 0:
		t.a.deferred = kv.Errorf(codeVersionInvalid, "SetReadVersion(%d): versions are positive", v)
	default:
		t.a.rv, t.a.hasRV = v, true
	}
}

// sentSize is the size FoundationDB's client would check against the size
// limit at commit: the commit request's mutations after read-your-writes
// coalescing (one per key for sets and clears; atomic operations on an
// unread base each), cleared ranges, versionstamped keys, and the read and
// write conflict ranges after merging.
func (t *transaction) sentSize() int64 {
	var n int64
	t.a.writes.keys.ascend(func(e *entry) bool {
		switch e.kind {
		case entryAtomic:
			for _, o := range e.ops {
				n += int64(len(e.key) + len(o.param))
			}
		default:
			n += int64(len(e.key) + len(e.value))
		}
		return true
	})
	for _, c := range t.a.writes.cleared {
		n += int64(len(c.Begin) + len(c.End))
	}
	for _, m := range t.a.muts {
		if m.kind == mutAtomic && m.op == kv.SetVersionstampedKey {
			n += int64(len(m.key) + len(m.value))
		}
	}
	return n + rangesSize(mergeRanges(t.a.reads)) + rangesSize(mergeRanges(t.a.wconf))
}

// mergeRanges returns rs sorted, with overlapping and touching ranges
// merged, as FoundationDB's client sends conflict ranges.
func mergeRanges(rs []kv.Range) []kv.Range {
	if len(rs) < 2 {
		return rs
	}
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b kv.Range) int { return bytes.Compare(a.Begin, b.Begin) })
	out := s[:1]
	for _, r := range s[1:] {
		last := &out[len(out)-1]
		if bytes.Compare(r.Begin, last.End) <= 0 {
			if bytes.Compare(r.End, last.End) > 0 {
				last.End = r.End
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

func rangesSize(rs []kv.Range) int64 {
	var n int64
	for _, r := range rs {
		n += int64(len(r.Begin) + len(r.End))
	}
	return n
}
