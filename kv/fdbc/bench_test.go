//go:build fdbc

package fdbc

import (
	"context"
	"fmt"
	"testing"

	"github.com/apple/foundationdb/bindings/go/src/fdb"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/embedded"
)

// BenchmarkShimOverhead measures a point read (a new transaction and one
// Get of a present key) and a commit (a new transaction, one Set, Commit)
// through the unmodified bindings and the shim, against the same
// operations on kv/embedded directly, in one run. Both are in-memory
// stores of the same engine; the difference is the bindings' cgo calls,
// the C-API layer and its futures.
//
//	CGO_CFLAGS="-O2 -g -I$PWD/kv/fdbc/include" go test -tags fdbc -run '^$' -bench ShimOverhead -benchtime 2s ./kv/fdbc/
func BenchmarkShimOverhead(b *testing.B) {
	key, value := []byte("bench/key"), []byte("value-of-sixteen")

	direct, err := embedded.OpenMem(nil)
	if err != nil {
		b.Fatal(err)
	}
	defer direct.Close()
	ctx := context.Background()
	tr, _ := direct.CreateTransaction(ctx)
	tr.Set(key, value)
	if err := tr.Commit().Err(); err != nil {
		b.Fatal(err)
	}
	shim := openDB(b)
	if _, err := shim.Transact(func(tr fdb.Transaction) (any, error) { tr.Set(fdb.Key(key), value); return nil, nil }); err != nil {
		b.Fatal(err)
	}

	b.Run("read/embedded", func(b *testing.B) {
		for b.Loop() {
			tr, _ := direct.CreateTransaction(ctx)
			if v, err := tr.Get(key).Get(); err != nil || len(v) != len(value) {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("read/bindings+shim", func(b *testing.B) {
		for b.Loop() {
			tr, err := shim.CreateTransaction()
			if err != nil {
				b.Fatal(err)
			}
			if v, err := tr.Get(fdb.Key(key)).Get(); err != nil || len(v) != len(value) {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("commit/embedded", func(b *testing.B) {
		i := 0
		for b.Loop() {
			tr, _ := direct.CreateTransaction(ctx)
			tr.Set(fmt.Appendf(nil, "bench/%d", i), value)
			if err := tr.Commit().Err(); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("commit/bindings+shim", func(b *testing.B) {
		i := 0
		for b.Loop() {
			tr, err := shim.CreateTransaction()
			if err != nil {
				b.Fatal(err)
			}
			tr.Set(fdb.Key(fmt.Appendf(nil, "bench/%d", i)), value)
			if err := tr.Commit().Get(); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

var _ kv.Database = (*embedded.DB)(nil)
