package txn

import (
	"reflect"
	"sync"
	"unsafe"
	"weak"

	"github.com/idemkv/idemkv/kv"
)

// The sentinel cache remembers, per process, that a shard's sentinel was
// seen: per database, prefix and shard, the version the sentinel was
// created at and a version at which it was seen present. A call whose ID is
// dated within sentinelCacheVersions of that sighting skips its read of the
// sentinel (see "The sentinel cache" in the package doc for why that is
// safe, and what it costs).
//
// The database is keyed by the address of the value behind the kv.Database
// interface, and each entry keeps a weak pointer to that value: an entry
// counts only while its weak pointer still leads to the database at that
// address, so a closed and collected database leaves no entry that a new
// one allocated at the same address could use. (The address alone keeps
// nothing alive; weak.Make, which takes a lock on the database's memory
// span, runs only when a sighting is recorded, not on every lookup.)
// A database whose dynamic type is not a pointer (or points to a zero-size
// type, whose values need not have distinct addresses) is not cached.

// sentinelCacheVersions is how long a sighting is trusted: a call whose ID
// is dated later than this after it reads the sentinel again. It bounds
// the window after a foreign clear in which a call may skip the read (one
// second of versions; the read costs one point read per shard per second).
const sentinelCacheVersions = kv.VersionsPerSecond

// sentinelCacheMax bounds the entries; past it, the entries of collected
// databases are dropped, and if that is not enough, all of them.
const sentinelCacheMax = 4096

type sentinelCacheKey struct {
	db     uintptr // the database's address; see sentinelSighting.db
	prefix string
	shard  uint8
}

type sentinelSighting struct {
	// db is the database the sighting was made on: the entry is only
	// good while it still leads to the database at the key's address.
	db      weak.Pointer[byte]
	created int64 // the version of the sentinel's creation (its versionstamp's)
	seen    int64 // a version at which it was present, at or after created
}

var sentinelCache struct {
	mu sync.RWMutex
	m  map[sentinelCacheKey]sentinelSighting
}

// sentinelKeyOf returns the cache key of a shard of c's prefix on db and
// the database's address, or false if db cannot be cached.
func sentinelKeyOf(db kv.Database, c *config, shard uint8) (sentinelCacheKey, *byte, bool) {
	v := reflect.ValueOf(db)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Type().Elem().Size() == 0 {
		return sentinelCacheKey{}, nil, false
	}
	p := (*byte)(v.UnsafePointer())
	return sentinelCacheKey{
		db:     uintptr(unsafe.Pointer(p)),
		prefix: c.prefixKey,
		shard:  shard,
	}, p, true
}

// cachedSentinel returns the creation version of the shard's sentinel if it
// was seen present within sentinelCacheVersions of version v.
func cachedSentinel(db kv.Database, c *config, shard uint8, v int64) (int64, bool) {
	k, p, ok := sentinelKeyOf(db, c, shard)
	if !ok {
		return 0, false
	}
	sentinelCache.mu.RLock()
	s, ok := sentinelCache.m[k]
	sentinelCache.mu.RUnlock()
	if !ok || v-s.seen > sentinelCacheVersions || s.db.Value() != p {
		return 0, false
	}
	return s.created, true
}

// sentinelSeen records that the shard's sentinel, created at version
// created, was present at version seen. Sightings only move forward: one
// of an older incarnation (a smaller creation version), or an older
// sighting of the same one, changes nothing.
func sentinelSeen(db kv.Database, c *config, shard uint8, created, seen int64) {
	k, p, ok := sentinelKeyOf(db, c, shard)
	if !ok {
		return
	}
	if seen < created {
		seen = created
	}
	wp := weak.Make(p)
	sentinelCache.mu.Lock()
	defer sentinelCache.mu.Unlock()
	old, had := sentinelCache.m[k]
	if had && old.db.Value() != p {
		// An entry of a collected database that had this address.
		had = false
	}
	switch {
	case had && old.created > created:
		return
	case had && old.created == created && old.seen >= seen:
		return
	}
	if sentinelCache.m == nil {
		sentinelCache.m = make(map[sentinelCacheKey]sentinelSighting)
	}
	if !had && len(sentinelCache.m) >= sentinelCacheMax {
		for k, s := range sentinelCache.m {
			if s.db.Value() == nil {
				delete(sentinelCache.m, k)
			}
		}
		if len(sentinelCache.m) >= sentinelCacheMax {
			clear(sentinelCache.m)
		}
	}
	sentinelCache.m[k] = sentinelSighting{db: wp, created: created, seen: seen}
}

// sentinelMissing records that the shard's sentinel was absent at version
// at: the cached sighting is dropped unless its sentinel was created after
// at (a newer incarnation, already known).
func sentinelMissing(db kv.Database, c *config, shard uint8, at int64) {
	k, p, ok := sentinelKeyOf(db, c, shard)
	if !ok {
		return
	}
	sentinelCache.mu.Lock()
	defer sentinelCache.mu.Unlock()
	if s, had := sentinelCache.m[k]; had && s.created <= at && s.db.Value() == p {
		delete(sentinelCache.m, k)
	}
}
