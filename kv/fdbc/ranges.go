//go:build cgo

package fdbc

import "C"

import (
	"bytes"

	"github.com/idemkv/idemkv/kv"
)

// Key selectors and range reads, over kv/embedded's GetRange.
//
// A key selector (key, orEqual, offset) names the offset-th key after the
// last key < key (orEqual false) or <= key (orEqual true): offset 1 with
// orEqual false is "first key >= key". Resolving one reads at most |offset|
// (or 1-offset) keys, through the same read view as the operation, so a
// non-snapshot resolution adds the read conflict ranges it depended on,
// as FoundationDB's does. Past the last key a selector resolves to the end
// of the readable keyspace (\xff, or \xff\xff with system-key access);
// before the first, to the empty key.

type selector struct {
	key     []byte
	orEqual bool
	offset  int
}

// start is the first key of the keys "after" the selector's base: key
// itself, or the key after it with orEqual.
func (s selector) start() []byte {
	if s.orEqual {
		return kv.KeyAfter(s.key)
	}
	return s.key
}

// keyspaceEnd is the end of what t may read (its lock held).
func (t *transaction) keyspaceEnd() []byte {
	if t.mu.system {
		return []byte{0xff, 0xff}
	}
	return []byte{0xff}
}

// resolve returns the key sel names, reading through rd.
func resolve(rd kv.ReadTransaction, sel selector, end []byte) ([]byte, error) {
	if sel.offset >= 1 {
		if bytes.Compare(sel.start(), end) >= 0 {
			return end, nil
		}
		kvs, err := rd.GetRange(kv.Range{Begin: sel.start(), End: end}, kv.RangeOptions{Limit: sel.offset}).Get()
		if err != nil {
			return nil, err
		}
		if len(kvs) < sel.offset {
			return end, nil
		}
		return kvs[sel.offset-1].Key, nil
	}
	n := 1 - sel.offset
	b := sel.start()
	if bytes.Compare(b, end) > 0 {
		b = end
	}
	kvs, err := rd.GetRange(kv.Range{Begin: nil, End: b}, kv.RangeOptions{Limit: n, Reverse: true}).Get()
	if err != nil {
		return nil, err
	}
	if len(kvs) < n {
		return []byte{}, nil
	}
	return kvs[n-1].Key, nil
}

// bound is a selector used as a range bound: offset 1 needs no read (the
// first key >= k bounds a range exactly as k does).
func bound(rd kv.ReadTransaction, sel selector, end []byte) ([]byte, error) {
	if sel.offset == 1 {
		return sel.start(), nil
	}
	return resolve(rd, sel, end)
}

//export fdb_transaction_get_key
func fdb_transaction_get_key(h uintptr, key *byte, n int32, orEqual int32, offset int32, snapshot int32) uintptr {
	if n < 0 {
		return failed(kindKey, errClientInvalidOp)
	}
	sel := selector{key: goBytes(key, n), orEqual: orEqual != 0, offset: int(offset)}
	return read(h, kindKey, func(t *transaction) (int, *result) {
		k, err := resolve(t.reader(snapshot), sel, t.keyspaceEnd())
		if err != nil {
			return codeOf(err), nil
		}
		return errSuccess, &result{mem: cBytes(k), n: len(k)}
	})
}

// Streaming modes (the C API's values).
const (
	modeWantAll  = -2
	modeIterator = -1
	modeExact    = 0
	modeSerial   = 4
)

// modeBytes is the byte target of each streaming mode from EXACT to SERIAL
// (0: unlimited), and iterationBytes the ITERATOR mode's growing targets,
// as FoundationDB's client sets them.
var (
	modeBytes      = [...]int{0, 256, 1000, 4096, 80000}
	iterationBytes = [...]int{4096, 6144, 9216, 13824, 20736, 31104, 46656, 69984, 80000}
)

// batchRows is how many rows one engine read asks for while filling a
// byte target, so that a large range is never read further than the
// target (plus one batch) needs.
const batchRows = 64

// rangeLimits returns the row and byte limits of one get_range call (0:
// none), or FoundationDB's error for invalid ones.
func rangeLimits(limit, targetBytes, mode, iteration int) (rows, bytes int, code int) {
	if limit < 0 || targetBytes < 0 {
		return 0, 0, errRangeLimitsInvalid
	}
	if mode == modeWantAll {
		mode = modeSerial
	}
	var mb int
	switch {
	case mode == modeIterator:
		if iteration <= 0 {
			return 0, 0, errClientInvalidOp
		}
		mb = iterationBytes[min(iteration, len(iterationBytes))-1]
	case mode >= modeExact && mode <= modeSerial:
		if mode == modeExact && limit == 0 && targetBytes == 0 {
			return 0, 0, errExactModeNoLimits
		}
		mb = modeBytes[mode]
	default:
		return 0, 0, errClientInvalidOp
	}
	bytes = targetBytes
	if bytes == 0 || (mb != 0 && mb < bytes) {
		bytes = mb
	}
	return limit, bytes, errSuccess
}

// readRange reads [b, e) through rd until the row limit or byte target is
// met or the range ends, in batches, and reports whether more may remain.
func readRange(rd kv.ReadTransaction, r kv.Range, rows, target int, reverse bool) ([]kv.KeyValue, bool, error) {
	var out []kv.KeyValue
	size := 0
	cur := r
	for {
		ask := batchRows
		if rows > 0 {
			ask = min(ask, rows-len(out))
		}
		if target == 0 && rows > 0 {
			ask = rows - len(out) // only a row limit: one read
		}
		kvs, err := rd.GetRange(cur, kv.RangeOptions{Limit: ask, Reverse: reverse}).Get()
		if err != nil {
			return nil, false, err
		}
		for _, p := range kvs {
			out = append(out, p)
			size += len(p.Key) + len(p.Value)
			if (rows > 0 && len(out) >= rows) || (target > 0 && size >= target) {
				return out, true, nil
			}
		}
		if len(kvs) < ask {
			return out, false, nil
		}
		last := kvs[len(kvs)-1].Key
		if reverse {
			cur.End = last
		} else {
			cur.Begin = kv.KeyAfter(last)
		}
	}
}

//export fdb_transaction_get_range
func fdb_transaction_get_range(h uintptr,
	bk *byte, bkn int32, bOrEqual int32, bOffset int32,
	ek *byte, ekn int32, eOrEqual int32, eOffset int32,
	limit int32, targetBytes int32, mode int32, iteration int32, snapshot int32, reverse int32) uintptr {
	if bkn < 0 || ekn < 0 {
		return failed(kindKeyValues, errClientInvalidOp)
	}
	rows, target, code := rangeLimits(int(limit), int(targetBytes), int(mode), int(iteration))
	if code != 0 {
		return failed(kindKeyValues, code)
	}
	bsel := selector{key: goBytes(bk, bkn), orEqual: bOrEqual != 0, offset: int(bOffset)}
	esel := selector{key: goBytes(ek, ekn), orEqual: eOrEqual != 0, offset: int(eOffset)}
	return read(h, kindKeyValues, func(t *transaction) (int, *result) {
		rd := t.reader(snapshot)
		end := t.keyspaceEnd()
		b, err := bound(rd, bsel, end)
		if err != nil {
			return codeOf(err), nil
		}
		e, err := bound(rd, esel, end)
		if err != nil {
			return codeOf(err), nil
		}
		if bytes.Compare(b, e) >= 0 {
			return errSuccess, &result{mem: keyValueArray(nil)}
		}
		kvs, more, err := readRange(rd, kv.Range{Begin: b, End: e}, rows, target, reverse != 0)
		if err != nil {
			return codeOf(err), nil
		}
		return errSuccess, &result{mem: keyValueArray(kvs), n: len(kvs), more: more}
	})
}

// fdb_transaction_get_estimated_range_size_bytes sums the sizes of the
// keys and values in the range (a snapshot read, in batches; FoundationDB
// samples instead, so its figure is rougher).
//
//export fdb_transaction_get_estimated_range_size_bytes
func fdb_transaction_get_estimated_range_size_bytes(h uintptr, b *byte, bn int32, e *byte, en int32) uintptr {
	if bn < 0 || en < 0 {
		return failed(kindInt64, errClientInvalidOp)
	}
	r := kv.Range{Begin: goBytes(b, bn), End: goBytes(e, en)}
	return read(h, kindInt64, func(t *transaction) (int, *result) {
		var total int64
		err := scan(t.tr.Snapshot(), r, func(p kv.KeyValue) { total += int64(len(p.Key) + len(p.Value)) })
		return codeOf(err), &result{i64: total}
	})
}

// fdb_transaction_get_range_split_points returns the range's begin, a key
// after about every chunkSize bytes of data, and its end.
//
//export fdb_transaction_get_range_split_points
func fdb_transaction_get_range_split_points(h uintptr, b *byte, bn int32, e *byte, en int32, chunk int64) uintptr {
	if bn < 0 || en < 0 || chunk <= 0 {
		return failed(kindKeys, errClientInvalidOp)
	}
	r := kv.Range{Begin: goBytes(b, bn), End: goBytes(e, en)}
	return read(h, kindKeys, func(t *transaction) (int, *result) {
		if bytes.Compare(r.Begin, r.End) > 0 {
			return errInvertedRange, nil
		}
		keys := [][]byte{r.Begin}
		var acc int64
		err := scan(t.tr.Snapshot(), r, func(p kv.KeyValue) {
			if acc >= chunk {
				keys = append(keys, p.Key)
				acc = 0
			}
			acc += int64(len(p.Key) + len(p.Value))
		})
		if err != nil {
			return codeOf(err), nil
		}
		keys = append(keys, r.End)
		return errSuccess, &result{mem: keyArray(keys), n: len(keys)}
	})
}

// scan calls fn for every pair in r, reading batchRows at a time.
func scan(rd kv.ReadTransaction, r kv.Range, fn func(kv.KeyValue)) error {
	for bytes.Compare(r.Begin, r.End) < 0 {
		kvs, err := rd.GetRange(r, kv.RangeOptions{Limit: batchRows * 16}).Get()
		if err != nil {
			return err
		}
		for _, p := range kvs {
			fn(p)
		}
		if len(kvs) < batchRows*16 {
			return nil
		}
		r.Begin = kv.KeyAfter(kvs[len(kvs)-1].Key)
	}
	return nil
}

// storageAddress is the one "storage server" fdb_transaction_get_addresses_for_key
// reports: the process itself.
const storageAddress = "127.0.0.1:4500"

//export fdb_transaction_get_addresses_for_key
func fdb_transaction_get_addresses_for_key(h uintptr, key *byte, n int32) uintptr {
	if n < 0 {
		return failed(kindStrings, errClientInvalidOp)
	}
	return read(h, kindStrings, func(t *transaction) (int, *result) {
		return errSuccess, &result{mem: stringArray([]string{storageAddress}), n: 1}
	})
}
