package txn

import (
	"context"

	"github.com/idemkv/idemkv/kv"
)

// StockTransact is the UNSAFE BASELINE: a faithful reproduction of the
// FoundationDB Go bindings' Database.Transact retry loop, kept for tests and
// benchmarks that show what Transact fixes. It retries every error OnError
// retries — commit_unknown_result (1021) and cluster_version_changed (1039)
// included — by running fn again, so a transaction whose commit was applied
// but reported as unknown is applied twice. Never use it for
// non-idempotent work.
//
// Like the bindings, it recovers a *kv.Error panic from MustGet and treats it
// as fn's error; unlike them, it returns other panics as *PanicError rather
// than re-panicking.
func StockTransact[T any](ctx context.Context, db kv.Database, fn func(kv.Transaction) (T, error)) (T, error) {
	var zero T
	if fn == nil {
		return zero, ErrNilFunc
	}
	if db == nil {
		return zero, ErrNilDatabase
	}
	tr, err := db.CreateTransaction(ctx)
	if err != nil {
		return zero, err
	}
	for {
		v, err := callFn(fn, tr)
		if err == nil {
			if err = tr.Commit().Err(); err == nil {
				return v, nil
			}
		}
		if !isKVError(err) {
			return zero, err
		}
		if err = tr.OnError(err); err != nil {
			return zero, err
		}
	}
}
