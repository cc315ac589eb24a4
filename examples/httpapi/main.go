// Command httpapi is an HTTP payments service that honours the
// Idempotency-Key request header as draft-ietf-httpapi-idempotency-key-header
// describes, built on idemkv/idemhttp's middleware, with a client in the
// same program that retries through dropped responses and shows that every
// payment took effect exactly once.
//
// # The service
//
// The service listens on 127.0.0.1 at an ephemeral port and stops by itself
// when the run is over. POST /payments takes a JSON body
// {"to": "acct-7", "amount": 125} and an Idempotency-Key header (a
// Structured Field String, e.g. Idempotency-Key: "8e03978e-..."), and
// answers:
//
//   - 201 Created with the payment, the first time a key is seen. The
//     handler runs under idemhttp's Transact: its ledger entry is written in
//     the request's keyed transaction, so the entry and the stored response
//     commit together, once — a crash or an ambiguous commit can never
//     leave one without the other;
//   - the same stored status and body for a repeat with the same key and
//     payload, without making the payment again (marked with the header
//     Idempotent-Replayed: true, as Stripe does; the draft leaves this open);
//     a duplicate sent while the first is still being processed conflicts
//     with it in the database and gets the same answer;
//   - 422 Unprocessable Content when the key was used with a different
//     payload (the fingerprint covers the method, path and canonical JSON
//     body);
//   - 400 Bad Request when the key is missing, not a quoted string, empty or
//     over 255 bytes, or the body is not a valid payment (validated before
//     the key is used, so nothing is stored).
//
// Error bodies are application/problem+json (RFC 9457), as the draft
// recommends.
//
// # The run
//
// The run has three parts. First a scripted walk through every status above,
// each asserted. Then the client sends -payments payments from -clients
// goroutines while a middleware drops a fraction -drop of responses AFTER the
// service processed the request (it closes the connection instead of
// answering): the client cannot tell a dropped response from a lost request,
// so it retries with the same key until it gets an answer, at most
// -attempts times per payment. Last, the same client sends the same payments
// to /unsafe/payments, which ignores the key, through the same drops. The
// check: the ledger of /payments has exactly one entry per payment, each
// under its own key and with the id its client was given; the unsafe
// ledger's surplus shows what retries without idempotency do.
//
// # Usage
//
//	go run ./examples/httpapi [-payments 60] [-clients 4] [-drop 0.3] [-seed 1] [-mem|-dir DIR]
//	go run ./examples/httpapi -serve -dir DIR [-faults 0.1] [-seed 1]
//
// With -serve the program only serves, on a durable store in DIR with
// commit faults injected, until it is killed: the crash test
// (crash_test.go) runs it so, SIGKILLs it at random moments and restarts
// it, while a client retries every payment with its key until it gets an
// answer; afterwards every key answered 201 has exactly one ledger entry.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/idemkv/idemkv/idemkv"
)

type config struct {
	payments, clients, attempts int
	drop, faults                float64
	seed                        uint64
	dir                         string
	mem, serve                  bool
}

func main() {
	var c config
	flag.IntVar(&c.payments, "payments", 60, "payments the client sends")
	flag.IntVar(&c.clients, "clients", 4, "concurrent client goroutines")
	flag.IntVar(&c.attempts, "attempts", 25, "most requests the client sends for one payment")
	flag.Float64Var(&c.drop, "drop", 0.3, "fraction of processed requests whose response is dropped (0 to 0.9)")
	flag.Uint64Var(&c.seed, "seed", 1, "seed of the drops, the payments and the client's backoff")
	flag.StringVar(&c.dir, "dir", "", "data directory for the durable engine (default: a temporary directory, removed afterwards)")
	flag.BoolVar(&c.mem, "mem", false, "use the in-memory engine instead of a directory")
	flag.BoolVar(&c.serve, "serve", false, "only serve, on the store in -dir, until killed (the crash test's child)")
	flag.Float64Var(&c.faults, "faults", 0, "with -serve: rate of injected commit faults (0 to 0.5)")
	flag.Parse()
	if c.serve {
		if err := serveOnly(context.Background(), os.Stdout, c.dir, c.seed, c.faults); err != nil {
			fmt.Fprintln(os.Stderr, "httpapi:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(context.Background(), os.Stdout, c); err != nil {
		fmt.Fprintln(os.Stderr, "httpapi:", err)
		os.Exit(1)
	}
}

func (c config) validate() error {
	switch {
	case c.payments < 1 || c.clients < 1:
		return fmt.Errorf("-payments and -clients must be at least 1 (got %d and %d)", c.payments, c.clients)
	case c.attempts < 1:
		return fmt.Errorf("-attempts must be at least 1 (got %d)", c.attempts)
	case c.drop < 0 || c.drop > 0.9:
		return fmt.Errorf("-drop must be from 0 to 0.9 (got %v): above that the client's bounded retries would give up", c.drop)
	}
	return nil
}

func run(ctx context.Context, w io.Writer, c config) error {
	if err := c.validate(); err != nil {
		return err
	}
	uri, where, cleanup, err := storeURI(c)
	if err != nil {
		return err
	}
	defer cleanup()
	store, err := idemkv.Open(ctx, uri, nil)
	if err != nil {
		return err
	}
	defer store.Close()

	srv, err := startServer(store, c.seed)
	if err != nil {
		return err
	}
	defer srv.stop()
	fmt.Fprintf(w, "idemkv httpapi: service on http://%s (engine: embedded, %s)\n\n", srv.addr, where)

	cl := newClient(srv.url(), c.attempts)
	if err := protocolWalk(ctx, w, srv, cl); err != nil {
		return fmt.Errorf("protocol walk: %w", err)
	}

	// The load: every payment's response may be dropped after the service
	// processed it.
	srv.setDrop(c.drop)
	payments := makePayments(c)
	safe, err := cl.sendAll(ctx, "/payments", payments, c)
	if err != nil {
		return err
	}
	safeDropped := srv.resetDropped()
	unsafe, err := cl.sendAll(ctx, "/unsafe/payments", payments, c)
	if err != nil {
		return err
	}
	unsafeDropped := srv.resetDropped()
	srv.setDrop(0)

	rep, err := audit(ctx, store, payments, safe)
	if err != nil {
		return err
	}
	unsafeEntries, err := countLedger(ctx, store, unsafeLedgerPrefix, payments)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nload: %d payments from %d clients, %.0f%% of responses dropped after processing (seed %d)\n",
		c.payments, c.clients, 100*c.drop, c.seed)
	fmt.Fprintf(w, "  with Idempotency-Key    POST /payments:        %4d requests, %3d responses dropped, %3d payments answered by a replay, ledger entries %d (want %d)\n",
		safe.requests, safeDropped, safe.replayed, rep.entries, c.payments)
	fmt.Fprintf(w, "  without (retried blind) POST /unsafe/payments: %4d requests, %3d responses dropped, %3s                              ledger entries %d (%d duplicates)\n",
		unsafe.requests, unsafeDropped, "", unsafeEntries, unsafeEntries-c.payments)
	if len(rep.problems) > 0 {
		for _, p := range rep.problems {
			fmt.Fprintln(w, "FAIL:", p)
		}
		return fmt.Errorf("%d exactly-once checks failed", len(rep.problems))
	}
	fmt.Fprintf(w, "\nexactly once: %d payments, %d ledger entries, one per key, each with the id its client was given.\n", c.payments, rep.entries)
	return nil
}

// storeURI returns the store's URI: in memory, or durable in a directory (a
// temporary one by default).
func storeURI(c config) (uri, where string, cleanup func(), err error) {
	if c.mem {
		return "mem:", "in memory", func() {}, nil
	}
	dir, cleanup := c.dir, func() {}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "idemkv-httpapi-"); err != nil {
			return "", "", nil, err
		}
		cleanup = func() { os.RemoveAll(dir) }
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		cleanup()
		return "", "", nil, err
	}
	return "file:" + abs, "durable in " + abs, cleanup, nil
}

// errCheck marks a failed expectation of the protocol walk.
var errCheck = errors.New("check failed")

func expect(cond bool, format string, args ...any) error {
	if cond {
		return nil
	}
	return fmt.Errorf("%w: "+format, append([]any{errCheck}, args...)...)
}

// protocolWalk exercises every status the draft gives Idempotency-Key, in
// order, and fails on the first surprise.
func protocolWalk(ctx context.Context, w io.Writer, srv *server, cl *client) error {
	fmt.Fprintln(w, "protocol walk (draft-ietf-httpapi-idempotency-key-header):")
	show := func(what string, r response) {
		var b struct{ ID, Title string }
		json.Unmarshal(r.body, &b) // best effort: the line is for people
		note := b.ID
		if b.Title != "" {
			note = b.Title
		}
		if r.replayed {
			note += " (Idempotent-Replayed: true)"
		}
		fmt.Fprintf(w, "  %-50s → %d %s\n", what, r.status, note)
	}
	// Keys unique to the run, so that a -dir used before does not turn the
	// walk's first requests into replays.
	tag := uuid.NewString()[:8]
	k1, kSlow := "walk-1-"+tag, "walk-slow-"+tag
	q1, qSlow := strconv.Quote(k1), strconv.Quote(kSlow)
	body := []byte(`{"to": "acct-1", "amount": 500}`)

	first, err := cl.post(ctx, "/payments", q1, body)
	if err != nil {
		return err
	}
	show(`POST key "walk-1"`, first)
	if err := expect(first.status == 201 && !first.replayed, "first request: want 201, got %d", first.status); err != nil {
		return err
	}

	// Same key, same payload written differently: the canonical fingerprint
	// matches, so the stored response comes back.
	again, err := cl.post(ctx, "/payments", q1, []byte(`{"amount":500,"to":"acct-1"}`))
	if err != nil {
		return err
	}
	show(`POST key "walk-1" again (same payload)`, again)
	if err := expect(again.status == 201 && again.replayed && string(again.body) == string(first.body),
		"repeat: want the stored 201 and body replayed, got %d %q", again.status, again.body); err != nil {
		return err
	}

	mismatch, err := cl.post(ctx, "/payments", q1, []byte(`{"to": "acct-1", "amount": 5000}`))
	if err != nil {
		return err
	}
	show(`POST key "walk-1" with a different amount`, mismatch)
	if err := expect(mismatch.status == 422, "reused key, different payload: want 422, got %d", mismatch.status); err != nil {
		return err
	}

	missing, err := cl.post(ctx, "/payments", "", body)
	if err != nil {
		return err
	}
	show("POST without Idempotency-Key", missing)
	if err := expect(missing.status == 400, "missing key: want 400, got %d", missing.status); err != nil {
		return err
	}

	long, err := cl.post(ctx, "/payments", strconv.Quote(strings.Repeat("k", 300)), body)
	if err != nil {
		return err
	}
	show("POST with a 300-byte Idempotency-Key", long)
	if err := expect(long.status == 400, "key over %d bytes: want 400, got %d", idemkv.MaxKeyLen, long.status); err != nil {
		return err
	}

	// A concurrent duplicate: the first request is held inside its
	// transaction until the duplicate has been answered. Both commit
	// nothing twice: one of them wins, the other conflicts and replays it.
	entered, release := srv.hold(kSlow)
	slow := make(chan response, 1)
	slowErr := make(chan error, 1)
	go func() {
		r, err := cl.post(ctx, "/payments", qSlow, body)
		slow <- r
		slowErr <- err
	}()
	select {
	case <-entered:
	case err := <-slowErr:
		release()
		return fmt.Errorf("the held request ended before it was processed: %v", err)
	case <-time.After(10 * time.Second):
		release()
		return fmt.Errorf("%w: the held request never reached the payment", errCheck)
	}
	dup, err := cl.post(ctx, "/payments", qSlow, body)
	release()
	if err != nil {
		return err
	}
	show(`POST key "walk-slow" while the first is processing`, dup)
	done, err := <-slow, <-slowErr
	if err != nil {
		return err
	}
	show(`  ... the first "walk-slow" request completes`, done)
	if err := expect(dup.status == 201 && done.status == 201 && string(dup.body) == string(done.body) && dup.replayed != done.replayed,
		"concurrent duplicates: want one 201 and the same 201 replayed, got %d (replayed %v) and %d (replayed %v)", dup.status, dup.replayed, done.status, done.replayed); err != nil {
		return err
	}
	after, err := cl.post(ctx, "/payments", qSlow, body)
	if err != nil {
		return err
	}
	show(`POST key "walk-slow" again`, after)
	if err := expect(after.status == 201 && after.replayed && string(after.body) == string(done.body),
		"after both complete: want the same 201 replayed, got %d", after.status); err != nil {
		return err
	}
	return nil
}
