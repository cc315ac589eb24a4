package kvtest_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/embedded"
	"github.com/idemkv/idemkv/kv/kvtest"
)

// Run is called from a backend's tests with a function that opens the
// backend; this is how kv/embedded runs it.
func ExampleRun() {
	_ = func(t *testing.T) {
		kvtest.Run(t, func(t *testing.T) kv.Database {
			db, err := embedded.OpenMem(nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		})
	}
}

// VerifyStrictSerializable runs a seeded concurrent workload and checks the
// history with porcupine.
func ExampleVerifyStrictSerializable() {
	db, err := embedded.OpenMem(nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	rep, err := kvtest.VerifyStrictSerializable(db, 42, &kvtest.HistoryOptions{Clients: 3, TxnsPerClient: 10})
	fmt.Println("error:", err)
	fmt.Println("transactions committed or abandoned:", rep.Committed+rep.GaveUp)
	// Output:
	// error: <nil>
	// transactions committed or abandoned: 30
}

// A backend that serves stale reads is caught.
func ExampleStaleReads() {
	db, err := embedded.OpenMem(nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	caught := false
	for seed := uint64(1); seed <= 10 && !caught; seed++ {
		_, err := kvtest.VerifyStrictSerializable(kvtest.StaleReads(db, 3), seed, nil)
		caught = errors.Is(err, kvtest.ErrNotStrictlySerializable)
	}
	fmt.Println("caught:", caught)
	// Output: caught: true
}
