package idemkv_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/txn"
)

func ExampleOpen() {
	ctx := context.Background()
	// "mem:" for tests; "file:/var/lib/app/idemkv" for a durable embedded
	// store; "fdb:" for a FoundationDB cluster (build with -tags fdb).
	s, err := idemkv.Open(ctx, "mem:", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	_, err = idemkv.Open(ctx, "redis://localhost", nil)
	fmt.Println(errors.Is(err, idemkv.ErrUnknownScheme))
	// Output: true
}

func ExampleTransact() {
	ctx := context.Background()
	s, err := idemkv.Open(ctx, "mem:", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	// A ledger append: not idempotent, so it must not be applied twice
	// when a commit's outcome is unknown. Transact guarantees it.
	balance, err := idemkv.Transact(ctx, s, func(tr kv.Transaction) (int, error) {
		tr.Set([]byte("ledger/0001"), []byte("deposit 100"))
		tr.Set([]byte("balance/alice"), []byte("100"))
		return 100, nil
	})
	if err != nil {
		log.Fatal(err)
	}
	entry, err := idemkv.ReadTransact(ctx, s, func(tr kv.ReadTransaction) (string, error) {
		b, err := tr.Get([]byte("ledger/0001")).Get()
		return string(b), err
	})
	fmt.Println(balance, entry, err)
	// Output: 100 deposit 100 <nil>
}

func ExampleStore_Counter() {
	ctx := context.Background()
	s, err := idemkv.Open(ctx, "mem:", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	visits := s.Counter("visits")
	for range 3 {
		if err := visits.Add(ctx, 1); err != nil {
			log.Fatal(err)
		}
	}
	// A counter many clients hammer: adds spread over 16 keys.
	likes := s.ShardedCounter("likes", 16)
	for range 5 {
		if err := likes.Add(ctx, 2); err != nil {
			log.Fatal(err)
		}
	}
	v, _ := visits.Get(ctx)
	l, _ := likes.Get(ctx)
	fmt.Println(v, l)
	// Output: 3 10
}

func ExampleDo() {
	ctx := context.Background()
	s, err := idemkv.Open(ctx, "mem:", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	type charge struct{ ID, Amount string }
	calls := 0
	pay := func(ctx context.Context) (charge, error) {
		calls++ // e.g. a call to a payment provider, outside any transaction
		return charge{ID: "ch_1", Amount: "10.00"}, nil
	}
	// The client retries with the same Idempotency-Key: fn runs once.
	for range 3 {
		c, err := idemkv.Do(ctx, s, "key-7f3a", []byte(`{"amount":"10.00"}`), pay, nil)
		fmt.Println(c, err)
	}
	// The same key with another payload is refused.
	_, err = idemkv.Do(ctx, s, "key-7f3a", []byte(`{"amount":"99.00"}`), pay, nil)
	fmt.Println(errors.Is(err, idemkv.ErrPayloadMismatch), calls)
	// Output:
	// {ch_1 10.00} <nil>
	// {ch_1 10.00} <nil>
	// {ch_1 10.00} <nil>
	// true 1
}

func ExampleFinal() {
	ctx := context.Background()
	s, err := idemkv.Open(ctx, "mem:", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	errDeclined := errors.New("card declined")
	for range 2 {
		_, err := idemkv.Do(ctx, s, "key-1", nil, func(context.Context) (string, error) {
			return "", idemkv.Final(errDeclined) // retrying will not help: store it
		}, nil)
		fmt.Println(err, errors.Is(err, errDeclined))
	}
	// Output:
	// card declined true
	// card declined true
}

func ExampleTransactKey() {
	ctx := context.Background()
	s, err := idemkv.Open(ctx, "mem:", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	// A message consumer that sees each message several times: the message
	// ID is the key, and the count and the record of the message commit in
	// one transaction.
	seen := s.Counter("orders")
	count := func(tr kv.Transaction) (string, error) {
		seen.AddTx(tr, 1)
		return "counted", nil
	}
	for _, id := range []string{"msg-1", "msg-2", "msg-1", "msg-1", "msg-2"} {
		var info idemkv.KeyInfo
		r, err := idemkv.TransactKey(ctx, s, id, nil, count, &idemkv.KeyOptions{Scope: "orders-consumer", Info: &info})
		fmt.Println(id, r, info.Replayed, err)
	}
	n, _ := seen.Get(ctx)
	fmt.Println("orders:", n)
	// Output:
	// msg-1 counted false <nil>
	// msg-2 counted false <nil>
	// msg-1 counted true <nil>
	// msg-1 counted true <nil>
	// msg-2 counted true <nil>
	// orders: 2
}

func ExampleOutcomeUnknownError() {
	ctx := context.Background()
	s, err := idemkv.Open(ctx, "mem:", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	// fn's effect may have happened (here: it says so). The key is not
	// freed: every later call reports the unknown outcome, and fn does not
	// run again until someone who knows forgets the key.
	fn := func(context.Context) (int, error) {
		return 0, fmt.Errorf("transfer: %w", txn.ErrUnknownResult)
	}
	for range 2 {
		_, err := idemkv.Do(ctx, s, "transfer-9", nil, fn, nil)
		var ou *idemkv.OutcomeUnknownError
		fmt.Println(errors.As(err, &ou), ou.Kept)
	}
	// Checked with the bank: the transfer did not happen.
	if err := s.ForgetKey(ctx, "", "transfer-9"); err != nil {
		log.Fatal(err)
	}
	v, err := idemkv.Do(ctx, s, "transfer-9", nil, func(context.Context) (int, error) { return 42, nil }, nil)
	fmt.Println(v, err)
	// Output:
	// true true
	// true true
	// 42 <nil>
}
