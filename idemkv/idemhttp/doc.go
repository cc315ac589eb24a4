// Package idemhttp is net/http middleware for the Idempotency-Key request
// header (draft-ietf-httpapi-idempotency-key-header-06), on an idemkv
// store, with the behaviour of Stripe's API where the draft leaves a
// choice.
//
// # What a client sees
//
//   - The header is a structured-field String: Idempotency-Key: "<key>",
//     1 to 255 bytes of printable ASCII. Missing where required (Options.
//     Required), malformed, empty or too long: 400 with an RFC 9457
//     problem+json body.
//   - The first request with a key runs the handler, and its response —
//     status, the headers in Options.ReplayHeaders and body, 5xx included
//     — is stored. Repeats with the same key and payload get that response
//     again, with Idempotent-Replayed: true, until the store's retention
//     passes (24 h by default).
//   - The same key with another payload (by default: another method, path
//     or body; Options.Fingerprint) is a 422; nothing runs.
//   - A repeat while the first request is still running (Lease only) is a
//     409 with Retry-After: the seconds left on the first request's lease.
//   - A body over Options.MaxBodyBytes is a 413, and nothing is stored:
//     the key stays free.
//   - If the handler panics, nothing is stored (500, the key stays free);
//     http.ErrAbortHandler aborts the connection as usual.
//   - If the server cannot tell whether the request took effect, it says
//     so: 503 with Retry-After where a retry with the same key settles it,
//     500 where it cannot (see idemkv.OutcomeUnknownError).
//
// Requests with other methods than Options.Methods (POST and PATCH by
// default), and requests without the header when it is not required, go
// to the handler unprotected.
//
// # Effects in the store: Transact
//
// Middleware.Transact runs the handler inside idemkv.TransactKey's
// transaction, reachable with Tx(r.Context()): the handler's writes and
// the stored response commit together, exactly once, or not at all. The
// handler may run more than once (once per attempt of the transaction), so
// its response is buffered and only the committed attempt's is sent; it
// must have no effects outside the transaction. A replay costs one point
// read.
//
// # Effects outside the store: Lease
//
// Middleware.Lease runs the handler once, under idemkv.Do's lease
// (idemkv.LeaseToken and idemkv.RenewLease work on the request's context;
// Options.Heartbeat renews the lease while it runs), and stores its
// buffered response when it returns.
//
// # Contexts
//
// The handler runs on a context detached from the client's connection and
// bounded by Options.Timeout: a client that hangs up does not cut short a
// request that may already have taken effect; its retry gets the stored
// response.
package idemhttp
