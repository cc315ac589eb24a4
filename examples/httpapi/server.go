package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/idemkv/idemhttp"
	"github.com/idemkv/idemkv/kv"
)

// payment is the request body of POST /payments.
type payment struct {
	To     string `json:"to"`
	Amount int64  `json:"amount"`
	// Ref is the client's own reference. The safe endpoint does not need
	// it; the unsafe one records it so that its duplicates can be counted.
	Ref string `json:"ref,omitempty"`
}

// maxBody bounds a request body; a payment is a few dozen bytes.
const maxBody = 4 << 10

// ledgerEntry is one payment made: the service's books. It lives under a
// versionstamped key, so a payment made twice shows up twice.
type ledgerEntry struct {
	ID     string `json:"id"`
	Key    string `json:"key,omitempty"` // the Idempotency-Key, on the safe ledger
	Ref    string `json:"ref,omitempty"`
	To     string `json:"to"`
	Amount int64  `json:"amount"`
}

var (
	ledgerPrefix       = []byte("payments/ledger/")
	unsafeLedgerPrefix = []byte("payments/unsafe-ledger/")
)

// server is the payments service and its fault-injecting middleware.
type server struct {
	store *idemkv.Store
	http  *http.Server
	addr  string
	done  chan error

	mu struct {
		sync.Mutex
		// rng decides drops: seeded, so a single client replays the same
		// drops; with several, which request gets which decision follows
		// the scheduler.
		rng     *rand.Rand
		drop    float64
		dropped int
		// holds are keys whose processing waits for the demo to release
		// them, with the channel announcing that processing began.
		holds map[string]hold
	}
}

type hold struct {
	entered chan struct{}
	release chan struct{}
}

// startServer listens on 127.0.0.1, an ephemeral port, and serves until
// stop.
func startServer(store *idemkv.Store, seed uint64) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening on loopback: %w", err)
	}
	s := &server{store: store, addr: ln.Addr().String(), done: make(chan error, 1)}
	s.mu.rng = rand.New(rand.NewPCG(seed, 0x5e4))
	s.mu.holds = map[string]hold{}
	idem, err := idemhttp.New(store, &idemhttp.Options{Required: true, Fingerprint: fingerprint, MaxBodyBytes: maxBody})
	if err != nil {
		ln.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("POST /payments", validate(idem.Transact(http.HandlerFunc(s.payments))))
	mux.Handle("POST /unsafe/payments", validate(http.HandlerFunc(s.unsafePayments)))
	s.http = &http.Server{Handler: s.dropper(mux), ReadHeaderTimeout: 5 * time.Second}
	go func() { s.done <- s.http.Serve(ln) }()
	return s, nil
}

func (s *server) url() string { return "http://" + s.addr }

// stop shuts the service down, waiting a bounded time for requests in
// flight.
func (s *server) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.http.Shutdown(ctx)
	<-s.done
}

func (s *server) setDrop(p float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.drop = p
}

func (s *server) resetDropped() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.mu.dropped
	s.mu.dropped = 0
	return n
}

// hold makes the next processing of key wait until release is called;
// entered is closed when it begins waiting.
func (s *server) hold(key string) (entered <-chan struct{}, release func()) {
	h := hold{entered: make(chan struct{}), release: make(chan struct{})}
	s.mu.Lock()
	s.mu.holds[key] = h
	s.mu.Unlock()
	var once sync.Once
	return h.entered, func() { once.Do(func() { close(h.release) }) }
}

func (s *server) waitIfHeld(key string) {
	s.mu.Lock()
	h, ok := s.mu.holds[key]
	delete(s.mu.holds, key)
	s.mu.Unlock()
	if ok {
		close(h.entered)
		<-h.release
	}
}

// dropper runs the handler to completion into a buffer, then either sends
// the response or, with the configured probability, closes the connection
// without a word: the request took effect and the client cannot know.
func (s *server) dropper(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		s.mu.Lock()
		drop := s.mu.drop > 0 && s.mu.rng.Float64() < s.mu.drop
		if drop {
			s.mu.dropped++
		}
		s.mu.Unlock()
		if drop {
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
					return
				}
			}
			// No hijacking (HTTP/2): abort the response instead.
			panic(http.ErrAbortHandler)
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code) // 200 if the handler wrote nothing, as net/http
		w.Write(rec.Body.Bytes())
	})
}

// problem writes an RFC 9457 problem details response (for the service's
// own validation; idemhttp writes its own).
func problem(w http.ResponseWriter, status int, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(map[string]any{
		"type":   "about:blank",
		"title":  title,
		"status": status,
		"detail": detail,
	})
}

// decodePayment decodes and validates a payment body.
func decodePayment(body []byte) (payment, error) {
	var p payment
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, fmt.Errorf("the body must be a JSON payment {\"to\": string, \"amount\": positive integer} of at most %d bytes: %v", maxBody, err)
	}
	if p.To == "" || p.Amount <= 0 {
		return p, errors.New(`"to" must be non-empty and "amount" a positive integer`)
	}
	return p, nil
}

// validate answers 400 for a body that is not a valid payment before the
// idempotency middleware sees the request, so that (as Stripe does) a
// request that fails validation stores nothing and leaves its key unused.
func validate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err == nil {
			_, err = decodePayment(body)
		}
		if err != nil {
			problem(w, http.StatusBadRequest, "Invalid payment", err.Error())
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// fingerprint is the method, path and canonical JSON body: the same payment
// written with other spacing or field order is the same payload.
func fingerprint(r *http.Request, body []byte) []byte {
	p, err := decodePayment(body)
	if err != nil {
		return idemhttp.DefaultFingerprint(r, body)
	}
	canon, _ := json.Marshal(p)
	return idemhttp.DefaultFingerprint(r, canon)
}

// payments is POST /payments, wrapped in idemhttp's Transact: the ledger
// entry is written in the request's keyed transaction, so it commits with
// the stored response, exactly once per Idempotency-Key.
func (s *server) payments(w http.ResponseWriter, r *http.Request) {
	tr, ok := idemhttp.Tx(r.Context())
	if !ok {
		problem(w, http.StatusInternalServerError, "Misconfigured", "the payments handler must run under idemhttp's Transact")
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		problem(w, http.StatusBadRequest, "Invalid payment", err.Error())
		return
	}
	p, err := decodePayment(body)
	if err != nil {
		problem(w, http.StatusBadRequest, "Invalid payment", err.Error())
		return
	}
	key, _ := idemhttp.Key(r.Context())
	s.waitIfHeld(key)
	res, err := writePayment(tr, ledgerPrefix, key, p)
	if err != nil {
		problem(w, http.StatusInternalServerError, "Payment not made", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Location", "/payments/"+res.id)
	w.WriteHeader(http.StatusCreated)
	w.Write(res.body)
}

// unsafePayments is the same payment with no idempotency at all: what a
// client that retries through dropped responses gets without the header.
func (s *server) unsafePayments(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body) // validate read and checked it
	p, err := decodePayment(body)
	if err != nil {
		problem(w, http.StatusBadRequest, "Invalid payment", err.Error())
		return
	}
	res, err := idemkv.Transact(r.Context(), s.store, func(tr kv.Transaction) (made, error) {
		return writePayment(tr, unsafeLedgerPrefix, "", p)
	})
	if err != nil {
		problem(w, http.StatusServiceUnavailable, "Payment not made", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	w.Write(res.body)
}

// made is a payment written: its id and the response body.
type made struct {
	id   string
	body []byte
}

// writePayment appends the payment's ledger entry in tr, under a
// versionstamped key (so a payment made twice shows up twice), and returns
// the response body.
func writePayment(tr kv.Transaction, prefix []byte, key string, p payment) (made, error) {
	e := ledgerEntry{ID: "pay_" + uuid.NewString(), Key: key, Ref: p.Ref, To: p.To, Amount: p.Amount}
	value, err := json.Marshal(e)
	if err != nil {
		return made{}, err
	}
	k := append(append([]byte{}, prefix...), make([]byte, 10)...)
	k = binary.LittleEndian.AppendUint32(k, uint32(len(prefix)))
	tr.Atomic(kv.SetVersionstampedKey, k, value)
	body, err := json.Marshal(map[string]any{"id": e.ID, "status": "succeeded", "to": e.To, "amount": e.Amount})
	if err != nil {
		return made{}, err
	}
	return made{id: e.ID, body: body}, nil
}

// readLedger returns every entry under prefix.
func readLedger(ctx context.Context, store *idemkv.Store, prefix []byte) ([]ledgerEntry, error) {
	r, err := kv.PrefixRange(prefix)
	if err != nil {
		return nil, err
	}
	kvs, err := idemkv.ReadTransact(ctx, store, func(tr kv.ReadTransaction) ([]kv.KeyValue, error) {
		return tr.GetRange(r, kv.RangeOptions{}).Get()
	})
	if err != nil {
		return nil, err
	}
	out := make([]ledgerEntry, 0, len(kvs))
	for _, e := range kvs {
		var le ledgerEntry
		if err := json.Unmarshal(e.Value, &le); err != nil {
			return nil, fmt.Errorf("ledger entry %q: %w", e.Key, err)
		}
		out = append(out, le)
	}
	return out, nil
}
