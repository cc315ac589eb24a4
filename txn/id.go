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

// ID identifies one Transact call and names where its outcome is kept. It
// is what an *UnknownResultError carries and what Resolve takes.
//
// A call of this version of the package has a slot ID (IsSlot): Owner, the
// slot pool of the process and database handle that made it; Slot, the
// index of the marker slot the call held (SlotKey); and Seq, the call's
// sequence number in that slot. The other fields are zero.
//
// Earlier versions made legacy IDs, which still parse and Resolve against
// their markers: the marker key is prefix + Shard + Version (8 bytes,
// big-endian) + Rand (16 bytes), so within a shard markers sort by age.
// Version is a database version no later than the call's first attempt.
// Their Owner, Slot and Seq are zero.
type ID struct {
	Shard   uint8
	Version int64
	Rand    uuid.UUID

	Owner uuid.UUID
	Slot  uint32
	Seq   uint64
}

// IsSlot reports whether id is a slot ID (one made by this version of the
// package) rather than a legacy marker ID.
func (id ID) IsSlot() bool { return id.Owner != uuid.Nil }

const (
	markerSuffixLen = 1 + 8 + 16
	watermarkName   = "watermark"
	clockName       = "clock/"
	// markerFormatV1 is the first byte of the 5-byte marker values of
	// earlier versions of this package (format, attempt): still read, with
	// no versionstamp.
	markerFormatV1 = 0x01
	// markerFormat is the first byte of a marker value: format, attempt
	// (4 bytes, big-endian), and the versionstamp of the transaction that
	// wrote it (10 bytes, filled in by the commit).
	markerFormat   = 0x02
	markerValueLen = 1 + 4 + len(kv.Versionstamp{})
	// sentinelFormat is the first byte of a shard sentinel's value: format
	// and the versionstamp of the transaction that created it.
	sentinelFormat   = 0x01
	sentinelValueLen = 1 + len(kv.Versionstamp{})
	// tombstoneAttempt is the attempt number Resolve writes to fence an ID:
	// attempts count from 1, so no attempt ever wrote it.
	tombstoneAttempt = 0
)

// IsZero reports whether id is the zero ID, which no call has.
func (id ID) IsZero() bool { return id == ID{} }

// String formats a slot ID as s-slot-seq-owner, e.g.
// "s-00000003-0000000000000007-6f1c…", and a legacy ID as
// shard-version-uuid, e.g. "03-000000000a1b2c3d-6f1c…"; ParseID reads
// both back.
func (id ID) String() string {
	if id.IsSlot() {
		return fmt.Sprintf("s-%08x-%016x-%s", id.Slot, id.Seq, id.Owner)
	}
	return fmt.Sprintf("%02x-%016x-%s", id.Shard, uint64(id.Version), id.Rand)
}

// ParseID parses either form String produces.
func ParseID(s string) (ID, error) {
	if rest, ok := strings.CutPrefix(s, "s-"); ok {
		parts := strings.SplitN(rest, "-", 3)
		if len(parts) != 3 || len(parts[0]) != 8 || len(parts[1]) != 16 {
			return ID{}, fmt.Errorf("%w: %q is not of the form s-slot-seq-owner", ErrInvalidID, s)
		}
		slot, err1 := strconv.ParseUint(parts[0], 16, 32)
		seq, err2 := strconv.ParseUint(parts[1], 16, 64)
		owner, err3 := uuid.Parse(parts[2])
		if err1 != nil || err2 != nil || err3 != nil || owner == uuid.Nil {
			return ID{}, fmt.Errorf("%w: %q is not of the form s-slot-seq-owner", ErrInvalidID, s)
		}
		return ID{Owner: owner, Slot: uint32(slot), Seq: seq}, nil
	}
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

// check reports whether id could have been made by Transact: a shard below
// MaxShards, a non-negative version, and a random version-4 UUID. The shard
// is the ID's own: Resolve takes it from the ID whatever Options.Shards is
// now, so changing Shards never strands an ID.
func (id ID) check() error {
	if id.IsSlot() {
		switch {
		case id.Shard != 0 || id.Version != 0 || id.Rand != uuid.UUID{}:
			return fmt.Errorf("%w: %v mixes a slot ID with a legacy one (Shard, Version or Rand set)", ErrInvalidID, id)
		case id.Seq == 0:
			return fmt.Errorf("%w: %v has sequence 0; calls count from 1", ErrInvalidID, id)
		case id.Owner.Version() != 4 || id.Owner.Variant() != uuid.RFC4122:
			return fmt.Errorf("%w: %v's owner is not a version-4 UUID", ErrInvalidID, id)
		}
		return nil
	}
	switch {
	case id.IsZero():
		return fmt.Errorf("%w: the zero ID", ErrInvalidID)
	case id.Slot != 0 || id.Seq != 0:
		return fmt.Errorf("%w: %v has a slot or sequence but no owner", ErrInvalidID, id)
	case int(id.Shard) >= MaxShards:
		return fmt.Errorf("%w: %v has shard %d; shards are 0 to %d", ErrInvalidID, id, id.Shard, MaxShards-1)
	case id.Version < 0:
		return fmt.Errorf("%w: %v has a negative version", ErrInvalidID, id)
	case id.Rand.Version() != 4 || id.Rand.Variant() != uuid.RFC4122:
		return fmt.Errorf("%w: %v's random part is not a version-4 UUID", ErrInvalidID, id)
	}
	return nil
}

// MarkerKey returns the key of id's marker under prefix.
func MarkerKey(prefix []byte, id ID) []byte {
	return appendMarkerKey(make([]byte, 0, len(prefix)+markerSuffixLen), prefix, id)
}

func appendMarkerKey(k, prefix []byte, id ID) []byte {
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
// the given one: what the janitor clears in one range clear. It begins just
// after the shard's sentinel (SentinelKey), which the janitor never clears.
func MarkerRange(prefix []byte, shard uint8, below int64) kv.Range {
	s := SentinelKey(prefix, shard)
	b := append(bytes.Clone(s), 0)
	e := binary.BigEndian.AppendUint64(s, uint64(below))
	return kv.Range{Begin: b, End: e}
}

// ShardRange returns the range of shard's keys: its sentinel and markers.
func ShardRange(prefix []byte, shard uint8) kv.Range {
	b := SentinelKey(prefix, shard)
	e := bytes.Clone(b)
	e[len(e)-1]++ // shard < 0xff
	return kv.Range{Begin: b, End: e}
}

// SentinelKey returns the key of shard's sentinel: prefix + shard, the
// first key of the shard, before all of its markers. Its value carries the
// versionstamp of its creation. Any range clear that removes a marker and
// begins at or before its shard's start — a clear of the prefix, of the
// keyspace, of the shard — removes the sentinel too, and a sentinel created
// again carries a later versionstamp: that is how a reader learns that a
// marker absent now may have been cleared (see the package doc).
func SentinelKey(prefix []byte, shard uint8) []byte {
	k := make([]byte, 0, len(prefix)+1+markerSuffixLen)
	return append(append(k, prefix...), shard)
}

// IsProtocolKey reports whether key, holding value, is one that Transact,
// Resolve or the janitor write under prefix: a marker slot, a legacy
// marker, a shard sentinel, a clock sample or the watermark. The janitor uses it to refuse a prefix that holds
// anything else.
func IsProtocolKey(prefix, key, value []byte) bool {
	if !bytes.HasPrefix(key, prefix) {
		return false
	}
	switch rest := key[len(prefix):]; {
	case bytes.Equal(key, WatermarkKey(prefix)):
		return len(value) == 8
	case len(rest) == 1+len(clockName)+8 && bytes.HasPrefix(rest, []byte("\xff"+clockName)):
		return len(value) == 8
	case len(rest) == slotSuffixLen && bytes.HasPrefix(rest, []byte("\xff"+slotName)):
		_, err := DecodeSlot(value)
		return err == nil
	case len(rest) == 1 && rest[0] < MaxShards:
		_, err := decodeSentinel(value)
		return err == nil
	case len(rest) == markerSuffixLen && rest[0] < MaxShards:
		_, err := decodeMarker(value)
		return err == nil
	}
	return false
}

// WatermarkKey returns the key under which the janitor records the version
// below which it may have removed markers. It sorts after every shard.
func WatermarkKey(prefix []byte) []byte {
	k := make([]byte, 0, len(prefix)+1+len(watermarkName))
	k = append(append(k, prefix...), 0xff)
	return append(k, watermarkName...)
}

// ClockSampleKey returns the key under which the janitor records that
// version was the database's version at some wall-clock time (the value:
// 8 bytes, big-endian Unix nanoseconds). Samples sort by version after
// every shard, beside the watermark.
func ClockSampleKey(prefix []byte, version int64) []byte {
	k := make([]byte, 0, len(prefix)+1+len(clockName)+8)
	k = append(append(append(k, prefix...), 0xff), clockName...)
	return binary.BigEndian.AppendUint64(k, uint64(version))
}

// ClockSampleRange returns the range of the clock samples below version
// (all of them for math.MaxInt64).
func ClockSampleRange(prefix []byte, below int64) kv.Range {
	k := ClockSampleKey(prefix, below)
	return kv.Range{Begin: bytes.Clone(k[:len(k)-8]), End: k}
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

// markerParam is the parameter of the kv.SetVersionstampedValue that
// writes a marker: the format byte, the number of the attempt that wrote it
// (tombstoneAttempt for a fence), room for the versionstamp, and the
// versionstamp's offset.
func markerParam(attempt uint32) []byte {
	return appendMarkerParam(make([]byte, 0, markerParamLen), attempt)
}

// markerParamLen is the length of a marker parameter: the value and the
// versionstamp's 4-byte offset.
const markerParamLen = markerValueLen + 4

func appendMarkerParam(b []byte, attempt uint32) []byte {
	b = binary.BigEndian.AppendUint32(append(b, markerFormat), attempt)
	b = append(b, make([]byte, len(kv.Versionstamp{}))...)
	return binary.LittleEndian.AppendUint32(b, 5)
}

// marker is a decoded marker value.
type marker struct {
	attempt uint32
	// stamp is the versionstamp of the transaction that wrote the marker;
	// zero for a marker of format 1.
	stamp kv.Versionstamp
}

func decodeMarker(b []byte) (marker, error) {
	var m marker
	switch {
	case len(b) == markerValueLen && b[0] == markerFormat:
		m.attempt = binary.BigEndian.Uint32(b[1:5])
		copy(m.stamp[:], b[5:])
	case len(b) == 5 && b[0] == markerFormatV1:
		m.attempt = binary.BigEndian.Uint32(b[1:5])
	default:
		return m, fmt.Errorf("txn: marker value %x is not one of ours (format %#x, %d bytes)", b, markerFormat, markerValueLen)
	}
	return m, nil
}

// sentinelParam is the parameter of the kv.SetVersionstampedValue that
// creates a shard's sentinel.
func sentinelParam() []byte {
	b := make([]byte, sentinelValueLen, sentinelValueLen+4)
	b[0] = sentinelFormat
	return binary.LittleEndian.AppendUint32(b, 1)
}

// decodeSentinel returns the versionstamp a sentinel was created with.
func decodeSentinel(b []byte) (kv.Versionstamp, error) {
	var vs kv.Versionstamp
	if len(b) != sentinelValueLen || b[0] != sentinelFormat {
		return vs, fmt.Errorf("txn: sentinel value %x is not one of ours (format %#x, %d bytes)", b, sentinelFormat, sentinelValueLen)
	}
	copy(vs[:], b[1:])
	return vs, nil
}
