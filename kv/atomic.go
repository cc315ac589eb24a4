package kv

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// MutationType is an atomic operation. The values are FoundationDB's
// mutation type codes (fdb.options), with the API-version-510 semantics for
// BitAnd and Min (an absent value is replaced by the parameter).
type MutationType int

// The atomic operations. Unless stated otherwise, the existing value is
// first zero-extended or truncated to the parameter's length, and an
// absent value counts as all zeros.
const (
	// Add adds little-endian unsigned integers, dropping the carry out of
	// the parameter's length.
	Add MutationType = 2
	// BitAnd is bitwise and; an absent value is replaced by the parameter.
	BitAnd MutationType = 6
	// BitOr is bitwise or.
	BitOr MutationType = 7
	// BitXor is bitwise exclusive or.
	BitXor MutationType = 8
	// AppendIfFits appends the parameter unless the result would exceed
	// MaxValueSize, in which case the value is left as it was.
	AppendIfFits MutationType = 9
	// Max keeps the larger as little-endian unsigned integers.
	Max MutationType = 12
	// Min keeps the smaller as little-endian unsigned integers; an absent
	// value is replaced by the parameter.
	Min MutationType = 13
	// SetVersionstampedKey sets a key in which the 10-byte versionstamp
	// replaces the bytes at the offset given by the key's last four bytes
	// (little-endian), which are removed. The parameter is the value.
	SetVersionstampedKey MutationType = 14
	// SetVersionstampedValue sets the key to the parameter with the
	// versionstamp placed the same way in the value.
	SetVersionstampedValue MutationType = 15
	// ByteMin keeps the lexicographically smaller byte string, with no
	// length adjustment; an absent value is replaced by the parameter.
	ByteMin MutationType = 16
	// ByteMax keeps the lexicographically larger byte string; an absent
	// value is replaced by the parameter.
	ByteMax MutationType = 17
	// CompareAndClear clears the key if its value equals the parameter.
	CompareAndClear MutationType = 20
)

var mutationNames = map[MutationType]string{
	Add: "add", BitAnd: "bit_and", BitOr: "bit_or", BitXor: "bit_xor",
	AppendIfFits: "append_if_fits", Max: "max", Min: "min",
	SetVersionstampedKey: "set_versionstamped_key", SetVersionstampedValue: "set_versionstamped_value",
	ByteMin: "byte_min", ByteMax: "byte_max", CompareAndClear: "compare_and_clear",
}

func (m MutationType) String() string {
	if n, ok := mutationNames[m]; ok {
		return n
	}
	return fmt.Sprintf("mutation_%d", int(m))
}

// Valid reports whether m is one of the atomic operations above.
func (m MutationType) Valid() bool { _, ok := mutationNames[m]; return ok }

// ApplyAtomic computes the value an atomic operation leaves, given the
// existing value (present reports whether there is one). It returns the new
// value and whether the key is then present. It does not handle the two
// versionstamped operations, which are sets whose key or value is completed
// at commit; for them it reports present with param unchanged.
//
// This is FoundationDB's byte semantics (fdbclient/Atomic.h), the one
// definition the embedded engine applies and the conformance suite checks
// against a real cluster.
func ApplyAtomic(op MutationType, existing []byte, present bool, param []byte) ([]byte, bool) {
	switch op {
	case Add:
		out := fitted(existing, len(param))
		var carry uint16
		for i := range out {
			s := uint16(out[i]) + uint16(param[i]) + carry
			out[i] = byte(s)
			carry = s >> 8
		}
		return out, true
	case BitAnd:
		if !present {
			return clone(param), true
		}
		out := fitted(existing, len(param))
		for i := range out {
			out[i] &= param[i]
		}
		return out, true
	case BitOr, BitXor:
		out := fitted(existing, len(param))
		for i := range out {
			if op == BitOr {
				out[i] |= param[i]
			} else {
				out[i] ^= param[i]
			}
		}
		return out, true
	case AppendIfFits:
		if !present {
			return clone(param), true
		}
		if len(existing)+len(param) > MaxValueSize {
			return clone(existing), true
		}
		out := make([]byte, 0, len(existing)+len(param))
		return append(append(out, existing...), param...), true
	case Max, Min:
		if op == Min && !present {
			return clone(param), true
		}
		cur := fitted(existing, len(param))
		c := compareLE(cur, param)
		if (op == Max && c >= 0) || (op == Min && c <= 0) {
			return cur, true
		}
		return clone(param), true
	case ByteMin, ByteMax:
		if !present {
			return clone(param), true
		}
		c := bytes.Compare(existing, param)
		if (op == ByteMin && c <= 0) || (op == ByteMax && c >= 0) {
			return clone(existing), true
		}
		return clone(param), true
	case CompareAndClear:
		if present && bytes.Equal(existing, param) {
			return nil, false
		}
		return clone(existing), present
	}
	return clone(param), true
}

// fitted returns a copy of v zero-extended or truncated to n bytes.
func fitted(v []byte, n int) []byte {
	out := make([]byte, n)
	copy(out, v)
	return out
}

func clone(v []byte) []byte {
	if v == nil {
		return nil
	}
	return append([]byte{}, v...)
}

// compareLE compares equal-length little-endian unsigned integers.
func compareLE(a, b []byte) int {
	for i := len(a) - 1; i >= 0; i-- {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// Versionstamp is FoundationDB's 10-byte transaction versionstamp: the
// commit version (8 bytes, big-endian) then the transaction's order within
// its commit batch (2 bytes, big-endian). Versionstamps sort as the commits
// they stamp.
type Versionstamp [10]byte

// NewVersionstamp builds the versionstamp of a commit.
func NewVersionstamp(version int64, batchOrder uint16) Versionstamp {
	var v Versionstamp
	binary.BigEndian.PutUint64(v[:8], uint64(version))
	binary.BigEndian.PutUint16(v[8:], batchOrder)
	return v
}

// Version returns the commit version in the versionstamp.
func (v Versionstamp) Version() int64 { return int64(binary.BigEndian.Uint64(v[:8])) }

// BatchOrder returns the transaction's order within its commit batch.
func (v Versionstamp) BatchOrder() uint16 { return binary.BigEndian.Uint16(v[8:]) }

// PlaceVersionstamp completes the key or value of a versionstamped
// operation: the last four bytes of b are a little-endian offset, they are
// removed, and the versionstamp overwrites the ten bytes at that offset. It
// fails with client_invalid_operation (2000) if b is shorter than four bytes
// or the offset leaves no room for the stamp.
func PlaceVersionstamp(b []byte, vs Versionstamp) ([]byte, error) {
	off, err := VersionstampOffset(b)
	if err != nil {
		return nil, err
	}
	out := clone(b[:len(b)-4])
	copy(out[off:], vs[:])
	return out, nil
}

// VersionstampOffset validates a versionstamped operation's key or value and
// returns the offset at which the stamp goes.
func VersionstampOffset(b []byte) (int, error) {
	if len(b) < 4 {
		return 0, Errorf(CodeClientInvalidOperation, "versionstamped operand of %d bytes has no 4-byte offset", len(b))
	}
	off := int(binary.LittleEndian.Uint32(b[len(b)-4:]))
	if off < 0 || off+len(Versionstamp{}) > len(b)-4 {
		return 0, Errorf(CodeClientInvalidOperation, "versionstamp offset %d does not fit in %d bytes", off, len(b)-4)
	}
	return off, nil
}
