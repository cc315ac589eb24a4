package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/idemkv/idemkv/kv"
)

// call is one transaction function, fixed for the whole call: any choice
// it depends on (which keys) is made before the call, so every attempt of
// the call does the same thing.
type call = func(kv.Transaction) (struct{}, error)

// workload is a transaction shape. Each mode runs it in its own keyspace
// (space), so that afterwards applied can count the calls whose effects
// are in the database and compare them with the calls acknowledged.
type workload struct {
	name, desc string
	// next returns worker w's next call.
	next func(space []byte, w int, rng *rand.Rand) call
	// applied reads space and returns how many calls' effects it holds.
	applied func(ctx context.Context, db kv.Database, space []byte) (int64, error)
	// keyed marks the keyed-requests workloads: exactly-once runs them
	// through idemkv.Do around txn.Transact ("do") or through
	// idemkv.TransactKey ("tx") rather than txn.Transact (see executors).
	keyed string
}

// tenKeyPool is how many keys the ten-key workload draws from: large enough
// that 16 concurrent calls rarely touch the same key, so that conflicts do
// not dominate what is measured.
const tenKeyPool = 100_000

var one = binary.LittleEndian.AppendUint64(nil, 1)

var workloads = []workload{
	{
		name:    "blind-add",
		desc:    "an atomic add of 1 to one hot counter, no reads (FoundationDB's worst case for a user-space ID)",
		next:    blindAdd,
		applied: sumSpace(1),
	},
	{
		name: "read-modify-write",
		desc: "read one key (one per worker), write it back plus 1",
		next: func(space []byte, w int, _ *rand.Rand) call {
			key := fmt.Appendf(space[:len(space):len(space)], "w%04d", w)
			return func(tr kv.Transaction) (struct{}, error) {
				v := tr.Get(key).MustGet()
				tr.Set(key, incr(v))
				return struct{}{}, nil
			}
		},
		applied: sumSpace(1),
	},
	{
		name: "ten-key",
		desc: fmt.Sprintf("read ten random keys of %d, write each back plus 1", tenKeyPool),
		next: func(space []byte, _ int, rng *rand.Rand) call {
			// Distinct keys, so that the sum counts each call exactly ten
			// times.
			var keys [10][]byte
			for i := 0; i < len(keys); {
				k := fmt.Appendf(space[:len(space):len(space)], "k%06d", rng.IntN(tenKeyPool))
				if !slices.ContainsFunc(keys[:i], func(p []byte) bool { return bytes.Equal(p, k) }) {
					keys[i] = k
					i++
				}
			}
			return func(tr kv.Transaction) (struct{}, error) {
				var fs [10]*kv.Future[[]byte]
				for i, k := range keys {
					fs[i] = tr.Get(k)
				}
				for i, k := range keys {
					tr.Set(k, incr(fs[i].MustGet()))
				}
				return struct{}{}, nil
			}
		},
		applied: sumSpace(10),
	},
	{
		name:    "keyed",
		desc:    "a request under a unique idempotency key whose work is a counter add: idemkv.Do around txn.Transact against the add alone in the stock loop",
		next:    blindAdd,
		applied: sumSpace(1),
		keyed:   "do",
	},
	{
		name:    "keyed-tx",
		desc:    "a request under a unique idempotency key whose work is a counter add in the store: idemkv.TransactKey (the add and the key's record in one transaction) against the add alone in the stock loop",
		next:    blindAdd,
		applied: sumSpace(1),
		keyed:   "tx",
	},
}

// blindAdd is an atomic add of one to the space's counter.
func blindAdd(space []byte, _ int, _ *rand.Rand) call {
	key := append(space[:len(space):len(space)], "counter"...)
	return func(tr kv.Transaction) (struct{}, error) {
		tr.Atomic(kv.Add, key, one)
		return struct{}{}, nil
	}
}

// incr returns v, an 8-byte little-endian counter (absent is 0), plus one.
func incr(v []byte) []byte {
	var n uint64
	if len(v) == 8 {
		n = binary.LittleEndian.Uint64(v)
	}
	return binary.LittleEndian.AppendUint64(nil, n+1)
}

// sumSpace returns an applied function that sums the counters in a space
// and divides by how many counters each call increments.
func sumSpace(perCall int64) func(context.Context, kv.Database, []byte) (int64, error) {
	return func(ctx context.Context, db kv.Database, space []byte) (int64, error) {
		r, err := kv.PrefixRange(space)
		if err != nil {
			return 0, err
		}
		var sum int64
		err = scan(ctx, db, r, func(e kv.KeyValue) error {
			if len(e.Value) != 8 {
				return fmt.Errorf("bench: %q holds %d bytes, not an 8-byte counter", e.Key, len(e.Value))
			}
			sum += int64(binary.LittleEndian.Uint64(e.Value))
			return nil
		})
		if err != nil {
			return 0, err
		}
		if sum%perCall != 0 {
			return 0, fmt.Errorf("bench: counters under %q sum to %d, not a multiple of %d: a call was applied in part", space, sum, perCall)
		}
		return sum / perCall, nil
	}
}

// scan calls f for every pair in r, a chunk per transaction so that a large
// range stays inside the five-second transaction lifetime.
func scan(ctx context.Context, db kv.Database, r kv.Range, f func(kv.KeyValue) error) error {
	const chunk = 10_000
	for {
		tr, err := db.CreateTransaction(ctx)
		if err != nil {
			return err
		}
		kvs, err := tr.GetRange(r, kv.RangeOptions{Limit: chunk}).Get()
		tr.Cancel()
		if err != nil {
			return err
		}
		for _, e := range kvs {
			if err := f(e); err != nil {
				return err
			}
		}
		if len(kvs) < chunk {
			return nil
		}
		r.Begin = kv.KeyAfter(kvs[len(kvs)-1].Key)
	}
}

func workloadNamed(name string) (workload, bool) {
	for _, w := range workloads {
		if w.name == name {
			return w, true
		}
	}
	return workload{}, false
}
