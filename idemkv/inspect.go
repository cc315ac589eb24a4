package idemkv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/txn"
)

// What an operator can ask a store about its keyed records and markers
// (the idemkv CLI's keys, show, markers and resolve). Everything here only
// reads; large keyspaces are read in pages, a transaction each, so no read
// outlives FoundationDB's five-second transaction lifetime.

// Errors of the inspection methods.
var (
	// ErrNotFound is returned by KeyedRecord for a key with no record.
	ErrNotFound = errors.New("idemkv: no such key")
	// ErrImplausibleID is wrapped by CheckID for an ID that no call of
	// this store can have made.
	ErrImplausibleID = errors.New("idemkv: not an ID of a call of this store")
)

// inspectPage is how many keys one inspection transaction reads.
const inspectPage = 2_000

// KeyedState is a keyed record's state.
type KeyedState string

// Keyed record states.
const (
	// KeyedStateInProgress: a caller holds the key under a lease that has
	// not expired.
	KeyedStateInProgress KeyedState = "in_progress"
	// KeyedStateExpired: in progress, but the lease expired (by versions
	// and by the reader's wall clock); the next caller takes the key over.
	KeyedStateExpired KeyedState = "expired"
	// KeyedStateCompleted: the result (or a Final error) is stored and
	// replayed to repeats.
	KeyedStateCompleted KeyedState = "completed"
	// KeyedStateUnknown: the request's outcome may have happened and could
	// not be settled; the key is kept (callers get *OutcomeUnknownError)
	// until Store.ForgetKey or its retention. Result holds the cause.
	KeyedStateUnknown KeyedState = "unknown"
)

// KeyedRecord is what a keyed request's record says, as of one read.
type KeyedRecord struct {
	Scope, Key string
	State      KeyedState
	// Token is the fencing token of the claim that wrote the record.
	Token uint64
	// Age is the time, in database versions, since that claim.
	Age time.Duration
	// LeaseLeft is the time left on an in-progress claim's lease: the
	// later of its version and wall-clock deadlines (by the reader's
	// clock).
	LeaseLeft time.Duration
	// RemovalIn is the time until the record's age-index entry is due and
	// the janitor may remove it.
	RemovalIn time.Duration
	// StoredError reports that Result is a Final error (a JSON
	// StoredError), not fn's value; Result is the stored encoding (the
	// store's Codec, JSON by default), empty while in progress.
	StoredError bool
	Result      []byte
}

// KeyedFilter selects keyed records. The zero value selects all.
type KeyedFilter struct {
	// Scope selects the records of one scope (DoOptions.Scope); the empty
	// scope is the default. AllScopes selects every scope's.
	Scope     string
	AllScopes bool
	// Prefix selects keys that begin with it.
	Prefix string
	// State selects records in that state ("" for all).
	State KeyedState
	// Limit stops after that many records (0: no limit).
	Limit int
}

// KeyedRecords lists keyed records in key order.
func (s *Store) KeyedRecords(ctx context.Context, f KeyedFilter) ([]KeyedRecord, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	switch f.State {
	case "", KeyedStateInProgress, KeyedStateExpired, KeyedStateCompleted, KeyedStateUnknown:
	default:
		return nil, fmt.Errorf("%w: state %q; use %s, %s, %s or %s", ErrInvalidOptions, f.State, KeyedStateInProgress, KeyedStateExpired, KeyedStateCompleted, KeyedStateUnknown)
	}
	switch {
	case f.Limit < 0:
		return nil, fmt.Errorf("%w: limit %d is negative", ErrInvalidOptions, f.Limit)
	case len(f.Scope) > MaxScopeLen:
		return nil, fmt.Errorf("%w: scope %q… is %d bytes", ErrScopeTooLong, f.Scope[:32], len(f.Scope))
	}
	from := s.keyed.records
	if !f.AllScopes {
		from = s.keyed.recordKey(keyRef(f.Scope, f.Prefix))
	}
	r, err := kv.PrefixRange(from)
	if err != nil {
		return nil, err
	}
	var out []KeyedRecord
	err = s.scan(ctx, r, func(rv int64, e kv.KeyValue) (bool, error) {
		ref := e.Key[len(s.keyed.records):]
		scope, key, ok := splitRef(ref)
		if !ok {
			return false, fmt.Errorf("idemkv: corrupt keyed record key %q", e.Key)
		}
		if !strings.HasPrefix(key, f.Prefix) {
			return false, nil
		}
		rec, err := decodeRecord(e.Value)
		if err != nil {
			return false, fmt.Errorf("key %q: %w", key, err)
		}
		kr := keyedRecord(scope, key, rec, rv, s.now())
		if f.State == "" || kr.State == f.State {
			out = append(out, kr)
		}
		return f.Limit > 0 && len(out) >= f.Limit, nil
	})
	return out, s.closing(err)
}

// splitRef splits a record's reference (keyRef) into scope and key.
func splitRef(ref []byte) (scope, key string, ok bool) {
	if len(ref) == 0 || len(ref) < 1+int(ref[0]) {
		return "", "", false
	}
	n := int(ref[0])
	return string(ref[1 : 1+n]), string(ref[1+n:]), true
}

// KeyedCounts counts the keyed records of every scope by state, reading
// them in pages but keeping none.
func (s *Store) KeyedCounts(ctx context.Context) (map[KeyedState]int, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	r, err := kv.PrefixRange(s.keyed.records)
	if err != nil {
		return nil, err
	}
	counts := map[KeyedState]int{KeyedStateInProgress: 0, KeyedStateExpired: 0, KeyedStateCompleted: 0, KeyedStateUnknown: 0}
	err = s.scan(ctx, r, func(rv int64, e kv.KeyValue) (bool, error) {
		rec, err := decodeRecord(e.Value)
		if err != nil {
			return false, fmt.Errorf("key %q: %w", e.Key, err)
		}
		counts[keyedRecord("", "", rec, rv, s.now()).State]++
		return false, nil
	})
	return counts, s.closing(err)
}

// KeyedRecord returns the record of key in scope ("" for the default), or
// an error matching ErrNotFound.
func (s *Store) KeyedRecord(ctx context.Context, scope, key string) (KeyedRecord, error) {
	if err := s.check(); err != nil {
		return KeyedRecord{}, err
	}
	if err := keyError("key", key); err != nil {
		return KeyedRecord{}, err
	}
	if len(scope) > MaxScopeLen {
		return KeyedRecord{}, fmt.Errorf("%w: scope %q… is %d bytes", ErrScopeTooLong, scope[:32], len(scope))
	}
	kr, err := ReadTransact(ctx, s, func(tr kv.ReadTransaction) (*KeyedRecord, error) {
		rv, err := tr.GetReadVersion().Get()
		if err != nil {
			return nil, err
		}
		val, err := tr.Get(s.keyed.recordKey(keyRef(scope, key))).Get()
		if err != nil || val == nil {
			return nil, err
		}
		rec, err := decodeRecord(val)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", key, err)
		}
		kr := keyedRecord(scope, key, rec, rv, s.now())
		return &kr, nil
	})
	switch {
	case err != nil:
		return KeyedRecord{}, err
	case kr == nil:
		return KeyedRecord{}, fmt.Errorf("%w: %q has no keyed record (never used, released, or removed after its retention)", ErrNotFound, key)
	}
	return *kr, nil
}

func keyedRecord(scope, key string, rec record, rv int64, now time.Time) KeyedRecord {
	kr := KeyedRecord{
		Scope:     scope,
		Key:       key,
		Token:     rec.token,
		Age:       versionsToDuration(rv - int64(rec.token)),
		RemovalIn: versionsToDuration(max(rec.due-rv, 0)),
	}
	switch {
	case rec.status == statusCompleted:
		kr.State = KeyedStateCompleted
		kr.StoredError = rec.kind == resultError
		kr.Result = rec.result
	case rec.status == statusUnknown:
		kr.State = KeyedStateUnknown
		kr.StoredError = true
		kr.Result = rec.result
	case !rec.expired(rv, now):
		kr.State = KeyedStateInProgress
		kr.LeaseLeft = max(rec.leaseLeft(rv, now), 0)
	default:
		kr.State = KeyedStateExpired
	}
	return kr
}

func versionsToDuration(v int64) time.Duration {
	return time.Duration(v) * (time.Second / kv.VersionsPerSecond)
}

// scan reads r in pages, a transaction each, calling fn with each page's
// read version and each pair until fn says stop.
func (s *Store) scan(ctx context.Context, r kv.Range, fn func(rv int64, e kv.KeyValue) (stop bool, err error)) error {
	for {
		type page struct {
			rv  int64
			kvs []kv.KeyValue
		}
		p, err := ReadTransact(ctx, s, func(tr kv.ReadTransaction) (page, error) {
			rv, err := tr.GetReadVersion().Get()
			if err != nil {
				return page{}, err
			}
			kvs, err := tr.GetRange(r, kv.RangeOptions{Limit: inspectPage}).Get()
			return page{rv, kvs}, err
		})
		if err != nil {
			return err
		}
		for _, e := range p.kvs {
			stop, err := fn(p.rv, e)
			if stop || err != nil {
				return err
			}
		}
		if len(p.kvs) < inspectPage {
			return nil
		}
		r.Begin = append(bytes.Clone(p.kvs[len(p.kvs)-1].Key), 0)
	}
}

// MarkerCounts is a count of the transaction markers in the store, as
// Store.Markers reads them.
type MarkerCounts struct {
	// ReadVersion is the version of the first read; ages are measured from
	// it. Watermark is the janitor's: every marker below it was removed.
	ReadVersion, Watermark int64
	// Total is the number of markers, fences (Resolve's tombstones)
	// included: marker slots and legacy markers.
	Total int
	// Slots is the number of marker slots (of Total), and Owners the
	// number of owners they belong to: a slot pool per process and
	// database handle (see txn's doc, "Marker slots").
	Slots, Owners int
	// Shards counts legacy markers (written by earlier versions of txn)
	// per shard, for the shards that have a sentinel or markers.
	Shards []ShardMarkers
	// ByAge counts markers by age: each bucket holds those younger than
	// its Below and at least as old as the previous bucket's; the last
	// has Below 0, meaning no bound.
	ByAge []AgeCount
}

// ShardMarkers is one shard's markers.
type ShardMarkers struct {
	Shard uint8
	Count int
	// Oldest is the age of the shard's oldest marker (0 if it has none).
	Oldest time.Duration
	// FirstVersion is the version of the shard's first call, from its
	// sentinel (0 if it has none).
	FirstVersion int64
}

// AgeCount is one age bucket of MarkerCounts.
type AgeCount struct {
	Below time.Duration
	Count int
}

// markerAgeBuckets are MarkerCounts.ByAge's bounds, the last unbounded.
var markerAgeBuckets = []time.Duration{10 * time.Second, time.Minute, 10 * time.Minute, time.Hour, 24 * time.Hour, 0}

// Markers counts the transaction markers by shard and age, reading every
// one of them (in pages): an exact count for operators, unlike
// MarkersAlive's free estimate.
func (s *Store) Markers(ctx context.Context) (MarkerCounts, error) {
	if err := s.check(); err != nil {
		return MarkerCounts{}, err
	}
	prefix := s.cfg.txnOpts.Prefix
	var mc MarkerCounts
	head, err := ReadTransact(ctx, s, func(tr kv.ReadTransaction) (shardHead, error) { return s.readHead(tr) })
	if err != nil {
		return mc, s.closing(err)
	}
	mc.ReadVersion, mc.Watermark = head.rv, head.watermark
	for _, b := range markerAgeBuckets {
		mc.ByAge = append(mc.ByAge, AgeCount{Below: b})
	}
	all, err := kv.PrefixRange(prefix)
	if err != nil {
		return mc, err
	}
	var counts [txn.MaxShards]int
	var oldest [txn.MaxShards]int64
	owners := map[uuid.UUID]bool{}
	err = s.scan(ctx, all, func(_ int64, e kv.KeyValue) (bool, error) {
		var version int64
		if owner, _, err := txn.ParseSlotKey(prefix, e.Key); err == nil {
			st, err := txn.DecodeSlot(e.Value)
			if err != nil {
				return false, nil // a key the janitor refuses and names
			}
			owners[owner] = true
			mc.Slots++
			mc.Total++
			version = st.Stamp.Version()
		} else {
			id, err := txn.ParseMarkerKey(prefix, e.Key)
			if err != nil || int(id.Shard) >= txn.MaxShards {
				return false, nil // a sentinel, the watermark, or a key the janitor refuses and names
			}
			if counts[id.Shard] == 0 || id.Version < oldest[id.Shard] {
				oldest[id.Shard] = id.Version
			}
			counts[id.Shard]++
			version = id.Version
		}
		age := versionsToDuration(head.rv - version)
		for i := range mc.ByAge {
			if b := mc.ByAge[i].Below; b == 0 || age < b {
				mc.ByAge[i].Count++
				break
			}
		}
		return false, nil
	})
	if err != nil {
		return mc, s.closing(err)
	}
	mc.Owners = len(owners)
	for shard := range txn.MaxShards {
		sm := ShardMarkers{Shard: uint8(shard), Count: counts[shard], FirstVersion: head.sentinels[shard]}
		if sm.Count > 0 {
			sm.Oldest = versionsToDuration(head.rv - oldest[shard])
		}
		if sm.Count > 0 || sm.FirstVersion != 0 {
			mc.Shards = append(mc.Shards, sm)
			mc.Total += sm.Count
		}
	}
	return mc, nil
}

// shardHead is what one read learns about the marker prefix: the read
// version, the janitor's watermark and each shard's sentinel version.
type shardHead struct {
	rv, watermark int64
	sentinels     [txn.MaxShards]int64 // 0: no sentinel
}

func (s *Store) readHead(tr kv.ReadTransaction) (shardHead, error) {
	var h shardHead
	prefix := s.cfg.txnOpts.Prefix
	rv, err := tr.GetReadVersion().Get()
	if err != nil {
		return h, err
	}
	h.rv = rv
	futures := make([]*kv.Future[[]byte], txn.MaxShards)
	for shard := range futures {
		futures[shard] = tr.Get(txn.SentinelKey(prefix, uint8(shard)))
	}
	wm := tr.Get(txn.WatermarkKey(prefix))
	for shard, f := range futures {
		val, err := f.Get()
		if err != nil {
			return h, err
		}
		h.sentinels[shard] = sentinelVersion(val)
	}
	val, err := wm.Get()
	if err != nil {
		return h, err
	}
	if h.watermark, err = txn.DecodeWatermark(val); err != nil {
		return h, err
	}
	return h, nil
}

// sentinelVersion is the version a shard's sentinel was created at: its
// value is a format byte and the versionstamp of its creation (see
// txn.SentinelKey). Anything else reads as 0, no sentinel, which only
// makes CheckID stricter.
func sentinelVersion(val []byte) int64 {
	var vs kv.Versionstamp
	if len(val) != 1+len(vs) || val[0] != 0x01 {
		return 0
	}
	copy(vs[:], val[1:])
	return vs.Version()
}

// CheckID reports, without writing anything, whether id can be the ID of a
// call made on this store, before a Resolve fences it: Resolve writes a
// tombstone for any ID whose call has not committed, and answers "not
// committed" to a mistyped one. For a slot ID (txn.ID.IsSlot) it reads the
// call's slot and refuses, with an error wrapping ErrImplausibleID that
// says why:
//   - a slot that is absent: no call of this store used it, or the janitor
//     removed it (the outcome is then lost; Resolve would say so too);
//   - a slot that holds a later call's sequence: reused after the call's
//     resolve window, so the outcome is lost (Resolve would say so too).
//
// For a legacy ID (made by earlier versions of txn) it refuses:
//   - a shard no call has used (none has a sentinel there), which for a
//     shard at or past Options.Shards means a shard out of range;
//   - a version after the database's current version (in the future);
//   - a version older than the first call of its shard (its sentinel):
//     older than anything the store has seen there;
//   - a version below the janitor's watermark: its marker is gone and the
//     outcome lost (Resolve would say so too).
//
// Malformed IDs (a zero ID, a shard over txn.MaxShards, a random part that
// is not a version-4 UUID) are refused as txn.ErrInvalidID.
func (s *Store) CheckID(ctx context.Context, id txn.ID) error {
	if err := s.check(); err != nil {
		return err
	}
	if id.IsSlot() {
		return s.checkSlotID(ctx, id)
	}
	switch {
	case id.IsZero():
		return fmt.Errorf("%w: the zero ID", txn.ErrInvalidID)
	case int(id.Shard) >= txn.MaxShards:
		return fmt.Errorf("%w: %v has shard %d; shards are 0 to %d", txn.ErrInvalidID, id, id.Shard, txn.MaxShards-1)
	case id.Version < 0:
		return fmt.Errorf("%w: %v has a negative version", txn.ErrInvalidID, id)
	case id.Rand.Version() != 4:
		return fmt.Errorf("%w: %v's random part is not a version-4 UUID", txn.ErrInvalidID, id)
	}
	head, err := ReadTransact(ctx, s, func(tr kv.ReadTransaction) (shardHead, error) { return s.readHead(tr) })
	if err != nil {
		return s.closing(err)
	}
	shards := s.cfg.shards
	if shards == 0 {
		shards = txn.DefaultShards
	}
	first := head.sentinels[id.Shard]
	switch {
	case first == 0 && int(id.Shard) >= shards:
		return fmt.Errorf("%w: %v: shard %d is out of range (the store uses %d shards, and no call has used shard %d)", ErrImplausibleID, id, id.Shard, shards, id.Shard)
	case first == 0:
		return fmt.Errorf("%w: %v: no call has used shard %d of this store (is the prefix %q the calls'?)", ErrImplausibleID, id, id.Shard, s.cfg.prefix)
	case id.Version > head.rv:
		return fmt.Errorf("%w: %v: version %d is in the future (the database is at %d, %v earlier)", ErrImplausibleID, id, id.Version, head.rv, versionsToDuration(id.Version-head.rv))
	case id.Version < first:
		return fmt.Errorf("%w: %v: version %d is older than anything the store has seen in shard %d (its first call was at version %d, %v later)", ErrImplausibleID, id, id.Version, id.Shard, first, versionsToDuration(first-id.Version))
	case id.Version < head.watermark:
		return fmt.Errorf("%w: %v: version %d is below the janitor's watermark %d: its marker is gone and its outcome lost", ErrImplausibleID, id, id.Version, head.watermark)
	}
	return nil
}

// checkSlotID is CheckID for a slot ID.
func (s *Store) checkSlotID(ctx context.Context, id txn.ID) error {
	switch {
	case id.Shard != 0 || id.Version != 0 || id.Rand != uuid.UUID{}:
		return fmt.Errorf("%w: %v mixes a slot ID with a legacy one", txn.ErrInvalidID, id)
	case id.Seq == 0:
		return fmt.Errorf("%w: %v has sequence 0; calls count from 1", txn.ErrInvalidID, id)
	case id.Owner.Version() != 4:
		return fmt.Errorf("%w: %v's owner is not a version-4 UUID", txn.ErrInvalidID, id)
	}
	val, err := ReadTransact(ctx, s, func(tr kv.ReadTransaction) ([]byte, error) {
		return tr.Get(txn.SlotKey(s.cfg.txnOpts.Prefix, id.Owner, id.Slot)).Get()
	})
	if err != nil {
		return s.closing(err)
	}
	if val == nil {
		return fmt.Errorf("%w: %v: the store has no slot %d of owner %v (no call of this store used it, is the prefix %q the calls'?; or the janitor removed it after its minimum age, and the outcome is lost)", ErrImplausibleID, id, id.Slot, id.Owner, s.cfg.prefix)
	}
	st, err := txn.DecodeSlot(val)
	if err != nil {
		return err
	}
	if st.Seq > id.Seq || (st.Seq == id.Seq && st.Attempt == txn.SlotRefreshed) {
		return fmt.Errorf("%w: %v: its slot holds a later call's sequence %d: reused after the call's resolve window, so the outcome is lost", ErrImplausibleID, id, max(st.Seq, id.Seq+1))
	}
	return nil
}
