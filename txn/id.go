package txn

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/idemkv/idemkv/kv"
)

// ID identifies one Transact call and names its marker. It is what an
// *UnknownResultError carries and what Resolve takes.
//
// The marker key is prefix + Shard + Version (8 bytes, big-endian) + Rand
// (16 bytes), so within a shard markers sort by age. Version is a database
// version no later than the call's first attempt (its read version): the
// cluster's clock, not the client's, so a skewed client clock cannot make
// the janitor remove a marker early.
type ID struct {
	Shard   uint8
	Version int64
	Rand    uuid.UUID
}

const (
	markerSuffixLen = 1 + 8 + 16
	watermarkName   = "watermark"
	// markerFormat is the first byte of every marker value.
	markerFormat = 0x01
	// tombstoneAttempt is the attempt number Resolve writes to fence an ID:
	// attempts count from 1, so no attempt ever wrote it.
	tombstoneAttempt = 0
)

func newID(shards int, readVersion int64) (ID, error) {
	r, err := uuid.NewRandom()
	if err != nil {
		return ID{}, fmt.Errorf("txn: cannot make a transaction ID: %w", err)
	}
	// The shard comes from random bits, so markers spread evenly.
	return ID{Shard: uint8(int(r[15]) % shards), Version: readVersion, Rand: r}, nil
}

// IsZero reports whether id is the zero ID, which no call has.
func (id ID) IsZero() bool { return id == ID{} }

// String formats the ID as shard-version-uuid, e.g.
// "03-000000000a1b2c3d-6f1c…"; ParseID reads it back.
func (id ID) String() string {
	return fmt.Sprintf("%02x-%016x-%s", id.Shard, uint64(id.Version), id.Rand)
}

// ParseID parses the form String produces.
func ParseID(s string) (ID, error) {
	parts := strings.SplitN(s, "-", 3)
	if len(parts) != 3 || len(parts[0]) != 2 || len(parts[1]) != 16 {
		return ID{}, fmt.Errorf("%w: %q is not of the form shard-version-uuid", ErrInvalidID, s)
	}
	shard, err1 := strconv.ParseUint(parts[0], 16, 8)
	version, err2 := strconv.ParseUint(parts[1], 16, 64)
	r, err3 := uuid.Parse(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return ID{}, fmt.Errorf("%w: %q is not of the form shard-version-uuid", ErrInvalidID, s)
	}
	return ID{Shard: uint8(shard), Version: int64(version), Rand: r}, nil
}

// check reports whether id could have been made by Transact with c: a shard
// in range, a non-negative version, and a random version-4 UUID.
func (id ID) check(c *config) error {
	switch {
	case id.IsZero():
		return fmt.Errorf("%w: the zero ID", ErrInvalidID)
	case int(id.Shard) >= c.shards:
		return fmt.Errorf("%w: %v has shard %d but the options have %d shards (were Prefix and Shards the same as the call's?)", ErrInvalidID, id, id.Shard, c.shards)
	case id.Version < 0:
		return fmt.Errorf("%w: %v has a negative version", ErrInvalidID, id)
	case id.Rand.Version() != 4 || id.Rand.Variant() != uuid.RFC4122:
		return fmt.Errorf("%w: %v's random part is not a version-4 UUID", ErrInvalidID, id)
	}
	return nil
}

// MarkerKey returns the key of id's marker under prefix.
func MarkerKey(prefix []byte, id ID) []byte {
	k := make([]byte, 0, len(prefix)+markerSuffixLen)
	k = append(k, prefix...)
	k = append(k, id.Shard)
	k = binary.BigEndian.AppendUint64(k, uint64(id.Version))
	return append(k, id.Rand[:]...)
}

// ParseMarkerKey is MarkerKey's inverse.
func ParseMarkerKey(prefix, key []byte) (ID, error) {
	if !bytes.HasPrefix(key, prefix) || len(key) != len(prefix)+markerSuffixLen {
		return ID{}, fmt.Errorf("%w: %q is not a marker key under %q", ErrInvalidID, key, prefix)
	}
	s := key[len(prefix):]
	var id ID
	id.Shard = s[0]
	id.Version = int64(binary.BigEndian.Uint64(s[1:9]))
	copy(id.Rand[:], s[9:])
	return id, nil
}

// MarkerRange returns the range of shard's markers whose version is below
// the given one: what the janitor clears in one range clear.
func MarkerRange(prefix []byte, shard uint8, below int64) kv.Range {
	b := make([]byte, 0, len(prefix)+1)
	b = append(append(b, prefix...), shard)
	e := binary.BigEndian.AppendUint64(bytes.Clone(b), uint64(below))
	return kv.Range{Begin: b, End: e}
}

// WatermarkKey returns the key under which the janitor records the version
// below which it may have removed markers. It sorts after every shard.
func WatermarkKey(prefix []byte) []byte {
	k := make([]byte, 0, len(prefix)+1+len(watermarkName))
	k = append(append(k, prefix...), 0xff)
	return append(k, watermarkName...)
}

// EncodeWatermark encodes a watermark version for WatermarkKey: 8 bytes,
// little-endian, so that janitors advance it with the atomic kv.Max — which
// compares little-endian unsigned integers — and never conflict with each
// other or move it backwards.
func EncodeWatermark(v int64) []byte { return binary.LittleEndian.AppendUint64(nil, uint64(v)) }

// DecodeWatermark decodes a value stored at WatermarkKey; an absent value
// (nil) is watermark 0: nothing removed.
func DecodeWatermark(b []byte) (int64, error) {
	if b == nil {
		return 0, nil
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("txn: watermark value of %d bytes, want 8", len(b))
	}
	return int64(binary.LittleEndian.Uint64(b)), nil
}

// encodeMarker encodes a marker's value: the format byte and the number of
// the attempt that wrote it (tombstoneAttempt for a fence).
func encodeMarker(attempt uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{markerFormat}, attempt)
}

func decodeMarker(b []byte) (uint32, error) {
	if len(b) != 5 || b[0] != markerFormat {
		return 0, fmt.Errorf("txn: marker value %x is not one of ours (format %#x, 5 bytes)", b, markerFormat)
	}
	return binary.BigEndian.Uint32(b[1:]), nil
}
