package idemhttp_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/idemkv/idemhttp"
	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/faulty"
)

var seedFlag = flag.Uint64("seed", 0, "seed for randomized tests (0: derive from the time)")

func seed(t *testing.T) uint64 {
	s := *seedFlag
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d; replay: go test ./idemkv/idemhttp/ -count=1 -run '^%s$' -seed %d", s, t.Name(), s)
		}
	})
	return s
}

func openStore(t *testing.T, wrap func(kv.Database) kv.Database) *idemkv.Store {
	t.Helper()
	s, err := idemkv.Open(context.Background(), "mem:", &idemkv.Options{NoJanitor: true, MaxRetryDelay: 2 * time.Millisecond, WrapDatabase: wrap})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// payments is a handler whose effect is in the store: a ledger add per
// request, in the request's keyed transaction.
type payments struct {
	s    *idemkv.Store
	runs atomic.Int32
}

func (p *payments) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := p.runs.Add(1)
	tr, ok := idemhttp.Tx(r.Context())
	if !ok {
		http.Error(w, "no transaction", http.StatusInternalServerError)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var req struct {
		To     string `json:"to"`
		Amount int    `json:"amount"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Amount <= 0 {
		// A validation failure is a response like any other: stored.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":"invalid payment"}`)
		return
	}
	p.s.Counter("ledger/"+req.To).AddTx(tr, int64(req.Amount))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Location", "/payments/"+strconv.Itoa(int(n)))
	w.Header().Set("X-Run", strconv.Itoa(int(n))) // not a replay header
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `{"id":"pay_%d","to":%q,"amount":%d}`, n, req.To, req.Amount)
}

func ledger(t *testing.T, s *idemkv.Store, to string) int64 {
	t.Helper()
	v, err := s.Counter("ledger/" + to).Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

type result struct {
	status int
	header http.Header
	body   string
}

func post(t *testing.T, c *http.Client, url, key, body string) result {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{resp.StatusCode, resp.Header, string(b)}
}

func newServer(t *testing.T, s *idemkv.Store, opts *idemhttp.Options, wrap func(*idemhttp.Middleware, http.Handler) http.Handler, h http.Handler) *httptest.Server {
	t.Helper()
	m, err := idemhttp.New(s, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(wrap(m, h))
	t.Cleanup(srv.Close)
	return srv
}

func transact(m *idemhttp.Middleware, h http.Handler) http.Handler { return m.Transact(h) }
func lease(m *idemhttp.Middleware, h http.Handler) http.Handler    { return m.Lease(h) }

func TestTransactFirstAndReplay(t *testing.T) {
	s := openStore(t, nil)
	p := &payments{s: s}
	srv := newServer(t, s, nil, transact, p)
	c := srv.Client()
	first := post(t, c, srv.URL+"/payments", `"k-1"`, `{"to":"alice","amount":10}`)
	if first.status != http.StatusCreated || first.header.Get("X-Run") != "1" || first.header.Get(idemhttp.ReplayedHeader) != "" {
		t.Fatalf("first: %+v", first)
	}
	for range 2 {
		again := post(t, c, srv.URL+"/payments", `"k-1"`, `{"to":"alice","amount":10}`)
		if again.status != http.StatusCreated || again.body != first.body || again.header.Get(idemhttp.ReplayedHeader) != "true" ||
			again.header.Get("Location") != first.header.Get("Location") || again.header.Get("Content-Type") != "application/json" {
			t.Fatalf("replay: %+v; want the first's status, body and replay headers, marked replayed", again)
		}
		if again.header.Get("X-Run") != "" {
			t.Fatalf("replay carried X-Run, which is not a replay header: %+v", again.header)
		}
	}
	if p.runs.Load() != 1 || ledger(t, s, "alice") != 10 {
		t.Fatalf("handler ran %d times, ledger %d; want 1, 10", p.runs.Load(), ledger(t, s, "alice"))
	}
	// Another payload under the key: 422, nothing runs.
	r := post(t, c, srv.URL+"/payments", `"k-1"`, `{"to":"alice","amount":99}`)
	if r.status != http.StatusUnprocessableEntity || r.header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("reused key: %+v", r)
	}
	var pd map[string]any
	if err := json.Unmarshal([]byte(r.body), &pd); err != nil || pd["status"] != float64(422) || pd["title"] == "" {
		t.Fatalf("problem body %q: %v", r.body, err)
	}
	// Same body on another path is another payload too.
	if r := post(t, c, srv.URL+"/refunds", `"k-1"`, `{"to":"alice","amount":10}`); r.status != http.StatusUnprocessableEntity {
		t.Fatalf("same key, other path: %+v", r)
	}
	if p.runs.Load() != 1 {
		t.Fatalf("handler ran %d times, want 1", p.runs.Load())
	}
}

// A stored error response is replayed like any other, 5xx included
// (Stripe's behaviour).
func TestTransactReplaysErrors(t *testing.T) {
	s := openStore(t, nil)
	var runs atomic.Int32
	srv := newServer(t, s, nil, transact, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		runs.Add(1)
		http.Error(w, "upstream card network down", http.StatusBadGateway)
	}))
	for i := range 3 {
		r := post(t, srv.Client(), srv.URL+"/payments", `"k"`, `{}`)
		if r.status != http.StatusBadGateway || !strings.Contains(r.body, "card network") || (i > 0) != (r.header.Get(idemhttp.ReplayedHeader) == "true") {
			t.Fatalf("call %d: %+v", i, r)
		}
	}
	if runs.Load() != 1 {
		t.Fatalf("handler ran %d times, want 1", runs.Load())
	}
}

func TestHeaderAndRequestErrors(t *testing.T) {
	s := openStore(t, nil)
	p := &payments{s: s}
	srv := newServer(t, s, &idemhttp.Options{Required: true, MaxBodyBytes: 64}, transact, p)
	c := srv.Client()
	for _, tc := range []struct {
		name, key string
		status    int
	}{
		{"missing", "", http.StatusBadRequest},
		{"bare token", "k-1", http.StatusBadRequest},
		{"empty string", `""`, http.StatusBadRequest},
		{"no closing quote", `"k-1`, http.StatusBadRequest},
		{"bad escape", `"k\n"`, http.StatusBadRequest},
		{"a list", `"a", "b"`, http.StatusBadRequest},
		{"too long", `"` + strings.Repeat("k", idemkv.MaxKeyLen+1) + `"`, http.StatusBadRequest},
		{"non-ASCII", "\"k\xc3\xa9\"", http.StatusBadRequest},
	} {
		r := post(t, c, srv.URL+"/payments", tc.key, `{"to":"bob","amount":1}`)
		if r.status != tc.status || r.header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %q, want %d problem+json", tc.name, r.status, r.body, tc.status)
		}
	}
	// Two header lines are a list, not one key.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/payments", strings.NewReader(`{"to":"bob","amount":1}`))
	req.Header.Add("Idempotency-Key", `"a"`)
	req.Header.Add("Idempotency-Key", `"b"`)
	if resp, err := c.Do(req); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("two header lines: %v, %v", resp.Status, err)
	} else {
		resp.Body.Close()
	}
	// A body over the limit is a 413, and the key stays unused.
	if r := post(t, c, srv.URL+"/payments", `"big"`, `{"to":"bob","amount":1,"memo":"`+strings.Repeat("x", 100)+`"}`); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("big body: %+v", r)
	}
	if p.runs.Load() != 0 || ledger(t, s, "bob") != 0 {
		t.Fatalf("bad requests ran the handler %d times", p.runs.Load())
	}
	// Valid keys, escapes and parameters included.
	for _, key := range []string{`"big"`, `"k \"quoted\" \\ back"`, `"k-2";v=1`} {
		if r := post(t, c, srv.URL+"/payments", key, `{"to":"bob","amount":1}`); r.status != http.StatusCreated {
			t.Errorf("key %s: %+v", key, r)
		}
	}
	if ledger(t, s, "bob") != 3 {
		t.Fatalf("ledger %d, want 3", ledger(t, s, "bob"))
	}
}

// Requests without the header (when not required) and other methods pass
// through.
func TestPassThrough(t *testing.T) {
	s := openStore(t, nil)
	var inTx atomic.Int32
	srv := newServer(t, s, nil, transact, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := idemhttp.Tx(r.Context()); ok {
			inTx.Add(1)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	if r := post(t, srv.Client(), srv.URL, "", "x"); r.status != http.StatusNoContent {
		t.Fatalf("no key: %+v", r)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("Idempotency-Key", `"k"`)
	resp, err := srv.Client().Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("GET: %v, %v", resp, err)
	}
	resp.Body.Close()
	if inTx.Load() != 0 {
		t.Fatal("a pass-through request ran in a keyed transaction")
	}
}

// A handler that panics stores nothing: 500, and the retry runs again.
func TestHandlerPanicStoresNothing(t *testing.T) {
	s := openStore(t, nil)
	var runs atomic.Int32
	srv := newServer(t, s, nil, transact, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr, _ := idemhttp.Tx(r.Context())
		s.Counter("ledger/p").AddTx(tr, 1)
		if runs.Add(1) == 1 {
			w.WriteHeader(http.StatusCreated)
			w.Write([]byte("partial"))
			panic("handler bug")
		}
		w.WriteHeader(http.StatusCreated)
	}))
	if r := post(t, srv.Client(), srv.URL, `"k"`, ""); r.status != http.StatusInternalServerError || strings.Contains(r.body, "partial") {
		t.Fatalf("panic: %+v", r)
	}
	if ledger(t, s, "p") != 0 {
		t.Fatal("a panicking handler's writes committed")
	}
	if r := post(t, srv.Client(), srv.URL, `"k"`, ""); r.status != http.StatusCreated || r.header.Get(idemhttp.ReplayedHeader) != "" {
		t.Fatalf("retry: %+v; want a first run", r)
	}
	if ledger(t, s, "p") != 1 {
		t.Fatalf("ledger %d, want 1", ledger(t, s, "p"))
	}
}

// Concurrent duplicates through a real client: one runs, the others
// replay it.
func TestTransactConcurrentDuplicates(t *testing.T) {
	s := openStore(t, nil)
	p := &payments{s: s}
	srv := newServer(t, s, nil, transact, p)
	const clients = 8
	res := make([]result, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = post(t, srv.Client(), srv.URL+"/payments", `"dup"`, `{"to":"carol","amount":5}`)
		}()
	}
	wg.Wait()
	firsts := 0
	for _, r := range res {
		if r.status != http.StatusCreated || r.body != res[0].body {
			t.Fatalf("responses differ: %+v vs %+v", r, res[0])
		}
		if r.header.Get(idemhttp.ReplayedHeader) == "" {
			firsts++
		}
	}
	if firsts != 1 || ledger(t, s, "carol") != 5 {
		t.Fatalf("%d first responses, ledger %d; want 1 and 5", firsts, ledger(t, s, "carol"))
	}
}

// Under ambiguous commit faults the handler runs more than once, but only
// the committed attempt's response is sent, and the ledger moves once per
// key.
func TestTransactUnderFaults(t *testing.T) {
	sd := seed(t)
	var f *faulty.DB
	s := openStore(t, func(db kv.Database) kv.Database {
		f = faulty.Wrap(db, faulty.Config{Seed: sd, UnknownResultApplied: 0.2, UnknownResultNotApplied: 0.1, UnknownResultLate: 0.05, NotCommitted: 0.1, LateDelay: time.Millisecond})
		return f
	})
	p := &payments{s: s}
	srv := newServer(t, s, nil, transact, p)
	const keys = 30
	for k := range keys {
		to := fmt.Sprintf("acct-%d", k)
		first := post(t, srv.Client(), srv.URL+"/payments", fmt.Sprintf(`"key-%d"`, k), fmt.Sprintf(`{"to":%q,"amount":1}`, to))
		again := post(t, srv.Client(), srv.URL+"/payments", fmt.Sprintf(`"key-%d"`, k), fmt.Sprintf(`{"to":%q,"amount":1}`, to))
		if first.status != http.StatusCreated || again.body != first.body || first.header.Get("Location") != again.header.Get("Location") {
			t.Fatalf("key %d: first %+v, replay %+v; want the committed attempt's response both times", k, first, again)
		}
	}
	f.Wait()
	for k := range keys {
		if n := ledger(t, s, fmt.Sprintf("acct-%d", k)); n != 1 {
			t.Errorf("acct-%d: ledger %d, want 1", k, n)
		}
	}
	if int(p.runs.Load()) <= keys || f.Stats().AppliedButFailed() == 0 {
		t.Fatalf("handler ran %d times for %d keys, %d applied-but-failed commits: the schedule tested nothing", p.runs.Load(), keys, f.Stats().AppliedButFailed())
	}
}

// Lease: a duplicate while the first runs is a 409 with Retry-After; the
// first's response is replayed afterwards.
func TestLeaseInProgressAndReplay(t *testing.T) {
	s := openStore(t, nil)
	entered, release := make(chan struct{}), make(chan struct{})
	var runs atomic.Int32
	srv := newServer(t, s, &idemhttp.Options{Lease: 20 * time.Second}, lease, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := idemkv.LeaseToken(r.Context()); !ok {
			http.Error(w, "no lease token", http.StatusInternalServerError)
			return
		}
		if runs.Add(1) == 1 {
			close(entered)
			<-release
		}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte("mail sent"))
	}))
	done := make(chan result, 1)
	go func() { done <- post(t, srv.Client(), srv.URL+"/mail", `"m-1"`, "hello") }()
	<-entered
	r := post(t, srv.Client(), srv.URL+"/mail", `"m-1"`, "hello")
	if r.status != http.StatusConflict || r.header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("duplicate in progress: %+v", r)
	}
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 || ra > 20 {
		t.Fatalf("Retry-After %q, want 1..20 seconds", r.header.Get("Retry-After"))
	}
	close(release)
	first := <-done
	again := post(t, srv.Client(), srv.URL+"/mail", `"m-1"`, "hello")
	if first.status != http.StatusAccepted || again.status != http.StatusAccepted || again.body != "mail sent" || again.header.Get(idemhttp.ReplayedHeader) != "true" || runs.Load() != 1 {
		t.Fatalf("first %+v, replay %+v, runs %d", first, again, runs.Load())
	}
}

func TestNewBadOptions(t *testing.T) {
	s := openStore(t, nil)
	for _, o := range []idemhttp.Options{{MaxBodyBytes: -1}, {Timeout: -1}, {Lease: -1}} {
		if _, err := idemhttp.New(s, &o); !errors.Is(err, idemkv.ErrInvalidOptions) {
			t.Errorf("%+v: %v", o, err)
		}
	}
	if _, err := idemhttp.New(nil, nil); !errors.Is(err, idemkv.ErrNilStore) {
		t.Errorf("nil store: %v", err)
	}
}
