package embedded_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/embedded"
)

// An in-memory database: write, commit, read back in a new transaction.
func ExampleOpenMem() {
	db, err := embedded.OpenMem(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()

	tr, _ := db.CreateTransaction(ctx)
	tr.Set([]byte("hello"), []byte("world"))
	if err := tr.Commit().Err(); err != nil {
		log.Fatal(err)
	}

	tr, _ = db.CreateTransaction(ctx)
	v, err := tr.Get([]byte("hello")).Get()
	fmt.Printf("%s %v\n", v, err)
	// Output: world <nil>
}

// A durable database survives Close (and kill -9): reopen and read.
func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "embedded-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	db, err := embedded.Open(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	tr, _ := db.CreateTransaction(ctx)
	tr.Atomic(kv.Add, []byte("counter"), []byte{5})
	if err := tr.Commit().Err(); err != nil {
		log.Fatal(err)
	}
	db.Close()

	db, err = embedded.Open(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	tr, _ = db.CreateTransaction(ctx)
	fmt.Println(tr.Get([]byte("counter")).MustGet())
	// Output: [5]
}

// FoundationDB's retry loop: OnError backs off and resets the transaction
// for a retryable error (a conflict here) and returns other errors.
func ExampleDB_CreateTransaction() {
	db, _ := embedded.OpenMem(nil)
	defer db.Close()
	ctx := context.Background()

	increment := func() error {
		tr, err := db.CreateTransaction(ctx)
		if err != nil {
			return err
		}
		for {
			v := tr.Get([]byte("n")).MustGet()
			n := byte(0)
			if len(v) == 1 {
				n = v[0]
			}
			tr.Set([]byte("n"), []byte{n + 1})
			err := tr.Commit().Err()
			if err == nil {
				return nil
			}
			if err := tr.OnError(err); err != nil {
				return err
			}
		}
	}
	for range 3 {
		if err := increment(); err != nil {
			log.Fatal(err)
		}
	}
	tr, _ := db.CreateTransaction(ctx)
	fmt.Println(tr.Get([]byte("n")).MustGet())
	// Output: [3]
}
