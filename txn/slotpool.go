package txn

import (
	"crypto/rand"
	"fmt"
	"reflect"
	"sync"
	"time"
	"unsafe"
	"weak"

	"github.com/google/uuid"

	"github.com/idemkv/idemkv/kv"
)

// A slot pool hands a process's calls their marker slots: per database
// handle (the value behind the kv.Database) and prefix, one pool, with an
// owner drawn when the pool is made, so a new process or a new handle is a
// new owner and no two pools ever write the same slot. See "Marker slots"
// in the package doc for what the slots hold and why the protocol is safe.
//
// The database is keyed by the address of the value behind the kv.Database
// interface, and each entry keeps a weak pointer to that value: an entry
// counts only while its weak pointer still leads to the database at that
// address, so a closed and collected database leaves no pool that a new
// one allocated at the same address could use. (The address alone keeps
// nothing alive; weak.Make, which takes a lock on the database's memory
// span, runs only when a pool is made, not on every call.) A database
// whose dynamic type is not a pointer (or points to a zero-size type,
// whose values need not have distinct addresses) shares one pool per
// prefix with every other such database: still safe — a pool's sequence
// numbers only grow, whatever database its slots are written in — but its
// sightings (below) may be another database's, which costs only liveness.

// sightingVersions is how long a sighting of a slot is trusted: a call
// whose read version is later than this after it reads the slot first (one
// second of versions; the read overlaps fn, like the commit itself).
const sightingVersions = kv.VersionsPerSecond

// poolRegistryMax bounds the registry; past it, the pools of collected
// databases are dropped, and if that is not enough, all of them (their
// slots become a dead owner's, which the janitor removes).
const poolRegistryMax = 4096

type poolKey struct {
	db     uintptr // the database's address; 0 for the shared pool of unaddressable ones
	prefix string
}

type poolEntry struct {
	db   weak.Pointer[byte] // the database the pool is for, while it lives
	pool *slotPool
}

var poolRegistry struct {
	mu sync.RWMutex
	m  map[poolKey]poolEntry
}

// PoolSlots reports this process's marker slots for db and opts' Prefix:
// how many slots its pool has made that are held by a call now or were
// last written (as far as this process knows) at database version since or
// later — each one key in the database, until the janitor removes it,
// unused for its minimum age: pass the janitor's last cut-off, or 0 for
// all — and how many of those are pinned, reserved for the Resolve of a
// call whose outcome is unknown. Both are 0 before the first call.
func PoolSlots(db kv.Database, opts *Options, since int64) (slots, pinned int) {
	c, err := opts.config()
	if err != nil || db == nil {
		return 0, 0
	}
	k, p := poolKeyOf(db, &c)
	poolRegistry.mu.RLock()
	e, ok := poolRegistry.m[k]
	poolRegistry.mu.RUnlock()
	if !ok || (p != nil && e.db.Value() != p) {
		return 0, 0
	}
	return e.pool.stats(since)
}

// poolKeyOf returns the registry key of db and c's prefix, and db's
// address (nil for a database that shares the prefix's common pool).
func poolKeyOf(db kv.Database, c *config) (poolKey, *byte) {
	k := poolKey{prefix: c.prefixKey}
	var p *byte
	if v := reflect.ValueOf(db); v.Kind() == reflect.Pointer && !v.IsNil() && v.Type().Elem().Size() != 0 {
		p = (*byte)(v.UnsafePointer())
		k.db = uintptr(unsafe.Pointer(p))
	}
	return k, p
}

// poolFor returns the slot pool of db and c's prefix, making it on first
// use.
func poolFor(db kv.Database, c *config) (*slotPool, error) {
	k, p := poolKeyOf(db, c)
	poolRegistry.mu.RLock()
	e, ok := poolRegistry.m[k]
	poolRegistry.mu.RUnlock()
	if ok && (p == nil || e.db.Value() == p) {
		return e.pool, nil
	}
	pool, err := newSlotPool(c.prefix)
	if err != nil {
		return nil, err
	}
	var wp weak.Pointer[byte]
	if p != nil {
		wp = weak.Make(p)
	}
	poolRegistry.mu.Lock()
	defer poolRegistry.mu.Unlock()
	if e, ok := poolRegistry.m[k]; ok && (p == nil || e.db.Value() == p) {
		return e.pool, nil // made meanwhile by another call
	}
	if poolRegistry.m == nil {
		poolRegistry.m = make(map[poolKey]poolEntry)
	}
	if len(poolRegistry.m) >= poolRegistryMax {
		for k, e := range poolRegistry.m {
			if k.db != 0 && e.db.Value() == nil {
				delete(poolRegistry.m, k)
			}
		}
		if len(poolRegistry.m) >= poolRegistryMax {
			clear(poolRegistry.m)
		}
	}
	poolRegistry.m[k] = poolEntry{db: wp, pool: pool}
	return pool, nil
}

// slotPool is the marker slots of one owner.
type slotPool struct {
	owner  uuid.UUID
	prefix []byte // shared with the interned prefixKeys: read only

	// mu guards the pool's lists. A slot's own fields belong to the call
	// holding it; handing the slot over through mu orders its accesses.
	mu struct {
		sync.Mutex
		slots  []*slot  // by index
		free   []uint32 // LIFO: the slot released last is taken first (hot slots stay hot)
		pinned []pin    // slots reserved for Resolve, by release time
		// stamps holds, by index, each slot's stamp (slot.stamp) as of its
		// last release, or -1 while a call holds it: for PoolSlots.
		stamps []int64
	}
}

type pin struct {
	index uint32
	until time.Time
}

// slot is one marker slot of a pool. Its fields are read and written only
// by the call holding it.
type slot struct {
	index uint32
	// buf is the slot's key followed by a zero byte: the key and its
	// single-key conflict range share it. Nothing writes to it once made.
	buf []byte
	// seq is the last sequence number handed out with the slot.
	seq uint64
	// absent reports that the slot is known not to exist: a new slot, or
	// one a reader found gone. The next call creates it (a refresh) first.
	absent bool
	// stamp is the version of a write of the slot (its versionstamp's) and
	// seen a version at which the slot was present with that write or a
	// later one: the pool's last sighting, 0 for none.
	stamp, seen int64
}

func newSlotPool(prefix []byte) (*slotPool, error) {
	p := &slotPool{prefix: prefix}
	// A random (version 4) UUID, as uuid.NewRandom makes it.
	if _, err := rand.Read(p.owner[:]); err != nil {
		return nil, fmt.Errorf("txn: cannot make a slot owner ID: %w", err)
	}
	p.owner[6] = p.owner[6]&0x0f | 0x40
	p.owner[8] = p.owner[8]&0x3f | 0x80
	return p, nil
}

// acquire hands out a slot for one call, with the call's sequence number.
// Pins whose time has come are freed first (the clock is read only when
// there are pins: a call's own cost is about a microsecond, and a clock
// read a tenth of it here).
func (p *slotPool) acquire() *slot {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.mu.pinned) > 0 {
		now := time.Now()
		for len(p.mu.pinned) > 0 && !now.Before(p.mu.pinned[0].until) {
			p.mu.free = append(p.mu.free, p.mu.pinned[0].index)
			p.mu.pinned = p.mu.pinned[1:]
		}
	}
	var s *slot
	if n := len(p.mu.free); n > 0 {
		s = p.mu.slots[p.mu.free[n-1]]
		p.mu.free = p.mu.free[:n-1]
	} else {
		i := uint32(len(p.mu.slots))
		b := appendSlotKey(make([]byte, 0, len(p.prefix)+slotSuffixLen+1), p.prefix, p.owner, i)
		s = &slot{index: i, buf: append(b, 0), absent: true}
		p.mu.slots = append(p.mu.slots, s)
		p.mu.stamps = append(p.mu.stamps, 0)
	}
	p.mu.stamps[s.index] = -1
	s.seq++
	return s
}

// release gives a slot back: free at once, or pinned until the given time
// (non-zero) so that Resolve of its call's ID finds the call's answer — or
// retired, never handed out again, when it was found holding a sequence
// the pool has not issued (another writer).
func (p *slotPool) release(s *slot, pinUntil time.Time, retire bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.stamps[s.index] = s.stamp
	switch {
	case retire:
	case !pinUntil.IsZero():
		p.mu.pinned = append(p.mu.pinned, pin{index: s.index, until: pinUntil})
	default:
		p.mu.free = append(p.mu.free, s.index)
	}
}

// stats returns the number of the pool's slots held by a call now or last
// written at version since or later, and of those pinned.
func (p *slotPool) stats(since int64) (slots, pinned int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, v := range p.mu.stamps {
		if v < 0 || v >= since {
			slots++
		}
	}
	for _, pin := range p.mu.pinned {
		if v := p.mu.stamps[pin.index]; v < 0 || v >= since {
			pinned++
		}
	}
	return slots, pinned
}

// key is the slot's key.
func (s *slot) key() []byte { n := len(s.buf) - 1; return s.buf[:n:n] }

// keyRange is the slot's single-key conflict range.
func (s *slot) keyRange() kv.Range {
	n := len(s.buf) - 1
	return kv.Range{Begin: s.buf[:n:n], End: s.buf[: n+1 : n+1]}
}

// fresh reports whether the pool's sighting stands for a read of the slot
// by an attempt at read version rv: seen within sightingVersions before rv,
// with a write no more than kv.MaxTransactionLifeVersions before rv (see
// "Liveness" in the package doc).
func (s *slot) fresh(rv int64) bool {
	return !s.absent && s.seen > 0 && rv-s.seen <= sightingVersions && writtenRecently(s.stamp, rv)
}

// saw records that the slot was present at version seen with a write at
// version stamp (or a later one). Sightings only move forward.
func (s *slot) saw(stamp, seen int64) {
	if seen >= s.seen {
		s.stamp, s.seen, s.absent = stamp, seen, false
	}
}

// gone records that the slot was found absent.
func (s *slot) gone() { s.stamp, s.seen, s.absent = 0, 0, true }
