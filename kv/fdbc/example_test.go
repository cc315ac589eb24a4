//go:build fdbc

package fdbc_test

import (
	"fmt"
	"log"

	"github.com/apple/foundationdb/bindings/go/src/fdb"
	"github.com/apple/foundationdb/bindings/go/src/fdb/directory"
	"github.com/apple/foundationdb/bindings/go/src/fdb/tuple"

	_ "github.com/idemkv/idemkv/kv/fdbc" // FoundationDB's C API, in-process
)

// Unmodified FoundationDB code — the bindings, a directory, tuple keys —
// running in the test process with no cluster: the connection string
// names an in-memory store of the shim.
func Example() {
	fdb.MustAPIVersion(730)
	db, err := fdb.OpenWithConnectionString("example:inprocess@127.0.0.1:4500")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	users, err := directory.CreateOrOpen(db, []string{"example", "users"}, nil)
	if err != nil {
		log.Fatal(err)
	}
	_, err = db.Transact(func(tr fdb.Transaction) (any, error) {
		tr.Set(users.Pack(tuple.Tuple{"alice", 1}), []byte("admin"))
		tr.Set(users.Pack(tuple.Tuple{"bob", 2}), []byte("editor"))
		return nil, nil
	})
	if err != nil {
		log.Fatal(err)
	}
	kvs, err := db.ReadTransact(func(tr fdb.ReadTransaction) (any, error) {
		return tr.GetRange(users, fdb.RangeOptions{}).GetSliceWithError()
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range kvs.([]fdb.KeyValue) {
		t, _ := users.Unpack(p.Key)
		fmt.Println(t[0], t[1], string(p.Value))
	}
	// Output:
	// alice 1 admin
	// bob 2 editor
}
