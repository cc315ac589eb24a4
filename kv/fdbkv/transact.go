//go:build fdb

package fdbkv

import (
	"context"
	"errors"

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
// db is not closed.
func Transact[T any](ctx context.Context, db fdb.Database, fn func(fdb.Transaction) (T, error), opts *txn.Options) (T, error) {
	if fn == nil {
		return txn.Transact[T](ctx, Wrap(db), nil, opts) // txn's own nil-function error
	}
	return txn.Transact(ctx, Wrap(db), func(tr kv.Transaction) (T, error) {
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

var errUnwrap = errors.New("fdbkv: Transact: the transaction txn passed is not an fdbkv transaction")
