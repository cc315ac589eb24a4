// Command consumer is a message consumer that counts each message once by
// its message ID, although its queue delivers every message at least once
// — often several times, out of order, to several workers at the same
// time, as SQS, Kafka consumer groups and Pub/Sub do after a timeout or a
// rebalance.
//
// Each delivery runs idemkv.TransactKey with the message ID as the key
// (scoped to the consumer, so other consumers of the same messages keep
// their own records): the order total is added in the same transaction
// that records the message as done, so a redelivery finds the record and
// adds nothing, and a commit fault (injected here with kv/faulty) cannot
// separate the two. Beside it, a naive consumer adds each delivery with
// Counter.Add — exactly once per call, but once per delivery, so every
// redelivery counts again.
//
//	go run ./examples/consumer [-messages 200] [-workers 4] [-redeliver 0.5] [-faults 0.05] [-seed 1]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/faulty"
)

type config struct {
	messages, workers int
	redeliver, faults float64
	seed              uint64
}

func main() {
	var c config
	flag.IntVar(&c.messages, "messages", 200, "distinct messages published")
	flag.IntVar(&c.workers, "workers", 4, "concurrent consumer workers")
	flag.Float64Var(&c.redeliver, "redeliver", 0.5, "probability that a delivery is followed by another of the same message (0 to 0.9)")
	flag.Float64Var(&c.faults, "faults", 0.05, "probability of an ambiguous commit fault (0 to 0.5)")
	flag.Uint64Var(&c.seed, "seed", 1, "seed of the deliveries and the faults")
	flag.Parse()
	if _, err := run(context.Background(), os.Stdout, c); err != nil {
		fmt.Fprintln(os.Stderr, "consumer:", err)
		os.Exit(1)
	}
}

// message is what the queue delivers: an order with its amount.
type message struct {
	ID     string
	Amount int64
}

// totals is what a run found.
type totals struct {
	messages, deliveries, replays int
	want, keyed, naive            int64
}

func (c config) validate() error {
	switch {
	case c.messages < 1 || c.workers < 1:
		return fmt.Errorf("-messages and -workers must be at least 1 (got %d and %d)", c.messages, c.workers)
	case c.redeliver < 0 || c.redeliver > 0.9:
		return fmt.Errorf("-redeliver must be from 0 to 0.9 (got %v)", c.redeliver)
	case c.faults < 0 || c.faults > 0.5:
		return fmt.Errorf("-faults must be from 0 to 0.5 (got %v)", c.faults)
	}
	return nil
}

func run(ctx context.Context, w io.Writer, c config) (totals, error) {
	if err := c.validate(); err != nil {
		return totals{}, err
	}
	var f *faulty.DB
	s, err := idemkv.Open(ctx, "mem:", &idemkv.Options{
		MaxRetryDelay: 5 * time.Millisecond,
		WrapDatabase: func(db kv.Database) kv.Database {
			f = faulty.Wrap(db, faulty.Config{Seed: c.seed, UnknownResultApplied: c.faults / 2, UnknownResultNotApplied: c.faults / 4, UnknownResultLate: c.faults / 4, LateDelay: time.Millisecond})
			return f
		},
	})
	if err != nil {
		return totals{}, err
	}
	defer s.Close()

	deliveries := deliveriesOf(c)
	keyedTotal, naiveTotal := s.Counter("orders/keyed"), s.Counter("orders/naive")
	var t totals
	t.messages, t.deliveries = c.messages, len(deliveries)
	for i := range c.messages {
		t.want += amountOf(c, i)
	}

	var mu sync.Mutex
	var firstErr error
	next := make(chan message)
	var wg sync.WaitGroup
	for range c.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range next {
				replayed, err := consume(ctx, s, keyedTotal, naiveTotal, m)
				mu.Lock()
				if replayed {
					t.replays++
				}
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	for _, m := range deliveries {
		next <- m
	}
	close(next)
	wg.Wait()
	f.Wait()
	if firstErr != nil {
		return t, firstErr
	}
	if t.keyed, err = keyedTotal.Get(ctx); err != nil {
		return t, err
	}
	if t.naive, err = naiveTotal.Get(ctx); err != nil {
		return t, err
	}
	st := f.Stats()
	fmt.Fprintf(w, "%d messages, %d deliveries from %d workers (seed %d); %d of %d commits failed ambiguously, %d of them applied\n",
		t.messages, t.deliveries, c.workers, c.seed, st.Total().Injected, st.Commits, st.AppliedButFailed())
	fmt.Fprintf(w, "  keyed by message ID (TransactKey): total %d, %d deliveries recognised as repeats\n", t.keyed, t.replays)
	fmt.Fprintf(w, "  naive (Counter.Add per delivery):  total %d\n", t.naive)
	fmt.Fprintf(w, "  the orders' true total:            %d\n", t.want)
	if t.keyed != t.want {
		return t, fmt.Errorf("the keyed consumer counted %d, want %d", t.keyed, t.want)
	}
	fmt.Fprintln(w, "each message counted once.")
	return t, nil
}

// consume handles one delivery both ways. A keyed call whose outcome is
// unknown (a timeout) is simply redelivered by a real queue; here it is
// retried at once, with the same message ID.
func consume(ctx context.Context, s *idemkv.Store, keyed, naive *idemkv.Counter, m message) (replayed bool, err error) {
	if err := naive.Add(ctx, m.Amount); err != nil {
		return false, err
	}
	for {
		var info idemkv.KeyInfo
		_, err := idemkv.TransactKey(ctx, s, m.ID, nil, func(tr kv.Transaction) (int64, error) {
			keyed.AddTx(tr, m.Amount)
			return m.Amount, nil
		}, &idemkv.KeyOptions{Scope: "orders-consumer", Info: &info})
		if errors.Is(err, idemkv.ErrOutcomeUnknown) {
			continue
		}
		return info.Replayed, err
	}
}

func amountOf(c config, i int) int64 {
	return 1 + rand.New(rand.NewPCG(c.seed, uint64(i))).Int64N(1000)
}

// deliveriesOf is the queue: every message at least once, each delivery
// followed by another with probability c.redeliver, shuffled so that
// repeats arrive out of order and to different workers at once.
func deliveriesOf(c config) []message {
	rng := rand.New(rand.NewPCG(c.seed, 0xde11))
	var out []message
	for i := range c.messages {
		m := message{ID: fmt.Sprintf("msg-%06d", i), Amount: amountOf(c, i)}
		out = append(out, m)
		for rng.Float64() < c.redeliver {
			out = append(out, m)
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}
