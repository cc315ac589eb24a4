package txn

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	"github.com/google/uuid"

	"github.com/idemkv/idemkv/kv"
)

// Marker slots: the keys a call's attempts write instead of a fresh marker
// per call (see "Marker slots" in the package doc).
//
// A slot key is prefix + 0xff + "slot/" + owner (16 bytes, a version-4
// UUID drawn per process and database handle) + index (4 bytes,
// big-endian). It lives under the prefix's 0xff metadata, beside the
// watermark and the clock samples, so the legacy shards (ShardRange,
// MarkerRange) and what sweeps them are untouched. Its value is a format
// byte (slotFormat), the sequence number of the call that wrote it (8
// bytes, big-endian), an attempt number (4 bytes, big-endian) and the
// versionstamp of the writing transaction (10 bytes).

const (
	slotName = "slot/"
	// slotSuffixLen is what a slot key adds to its prefix.
	slotSuffixLen = 1 + len(slotName) + 16 + 4
	// slotFormat is the first byte of a slot value.
	slotFormat   = 0x03
	slotValueLen = 1 + 8 + 4 + len(kv.Versionstamp{})
	// slotParamLen is a slot value and its versionstamp's 4-byte offset:
	// the parameter of the kv.SetVersionstampedValue that writes it.
	slotParamLen = slotValueLen + 4
	// SlotTombstone is the attempt number of Resolve's fence in a slot
	// (attempts count from 1).
	SlotTombstone = tombstoneAttempt
	// SlotRefreshed is the attempt number of a refresh: a slot rewritten,
	// before a call's first commit, with the sequence of the call before
	// it, so that it is known present and recent (no attempt has it).
	SlotRefreshed = 0xffff_ffff
)

// SlotKey returns the key of slot index of owner under prefix.
func SlotKey(prefix []byte, owner uuid.UUID, index uint32) []byte {
	return appendSlotKey(make([]byte, 0, len(prefix)+slotSuffixLen), prefix, owner, index)
}

func appendSlotKey(k, prefix []byte, owner uuid.UUID, index uint32) []byte {
	k = append(k, prefix...)
	k = append(append(k, 0xff), slotName...)
	k = append(k, owner[:]...)
	return binary.BigEndian.AppendUint32(k, index)
}

// SlotRange returns the range of every slot under prefix, of every owner.
func SlotRange(prefix []byte) kv.Range {
	b := make([]byte, 0, len(prefix)+1+len(slotName))
	b = append(append(append(b, prefix...), 0xff), slotName...)
	e := bytes.Clone(b)
	e[len(e)-1]++ // '/' + 1
	return kv.Range{Begin: b, End: e}
}

// ParseSlotKey is SlotKey's inverse.
func ParseSlotKey(prefix, key []byte) (owner uuid.UUID, index uint32, err error) {
	r := SlotRange(prefix)
	if len(key) != len(prefix)+slotSuffixLen || !bytes.HasPrefix(key, r.Begin) {
		return owner, 0, fmt.Errorf("%w: %q is not a slot key under %q", ErrInvalidID, key, prefix)
	}
	s := key[len(r.Begin):]
	copy(owner[:], s[:16])
	return owner, binary.BigEndian.Uint32(s[16:]), nil
}

// SlotState is a decoded slot value.
type SlotState struct {
	// Seq is the sequence number of the call that wrote the slot (for a
	// refresh, of the call before the one that refreshed it).
	Seq uint64
	// Attempt is the number of the writing call's attempt, from 1;
	// SlotTombstone for Resolve's fence, SlotRefreshed for a refresh.
	Attempt uint32
	// Stamp is the versionstamp of the transaction that wrote it; its
	// Version dates the slot for the janitor.
	Stamp kv.Versionstamp
}

// Committed reports whether the state is an attempt's commit (neither a
// tombstone nor a refresh).
func (s SlotState) Committed() bool {
	return s.Attempt != SlotTombstone && s.Attempt != SlotRefreshed
}

// DecodeSlot decodes a slot's value.
func DecodeSlot(b []byte) (SlotState, error) {
	var s SlotState
	if len(b) != slotValueLen || b[0] != slotFormat {
		return s, fmt.Errorf("txn: slot value %x is not one of ours (format %#x, %d bytes)", b, slotFormat, slotValueLen)
	}
	s.Seq = binary.BigEndian.Uint64(b[1:9])
	s.Attempt = binary.BigEndian.Uint32(b[9:13])
	copy(s.Stamp[:], b[13:])
	return s, nil
}

// slotParam is the parameter of the kv.SetVersionstampedValue that writes
// a slot: the value with room for the versionstamp, and its offset.
func slotParam(seq uint64, attempt uint32) []byte {
	return appendSlotParam(make([]byte, 0, slotParamLen), seq, attempt)
}

func appendSlotParam(b []byte, seq uint64, attempt uint32) []byte {
	b = binary.BigEndian.AppendUint64(append(b, slotFormat), seq)
	b = binary.BigEndian.AppendUint32(b, attempt)
	b = append(b, make([]byte, len(kv.Versionstamp{}))...)
	return binary.LittleEndian.AppendUint32(b, 1+8+4)
}

// slotBeforeCall reads val, the value of the slot key read at version rv
// before the first commit of the call with sequence seq (nil: absent). A
// slot holding seq or a later sequence was written by someone else than
// the pool that issued seq: ErrSlotTaken. Otherwise recent reports that
// the slot is present and writtenRecently for an attempt at rv.
func slotBeforeCall(key, val []byte, seq uint64, rv int64) (st SlotState, recent bool, err error) {
	if val == nil {
		return st, false, nil
	}
	if st, err = DecodeSlot(val); err != nil {
		return st, false, err
	}
	if st.Seq >= seq {
		return st, false, fmt.Errorf("%w: slot %x holds sequence %d before the first commit of the call with sequence %d", ErrSlotTaken, key, st.Seq, seq)
	}
	return st, writtenRecently(st.Stamp.Version(), rv), nil
}

// writtenRecently reports whether a slot write at version stamp is recent
// enough for a first commit from read version rv: no more than
// kv.MaxTransactionLifeVersions before it, so that the janitor, which
// removes only slots older than its minimum age (at least ten seconds),
// cannot remove the slot before an attempt at rv commits or fails (see
// "Liveness" in the package doc).
func writtenRecently(stamp, rv int64) bool {
	return stamp >= rv-kv.MaxTransactionLifeVersions
}

// refreshSlot rewrites a slot before the first commit of the call with
// sequence seq, in a transaction of its own: the value of the call before
// it (seq-1), attempt SlotRefreshed, a new versionstamp, which it returns.
// It reads the slot first, and that read is a conflict range: a refresh
// still in flight after its call ended (its commit's outcome unknown) can
// therefore never land after a later write of the slot — every such write
// comes after this read version — and so never overwrites a later call's
// commit. A slot found present and recent (written no more than
// kv.MaxTransactionLifeVersions before the read version, as the refresh of
// an earlier try that landed after all) is left as it is, so a
// maybe-committed error is simply retried. A slot holding seq or a later
// sequence was written by someone else: ErrSlotTaken.
func refreshSlot(ctx context.Context, db kv.Database, c *config, key []byte, seq uint64) (kv.Versionstamp, error) {
	var stamp kv.Versionstamp
	tr, err := db.CreateTransaction(ctx)
	if err != nil {
		return stamp, err
	}
	defer tr.Cancel()
	if err := tr.Options().SetMaxRetryDelay(c.maxRetryDelay); err != nil {
		return stamp, err
	}
	err = retryIdempotent(ctx, tr, c, func() error {
		val, err := tr.Get(key).Get()
		if err != nil {
			return err
		}
		rv, err := tr.GetReadVersion().Get()
		if err != nil {
			return err
		}
		st, recent, err := slotBeforeCall(key, val, seq, rv)
		if err != nil {
			return err
		}
		if recent {
			stamp = st.Stamp
			return nil
		}
		tr.Atomic(kv.SetVersionstampedValue, key, slotParam(seq-1, SlotRefreshed))
		if err := tr.Commit().Err(); err != nil {
			return err
		}
		stamp, err = tr.GetVersionstamp().Get()
		return err
	})
	return stamp, err
}
