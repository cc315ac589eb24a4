package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/faulty"
)

// serveOnly runs the service alone on a durable store in dir, with commit
// faults injected at rate (scaled over kv/faulty's kinds) from seed, until
// ctx ends or the process is killed: the crash test's child. It prints
// "listening URL" on out once it accepts requests.
func serveOnly(ctx context.Context, out io.Writer, dir string, seed uint64, rate float64) error {
	if dir == "" {
		return fmt.Errorf("-serve needs -dir: the store must outlive the process")
	}
	if rate < 0 || rate > 0.5 {
		return fmt.Errorf("-faults must be from 0 to 0.5 (got %v)", rate)
	}
	store, err := idemkv.Open(ctx, "file:"+dir, &idemkv.Options{
		MaxRetryDelay: 20 * time.Millisecond,
		WrapDatabase: func(db kv.Database) kv.Database {
			return faulty.Wrap(db, faulty.Config{
				Seed:                    seed,
				UnknownResultApplied:    rate * 0.3,
				UnknownResultNotApplied: rate * 0.2,
				UnknownResultLate:       rate * 0.2,
				TimedOutApplied:         rate * 0.1,
				TimedOutNotApplied:      rate * 0.1,
				NotCommitted:            rate * 0.1,
				LateDelay:               2 * time.Millisecond,
			})
		},
	})
	if err != nil {
		return err
	}
	defer store.Close()
	srv, err := startServer(store, seed)
	if err != nil {
		return err
	}
	defer srv.stop()
	fmt.Fprintf(out, "listening %s\n", srv.url())
	<-ctx.Done()
	return nil
}
