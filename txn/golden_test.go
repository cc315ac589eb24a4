package txn

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/uuid"

	"github.com/idemkv/idemkv/kv"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current encoding")

// TestMarkerEncodingGolden pins the byte layout of markers, marker values
// and the watermark: they are on disk (and on clusters) across versions of
// this package, so a change must be deliberate. Refresh with -update and
// review the diff.
func TestMarkerEncodingGolden(t *testing.T) {
	id := ID{Shard: 3, Version: 0x0102030405060708, Rand: uuid.MustParse("6f1c6a3e-1d2b-4c3a-9e8f-0123456789ab")}
	var b bytes.Buffer
	line := func(name string, v []byte) { fmt.Fprintf(&b, "%-22s %s\n", name, hex.EncodeToString(v)) }
	fmt.Fprintf(&b, "id %s\n", id)
	line("marker key (default)", MarkerKey(DefaultPrefix, id))
	line("marker key (prefix p/)", MarkerKey([]byte("p/"), id))
	line("marker param attempt 1", markerParam(1))
	line("marker param attempt 7", markerParam(7))
	line("tombstone param", markerParam(tombstoneAttempt))
	line("sentinel key shard 3", SentinelKey([]byte("p/"), 3))
	line("sentinel param", sentinelParam())
	line("watermark key", WatermarkKey([]byte("p/")))
	line("watermark value", EncodeWatermark(0x0102030405060708))
	line("clock sample key", ClockSampleKey([]byte("p/"), 0x0102030405060708))
	sid := ID{Owner: uuid.MustParse("0e5c2f6a-8b1d-4f3e-a2c4-9d8e7f6a5b4c"), Slot: 3, Seq: 0x0102030405060708}
	fmt.Fprintf(&b, "slot id %s\n", sid)
	line("slot key (default)", SlotKey(DefaultPrefix, sid.Owner, sid.Slot))
	line("slot key (prefix p/)", SlotKey([]byte("p/"), sid.Owner, sid.Slot))
	line("slot param attempt 1", slotParam(sid.Seq, 1))
	line("slot tombstone param", slotParam(sid.Seq, SlotTombstone))
	line("slot refresh param", slotParam(sid.Seq-1, SlotRefreshed))
	sr := SlotRange([]byte("p/"))
	line("slot range begin", sr.Begin)
	line("slot range end", sr.End)
	r := MarkerRange([]byte("p/"), 3, 0x0102030405060708)
	line("shard 3 range begin", r.Begin)
	line("shard 3 range end", r.End)

	path := filepath.Join("testdata", "marker.golden")
	if *update {
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Fatalf("marker encoding changed; if deliberate, rerun with -update and review.\ngot:\n%s\nwant:\n%s", b.Bytes(), want)
	}

	// The encodings round-trip.
	got, err := ParseMarkerKey([]byte("p/"), MarkerKey([]byte("p/"), id))
	if err != nil || got != id {
		t.Fatalf("ParseMarkerKey = %v, %v; want %v", got, err, id)
	}
	if p, err := ParseID(id.String()); err != nil || p != id {
		t.Fatalf("ParseID(String) = %v, %v; want %v", p, err, id)
	}
	// A marker value is its parameter with the versionstamp placed.
	vs := kv.NewVersionstamp(0x0102030405060708, 9)
	val, err := kv.PlaceVersionstamp(markerParam(7), vs)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := decodeMarker(val); err != nil || m.attempt != 7 || m.stamp != vs {
		t.Fatalf("decodeMarker = %+v, %v", m, err)
	}
	if m, err := decodeMarker([]byte{markerFormatV1, 0, 0, 0, 7}); err != nil || m.attempt != 7 {
		t.Fatalf("decodeMarker of format 1 = %+v, %v", m, err)
	}
	sval, err := kv.PlaceVersionstamp(sentinelParam(), vs)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := decodeSentinel(sval); err != nil || got != vs {
		t.Fatalf("decodeSentinel = %v, %v", got, err)
	}
	if !IsProtocolKey([]byte("p/"), ClockSampleKey([]byte("p/"), 7), make([]byte, 8)) || !ClockSampleRange([]byte("p/"), 8).Contains(ClockSampleKey([]byte("p/"), 7)) || ClockSampleRange([]byte("p/"), 7).Contains(ClockSampleKey([]byte("p/"), 7)) {
		t.Fatal("clock sample keys are not protocol keys in their range")
	}
	if !IsProtocolKey([]byte("p/"), SentinelKey([]byte("p/"), 3), sval) || !IsProtocolKey([]byte("p/"), MarkerKey([]byte("p/"), id), val) || IsProtocolKey([]byte("p/"), []byte("p/x"), val) {
		t.Fatal("IsProtocolKey does not tell markers and sentinels from other keys")
	}
	// Slots: keys and values round-trip, and every slot key sorts after
	// every shard and clock sample and before the watermark, inside
	// SlotRange and outside every ShardRange.
	if o, i, err := ParseSlotKey([]byte("p/"), SlotKey([]byte("p/"), sid.Owner, sid.Slot)); err != nil || o != sid.Owner || i != sid.Slot {
		t.Fatalf("ParseSlotKey = %v, %d, %v; want %v, %d", o, i, err, sid.Owner, sid.Slot)
	}
	if _, _, err := ParseSlotKey([]byte("p/"), MarkerKey([]byte("p/"), id)); err == nil {
		t.Fatal("ParseSlotKey accepted a legacy marker key")
	}
	slotVal, err := kv.PlaceVersionstamp(slotParam(sid.Seq, 7), vs)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := DecodeSlot(slotVal); err != nil || st != (SlotState{Seq: sid.Seq, Attempt: 7, Stamp: vs}) || !st.Committed() {
		t.Fatalf("DecodeSlot = %+v, %v", st, err)
	}
	for _, a := range []uint32{SlotTombstone, SlotRefreshed} {
		v, _ := kv.PlaceVersionstamp(slotParam(1, a), vs)
		if st, err := DecodeSlot(v); err != nil || st.Committed() {
			t.Fatalf("DecodeSlot of attempt %#x = %+v, %v; want not committed", a, st, err)
		}
	}
	if _, err := DecodeSlot(val); err == nil {
		t.Fatal("DecodeSlot accepted a marker value")
	}
	for _, o := range []uuid.UUID{sid.Owner, uuid.Max, {}} {
		for _, i := range []uint32{0, 1 << 31, 1<<32 - 1} {
			k := SlotKey([]byte("p/"), o, i)
			if !IsProtocolKey([]byte("p/"), k, slotVal) || IsProtocolKey([]byte("p/"), k, val) || !sr.Contains(k) {
				t.Fatalf("slot key %x: not a protocol key with a slot value, or one with a marker value, or outside SlotRange", k)
			}
			if bytes.Compare(k, ClockSampleKey([]byte("p/"), -1>>1)) <= 0 || bytes.Compare(k, WatermarkKey([]byte("p/"))) >= 0 {
				t.Fatalf("slot key %x does not sort between the clock samples and the watermark", k)
			}
			for s := range MaxShards {
				if ShardRange([]byte("p/"), uint8(s)).Contains(k) {
					t.Fatalf("slot key %x is in shard %d's range", k, s)
				}
			}
		}
	}
	if w, err := DecodeWatermark(EncodeWatermark(42)); err != nil || w != 42 {
		t.Fatalf("DecodeWatermark = %d, %v", w, err)
	}
	// Markers of one shard sort by version, and every marker sorts before
	// the watermark key.
	older, newer := id, id
	newer.Version++
	newer.Rand = uuid.UUID{}
	if bytes.Compare(MarkerKey(DefaultPrefix, older), MarkerKey(DefaultPrefix, newer)) >= 0 {
		t.Fatal("an older marker does not sort before a newer one")
	}
	last := ID{Shard: MaxShards - 1, Version: -1 >> 1, Rand: uuid.Max}
	if bytes.Compare(MarkerKey(DefaultPrefix, last), WatermarkKey(DefaultPrefix)) >= 0 {
		t.Fatal("the watermark key does not sort after every marker")
	}
	if !r.Contains(MarkerKey([]byte("p/"), ID{Shard: 3, Version: id.Version - 1})) || r.Contains(MarkerKey([]byte("p/"), id)) {
		t.Fatal("MarkerRange is not [shard start, version)")
	}
	if !r.Contains(MarkerKey([]byte("p/"), ID{Shard: 3})) || r.Contains(SentinelKey([]byte("p/"), 3)) {
		t.Fatal("MarkerRange does not cover every older marker of the shard while sparing its sentinel")
	}
}
