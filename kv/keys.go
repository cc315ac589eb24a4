package kv

import (
	"bytes"
	"fmt"
)

// SystemPrefix is the first byte of FoundationDB's system keyspace. Keys
// that begin with it need SetAccessSystemKeys (or SetReadSystemKeys, for
// reads).
const SystemPrefix = 0xff

// Range is the half-open key range [Begin, End).
type Range struct {
	Begin, End []byte
}

// String formats the range with quoted keys, for messages.
func (r Range) String() string { return fmt.Sprintf("[%q, %q)", r.Begin, r.End) }

// Contains reports whether key lies in the range.
func (r Range) Contains(key []byte) bool {
	return bytes.Compare(key, r.Begin) >= 0 && bytes.Compare(key, r.End) < 0
}

// Empty reports whether the range holds no keys (End <= Begin).
func (r Range) Empty() bool { return bytes.Compare(r.Begin, r.End) >= 0 }

// KeyAfter returns the first key after key: key followed by a zero byte.
func KeyAfter(key []byte) []byte {
	k := make([]byte, len(key)+1)
	copy(k, key)
	return k
}

// SingleKeyRange is the range holding exactly key.
func SingleKeyRange(key []byte) Range { return Range{Begin: key, End: KeyAfter(key)} }

// Strinc returns the first key that does not have prefix as a prefix: prefix
// with trailing 0xff bytes removed and its last byte incremented. It fails
// for a prefix that is empty or all 0xff, which has no such key.
func Strinc(prefix []byte) ([]byte, error) {
	for i := len(prefix) - 1; i >= 0; i-- {
		if prefix[i] != 0xff {
			k := make([]byte, i+1)
			copy(k, prefix[:i+1])
			k[i]++
			return k, nil
		}
	}
	return nil, fmt.Errorf("kv: prefix %q is empty or all 0xff and has no range", prefix)
}

// PrefixRange returns the range of all keys beginning with prefix.
func PrefixRange(prefix []byte) (Range, error) {
	end, err := Strinc(prefix)
	if err != nil {
		return Range{}, err
	}
	b := make([]byte, len(prefix))
	copy(b, prefix)
	return Range{Begin: b, End: end}, nil
}
