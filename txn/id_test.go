package txn_test

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/google/uuid"

	"github.com/idemkv/idemkv/txn"
)

// randomUUID4 draws a version-4 UUID from rng.
func randomUUID4(rng *rand.Rand) uuid.UUID {
	var u uuid.UUID
	for i := range u {
		u[i] = byte(rng.Uint32())
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

// Both ID forms survive String and ParseID, slot IDs and legacy IDs alike,
// and neither parses as the other.
func TestIDStringRoundTrip(t *testing.T) {
	for _, seed := range seeds()[:min(len(seeds()), 50)] {
		rng := rand.New(rand.NewPCG(seed, 0x1d))
		for range 200 {
			var id txn.ID
			if rng.IntN(2) == 0 {
				id = txn.ID{Owner: randomUUID4(rng), Slot: rng.Uint32() >> rng.IntN(32), Seq: rng.Uint64() >> rng.IntN(64)}
			} else {
				id = txn.ID{Shard: uint8(rng.IntN(txn.MaxShards)), Version: rng.Int64() >> rng.IntN(63), Rand: randomUUID4(rng)}
			}
			s := id.String()
			got, err := txn.ParseID(s)
			if err != nil || got != id {
				t.Fatalf("%s: ParseID(%q) = %+v, %v; want %+v", replay("TestIDStringRoundTrip", seed), s, got, err, id)
			}
			if got.IsSlot() != (id.Owner != uuid.Nil) {
				t.Fatalf("%s: %q: IsSlot = %v", replay("TestIDStringRoundTrip", seed), s, got.IsSlot())
			}
		}
	}
	for _, bad := range []string{
		"", "s-", "s-00000003-0000000000000007", "s-3-0000000000000007-6f1c6a3e-1d2b-4c3a-9e8f-0123456789ab",
		"s-00000003-0000000000000007-00000000-0000-0000-0000-000000000000", // the nil owner
		"s-0000000g-0000000000000007-6f1c6a3e-1d2b-4c3a-9e8f-0123456789ab",
		"03-0000000000000010", "3-0000000000000010-6f1c6a3e-1d2b-4c3a-9e8f-0123456789ab",
	} {
		if id, err := txn.ParseID(bad); !errors.Is(err, txn.ErrInvalidID) {
			t.Errorf("ParseID(%q) = %v, %v; want ErrInvalidID", bad, id, err)
		}
	}
	legacy, err := txn.ParseID("03-0000000000000010-6f1c6a3e-1d2b-4c3a-9e8f-0123456789ab")
	if err != nil || legacy.IsSlot() || legacy.Shard != 3 || legacy.Version != 0x10 {
		t.Fatalf("legacy ParseID = %+v, %v", legacy, err)
	}
	slot, err := txn.ParseID("s-00000003-0000000000000010-6f1c6a3e-1d2b-4c3a-9e8f-0123456789ab")
	if err != nil || !slot.IsSlot() || slot.Slot != 3 || slot.Seq != 0x10 || slot.Version != 0 || slot.Rand != (uuid.UUID{}) {
		t.Fatalf("slot ParseID = %+v, %v", slot, err)
	}
}
