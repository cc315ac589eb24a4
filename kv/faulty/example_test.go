package faulty_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/embedded"
	"github.com/idemkv/idemkv/kv/faulty"
)

// A commit that is applied although the caller is told
// commit_unknown_result: the stock retry loop then applies it twice.
func ExampleWrap() {
	engine, err := embedded.OpenMem(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer engine.Close() // the caller owns the engine (Config.CloseInner is false)

	// Seed 1's first commit draws UnknownResultApplied and its second none.
	db := faulty.Wrap(engine, faulty.Config{Seed: 1, UnknownResultApplied: 0.3})
	defer db.Close()

	one := binary.LittleEndian.AppendUint64(nil, 1)
	tr, err := db.CreateTransaction(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	for attempt := 1; ; attempt++ {
		tr.Atomic(kv.Add, []byte("counter"), one)
		err := tr.Commit().Err()
		fmt.Printf("attempt %d: %v\n", attempt, errors.Is(err, kv.ErrCommitUnknownResult))
		if err == nil {
			break
		}
		if err := tr.OnError(err); err != nil { // retries 1021: the unsafe part
			log.Fatal(err)
		}
	}
	db.Wait()

	check, _ := engine.CreateTransaction(context.Background())
	v, _ := check.Get([]byte("counter")).Get()
	fmt.Println("counter:", binary.LittleEndian.Uint64(v))
	fmt.Println("applied but reported failed:", db.Stats().AppliedButFailed())
	// Output:
	// attempt 1: true
	// attempt 2: false
	// counter: 2
	// applied but reported failed: 1
}
