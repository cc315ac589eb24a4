package txn

import (
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/idemkv/idemkv/kv"
)

// addrDB is a database value with an address and nothing else: the pool
// registry looks at nothing but the address and the type.
type addrDB struct {
	kv.Database
	n int
}

// TestSlotPoolAddressReuse: the pool of a database that was collected must
// not be handed to a new database allocated at the same address, which the
// registry's map key alone (the address) cannot tell apart: that one is a
// new handle, so a new owner.
func TestSlotPoolAddressReuse(t *testing.T) {
	c, err := (&Options{Prefix: []byte("\xfdreuse/")}).config()
	if err != nil {
		t.Fatal(err)
	}
	record := func() uintptr {
		db := &addrDB{n: 1}
		p, err := poolFor(db, &c)
		if err != nil {
			t.Fatal(err)
		}
		if q, _ := poolFor(db, &c); q != p {
			t.Fatal("a database's pool was not found again")
		}
		p.release(p.acquire(), time.Time{}, false)
		return uintptr(unsafe.Pointer(db))
	}
	old := record()
	runtime.GC()
	runtime.GC()
	// Allocate until a new database lands at the old address (the freed
	// slot of its size class is reused), keeping the misses alive.
	var keep []*addrDB
	for range 1 << 16 {
		db := &addrDB{n: 2}
		if uintptr(unsafe.Pointer(db)) != old {
			keep = append(keep, db)
			continue
		}
		if slots, _ := PoolSlots(db, &Options{Prefix: c.prefix}, 0); slots != 0 {
			t.Fatalf("a new database at a collected one's address sees its pool (%d slots)", slots)
		}
		p, err := poolFor(db, &c)
		if err != nil {
			t.Fatal(err)
		}
		if s := p.acquire(); s.index != 0 || s.seq != 1 || !s.absent {
			t.Fatalf("the new database's first slot: index %d, seq %d, absent %v; want a new pool's", s.index, s.seq, s.absent)
		}
		runtime.KeepAlive(keep)
		return
	}
	t.Skipf("no allocation reused the collected database's address in %d tries", len(keep))
}
