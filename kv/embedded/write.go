package embedded

import (
	"bytes"

	"github.com/idemkv/idemkv/kv"
)

// Writes: validated when made (an invalid one becomes the deferred error),
// recorded in order for the committer, mirrored in the write map for reads,
// and covered by write conflict ranges.

// writeCheck validates a write's key and value; an error is deferred.
func (t *transaction) writeCheck(key []byte, valueLen int) bool {
	if t.a.deferred != nil || t.a.committing {
		return false
	}
	var err error
	switch {
	case bytes.Compare(key, t.maxWriteKey()) >= 0:
		err = kv.Errorf(kv.CodeKeyOutsideLegalRange, "key %q is in the system keyspace; use SetAccessSystemKeys", trunc(key))
	case len(key) > kv.MaxKeySize:
		err = kv.Errorf(kv.CodeKeyTooLarge, "key of %d bytes exceeds the limit of %d", len(key), kv.MaxKeySize)
	case valueLen > kv.MaxValueSize:
		err = kv.Errorf(kv.CodeValueTooLarge, "value of %d bytes exceeds the limit of %d", valueLen, kv.MaxValueSize)
	}
	if err != nil {
		t.a.deferred = err
		return false
	}
	return true
}

func (t *transaction) record(m mutation) {
	t.a.muts = append(t.a.muts, m)
	t.a.size += int64(len(m.key) + len(m.end) + len(m.value))
}

func (t *transaction) Set(key, value []byte) {
	if !t.writeCheck(key, len(value)) {
		return
	}
	k, v := clone(key, true), clone(value, true)
	t.record(mutation{kind: mutSet, key: k, value: v})
	t.a.writes.set(k, v)
	t.addWrite(kv.SingleKeyRange(k))
}

func (t *transaction) Clear(key []byte) {
	if !t.writeCheck(key, 0) {
		return
	}
	k := clone(key, true)
	t.record(mutation{kind: mutClear, key: k})
	t.a.writes.clear(k)
	t.addWrite(kv.SingleKeyRange(k))
}

func (t *transaction) ClearRange(r kv.Range) {
	if t.a.deferred != nil || t.a.committing {
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
	if t.a.deferred != nil || t.a.committing {
		return
	}
	if !op.Valid() {
		t.a.deferred = kv.Errorf(codeInvalidMutationType, "unknown atomic operation %d", int(op))
		return
	}
	switch op {
	case kv.SetVersionstampedKey:
		if _, err := kv.VersionstampOffset(key); err != nil {
			t.a.deferred = err
			return
		}
		if !t.writeCheck(key[:len(key)-4], len(param)) {
			return
		}
		k, p := clone(key, true), clone(param, true)
		t.record(mutation{kind: mutAtomic, op: op, key: k, value: p})
		lo, _ := kv.PlaceVersionstamp(k, kv.Versionstamp{})
		hi, _ := kv.PlaceVersionstamp(k, kv.Versionstamp{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
		if bytes.Compare(hi, t.maxWriteKey()) >= 0 {
			t.a.muts = t.a.muts[:len(t.a.muts)-1]
			t.a.deferred = kv.Errorf(kv.CodeKeyOutsideLegalRange, "versionstamped key %q can reach the system keyspace; use SetAccessSystemKeys", trunc(hi))
			return
		}
		t.addWrite(kv.Range{Begin: lo, End: kv.KeyAfter(hi)})
		return
	case kv.SetVersionstampedValue:
		if _, err := kv.VersionstampOffset(param); err != nil {
			t.a.deferred = err
			return
		}
		if !t.writeCheck(key, len(param)-4) {
			return
		}
		k, p := clone(key, true), clone(param, true)
		t.record(mutation{kind: mutAtomic, op: op, key: k, value: p})
		t.a.writes.setUnreadable(k)
		t.addWrite(kv.SingleKeyRange(k))
		return
	}
	if !t.writeCheck(key, len(param)) {
		return
	}
	k, p := clone(key, true), clone(param, true)
	t.record(mutation{kind: mutAtomic, op: op, key: k, value: p})
	t.a.writes.atomic(k, op, p)
	t.addWrite(kv.SingleKeyRange(k))
}

func (t *transaction) SetReadVersion(v int64) {
	if t.a.hasRV && t.a.read {
		// FoundationDB rejects this too (read_version_already_set); keep the
		// version already read at and remember the misuse.
		if t.a.deferred == nil && v != t.a.rv {
			t.a.deferred = kv.Errorf(kv.CodeClientInvalidOperation, "SetReadVersion(%d) after reading at %d", v, t.a.rv)
		}
		return
	}
	t.a.rv, t.a.hasRV = v, true
}
