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
// token and its own entry.
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
	if len(token) == 8 && rec.token == binary.BigEndian.Uint64(token) {
		tr.Clear(rk)
	}
	return nil
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

const (
	recordFormat = 1
	recordHeader = 1 + 1 + 8 + 8 + 8 + sha256.Size + 1
)

// record is a keyed request's stored state. Versions are database
// versions, not wall-clock times: they are the cluster's, so no client's
// clock skew can expire a lease early or keep a record forever.
type record struct {
	status byte
	// token is the fencing token: the read version of the claim that wrote
	// the record. Every takeover reads after the previous claim committed,
	// so tokens of one key only grow.
	token uint64
	// leaseUntil is the version at which an in-progress claim expires.
	leaseUntil int64
	// due is the version of the record's age-index entry.
	due         int64
	fingerprint [sha256.Size]byte
	kind        byte
	result      []byte
}

// encodeRecord lays a record out as: format, status, token, leaseUntil,
// due (8 bytes each, big-endian), fingerprint, kind, result.
func (r *record) encode() []byte { return r.appendTo(make([]byte, 0, r.encodedLen())) }

// encodedLen is the length of the record's encoding.
func (r *record) encodedLen() int { return recordHeader + len(r.result) }

// appendTo appends the record's encoding to b.
func (r *record) appendTo(b []byte) []byte {
	b = append(b, recordFormat, r.status)
	b = binary.BigEndian.AppendUint64(b, r.token)
	b = binary.BigEndian.AppendUint64(b, uint64(r.leaseUntil))
	b = binary.BigEndian.AppendUint64(b, uint64(r.due))
	b = append(b, r.fingerprint[:]...)
	b = append(b, r.kind)
	return append(b, r.result...)
}

func decodeRecord(b []byte) (record, error) {
	var r record
	if len(b) < recordHeader || b[0] != recordFormat {
		return r, fmt.Errorf("idemkv: corrupt keyed record (%d bytes, format %d)", len(b), firstByte(b))
	}
	r.status = b[1]
	r.token = binary.BigEndian.Uint64(b[2:])
	r.leaseUntil = int64(binary.BigEndian.Uint64(b[10:]))
	r.due = int64(binary.BigEndian.Uint64(b[18:]))
	copy(r.fingerprint[:], b[26:])
	r.kind = b[26+sha256.Size]
	r.result = b[recordHeader:]
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
