//go:build fdb

package fdbkv

import (
	"context"
	"errors"
	"maps"
	"sync/atomic"

	"github.com/apple/foundationdb/bindings/go/src/fdb"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/txn"
)

// Transact is an exactly-once replacement for fdb.Database.Transact, for
// code already written against the bindings: fn receives the
// fdb.Transaction of each attempt and uses the bindings' API (tuples,
// subspaces, directories) as before, while txn.Transact adds its marker and
// conflict range to the same transaction and retries commit_unknown_result
// and cluster_version_changed without applying fn's writes twice. The
// result is typed instead of interface{}.
//
// fn must not commit, reset or retry (OnError) the fdb.Transaction it is
// given: Transact does, and a commit it does not see may be applied twice.
// The bindings' type cannot refuse those calls as txn's kv.Transaction does.
//
// fn may run more than once and must have no effects outside the
// transaction. Errors are txn's: *kv.Error for FoundationDB failures,
// txn's *UnknownResultError for a timeout (resolve it with txn.Resolve).
// db is not closed. Calls on the same fdb.Database go through one adapter
// (a DB, as Wrap makes), so what txn keeps per database — the sentinel
// cache, which spares a call the read of its shard's sentinel — carries
// from one call to the next.
func Transact[T any](ctx context.Context, db fdb.Database, fn func(fdb.Transaction) (T, error), opts *txn.Options) (T, error) {
	if fn == nil {
		return txn.Transact[T](ctx, wrapped(db), nil, opts) // txn's own nil-function error
	}
	return txn.Transact(ctx, wrapped(db), func(tr kv.Transaction) (T, error) {
		ftr, ok := Unwrap(tr)
		if !ok {
			// Cannot happen while txn passes the transaction it was given
			// (or a wrapper with Unwrap); an error beats a nil dereference.
			var zero T
			return zero, errUnwrap
		}
		return fn(ftr)
	}, opts)
}

// wrappedDBs holds the DB that Transact uses for each fdb.Database. txn
// keeps state per kv.Database value — the sentinel cache, which saves each
// call a read of its shard's sentinel — so a DB made anew for every call
// would never find what the previous call learned. The map is replaced,
// never changed, so that the lookup on every call takes no lock.
//
// An entry holds the fdb.Database's handle, which the bindings free only on
// Close (they set no finalizer), so keeping it costs a few bytes and never
// keeps a connection open; the map starts over past wrappedMax entries
// (a program uses a database or two), which costs the dropped databases
// one sentinel read per shard.
var wrappedDBs atomic.Pointer[map[fdb.Database]*DB]

const wrappedMax = 64

// wrapped returns the DB for db: the same one for the same fdb.Database.
func wrapped(db fdb.Database) *DB {
	if m := wrappedDBs.Load(); m != nil {
		if d, ok := (*m)[db]; ok {
			return d
		}
	}
	d := Wrap(db)
	for {
		old := wrappedDBs.Load()
		next := make(map[fdb.Database]*DB, 1)
		if old != nil && len(*old) < wrappedMax {
			if e, ok := (*old)[db]; ok {
				return e
			}
			maps.Copy(next, *old)
		}
		next[db] = d
		if wrappedDBs.CompareAndSwap(old, &next) {
			return d
		}
	}
}

var errUnwrap = errors.New("fdbkv: Transact: the transaction txn passed is not an fdbkv transaction")
