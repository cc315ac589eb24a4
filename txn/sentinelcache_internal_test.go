package txn

import (
	"runtime"
	"testing"
	"unsafe"

	"github.com/idemkv/idemkv/kv"
)

// addrDB is a database value with an address and nothing else: the sentinel
// cache looks at nothing but the address and the type.
type addrDB struct {
	kv.Database
	n int
}

// TestSentinelCacheAddressReuse: a sighting recorded on a database that was
// collected must not be found by a new database allocated at the same
// address, which the cache's map key alone (the address) cannot tell apart.
func TestSentinelCacheAddressReuse(t *testing.T) {
	c, err := (&Options{Prefix: []byte("\xfdreuse/")}).config()
	if err != nil {
		t.Fatal(err)
	}
	const created, seen = 1000, 2000
	record := func() uintptr {
		db := &addrDB{n: 1}
		sentinelSeen(db, &c, 3, created, seen)
		if _, ok := cachedSentinel(db, &c, 3, seen+1); !ok {
			t.Fatal("a sighting just recorded was not found")
		}
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
		if v, ok := cachedSentinel(db, &c, 3, seen+1); ok {
			t.Fatalf("a new database at a collected one's address found its sighting (created %d)", v)
		}
		// A sighting recorded on the new database replaces the dead one.
		sentinelSeen(db, &c, 3, created+1, seen+1)
		if v, ok := cachedSentinel(db, &c, 3, seen+2); !ok || v != created+1 {
			t.Fatalf("after its own sighting: (%d, %v), want (%d, true)", v, ok, created+1)
		}
		runtime.KeepAlive(keep)
		return
	}
	t.Skipf("no allocation reused the collected database's address in %d tries", len(keep))
}
