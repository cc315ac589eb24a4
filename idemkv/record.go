package idemkv

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/idemkv/idemkv/cleanup"
	"github.com/idemkv/idemkv/kv"
)

// Limits on keyed requests.
const (
	// MaxKeyLen is the longest key (and counter name), in bytes.
	MaxKeyLen = 255
	// MaxScopeLen is the longest scope of a keyed request (an endpoint, a
	// tenant), in bytes. The scope is stored beside the key, not in it:
	// a key may be MaxKeyLen bytes whatever its scope.
	MaxScopeLen = 255
	// MaxResultSize is the largest encoded result (or Final error) Do
	// stores: with the record's header it stays under FoundationDB's
	// 100,000-byte value limit.
	MaxResultSize = 90_000
	// MaxPayloadSize bounds Do's payload. The payload is only hashed
	// (SHA-256), never stored; the bound catches a caller passing the
	// wrong buffer.
	MaxPayloadSize = 64 << 20
)

// keyspace lays out idemkv's keys under the store's prefix P:
//
//	P "tx/" ...                 txn markers and watermark (txn, cleanup)
//	P "c/" name                 plain counter
//	P "s/" len(name) name shard sharded counter shard (len is one byte)
//	P "k/" ref                  keyed request record
//	P "a/" due(8, big-endian) ref  age-index entry, value = record token
//
// where ref = len(scope) (one byte) scope key: a scope of up to
// MaxScopeLen bytes beside a key of up to MaxKeyLen, never ambiguous
// (the empty scope is the single byte 0).
//
// Every family has its own two-byte tag, so no family's keys can be a
// prefix of another's.
type keyspace struct {
	counters, shards, records, index []byte
	idx                              cleanup.KeyedIndex
	// clock is the store's wall clock (Options.Clock), for the janitor's
	// check of a lease's wall deadline; nil means time.Now.
	clock func() time.Time
}

func newKeyspace(prefix []byte) keyspace {
	sub := func(tag string) []byte { return append(bytes.Clone(prefix), tag...) }
	k := keyspace{counters: sub("c/"), shards: sub("s/"), records: sub("k/"), index: sub("a/")}
	k.idx = cleanup.KeyedIndex{Name: "idemkv keyed requests", Prefix: k.index}
	return k
}

func (k *keyspace) counterKey(name string) []byte { return append(bytes.Clone(k.counters), name...) }

func (k *keyspace) shardPrefix(name string) []byte {
	p := append(bytes.Clone(k.shards), byte(len(name)))
	return append(p, name...)
}

// keyRef is a keyed request's reference within the record and index
// families: its scope, length-prefixed, then its key.
func keyRef(scope, key string) []byte {
	b := make([]byte, 0, 1+len(scope)+len(key))
	b = append(b, byte(len(scope)))
	b = append(b, scope...)
	return append(b, key...)
}

func (k *keyspace) recordKey(ref []byte) []byte {
	return append(append(make([]byte, 0, len(k.records)+len(ref)), k.records...), ref...)
}

func (k *keyspace) indexKey(due int64, ref []byte) []byte { return k.idx.IndexKey(due, ref) }

// remove is the age index's cleanup.KeyedIndex.Remove: it clears the
// record only if it is still the one the entry was written for. A record
// claimed again since (takeover, or a new claim after removal) has another
// token and its own entry. A record whose lease still holds by its wall
// deadline is kept and indexed again for when the lease ends: its entry can
// come due early only through a version jump, when the record's retention
// is shorter than its lease, and removing it then would hand the key to a
// second caller while the first still runs.
func (k *keyspace) remove(tr kv.Transaction, ref, token []byte) error {
	rk := append(bytes.Clone(k.records), ref...)
	val, err := tr.Get(rk).Get()
	if err != nil || val == nil {
		return err
	}
	rec, err := decodeRecord(val)
	if err != nil {
		// Not ours to judge: leave it, drop the entry.
		return nil
	}
	if len(token) != 8 || rec.token != binary.BigEndian.Uint64(token) {
		return nil
	}
	if rec.status == statusInProgress {
		rv, err := tr.GetReadVersion().Get()
		if err != nil {
			return err
		}
		if left := rec.leaseLeft(rv, k.now()); left > 0 {
			// The janitor clears the due entry; this one is due when the
			// lease ends by the janitor's clock, at the earliest.
			rec.due = rv + max(versions(left), 1)
			tr.Set(rk, rec.encode())
			tr.Set(k.indexKey(rec.due, ref), binary.BigEndian.AppendUint64(nil, rec.token))
			return nil
		}
	}
	tr.Clear(rk)
	return nil
}

// now is the store's wall clock, for lease deadlines.
func (k *keyspace) now() time.Time {
	if k.clock == nil {
		return time.Now()
	}
	return k.clock()
}

// Record statuses.
const (
	statusInProgress byte = 1
	statusCompleted  byte = 2
	// statusUnknown is a Do whose outcome may have happened and could not
	// be settled: its fn failed with an error that may mean committed
	// (txn.ErrUnknownResult, txn.ErrOutcomeLost), or its completion could
	// not be made to land. The key never frees on its own until retention;
	// later calls get *OutcomeUnknownError, and Store.ForgetKey frees it
	// once someone has checked. The result holds the cause, as a stored
	// error.
	statusUnknown byte = 3
)

// Result kinds of a completed record.
const (
	resultValue byte = 1
	resultError byte = 2 // a Final error (or an unknown outcome's cause), as an encoded *StoredError
)

// Record formats. Format 2 is format 1 with a wall-clock lease deadline
// after due; it is written only for records in progress, so completed and
// outcome-unknown records stay byte for byte what they were (and readable
// by a binary that knows only format 1). A format 1 record in progress has
// no wall deadline (leaseWall 0): it was written before leases had one, and
// it expires by its version deadline alone, as it did when written.
const (
	recordFormat1 = 1
	recordFormat2 = 2
	recordHeader  = 1 + 1 + 8 + 8 + 8 + sha256.Size + 1
	recordHeader2 = recordHeader + 8
)

// record is a keyed request's stored state. A lease has two deadlines: a
// database version (the cluster's clock, which no client's skew moves but
// a FoundationDB recovery advances by ~100 s at once) and a wall-clock
// time (the claimer's clock, which a recovery does not move but skew
// does). It expires only when both have passed; see the package doc's
// "Leases, fencing and unknown outcomes".
type record struct {
	status byte
	// token is the fencing token: the read version of the claim that wrote
	// the record. Every takeover reads after the previous claim committed,
	// so tokens of one key only grow.
	token uint64
	// leaseUntil is the version at which an in-progress claim expires.
	leaseUntil int64
	// due is the version of the record's age-index entry.
	due int64
	// leaseWall is the wall-clock time, in Unix nanoseconds by the clock
	// of the process that claimed or last renewed, at which an in-progress
	// claim expires; 0 means none (completed and unknown records, and
	// format 1 records in progress).
	leaseWall   int64
	fingerprint [sha256.Size]byte
	kind        byte
	result      []byte
}

// leaseLeft is how long an in-progress record's lease still holds as of
// read version rv and wall time now: the later of its two deadlines. Zero
// or less means expired.
func (r *record) leaseLeft(rv int64, now time.Time) time.Duration {
	left := time.Duration(r.leaseUntil-rv) * (time.Second / kv.VersionsPerSecond)
	if r.leaseWall != 0 {
		left = max(left, time.Duration(r.leaseWall-now.UnixNano()))
	}
	return left
}

// expired reports whether an in-progress record's lease has expired: its
// version deadline and its wall deadline (if it has one) have both passed.
func (r *record) expired(rv int64, now time.Time) bool {
	return rv >= r.leaseUntil && (r.leaseWall == 0 || now.UnixNano() >= r.leaseWall)
}

// encodeRecord lays a record out as: format, status, token, leaseUntil,
// due (8 bytes each, big-endian), [leaseWall (8 bytes, format 2 only)],
// fingerprint, kind, result.
func (r *record) encode() []byte { return r.appendTo(make([]byte, 0, r.encodedLen())) }

// encodedLen is the length of the record's encoding.
func (r *record) encodedLen() int {
	if r.leaseWall != 0 {
		return recordHeader2 + len(r.result)
	}
	return recordHeader + len(r.result)
}

// appendTo appends the record's encoding to b: format 2 if it has a wall
// deadline, format 1 otherwise.
func (r *record) appendTo(b []byte) []byte {
	format := byte(recordFormat1)
	if r.leaseWall != 0 {
		format = recordFormat2
	}
	b = append(b, format, r.status)
	b = binary.BigEndian.AppendUint64(b, r.token)
	b = binary.BigEndian.AppendUint64(b, uint64(r.leaseUntil))
	b = binary.BigEndian.AppendUint64(b, uint64(r.due))
	if format == recordFormat2 {
		b = binary.BigEndian.AppendUint64(b, uint64(r.leaseWall))
	}
	b = append(b, r.fingerprint[:]...)
	b = append(b, r.kind)
	return append(b, r.result...)
}

func decodeRecord(b []byte) (record, error) {
	var r record
	header := recordHeader
	if len(b) > 0 && b[0] == recordFormat2 {
		header = recordHeader2
	}
	if len(b) < header || (b[0] != recordFormat1 && b[0] != recordFormat2) {
		return r, fmt.Errorf("idemkv: corrupt keyed record (%d bytes, format %d)", len(b), firstByte(b))
	}
	r.status = b[1]
	r.token = binary.BigEndian.Uint64(b[2:])
	r.leaseUntil = int64(binary.BigEndian.Uint64(b[10:]))
	r.due = int64(binary.BigEndian.Uint64(b[18:]))
	rest := b[26:]
	if b[0] == recordFormat2 {
		r.leaseWall = int64(binary.BigEndian.Uint64(rest))
		rest = rest[8:]
		if r.leaseWall == 0 || r.status != statusInProgress {
			return r, fmt.Errorf("idemkv: corrupt keyed record (format 2, status %d, wall deadline %d)", r.status, r.leaseWall)
		}
	}
	copy(r.fingerprint[:], rest)
	r.kind = rest[sha256.Size]
	r.result = rest[sha256.Size+1:]
	if r.status != statusInProgress && r.status != statusCompleted && r.status != statusUnknown {
		return r, fmt.Errorf("idemkv: corrupt keyed record (status %d)", r.status)
	}
	return r, nil
}

func firstByte(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	return int(b[0])
}

// versions converts a duration to database versions.
func versions(d time.Duration) int64 {
	return d.Microseconds() * (kv.VersionsPerSecond / 1_000_000)
}
