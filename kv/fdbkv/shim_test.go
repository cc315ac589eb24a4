//go:build fdb && fdbc

package fdbkv

// These tests run the adapter on the real FoundationDB bindings linked
// against kv/fdbc, the in-process fdb_c shim over kv/embedded: no cluster
// and no libfdb_c. Build tags fdb (the adapter) and fdbc (this file, which
// links the shim); `make test` runs them with the shim's include path in
// CGO_CFLAGS.

import (
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"

	_ "github.com/idemkv/idemkv/kv/fdbc"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/kvtest"
)

var shimStores atomic.Int64

// shimClusterFile writes a cluster file whose connection string names a
// fresh in-memory store of the shim.
func shimClusterFile(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fdb.cluster")
	cs := "shim:t" + strconv.FormatInt(shimStores.Add(1), 10) + "@127.0.0.1:4500\n"
	if err := os.WriteFile(path, []byte(cs), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// openShim opens an fdbkv.DB on a fresh shim store.
func openShim(t testing.TB) *DB {
	t.Helper()
	db, err := Open(shimClusterFile(t), nil)
	if err != nil {
		t.Fatalf("Open on the shim: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestConformanceOnShim runs the backend conformance suite through the
// adapter and the unmodified bindings.
func TestConformanceOnShim(t *testing.T) {
	kvtest.Run(t, func(t *testing.T) kv.Database { return openShim(t) })
}
