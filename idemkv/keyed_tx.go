package idemkv

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/idemkv/idemkv/kv"
)

// KeyOptions adjusts one TransactKey call. A nil *KeyOptions means the
// store's defaults.
type KeyOptions struct {
	// Scope namespaces the key (an endpoint, a tenant): the same key in two
	// scopes is two requests. Up to MaxScopeLen bytes, stored beside the
	// key, so it does not count against MaxKeyLen. Default "".
	Scope string
	// Retention overrides Options.Retention for this call's record.
	Retention time.Duration
	// Info, if set, is filled in with how the call was served (e.g.
	// whether it replayed).
	Info *KeyInfo
}

// TransactKey runs fn in a transaction once per key, and records its
// result under the key in the same transaction: a keyed request whose
// effect is in the store. Nothing can separate the effect from its record
// — no lease, no in-progress state, nothing to clean up after a crash.
//
// The first call with key runs fn under txn's exactly-once protocol (as
// Transact does). The attempt that commits writes fn's writes, the key's
// record (fn's encoded result, or its Final error, with the payload's
// SHA-256 fingerprint) and the record's age-index entry: one commit.
// Later calls with the same key and payload — from any process, after
// restarts, until the record's retention passes — read the record (one
// point read) and return the stored result without running fn and
// without writing anything; opts.Info.Replayed tells them apart. The key
// with another payload is ErrPayloadMismatch. Concurrent first calls with
// one key conflict on the record's key: one commits, the others retry and
// replay its result.
//
// fn may run more than once (each attempt is a fresh transaction) and
// must have no effects outside the transaction; what the committed
// attempt returned is what the first caller gets, and repeats get it
// decoded from its stored encoding (Options.Codec). An error from fn ends
// the call with nothing committed and the key still free, unless it is
// marked Final: then it is stored, and committed with fn's writes.
//
// Errors:
//   - bad input (an empty or over-long key or scope, a payload over
//     MaxPayloadSize, a nil fn, a closed store): nothing is read or
//     written;
//   - fn's encoded result (or Final error) over MaxResultSize:
//     ErrResultTooLarge, nothing is committed;
//   - the key used with another payload: ErrPayloadMismatch;
//   - the key held by a Do call in progress: *InProgressError (Do and
//     TransactKey share the key space; a key is one request);
//   - the call's commit outcome unknown (a timeout or a canceled context
//     after a commit was sent): *OutcomeUnknownError with Retry — call
//     again with the same key and payload, which replays the result if the
//     call committed and runs fn if it did not. This needs the record to
//     outlive the janitor's MinAge, as it does by default (24 h against
//     10 minutes).
func TransactKey[T any](ctx context.Context, s *Store, key string, payload []byte, fn func(kv.Transaction) (T, error), opts *KeyOptions) (_ T, err error) {
	var zero T
	var o KeyOptions
	if opts != nil {
		o = *opts
	}
	k, err := s.newKeyCall(o.Scope, key, payload, fn == nil, o.Retention, o.Info)
	if err != nil {
		return zero, err
	}
	defer func() { s.cfg.obs.keyed(key, !k.info.Replayed && err == nil, k.info.Replayed, err) }()
	res, err := Transact(ctx, s, func(tr kv.Transaction) (txResult[T], error) {
		// txn fixed the attempt's read version before calling: this is
		// its cached value, not another round trip.
		rv, err := tr.GetReadVersion().Get()
		if err != nil {
			return txResult[T]{}, err
		}
		rec, ok, err := k.read(tr)
		if err != nil {
			return txResult[T]{}, err
		}
		if ok {
			// Replay without committing: the marker txn wrote for this
			// attempt goes nowhere, and the read is the call's only cost.
			return txResult[T]{}, &found{rec: rec, rv: rv}
		}
		v, fnErr := fn(tr)
		var kind byte
		var b []byte
		var final error // fn's Final error, stored as its result
		if fnErr == nil {
			if b, err = s.cfg.codec.Marshal(v); err != nil {
				return txResult[T]{}, fmt.Errorf("idemkv: encoding the result of key %s: %w", scoped(k.scope, k.key), err)
			}
			kind = resultValue
		} else {
			fe, ok := asError[*finalError](fnErr)
			if !ok {
				// fn's own failure (a *kv.Error is retried by txn;
				// anything else ends the call, nothing committed).
				return txResult[T]{}, fnErr
			}
			if b, err = encodeStoredError(fe.err, s.cfg.codec); err != nil {
				return txResult[T]{}, err
			}
			kind = resultError
			final = fe.err
		}
		if len(b) > MaxResultSize {
			return txResult[T]{}, fmt.Errorf("%w: key %s's is %d bytes; nothing was stored", ErrResultTooLarge, scoped(k.scope, k.key), len(b))
		}
		k.put(tr, &record{
			status:      statusCompleted,
			token:       uint64(rv),
			due:         rv + k.retention,
			fingerprint: k.fingerprint,
			kind:        kind,
			result:      b,
		})
		if final != nil {
			return txResult[T]{final: final}, nil
		}
		return txResult[T]{v: v}, nil
	})
	if err != nil {
		if f, ok := asError[*found](err); ok {
			return stored[T](k, f.rec, f.rv)
		}
		if maybeCommitted(err) {
			return zero, &OutcomeUnknownError{Scope: k.scope, Key: k.key, Retry: true, Err: err}
		}
		return zero, err
	}
	if res.final != nil {
		return zero, res.final
	}
	return res.v, nil
}

// asError is errors.As for a target type E. errors.As's target escapes to
// the heap; calling this only with an error keeps the happy path free of
// that allocation.
func asError[E error](err error) (E, bool) {
	var e E
	ok := errors.As(err, &e)
	return e, ok
}

// txResult is what the committed attempt of a TransactKey returned.
type txResult[T any] struct {
	v     T
	final error
}
