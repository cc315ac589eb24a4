package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/idemkv/idemkv/idemkv"
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

// stored is what idemkv.Do keeps for a key: the response to replay.
type stored struct {
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body"`
}

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
	mux := http.NewServeMux()
	mux.HandleFunc("POST /payments", s.payments)
	mux.HandleFunc("POST /unsafe/payments", s.unsafePayments)
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
		rec := &recorder{header: http.Header{}}
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
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		w.WriteHeader(rec.status)
		w.Write(rec.body.Bytes())
	})
}

// recorder buffers a response.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}

// Hijack is not offered by the recorder; the dropper hijacks the real
// connection itself.
var _ http.ResponseWriter = (*recorder)(nil)

// problem writes an RFC 9457 problem details response.
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

// idempotencyKey parses the header: a Structured Field String (RFC 8941:
// double quotes, with \" and \\ the only escapes); a bare token is accepted
// too, as many clients send one. ok is false when the header is absent.
func idempotencyKey(r *http.Request) (key string, ok bool, err error) {
	vals := r.Header.Values("Idempotency-Key")
	if len(vals) == 0 {
		return "", false, nil
	}
	if len(vals) > 1 {
		return "", true, errors.New("more than one Idempotency-Key header")
	}
	v := strings.TrimSpace(vals[0])
	if len(v) < 2 || v[0] != '"' {
		return v, true, nil
	}
	if v[len(v)-1] != '"' {
		return "", true, errors.New("Idempotency-Key is not a valid structured-field string: no closing quote")
	}
	var b strings.Builder
	inner := v[1 : len(v)-1]
	for i := 0; i < len(inner); i++ {
		c := inner[i]
		switch {
		case c == '\\':
			if i+1 == len(inner) || (inner[i+1] != '"' && inner[i+1] != '\\') {
				return "", true, errors.New(`Idempotency-Key is not a valid structured-field string: only \" and \\ may be escaped`)
			}
			i++
			b.WriteByte(inner[i])
		case c == '"':
			return "", true, errors.New("Idempotency-Key is not a valid structured-field string: unescaped quote")
		case c < 0x20 || c > 0x7e:
			return "", true, errors.New("Idempotency-Key is not a valid structured-field string: only printable ASCII is allowed")
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true, nil
}

// readPayment decodes and validates the body; the canonical re-encoding
// is what the fingerprint covers, so spacing and field order do not matter.
func readPayment(w http.ResponseWriter, r *http.Request) (payment, []byte, bool) {
	var p payment
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		problem(w, http.StatusBadRequest, "Invalid payment", fmt.Sprintf("the body must be a JSON payment {\"to\": string, \"amount\": positive integer} of at most %d bytes: %v", maxBody, err))
		return p, nil, false
	}
	if p.To == "" || p.Amount <= 0 {
		problem(w, http.StatusBadRequest, "Invalid payment", `"to" must be non-empty and "amount" a positive integer`)
		return p, nil, false
	}
	canon, err := json.Marshal(p)
	if err != nil {
		problem(w, http.StatusInternalServerError, "Internal error", err.Error())
		return p, nil, false
	}
	return p, append([]byte(r.Method+" "+r.URL.Path+"\n"), canon...), true
}

// payments is POST /payments: the Idempotency-Key is required.
func (s *server) payments(w http.ResponseWriter, r *http.Request) {
	key, present, err := idempotencyKey(r)
	switch {
	case !present:
		problem(w, http.StatusBadRequest, "Idempotency-Key is missing",
			"this endpoint requires an Idempotency-Key header, e.g. Idempotency-Key: \"<a fresh UUID>\"")
		return
	case err != nil:
		problem(w, http.StatusBadRequest, "Invalid Idempotency-Key", err.Error())
		return
	}
	p, fingerprint, ok := readPayment(w, r)
	if !ok {
		return
	}
	// The work continues if the client hangs up: a request that reached
	// the payment should finish it and store the outcome for the retry.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 30*time.Second)
	defer cancel()
	ran := false
	res, err := idemkv.Do(ctx, s.store, key, fingerprint, func(ctx context.Context) (stored, error) {
		ran = true
		s.waitIfHeld(key)
		return s.pay(ctx, ledgerPrefix, key, p)
	}, nil)
	switch {
	case err == nil:
		w.Header().Set("Content-Type", "application/json")
		if !ran {
			w.Header().Set("Idempotent-Replayed", "true")
		}
		w.WriteHeader(res.Status)
		w.Write(res.Body)
	case errors.Is(err, idemkv.ErrInProgress), errors.Is(err, idemkv.ErrLeaseLost):
		w.Header().Set("Retry-After", "1")
		problem(w, http.StatusConflict, "A request with this Idempotency-Key is being processed",
			"retry after the first request completes; its response will be replayed")
	case errors.Is(err, idemkv.ErrPayloadMismatch):
		problem(w, http.StatusUnprocessableEntity, "Idempotency-Key reused",
			"this Idempotency-Key was used with a different request payload; use a fresh key for a new request")
	case errors.Is(err, idemkv.ErrEmptyKey), errors.Is(err, idemkv.ErrKeyTooLong):
		problem(w, http.StatusBadRequest, "Invalid Idempotency-Key", err.Error())
	default:
		// Nothing was stored: the key is free again and a retry runs anew.
		problem(w, http.StatusServiceUnavailable, "Payment not made", err.Error())
	}
}

// unsafePayments is the same payment with no idempotency at all: what a
// client that retries through dropped responses gets without the header.
func (s *server) unsafePayments(w http.ResponseWriter, r *http.Request) {
	p, _, ok := readPayment(w, r)
	if !ok {
		return
	}
	res, err := s.pay(r.Context(), unsafeLedgerPrefix, "", p)
	if err != nil {
		problem(w, http.StatusServiceUnavailable, "Payment not made", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(res.Status)
	w.Write(res.Body)
}

// pay makes the payment: one ledger entry appended, exactly once per call
// (idemkv.Transact), and returns the response to send and store.
func (s *server) pay(ctx context.Context, prefix []byte, key string, p payment) (stored, error) {
	e := ledgerEntry{ID: "pay_" + uuid.NewString(), Key: key, Ref: p.Ref, To: p.To, Amount: p.Amount}
	value, err := json.Marshal(e)
	if err != nil {
		return stored{}, err
	}
	_, err = idemkv.Transact(ctx, s.store, func(tr kv.Transaction) (struct{}, error) {
		k := append(append([]byte{}, prefix...), make([]byte, 10)...)
		k = binary.LittleEndian.AppendUint32(k, uint32(len(prefix)))
		tr.Atomic(kv.SetVersionstampedKey, k, value)
		return struct{}{}, nil
	})
	if err != nil {
		return stored{}, err
	}
	body, err := json.Marshal(map[string]any{"id": e.ID, "status": "succeeded", "to": e.To, "amount": e.Amount})
	if err != nil {
		return stored{}, err
	}
	return stored{Status: http.StatusCreated, Body: body}, nil
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
