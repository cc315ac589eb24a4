//go:build fdb

package fdbc_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/apple/foundationdb/bindings/go/src/fdb"
)

// openDB selects API version 730 (once per process) and opens a fresh
// in-memory store under a connection string unique to the test.
func openDB(t testing.TB) fdb.Database {
	t.Helper()
	if err := fdb.APIVersion(730); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "fdb.cluster")
	cs := "test:" + filepath.Base(filepath.Dir(path)) + "@127.0.0.1:4500"
	if err := os.WriteFile(path, []byte(cs+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := fdb.OpenDatabase(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

func TestRoundTrip(t *testing.T) {
	db := openDB(t)
	_, err := db.Transact(func(tr fdb.Transaction) (any, error) {
		tr.Set(fdb.Key("hello"), []byte("world"))
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	v, err := db.ReadTransact(func(tr fdb.ReadTransaction) (any, error) {
		return tr.Get(fdb.Key("hello")).Get()
	})
	if err != nil || !bytes.Equal(v.([]byte), []byte("world")) {
		t.Fatalf("Get(hello) = %q, %v; want world", v, err)
	}
}
