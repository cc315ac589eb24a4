package idemhttp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/kv"
)

// Defaults for Options fields left zero.
const (
	// DefaultMaxBodyBytes bounds a request body the middleware reads
	// (it must read it whole to fingerprint it).
	DefaultMaxBodyBytes = 1 << 20
	// DefaultTimeout bounds the work of one request, handler included; it
	// runs on a context detached from the client's, so that a client that
	// hangs up does not cut a request that reached its effect short.
	DefaultTimeout = 30 * time.Second
)

// DefaultReplayHeaders are the response header fields stored and replayed
// with the status and body: those that describe the body or the resource
// created, not the connection or the moment.
var DefaultReplayHeaders = []string{"Content-Type", "Content-Language", "Content-Location", "Location", "ETag", "Last-Modified", "Link"}

// Options configures a Middleware. A nil *Options means all defaults.
type Options struct {
	// Required makes a request without an Idempotency-Key a 400 (the
	// draft's "missing key" error). Default false: such requests go to the
	// handler unprotected.
	Required bool
	// Methods are the methods the middleware applies to; requests with
	// others go to the handler unprotected. Default POST and PATCH, the
	// draft's non-idempotent methods.
	Methods []string
	// Scope returns the scope of r's key (a tenant from its credentials,
	// say), stored beside the key (at most idemkv.MaxScopeLen bytes). Keys
	// in different scopes never meet. Default: no scope.
	Scope func(r *http.Request) string
	// Fingerprint returns what identifies r's payload: the same key with
	// another fingerprint is a 422. Default: the method, the path and the
	// body. Return a canonical form (decoded and re-encoded JSON, say) to
	// accept retries that differ only in spacing.
	Fingerprint func(r *http.Request, body []byte) []byte
	// MaxBodyBytes bounds the request body; a larger one is a 413 and
	// nothing is stored. Default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// ReplayHeaders are the response header fields stored and replayed.
	// Default DefaultReplayHeaders.
	ReplayHeaders []string
	// Timeout bounds one request's work, on a context detached from the
	// client's. Default DefaultTimeout.
	Timeout time.Duration
	// Retention, Lease and Heartbeat are passed to idemkv (KeyOptions,
	// DoOptions). Zero means the store's defaults.
	Retention, Lease time.Duration
	Heartbeat        bool
}

// Middleware honours Idempotency-Key on a store. Wrap handlers with
// Transact (effects in the store) or Lease (effects outside it). It is
// safe for concurrent use.
type Middleware struct {
	s       *idemkv.Store
	o       Options
	methods []string
}

// New returns a Middleware on s. It fails, naming the field, on options
// out of range.
func New(s *idemkv.Store, opts *Options) (*Middleware, error) {
	if s == nil {
		return nil, idemkv.ErrNilStore
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	switch {
	case o.MaxBodyBytes < 0:
		return nil, fmt.Errorf("%w: MaxBodyBytes is %d; it must be positive (0 means %d)", idemkv.ErrInvalidOptions, o.MaxBodyBytes, DefaultMaxBodyBytes)
	case o.Timeout < 0:
		return nil, fmt.Errorf("%w: Timeout is %v; it must be positive (0 means %v)", idemkv.ErrInvalidOptions, o.Timeout, DefaultTimeout)
	case o.Retention < 0 || o.Lease < 0:
		return nil, fmt.Errorf("%w: Retention %v and Lease %v must be positive (0 means the store's)", idemkv.ErrInvalidOptions, o.Retention, o.Lease)
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Methods == nil {
		o.Methods = []string{http.MethodPost, http.MethodPatch}
	}
	if o.ReplayHeaders == nil {
		o.ReplayHeaders = DefaultReplayHeaders
	}
	if o.Fingerprint == nil {
		o.Fingerprint = DefaultFingerprint
	}
	rh := make([]string, len(o.ReplayHeaders))
	for i, h := range o.ReplayHeaders {
		rh[i] = http.CanonicalHeaderKey(h)
	}
	o.ReplayHeaders = rh
	return &Middleware{s: s, o: o, methods: slices.Clone(o.Methods)}, nil
}

// DefaultFingerprint is the method, the escaped path and the body.
func DefaultFingerprint(r *http.Request, body []byte) []byte {
	b := make([]byte, 0, len(r.Method)+len(r.URL.EscapedPath())+2+len(body))
	b = append(b, r.Method...)
	b = append(b, ' ')
	b = append(b, r.URL.EscapedPath()...)
	b = append(b, '\n')
	return append(b, body...)
}

type (
	txKey  struct{}
	keyKey struct{}
)

// Key returns, inside a wrapped handler, the request's Idempotency-Key (as
// parsed: without the quotes and escapes) — e.g. to record it beside the
// effect.
func Key(ctx context.Context) (string, bool) {
	k, ok := ctx.Value(keyKey{}).(string)
	return k, ok
}

// Tx returns, inside a handler wrapped with Transact, the keyed
// transaction the request runs in: write the request's effect there and
// it commits with the recorded response, or not at all. The handler may
// run more than once (once per attempt), so it must have no effects
// outside the transaction.
func Tx(ctx context.Context) (kv.Transaction, bool) {
	tr, ok := ctx.Value(txKey{}).(kv.Transaction)
	return tr, ok
}

// Transact wraps a handler whose effect is in the store. Each request with
// an Idempotency-Key runs it in idemkv.TransactKey's transaction (Tx), its
// response buffered; the attempt that commits stores that response with
// the handler's writes, and only its response is sent. Repeats get the
// stored status, replay headers and body — 5xx included — with
// Idempotent-Replayed: true, from one point read.
func (m *Middleware) Transact(next http.Handler) http.Handler {
	return m.handle(next, func(ctx context.Context, req *request, info *idemkv.KeyInfo) (response, error) {
		return idemkv.TransactKey(ctx, m.s, req.key, req.fingerprint, func(tr kv.Transaction) (response, error) {
			// What the committed attempt returned is what TransactKey
			// returns: its own run's response, never a later re-run's.
			return m.run(next, req.with(context.WithValue(ctx, txKey{}, tr)))
		}, &idemkv.KeyOptions{Scope: req.scope, Retention: m.o.Retention, Info: info})
	})
}

// Lease wraps a handler whose effect is outside the store (another
// service, a file). Each request with an Idempotency-Key runs it under
// idemkv.Do's lease (idemkv.LeaseToken and idemkv.RenewLease work on the
// request's context), its response buffered and stored once it returns.
// A duplicate while it runs gets 409 with Retry-After; repeats afterwards
// get the stored response, as with Transact.
func (m *Middleware) Lease(next http.Handler) http.Handler {
	return m.handle(next, func(ctx context.Context, req *request, info *idemkv.KeyInfo) (response, error) {
		return idemkv.Do(ctx, m.s, req.key, req.fingerprint, func(ctx context.Context) (response, error) {
			return m.run(next, req.with(ctx))
		}, &idemkv.DoOptions{Scope: req.scope, Retention: m.o.Retention, Lease: m.o.Lease, Heartbeat: m.o.Heartbeat, Info: info})
	})
}

// handle is what Transact and Lease share: the request is checked (and
// passed through untouched when the middleware does not protect it: another
// method, or no key where none is required),
// then call runs it under its key, on a context that outlives the
// client's (its outcome is stored whether or not the client waits), and
// its answer — first run or replay — is written.
func (m *Middleware) handle(next http.Handler, call func(context.Context, *request, *idemkv.KeyInfo) (response, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, ok := m.begin(w, r)
		if !ok {
			if req == nil {
				next.ServeHTTP(w, r)
			}
			return
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), m.o.Timeout)
		defer cancel()
		var info idemkv.KeyInfo
		res, err := call(ctx, req, &info)
		m.finish(w, req, res, info.Replayed, err)
	})
}

// run runs the handler once on r with its response buffered.
func (m *Middleware) run(next http.Handler, r *http.Request) (response, error) {
	rec := newRecorder()
	if err := serve(next, rec, r); err != nil {
		return response{}, err
	}
	return rec.stored(m.o.ReplayHeaders), nil
}

// request is a request the middleware takes charge of.
type request struct {
	r           *http.Request
	key, scope  string
	body        []byte
	fingerprint []byte
}

// with returns the request for one run of the handler: ctx, and a fresh
// reader over the body read once.
func (q *request) with(ctx context.Context) *http.Request {
	r := q.r.Clone(context.WithValue(ctx, keyKey{}, q.key))
	r.Body = io.NopCloser(bytes.NewReader(q.body))
	r.ContentLength = int64(len(q.body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(q.body)), nil }
	return r
}

// begin validates r. It returns (nil, false) for a request to pass through
// unprotected, (nil-or-not, false) after answering an error itself, and
// (req, true) for a request to run under its key.
func (m *Middleware) begin(w http.ResponseWriter, r *http.Request) (*request, bool) {
	if !slices.Contains(m.methods, r.Method) {
		return nil, false
	}
	key, present, err := parseKey(r)
	switch {
	case !present && !m.o.Required:
		return nil, false
	case !present:
		problem(w, http.StatusBadRequest, "Idempotency-Key is missing",
			`this operation requires an Idempotency-Key header, e.g. Idempotency-Key: "8e03978e-40d5-43e8-bc93-6894a57f9324" (a fresh random key per operation, the same key for its retries)`, nil)
		return &request{}, false
	case err != nil:
		problem(w, http.StatusBadRequest, "Invalid Idempotency-Key", err.Error(), nil)
		return &request{}, false
	}
	scope := ""
	if m.o.Scope != nil {
		scope = m.o.Scope(r)
	}
	if len(scope) > idemkv.MaxScopeLen {
		problem(w, http.StatusInternalServerError, "Idempotency scope too long",
			fmt.Sprintf("the server's idempotency scope for this request is %d bytes, over %d; nothing was done", len(scope), idemkv.MaxScopeLen), nil)
		return &request{}, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, m.o.MaxBodyBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		problem(w, http.StatusRequestEntityTooLarge, "Request body too large",
			fmt.Sprintf("the body is over %d bytes; nothing was done and the key was not used", m.o.MaxBodyBytes), nil)
		return &request{}, false
	case err != nil:
		problem(w, http.StatusBadRequest, "Request body unreadable", err.Error(), nil)
		return &request{}, false
	}
	return &request{r: r, key: key, scope: scope, body: body, fingerprint: m.o.Fingerprint(r, body)}, true
}

// finish answers a request that ran (or replayed) under its key.
func (m *Middleware) finish(w http.ResponseWriter, req *request, res response, replayed bool, err error) {
	var busy *idemkv.InProgressError
	var unknown *idemkv.OutcomeUnknownError
	var panicked *handlerPanic
	switch {
	case err == nil:
		// The first response has every header the handler set (live); a
		// replay has the stored ones.
		hdr := res.live
		if replayed || hdr == nil {
			hdr = res.Header
		}
		h := w.Header()
		for k, v := range hdr {
			h[k] = v
		}
		if replayed {
			h.Set(ReplayedHeader, "true")
		}
		w.WriteHeader(res.Status)
		w.Write(res.Body)
	case errors.As(err, &panicked) && panicked.value == http.ErrAbortHandler:
		panic(http.ErrAbortHandler)
	case errors.As(err, &panicked):
		problem(w, http.StatusInternalServerError, "Request failed",
			"the handler failed before answering; nothing was stored, and a retry with the same Idempotency-Key runs the request again", nil)
	case errors.Is(err, idemkv.ErrPayloadMismatch):
		problem(w, http.StatusUnprocessableEntity, "Idempotency-Key reused",
			"this Idempotency-Key was used with a different request (method, path or body); use a fresh key for a new request", nil)
	case errors.As(err, &busy):
		w.Header().Set("Retry-After", retryAfter(busy.RetryAfter))
		problem(w, http.StatusConflict, "A request with this Idempotency-Key is in progress",
			"retry after the first request completes; its response will be replayed", nil)
	case errors.Is(err, idemkv.ErrLeaseLost):
		w.Header().Set("Retry-After", "1")
		problem(w, http.StatusConflict, "A request with this Idempotency-Key was taken over",
			"this request ran past its lease and another took its key over; retry to get that request's response", nil)
	case errors.As(err, &unknown) && unknown.Retry:
		w.Header().Set("Retry-After", "1")
		problem(w, http.StatusServiceUnavailable, "Outcome unknown",
			"the request may or may not have taken effect; retry with the same Idempotency-Key, which returns its response if it did and runs it if it did not", nil)
	case errors.As(err, &unknown):
		problem(w, http.StatusInternalServerError, "Outcome unknown",
			"the first request with this Idempotency-Key may or may not have taken effect, and the server could not tell; it will not run it again under this key. Ask the operator, or check the resource before using a new key", map[string]any{"key": req.key})
	case errors.Is(err, idemkv.ErrResultTooLarge):
		problem(w, http.StatusInternalServerError, "Response too large to store",
			fmt.Sprintf("the response is over what an idempotent request may store (about %d bytes encoded); nothing was stored", idemkv.MaxResultSize), nil)
	default:
		// Nothing was committed: the store failed, or the handler's
		// transaction did (errors from TransactKey and Do other than the
		// above leave the key free).
		w.Header().Set("Retry-After", "1")
		problem(w, http.StatusServiceUnavailable, "Request not processed",
			"the request was not carried out and nothing was stored; retry with the same Idempotency-Key", nil)
	}
}

// retryAfter is d in whole seconds, rounded up, at least 1.
func retryAfter(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	return strconv.FormatInt(max(s, 1), 10)
}

// handlerPanic is a handler's panic, as the error that ends its run with
// nothing stored.
type handlerPanic struct{ value any }

func (p *handlerPanic) Error() string { return fmt.Sprintf("idemhttp: handler panicked: %v", p.value) }

// serve runs h into rec, turning a panic into an error: a *kv.Error (as
// MustGet panics with) as itself, so that the transaction is retried;
// anything else as *handlerPanic.
func serve(h http.Handler, rec *recorder, r *http.Request) (err error) {
	defer func() {
		if p := recover(); p != nil {
			if e, ok := p.(error); ok {
				if _, isKV := kv.ErrorCode(e); isKV {
					err = e
					return
				}
			}
			err = &handlerPanic{value: p}
		}
	}()
	h.ServeHTTP(rec, r)
	return nil
}
