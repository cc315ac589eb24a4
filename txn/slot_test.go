package txn_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/txn"
)

// slotParam is a slot value as txn writes it: format 3, seq, attempt and
// room for the versionstamp, with the stamp's offset (the layout
// testdata/marker.golden pins).
func slotParam(seq uint64, attempt uint32) []byte {
	b := binary.BigEndian.AppendUint64([]byte{3}, seq)
	b = binary.BigEndian.AppendUint32(b, attempt)
	b = append(b, make([]byte, 10)...)
	return binary.LittleEndian.AppendUint32(b, 13)
}

// writeSlot stores a slot value as a call (or Resolve, or a refresh)
// would, and returns its state.
func writeSlot(t *testing.T, db kv.Database, key []byte, seq uint64, attempt uint32) txn.SlotState {
	t.Helper()
	if _, err := txn.StockTransact(context.Background(), db, func(tr kv.Transaction) (struct{}, error) {
		tr.Atomic(kv.SetVersionstampedValue, key, slotParam(seq, attempt))
		return struct{}{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	return readSlot(t, db, key)
}

// readSlot returns a slot's state; the zero state if it is absent.
func readSlot(t *testing.T, db kv.Database, key []byte) txn.SlotState {
	t.Helper()
	v, err := txn.StockTransact(context.Background(), db, func(tr kv.Transaction) ([]byte, error) {
		return tr.Get(key).Get()
	})
	if err != nil {
		t.Fatal(err)
	}
	if v == nil {
		return txn.SlotState{}
	}
	st, err := txn.DecodeSlot(v)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Resolve of a slot ID reads the answer from the slot: every state a slot
// can be in, against the ID's sequence.
func TestResolveSlot(t *testing.T) {
	owner := uuid.MustParse("6f1c6a3e-1d2b-4c3a-9e8f-0123456789ab")
	id := txn.ID{Owner: owner, Slot: 2, Seq: 7}
	key := txn.SlotKey(txn.DefaultPrefix, owner, 2)
	for _, tc := range []struct {
		name    string
		seq     uint64 // 0: the slot is absent
		attempt uint32
		want    txn.Outcome
		lost    func(*txn.OutcomeLostError) bool
		tomb    bool // a tombstone of the ID is left in the slot
	}{
		{name: "committed", seq: 7, attempt: 3, want: txn.Committed},
		{name: "fenced", seq: 7, attempt: txn.SlotTombstone, want: txn.NotCommitted, tomb: true},
		{name: "earlier call", seq: 6, attempt: 2, want: txn.NotCommitted, tomb: true},
		{name: "refreshed for this call", seq: 6, attempt: txn.SlotRefreshed, want: txn.NotCommitted, tomb: true},
		{name: "earlier tombstone", seq: 3, attempt: txn.SlotTombstone, want: txn.NotCommitted, tomb: true},
		{name: "reused", seq: 8, attempt: 1, lost: func(e *txn.OutcomeLostError) bool { return e.Reused }},
		{name: "refreshed by the next call", seq: 7, attempt: txn.SlotRefreshed, lost: func(e *txn.OutcomeLostError) bool { return e.Reused }},
		{name: "absent", lost: func(e *txn.OutcomeLostError) bool { return e.Cleared }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openMem(t)
			var before txn.SlotState
			if tc.seq != 0 {
				before = writeSlot(t, db, key, tc.seq, tc.attempt)
			}
			for range 2 { // the same answer every time
				o, c, err := txn.ResolveCommit(context.Background(), db, id, nil)
				var lost *txn.OutcomeLostError
				switch {
				case tc.lost != nil:
					if !errors.As(err, &lost) || !tc.lost(lost) || lost.ID != id {
						t.Fatalf("ResolveCommit = %v, %v; want *OutcomeLostError (%s)", o, err, tc.name)
					}
					if after := readSlot(t, db, key); after != before {
						t.Fatalf("a lost outcome wrote the slot: %+v, was %+v", after, before)
					}
					continue
				case err != nil || o != tc.want:
					t.Fatalf("ResolveCommit = %v, %v; want %v", o, err, tc.want)
				case o == txn.Committed && (c.ID != id || c.Attempt != tc.attempt || c.Versionstamp != before.Stamp):
					t.Fatalf("Commit = %+v; want attempt %d stamped %x", c, tc.attempt, before.Stamp)
				}
				after := readSlot(t, db, key)
				if tc.tomb && (after.Seq != id.Seq || after.Attempt != txn.SlotTombstone || after.Stamp.Version() <= before.Stamp.Version()) {
					t.Fatalf("slot after Resolve = %+v; want a new tombstone of seq %d", after, id.Seq)
				}
				if !tc.tomb && after != before {
					t.Fatalf("Resolve of a committed ID wrote the slot: %+v, was %+v", after, before)
				}
				before = after
			}
		})
	}
}

// Resolve refuses slot IDs that no call makes.
func TestResolveSlotBadInput(t *testing.T) {
	db := openMem(t)
	owner := uuid.MustParse("6f1c6a3e-1d2b-4c3a-9e8f-0123456789ab")
	for _, id := range []txn.ID{
		{Owner: owner, Slot: 1, Seq: 0},
		{Owner: owner, Seq: 1, Shard: 3},
		{Owner: owner, Seq: 1, Version: 10},
		{Owner: owner, Seq: 1, Rand: owner},
		{Owner: uuid.Max, Seq: 1},
		{Slot: 1, Seq: 1},
	} {
		if _, err := txn.Resolve(context.Background(), db, id, nil); !errors.Is(err, txn.ErrInvalidID) {
			t.Errorf("Resolve(%+v) = %v; want ErrInvalidID", id, err)
		}
	}
	if n := len(dumpPrefix(t, db)); n != 0 {
		t.Fatalf("refused Resolves wrote %d keys", n)
	}
}

func dumpPrefix(t *testing.T, db kv.Database) []kv.KeyValue {
	t.Helper()
	r, err := kv.PrefixRange(txn.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	kvs, err := txn.StockTransact(context.Background(), db, func(tr kv.Transaction) ([]kv.KeyValue, error) {
		return tr.GetRange(r, kv.RangeOptions{}).Get()
	})
	if err != nil {
		t.Fatal(fmt.Errorf("reading the marker prefix: %w", err))
	}
	return kvs
}

// The longest prefix Options allow leaves room for a slot key within
// FoundationDB's key limit, and calls with it commit; one byte more is
// refused up front.
func TestLongestPrefix(t *testing.T) {
	db := openMem(t)
	prefix := append([]byte{0xfd}, make([]byte, kv.MaxKeySize-len(txn.SlotKey(nil, uuid.Nil, 0))-1)...)
	runs := 0
	if _, err := txn.Transact(context.Background(), db, incr([]byte("c"), &runs), &txn.Options{Prefix: prefix}); err != nil {
		t.Fatalf("the longest prefix: %v", err)
	}
	_, err := txn.Transact(context.Background(), db, incr([]byte("c"), &runs), &txn.Options{Prefix: append(prefix, 0)})
	if !errors.Is(err, txn.ErrInvalidOptions) || runs != 1 {
		t.Fatalf("a prefix one byte longer: %v after %d runs; want ErrInvalidOptions before any run", err, runs)
	}
}
