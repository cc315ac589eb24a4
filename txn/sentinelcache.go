package txn

import (
	"reflect"
	"sync"
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
// The database is keyed by a weak pointer to the value behind the
// kv.Database interface, so a closed and collected database leaves no entry
// that a new one allocated at the same address could find. A database
// whose dynamic type is not a pointer (or points to a zero-size type, whose
// values need not have distinct addresses) is not cached.

// sentinelCacheVersions is how long a sighting is trusted: a call whose ID
// is dated later than this after it reads the sentinel again. It bounds
// the window after a foreign clear in which a call may skip the read (one
// second of versions; the read costs one point read per shard per second).
const sentinelCacheVersions = kv.VersionsPerSecond

// sentinelCacheMax bounds the entries; past it, the entries of collected
// databases are dropped, and if that is not enough, all of them.
const sentinelCacheMax = 4096

type sentinelCacheKey struct {
	db     weak.Pointer[byte]
	prefix string
	shard  uint8
}

type sentinelSighting struct {
	created int64 // the version of the sentinel's creation (its versionstamp's)
	seen    int64 // a version at which it was present, at or after created
}

var sentinelCache struct {
	mu sync.RWMutex
	m  map[sentinelCacheKey]sentinelSighting
}

// sentinelKeyOf returns the cache key of a shard of c's prefix on db, and
// false if db cannot be cached.
func sentinelKeyOf(db kv.Database, c *config, shard uint8) (sentinelCacheKey, bool) {
	v := reflect.ValueOf(db)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Type().Elem().Size() == 0 {
		return sentinelCacheKey{}, false
	}
	return sentinelCacheKey{
		db:     weak.Make((*byte)(v.UnsafePointer())),
		prefix: c.prefixKey,
		shard:  shard,
	}, true
}

// cachedSentinel returns the creation version of the shard's sentinel if it
// was seen present within sentinelCacheVersions of version v.
func cachedSentinel(db kv.Database, c *config, shard uint8, v int64) (int64, bool) {
	k, ok := sentinelKeyOf(db, c, shard)
	if !ok {
		return 0, false
	}
	sentinelCache.mu.RLock()
	s, ok := sentinelCache.m[k]
	sentinelCache.mu.RUnlock()
	if !ok || v-s.seen > sentinelCacheVersions {
		return 0, false
	}
	return s.created, true
}

// sentinelSeen records that the shard's sentinel, created at version
// created, was present at version seen. Sightings only move forward: one
// of an older incarnation (a smaller creation version), or an older
// sighting of the same one, changes nothing.
func sentinelSeen(db kv.Database, c *config, shard uint8, created, seen int64) {
	k, ok := sentinelKeyOf(db, c, shard)
	if !ok {
		return
	}
	if seen < created {
		seen = created
	}
	sentinelCache.mu.Lock()
	defer sentinelCache.mu.Unlock()
	old, had := sentinelCache.m[k]
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
		for k := range sentinelCache.m {
			if k.db.Value() == nil {
				delete(sentinelCache.m, k)
			}
		}
		if len(sentinelCache.m) >= sentinelCacheMax {
			clear(sentinelCache.m)
		}
	}
	sentinelCache.m[k] = sentinelSighting{created: created, seen: seen}
}

// sentinelMissing records that the shard's sentinel was absent at version
// at: the cached sighting is dropped unless its sentinel was created after
// at (a newer incarnation, already known).
func sentinelMissing(db kv.Database, c *config, shard uint8, at int64) {
	k, ok := sentinelKeyOf(db, c, shard)
	if !ok {
		return
	}
	sentinelCache.mu.Lock()
	defer sentinelCache.mu.Unlock()
	if s, had := sentinelCache.m[k]; had && s.created <= at {
		delete(sentinelCache.m, k)
	}
}
