package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/idemkv/idemkv/idemkv"
)

// client posts payments and retries the way a careful client should: the
// same key and the same body on every attempt, backing off, a bounded
// number of times.
type client struct {
	base     string
	http     *http.Client
	attempts int
}

func newClient(base string, attempts int) *client {
	return &client{
		base: base,
		http: &http.Client{
			// No keep-alive: Go's transport itself retries a request that
			// carries an Idempotency-Key when a reused connection fails, which
			// would hide the dropped responses from the counts below. Every
			// request gets its own connection instead.
			Transport: &http.Transport{DisableKeepAlives: true},
			Timeout:   30 * time.Second,
		},
		attempts: attempts,
	}
}

// response is one HTTP answer.
type response struct {
	status   int
	body     []byte
	replayed bool
}

// post sends one request; key is the raw header value ("" for none). A
// transport error (a dropped response among them) is returned as is.
func (c *client) post(ctx context.Context, path, key string, body []byte) (response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, body: bytes.TrimSpace(b), replayed: resp.Header.Get("Idempotent-Replayed") == "true"}, nil
}

// planned is one payment the client will make, with its key.
type planned struct {
	key string
	p   payment
}

// makePayments plans the load: amounts from the seed, keys fresh UUIDs (a
// directory reused across runs must not turn this run's payments into
// replays of the last run's).
func makePayments(c config) []planned {
	rng := rand.New(rand.NewPCG(c.seed, 0x9a7))
	out := make([]planned, c.payments)
	for i := range out {
		key := uuid.NewString()
		out[i] = planned{key: key, p: payment{To: fmt.Sprintf("acct-%d", rng.IntN(10)), Amount: int64(1 + rng.IntN(10_000)), Ref: key}}
	}
	return out
}

// sent is what the client learned sending the load.
type sent struct {
	requests, replayed int
	// ids maps each key to the payment id in its final 201.
	ids map[string]string
}

// sendAll sends every payment from c.clients goroutines, each payment
// retried until it gets a 201 or runs out of attempts (an error then).
func (cl *client) sendAll(ctx context.Context, path string, payments []planned, c config) (sent, error) {
	var mu sync.Mutex
	out := sent{ids: map[string]string{}}
	var firstErr error
	next := make(chan int)
	var wg sync.WaitGroup
	for g := range c.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(c.seed, uint64(g)))
			for i := range next {
				id, requests, replayed, err := cl.pay(ctx, path, payments[i], rng)
				mu.Lock()
				out.requests += requests
				if replayed {
					out.replayed++
				}
				if err != nil && firstErr == nil {
					firstErr = err
				}
				out.ids[payments[i].key] = id
				mu.Unlock()
			}
		}()
	}
	for i := range payments {
		next <- i
	}
	close(next)
	wg.Wait()
	return out, firstErr
}

// pay sends one payment until it gets a 201. A transport error (the
// response was dropped, or the request was lost: the client cannot tell),
// a 409 (the first request is still running) and a 5xx are retried with the
// same key and body; anything else is an error.
func (cl *client) pay(ctx context.Context, path string, pl planned, rng *rand.Rand) (id string, requests int, replayed bool, err error) {
	body, err := json.Marshal(pl.p)
	if err != nil {
		return "", 0, false, err
	}
	key := strconv.Quote(pl.key) // a UUID needs no escaping beyond the quotes
	delay := 2 * time.Millisecond
	var last string
	for range cl.attempts {
		requests++
		r, err := cl.post(ctx, path, key, body)
		switch {
		case err != nil:
			last = err.Error()
		case r.status == http.StatusCreated:
			var got struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(r.body, &got); err != nil || got.ID == "" {
				return "", requests, false, fmt.Errorf("payment %s: 201 without an id: %q", pl.key, r.body)
			}
			return got.ID, requests, r.replayed, nil
		case r.status == http.StatusConflict || r.status >= 500:
			last = fmt.Sprintf("%d %s", r.status, r.body)
		default:
			return "", requests, false, fmt.Errorf("payment %s: unexpected %d %s", pl.key, r.status, r.body)
		}
		// Full jitter under a doubling cap, bounded at 100 ms.
		select {
		case <-ctx.Done():
			return "", requests, false, ctx.Err()
		case <-time.After(time.Duration(rng.Float64() * float64(delay))):
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
	return "", requests, false, fmt.Errorf("payment %s: no answer after %d attempts (last: %s); raise -attempts or lower -drop", pl.key, cl.attempts, last)
}

// report is the audit of the safe ledger.
type report struct {
	entries  int // entries of this run's payments
	problems []string
}

// audit checks the service's books against what the client was told:
// exactly one ledger entry per payment key, with the id, recipient and
// amount of the 201 its client got.
func audit(ctx context.Context, store *idemkv.Store, payments []planned, got sent) (report, error) {
	entries, err := readLedger(ctx, store, ledgerPrefix)
	if err != nil {
		return report{}, err
	}
	return checkLedger(entries, payments, got), nil
}

// checkLedger is audit's comparison, apart so that tests can feed it bad
// books.
func checkLedger(entries []ledgerEntry, payments []planned, got sent) report {
	want := map[string]planned{}
	for _, p := range payments {
		want[p.key] = p
	}
	var rep report
	seen := map[string]int{}
	for _, e := range entries {
		p, ok := want[e.Key]
		if !ok {
			continue // the walk's payments, or an earlier run's
		}
		rep.entries++
		seen[e.Key]++
		switch {
		case seen[e.Key] == 2:
			rep.problems = append(rep.problems, fmt.Sprintf("payment %s was made more than once", e.Key))
		case e.ID != got.ids[e.Key]:
			rep.problems = append(rep.problems, fmt.Sprintf("payment %s: ledger id %s, but its client was given %q", e.Key, e.ID, got.ids[e.Key]))
		case e.To != p.p.To || e.Amount != p.p.Amount:
			rep.problems = append(rep.problems, fmt.Sprintf("payment %s: ledger says %d to %s, the request said %d to %s", e.Key, e.Amount, e.To, p.p.Amount, p.p.To))
		}
	}
	for _, p := range payments {
		if seen[p.key] == 0 {
			rep.problems = append(rep.problems, fmt.Sprintf("payment %s was acknowledged but is not in the ledger", p.key))
		}
	}
	if rep.entries != len(payments) {
		rep.problems = append(rep.problems, fmt.Sprintf("%d ledger entries for %d payments", rep.entries, len(payments)))
	}
	return rep
}

// countLedger counts the unsafe ledger's entries for this run's payments
// (by their client reference).
func countLedger(ctx context.Context, store *idemkv.Store, prefix []byte, payments []planned) (int, error) {
	entries, err := readLedger(ctx, store, prefix)
	if err != nil {
		return 0, err
	}
	refs := map[string]bool{}
	for _, p := range payments {
		refs[p.key] = true
	}
	n := 0
	for _, e := range entries {
		if refs[e.Ref] {
			n++
		}
	}
	return n, nil
}
