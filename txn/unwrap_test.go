package txn_test

import (
	"context"
	"testing"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/txn"
)

// The transaction fn receives unwraps to the attempt's own transaction, so
// that adapters can reach their backend's (fdbkv.Transact hands fn the
// bindings' fdb.Transaction this way), while it refuses Commit itself.
func TestFunctionTransactionUnwraps(t *testing.T) {
	db := openMem(t)
	_, err := txn.Transact(context.Background(), db, func(tr kv.Transaction) (struct{}, error) {
		u, ok := tr.(interface{ Unwrap() kv.Transaction })
		if !ok {
			t.Fatal("fn's transaction has no Unwrap() kv.Transaction")
		}
		inner := u.Unwrap()
		if inner == nil || inner == tr {
			t.Fatalf("Unwrap() = %v, want the attempt's own transaction", inner)
		}
		inner.Set([]byte("via-unwrap"), one) // part of the same attempt
		return struct{}{}, nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := readCount(t, db, []byte("via-unwrap")); n != 1 {
		t.Fatalf("write through the unwrapped transaction: %d, want 1", n)
	}
}
