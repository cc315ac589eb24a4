//go:build fdb

package fdbkv_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/apple/foundationdb/bindings/go/src/fdb"
	"github.com/apple/foundationdb/bindings/go/src/fdb/tuple"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/fdbkv"
	"github.com/idemkv/idemkv/txn"
)

// Open a cluster and run an exactly-once increment through txn. (Not run
// by go test: it needs a cluster.)
func ExampleOpen() {
	db, err := fdbkv.Open("/etc/foundationdb/fdb.cluster", &fdbkv.Options{APIVersion: 730})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = txn.Transact(ctx, db, func(tr kv.Transaction) (struct{}, error) {
		tr.Atomic(kv.Add, []byte("visits"), []byte{1, 0, 0, 0, 0, 0, 0, 0})
		return struct{}{}, nil
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
}

// Existing bindings code keeps its fdb.Transaction and tuple keys; only the
// call to Transact changes.
func ExampleTransact() {
	fdb.MustAPIVersion(730)
	db := fdb.MustOpenDefault()
	balance, err := fdbkv.Transact(context.Background(), db, func(tr fdb.Transaction) (int64, error) {
		key := tuple.Tuple{"account", 42, "balance"}.Pack()
		tr.Add(fdb.Key(key), []byte{100, 0, 0, 0, 0, 0, 0, 0})
		return 100, nil
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("credited", balance)
}

// Unwrap reaches the bindings' transaction from inside a kv transaction
// function.
func ExampleUnwrap() {
	db, err := fdbkv.Open("", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	_, err = txn.Transact(context.Background(), db, func(tr kv.Transaction) (struct{}, error) {
		ftr, ok := fdbkv.Unwrap(tr)
		if !ok {
			return struct{}{}, fmt.Errorf("not a FoundationDB transaction")
		}
		ftr.Set(tuple.Tuple{"user", "ada"}, []byte("Ada"))
		return struct{}{}, nil
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
}

// Wrap adapts a database the caller opened and keeps owning.
func ExampleWrap() {
	fdb.MustAPIVersion(730)
	raw := fdb.MustOpenDefault()
	db := fdbkv.Wrap(raw)
	tr, err := db.CreateTransaction(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	v, err := tr.Get([]byte("hello")).Get()
	fmt.Println(v, err)
}
