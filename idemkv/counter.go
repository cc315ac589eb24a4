package idemkv

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"

	"github.com/idemkv/idemkv/kv"
)

// MaxCounterShards is the most shards a ShardedCounter may have.
const MaxCounterShards = 255

// Counter is a 64-bit signed counter in the store, incremented with
// FoundationDB's atomic add (no read, no conflict between adders) and
// exactly once through txn.Transact. A plain counter is one key; a sharded
// one spreads its adds over several keys and sums them on read.
//
// A Counter is a handle: it holds no state but its keys, is safe for
// concurrent use, and handles with the same name address the same counter.
type Counter struct {
	s      *Store
	name   string
	key    []byte // a plain counter's key
	shards int    // 0 for a plain counter
	prefix []byte // a sharded counter's shard-key prefix
	err    error  // a bad name or shard count, reported by every method
}

// Counter returns the plain counter called name (1 to MaxKeyLen bytes):
// one key, read with one point read. Use it unless adds to the one counter
// are so frequent that they contend (FoundationDB serves each key from one
// storage team, so a single hot key caps at that team's write rate); then
// use ShardedCounter. A bad name makes every method fail.
func (s *Store) Counter(name string) *Counter {
	c := &Counter{s: s, name: name, err: keyError("counter name", name)}
	if s == nil {
		c.err = ErrNilStore
	}
	if c.err == nil {
		c.key = s.keyed.counterKey(name)
	}
	return c
}

// ShardedCounter returns the high-contention counter called name: each Add
// goes to one of shards keys chosen at random, and Get sums them with one
// range read. Adds spread over shards storage ranges at the price of a
// read that returns up to shards keys. shards is 1 to MaxCounterShards; it
// may change between uses (Get sums every shard key present). A sharded
// counter and a plain counter of the same name are different counters.
func (s *Store) ShardedCounter(name string, shards int) *Counter {
	c := &Counter{s: s, name: name, shards: shards, err: keyError("counter name", name)}
	if s == nil {
		c.err = ErrNilStore
	}
	if c.err == nil && (shards < 1 || shards > MaxCounterShards) {
		c.err = fmt.Errorf("%w: ShardedCounter(%q, %d): shards must be 1 to %d", ErrInvalidOptions, name, shards, MaxCounterShards)
	}
	if c.err == nil {
		c.prefix = s.keyed.shardPrefix(name)
	}
	return c
}

// Err reports why the counter is unusable (a bad name or shard count), or
// nil.
func (c *Counter) Err() error { return c.err }

// Add adds delta to the counter exactly once: a nil error means it was
// added once; an error means it was not added, or (txn.ErrUnknownResult)
// that the outcome is unknown and Store.Resolve can settle it.
func (c *Counter) Add(ctx context.Context, delta int64) error {
	if c.err != nil {
		return c.err
	}
	if err := c.s.check(); err != nil {
		return err
	}
	// The shard is chosen once per call, so that every attempt of the call
	// writes the same key.
	key := c.addKey()
	_, err := Transact(ctx, c.s, func(tr kv.Transaction) (struct{}, error) {
		tr.Atomic(kv.Add, key, encodeDelta(delta))
		return struct{}{}, nil
	})
	return err
}

// AddTx adds delta to the counter inside tr, the caller's transaction
// (typically in a Transact function, which makes it exactly once with the
// rest of the caller's writes). It neither reads nor conflicts.
//
// If the counter is unusable (see Err), AddTx makes tr fail instead: it
// writes an over-long key, which FoundationDB (and the embedded engine)
// refuse with key_too_large (2102) at the next read or commit, so nothing
// of the transaction is written. Check Err first for a clearer message.
func (c *Counter) AddTx(tr kv.Transaction, delta int64) {
	if c.err != nil {
		tr.Set(make([]byte, kv.MaxKeySize+1), nil)
		return
	}
	tr.Atomic(kv.Add, c.addKey(), encodeDelta(delta))
}

func (c *Counter) addKey() []byte {
	if c.shards == 0 {
		return c.key
	}
	k := make([]byte, len(c.prefix)+1)
	copy(k, c.prefix)
	k[len(c.prefix)] = byte(rand.IntN(c.shards))
	return k
}

// Get returns the counter's value (0 if it was never added to), read in a
// read-only transaction: one point read for a plain counter, a range read
// of its shard keys for a sharded one.
func (c *Counter) Get(ctx context.Context) (int64, error) {
	if c.err != nil {
		return 0, c.err
	}
	return ReadTransact(ctx, c.s, c.GetTx)
}

// GetTx reads the counter's value inside tr. In a read-write transaction
// the read conflicts with every concurrent add, so prefer Get, or a
// snapshot (tr.Snapshot()), unless the caller needs that conflict.
func (c *Counter) GetTx(tr kv.ReadTransaction) (int64, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.shards == 0 {
		b, err := tr.Get(c.key).Get()
		return decodeCounter(b), err
	}
	r, err := kv.PrefixRange(c.prefix)
	if err != nil {
		return 0, err
	}
	kvs, err := tr.GetRange(r, kv.RangeOptions{}).Get()
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, e := range kvs {
		sum += decodeCounter(e.Value)
	}
	return sum, nil
}

// encodeDelta is FoundationDB's add parameter: 8 bytes little-endian, two's
// complement, so that a negative delta subtracts.
func encodeDelta(d int64) []byte { return binary.LittleEndian.AppendUint64(nil, uint64(d)) }

// decodeCounter reads a value written by atomic adds of 8-byte params
// (shorter values, zero-extended, as FoundationDB's add treats them).
func decodeCounter(b []byte) int64 {
	var buf [8]byte
	copy(buf[:], b)
	return int64(binary.LittleEndian.Uint64(buf[:]))
}
