package txn_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/embedded"
	"github.com/idemkv/idemkv/kv/faulty"
	"github.com/idemkv/idemkv/txn"
)

// A blind counter increment: the transaction FoundationDB's stock retry loop
// can apply twice after commit_unknown_result. Transact applies it once.
func ExampleTransact() {
	db, err := embedded.OpenMem(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()

	add := func(tr kv.Transaction) (struct{}, error) {
		tr.Atomic(kv.Add, []byte("visits"), binary.LittleEndian.AppendUint64(nil, 1))
		return struct{}{}, nil
	}
	for range 3 {
		if _, err := txn.Transact(ctx, db, add, nil); err != nil {
			log.Fatal(err)
		}
	}
	n, err := txn.Transact(ctx, db, func(tr kv.Transaction) (uint64, error) {
		return binary.LittleEndian.Uint64(tr.Get([]byte("visits")).MustGet()), nil
	}, nil)
	fmt.Println(n, err)
	// Output: 3 <nil>
}

// A call whose commit timed out may or may not have committed; Transact
// does not guess and does not retry. Resolve settles it, and fences the ID
// so that the answer stays true.
func ExampleResolve() {
	db, err := embedded.OpenMem(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()

	// Every commit through flaky times out after it was applied.
	flaky := faulty.Wrap(db, faulty.Config{TimedOutApplied: 1})
	_, err = txn.Transact(ctx, flaky, func(tr kv.Transaction) (struct{}, error) {
		tr.Set([]byte("k"), []byte("v"))
		return struct{}{}, nil
	}, nil)

	var unknown *txn.UnknownResultError
	if errors.As(err, &unknown) {
		fmt.Println("timed out:", errors.Is(err, kv.ErrTransactionTimedOut))
		outcome, err := txn.Resolve(ctx, db, unknown.ID, nil)
		fmt.Println(outcome, err)
	}
	// Output:
	// timed out: true
	// committed <nil>
}
