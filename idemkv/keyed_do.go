package idemkv

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/txn"
)

// DoOptions adjusts one Do call. A nil *DoOptions means the store's
// defaults.
type DoOptions struct {
	// Scope namespaces the key (an endpoint, a tenant): the same key in two
	// scopes is two requests. Up to MaxScopeLen bytes, stored beside the
	// key, so it does not count against MaxKeyLen. Default "".
	Scope string
	// Wait makes a call that finds the key in progress poll (with
	// FoundationDB's backoff, capped by Options.MaxRetryDelay) until the
	// holder completes, releases or loses the key, or ctx ends, instead of
	// failing with *InProgressError.
	Wait bool
	// Lease overrides Options.Lease for this call's claim. fn should finish
	// within it, or renew it (Heartbeat, RenewLease): once it expires,
	// another caller may take the key over and this call's result is
	// refused with ErrLeaseLost.
	Lease time.Duration
	// Heartbeat renews the lease every Lease/3 while fn runs, so a long fn
	// keeps the key as long as its process lives; a crashed process's
	// lease still expires. If a renewal finds the key taken over, fn's
	// context is canceled with ErrLeaseLost as its cause.
	Heartbeat bool
	// Retention overrides Options.Retention for this call's record.
	Retention time.Duration
	// Info, if set, is filled in with how the call was served (e.g.
	// whether it replayed).
	Info *KeyInfo
}

// leaseHandle is what a Do function's context carries: its claim.
type leaseHandle struct {
	d     *doCall
	token uint64
}

type leaseKey struct{}

// LeaseToken returns, inside a Do function, the fencing token of the
// caller's claim on the key. Tokens of one key only grow: a caller that
// took over an expired lease has a larger token than the one it displaced.
// Pass it to downstream systems that can reject writes with a smaller
// token than one they have seen (the fencing-token pattern), so that a
// late original cannot overwrite the newcomer's work there either.
func LeaseToken(ctx context.Context) (uint64, bool) {
	h, ok := ctx.Value(leaseKey{}).(*leaseHandle)
	if !ok {
		return 0, false
	}
	return h.token, true
}

// RenewLease extends, inside a Do function, the caller's lease on its key
// to a full lease from now — both its version deadline and its wall-clock
// deadline — and returns that lease. It fails with
// ErrLeaseLost if another caller has taken the key over (stop: the
// newcomer's result will stand), and with ErrNoLease outside a Do
// function. DoOptions.Heartbeat calls it periodically.
func RenewLease(ctx context.Context) (time.Duration, error) {
	h, ok := ctx.Value(leaseKey{}).(*leaseHandle)
	if !ok {
		return 0, ErrNoLease
	}
	return h.d.renew(ctx, h.token)
}

// Do runs fn once per key, for work whose effect is outside the store
// (another service, a file, a mail): the HTTP Idempotency-Key model on a
// transactional store. For work whose effect is in the store, use
// TransactKey, which needs no lease and cannot be separated from its
// record.
//
// The first call claims the key (an in-progress record with a lease, a
// fencing token and the payload's SHA-256), runs fn outside any
// transaction, then stores fn's encoded result — only if it still holds
// the lease's token. Later calls with the same key, from any process and
// after restarts, return the stored result without running fn (one point
// read, no write; opts.Info.Replayed tells them apart), until the
// record's retention passes and the janitor removes it. Every claim,
// completion and release is itself a txn.Transact call, so none is applied
// twice.
//
// Errors:
//   - the key used with another payload: ErrPayloadMismatch;
//   - another caller holds the key: *InProgressError with the lease left,
//     or with opts.Wait, a wait for its outcome (bounded by ctx);
//   - the holder's lease expired: this call takes over with a new token;
//   - fn's error releases the key (nothing stored) and is returned, unless
//     it is marked Final (then it is stored and replayed) or it may mean
//     that fn's effect happened (txn.ErrUnknownResult, txn.ErrOutcomeLost,
//     a raw commit_unknown_result, a nested ErrOutcomeUnknown): such an
//     error never frees the key. The key is kept as outcome unknown and
//     this call and every later one get *OutcomeUnknownError (Kept); see
//     Store.ForgetKey;
//   - the completion's own commit outcome unknown: Do resolves the
//     completion's transaction (which fences it) and retries it while its
//     token holds; if it still cannot land, it records the key as outcome
//     unknown as above;
//   - fn finished after another caller took over: ErrLeaseLost, and
//     nothing is stored;
//   - an encoded result over MaxResultSize: ErrResultTooLarge, the key is
//     released;
//   - the claim's own commit outcome unknown: Do resolves it; if the claim
//     did not land it claims again, and if it did, it returns
//     *OutcomeUnknownError with Retry without running fn (the key is then
//     in progress, with no holder, until its lease expires).
//
// Once fn returns, its outcome is recorded on a context detached from ctx
// (each step bounded by settleTimeout, 10 s), so a caller that gives up
// then does not lose work already done. The first caller gets the value fn
// returned; repeats get it decoded from its stored encoding (with JSON,
// unexported fields are lost). If fn panics, the key is released and the
// panic continues.
func Do[T any](ctx context.Context, s *Store, key string, payload []byte, fn func(ctx context.Context) (T, error), opts *DoOptions) (_ T, err error) {
	var zero T
	d, err := s.newDo(key, payload, fn == nil, opts)
	if err != nil {
		return zero, err
	}
	ran := false // for the store's logs and metrics
	defer func() { s.cfg.obs.keyed(key, ran, d.info.Replayed, err) }()
	var bo kv.Backoff
	for {
		tok, err := d.claim(ctx)
		var f *found
		switch {
		case err == nil:
			ran = true
			return run(ctx, d, tok, fn)
		case !errors.As(err, &f):
			return zero, err
		}
		v, err := stored[T](&d.keyCall, f.rec, f.rv)
		var busy *InProgressError
		if !errors.As(err, &busy) || !d.wait {
			return v, err
		}
		if err := d.sleep(ctx, &bo, busy.RetryAfter); err != nil {
			return zero, err
		}
	}
}

// settleTimeout bounds each step that records fn's outcome, on a context
// detached from the caller's: once fn's work is done, recording it is
// what keeps it from being done again, so a caller that gives up at that
// moment must not stop it.
const settleTimeout = 10 * time.Second

// settleTries bounds the attempts to land a completion whose outcome was
// unknown.
const settleTries = 3

// run runs fn under the claim with token and completes or releases it.
func run[T any](ctx context.Context, d *doCall, token uint64, fn func(ctx context.Context) (T, error)) (v T, err error) {
	var zero T
	fctx, cancel := context.WithCancelCause(context.WithValue(ctx, leaseKey{}, &leaseHandle{d: d, token: token}))
	defer cancel(nil)
	stop := d.heartbeat(fctx, token, cancel)
	finished := false
	defer func() {
		if !finished {
			// fn panicked: release the key for a retry, then let the panic
			// continue; it is fn's, not ours.
			stop()
			sctx, scancel := d.detached(ctx)
			defer scancel()
			d.release(sctx, token)
		}
	}()
	v, fnErr := fn(fctx)
	finished = true
	stop()
	var f *finalError
	switch {
	case fnErr == nil:
		b, err := d.s.cfg.codec.Marshal(v)
		if err != nil {
			return zero, errors.Join(fmt.Errorf("idemkv: encoding the result of key %s: %w", scoped(d.scope, d.key), err), d.releaseDetached(ctx, token))
		}
		if err := d.finish(ctx, token, resultValue, b); err != nil {
			return zero, err
		}
		return v, nil
	case maybeCommitted(fnErr):
		if err := d.keepUnknown(ctx, token, fnErr); err != nil {
			return zero, err
		}
		return zero, fnErr // not reached: nothing completes a claim but this call
	case errors.As(fnErr, &f):
		b, err := encodeStoredError(f.err, d.s.cfg.codec)
		if err != nil {
			return zero, errors.Join(fnErr, err, d.releaseDetached(ctx, token))
		}
		if err := d.finish(ctx, token, resultError, b); err != nil {
			return zero, err
		}
		return zero, f.err
	}
	if rerr := d.releaseDetached(ctx, token); rerr != nil {
		return zero, fmt.Errorf("%w (and releasing key %s failed: %v; it frees when its lease expires)", fnErr, scoped(d.scope, d.key), rerr)
	}
	return zero, fnErr
}

// doCall is one Do call's fixed inputs.
type doCall struct {
	keyCall
	lease    int64 // versions
	leaseDur time.Duration
	wait     bool
	beat     bool
}

func (s *Store) newDo(key string, payload []byte, nilFn bool, opts *DoOptions) (*doCall, error) {
	var o DoOptions
	if opts != nil {
		o = *opts
	}
	k, err := s.newKeyCall(o.Scope, key, payload, nilFn, o.Retention, o.Info)
	if err != nil {
		return nil, err
	}
	if o.Lease < 0 {
		return nil, fmt.Errorf("%w: DoOptions.Lease is %v; it must be positive (0 means the store's %v)", ErrInvalidOptions, o.Lease, s.cfg.lease)
	}
	if o.Lease == 0 {
		o.Lease = s.cfg.lease
	}
	return &doCall{keyCall: *k, lease: versions(o.Lease), leaseDur: o.Lease, wait: o.Wait, beat: o.Heartbeat}, nil
}

func (d *doCall) detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
}

// claim reads the key's record and, if it is absent or its lease expired,
// writes an in-progress record for this call and returns its token. A
// record it does not take comes back as *found, with nothing committed.
// A claim whose own outcome is unknown is resolved: claimed again if it
// did not land, *OutcomeUnknownError (Retry) if it did.
func (d *doCall) claim(ctx context.Context) (uint64, error) {
	for {
		var previous uint64 // a takeover's displaced token
		tok, err := Transact(ctx, d.s, func(tr kv.Transaction) (uint64, error) {
			previous = 0
			rv, err := tr.GetReadVersion().Get()
			if err != nil {
				return 0, err
			}
			rec, ok, err := d.read(tr)
			if err != nil {
				return 0, err
			}
			if ok {
				if rec.status != statusInProgress || !rec.expired(rv, d.s.now()) {
					return 0, &found{rec: rec, rv: rv}
				}
				// The holder's lease expired, by versions and by this
				// process's wall clock: take over. Its index entry goes;
				// this claim writes its own.
				tr.Clear(d.s.keyed.indexKey(rec.due, d.ref))
				previous = rec.token
			}
			rec = record{
				status:      statusInProgress,
				token:       uint64(rv),
				leaseUntil:  rv + d.lease,
				leaseWall:   d.wallDeadline(),
				due:         rv + max(d.retention, d.lease),
				fingerprint: d.fingerprint,
			}
			d.put(tr, &rec)
			return rec.token, nil
		})
		if err == nil && previous != 0 {
			d.s.cfg.obs.takeover(d.key, previous, tok)
		}
		var ur *txn.UnknownResultError
		if !errors.As(err, &ur) {
			return tok, err
		}
		sctx, cancel := d.detached(ctx)
		o, rerr := d.s.Resolve(sctx, ur.ID)
		cancel()
		if rerr != nil || o == txn.Committed || ctx.Err() != nil {
			return 0, &OutcomeUnknownError{Scope: d.scope, Key: d.key, Retry: true,
				Err: fmt.Errorf("the claim of the key may have landed, and fn did not run; a new call may find the key in progress for about %v (its lease): %w", d.leaseDur, err)}
		}
		// Fenced, never to land: claim again.
	}
}

// finish stores fn's outcome under token, settling a completion whose
// own commit outcome is unknown: it resolves that transaction's ID (which
// fences it) and retries while the token holds. A completion that cannot
// be made to land leaves the key as outcome unknown.
func (d *doCall) finish(ctx context.Context, token uint64, kind byte, result []byte) error {
	if len(result) > MaxResultSize {
		err := fmt.Errorf("%w: key %s's is %d bytes; nothing was stored and the key is free again", ErrResultTooLarge, scoped(d.scope, d.key), len(result))
		return errors.Join(err, d.releaseDetached(ctx, token))
	}
	var err error
	for range settleTries {
		sctx, cancel := d.detached(ctx)
		err = d.complete(sctx, token, kind, result)
		cancel()
		if err == nil || !maybeCommitted(err) {
			return err
		}
		var ur *txn.UnknownResultError
		if errors.As(err, &ur) {
			sctx, cancel := d.detached(ctx)
			o, rerr := d.s.Resolve(sctx, ur.ID)
			cancel()
			if rerr == nil && o == txn.Committed {
				return nil
			}
		}
		// Not committed and fenced, or not known: completing again is
		// safe either way — complete is conditional on the token, and a
		// record already completed under it counts as done.
	}
	return d.keepUnknown(ctx, token, fmt.Errorf("fn finished, but storing its result failed: %w", err))
}

// complete stores fn's outcome if the claim with token still holds the
// key. A record already completed under token (an earlier completion of
// this call that landed after reporting failure) counts as done.
func (d *doCall) complete(ctx context.Context, token uint64, kind byte, result []byte) error {
	_, err := Transact(ctx, d.s, func(tr kv.Transaction) (struct{}, error) {
		rv, err := tr.GetReadVersion().Get()
		if err != nil {
			return struct{}{}, err
		}
		rec, err := d.held(tr, token)
		if err != nil || rec.status == statusCompleted {
			return struct{}{}, err
		}
		tr.Clear(d.s.keyed.indexKey(rec.due, d.ref))
		rec.status, rec.leaseUntil, rec.leaseWall, rec.due = statusCompleted, 0, 0, rv+d.retention
		rec.kind, rec.result = kind, result
		d.put(tr, &rec)
		return struct{}{}, nil
	})
	return err
}

// keepUnknown records the key as outcome unknown (cause stored), so that
// no later call runs fn again, and returns the *OutcomeUnknownError the
// caller gets. If the record was completed under token meanwhile (a
// completion reported failed had landed), the outcome is known after all
// and keepUnknown returns nil.
func (d *doCall) keepUnknown(ctx context.Context, token uint64, cause error) error {
	b, err := encodeStoredError(cause, d.s.cfg.codec)
	if err != nil {
		b, _ = encodeStoredError(errors.New(cause.Error()[:min(len(cause.Error()), 1000)]), d.s.cfg.codec)
	}
	var last error
	for range settleTries {
		sctx, cancel := d.detached(ctx)
		var completed bool
		_, last = Transact(sctx, d.s, func(tr kv.Transaction) (struct{}, error) {
			rv, err := tr.GetReadVersion().Get()
			if err != nil {
				return struct{}{}, err
			}
			rec, err := d.held(tr, token)
			completed = err == nil && rec.status == statusCompleted
			if err != nil || completed {
				return struct{}{}, err
			}
			tr.Clear(d.s.keyed.indexKey(rec.due, d.ref))
			rec.status, rec.leaseUntil, rec.leaseWall, rec.due = statusUnknown, 0, 0, rv+d.retention
			rec.kind, rec.result = resultError, b
			d.put(tr, &rec)
			return struct{}{}, nil
		})
		cancel()
		if last == nil && completed {
			return nil
		}
		if last == nil {
			return &OutcomeUnknownError{Scope: d.scope, Key: d.key, Kept: true, Err: cause}
		}
		if errors.Is(last, ErrLeaseLost) {
			break
		}
		// An unknown outcome here is retried: the update is conditional on
		// the token and idempotent.
	}
	return &OutcomeUnknownError{Scope: d.scope, Key: d.key, Err: errors.Join(cause, last), LeaseLeft: d.leaseDur}
}

// wallDeadline is the wall-clock deadline of a lease taken or renewed now:
// a full lease from now by this process's clock, in Unix nanoseconds
// (never 0, which means "no wall deadline").
func (d *doCall) wallDeadline() int64 {
	now := d.s.now().UnixNano()
	switch {
	case now <= 0:
		return 1 // a clock before 1970 is broken: versions alone decide
	case int64(d.leaseDur) > math.MaxInt64-now:
		return math.MaxInt64 // a lease of centuries: no wall deadline in reach
	}
	return now + int64(d.leaseDur)
}

// renew extends the claim with token to a full lease from now, by versions
// and by the wall clock.
func (d *doCall) renew(ctx context.Context, token uint64) (time.Duration, error) {
	_, err := Transact(ctx, d.s, func(tr kv.Transaction) (struct{}, error) {
		rv, err := tr.GetReadVersion().Get()
		if err != nil {
			return struct{}{}, err
		}
		rec, err := d.held(tr, token)
		if err != nil {
			return struct{}{}, err
		}
		if rec.status != statusInProgress {
			return struct{}{}, fmt.Errorf("%w: key %s is no longer in progress", ErrLeaseLost, scoped(d.scope, d.key))
		}
		rec.leaseUntil, rec.leaseWall = rv+d.lease, d.wallDeadline()
		if rec.leaseUntil > rec.due {
			// The janitor must not remove a record still leased.
			tr.Clear(d.s.keyed.indexKey(rec.due, d.ref))
			rec.due = rec.leaseUntil + d.retention
		}
		d.put(tr, &rec)
		return struct{}{}, nil
	})
	if err != nil {
		return 0, err
	}
	return d.leaseDur, nil
}

// heartbeat renews the lease every third of it while fn runs, if asked.
// A renewal that finds the key lost cancels fn's context with
// ErrLeaseLost. stop waits for the heartbeat to end.
func (d *doCall) heartbeat(ctx context.Context, token uint64, cancel context.CancelCauseFunc) (stop func()) {
	if !d.beat {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(max(d.leaseDur/3, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if _, err := d.renew(ctx, token); errors.Is(err, ErrLeaseLost) {
				cancel(err)
				return
			}
			// Other failures are retried at the next beat; the lease
			// still runs meanwhile.
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done); wg.Wait() })
	}
}

func (d *doCall) releaseDetached(ctx context.Context, token uint64) error {
	sctx, cancel := d.detached(ctx)
	defer cancel()
	return d.release(sctx, token)
}

// release clears the record if the claim with token still holds the key.
// Losing it meanwhile is not an error: there is nothing to release.
func (d *doCall) release(ctx context.Context, token uint64) error {
	_, err := Transact(ctx, d.s, func(tr kv.Transaction) (struct{}, error) {
		rec, err := d.held(tr, token)
		if errors.Is(err, ErrLeaseLost) || rec.status == statusCompleted {
			return struct{}{}, nil
		}
		if err != nil {
			return struct{}{}, err
		}
		d.drop(tr, &rec)
		return struct{}{}, nil
	})
	return err
}

// held reads the record and checks that the claim with token still holds
// it: in progress with that token (an expired lease not yet taken over
// still holds), or already completed under it.
func (d *doCall) held(tr kv.Transaction, token uint64) (record, error) {
	val, err := tr.Get(d.recordKey).Get()
	if err != nil {
		return record{}, err
	}
	if val == nil {
		return record{}, fmt.Errorf("%w: key %s's record is gone (its retention passed, or it was forgotten)", ErrLeaseLost, scoped(d.scope, d.key))
	}
	rec, err := decodeRecord(val)
	if err != nil {
		return record{}, err
	}
	if rec.token != token || rec.status == statusUnknown {
		return record{}, fmt.Errorf("%w: key %s is now held by token %d (this call's was %d)", ErrLeaseLost, scoped(d.scope, d.key), rec.token, token)
	}
	return rec, nil
}

// sleep waits before polling an in-progress key again: FoundationDB's
// backoff, capped by the store's MaxRetryDelay and by the holder's lease.
func (d *doCall) sleep(ctx context.Context, bo *kv.Backoff, remaining time.Duration) error {
	maxDelay := d.s.cfg.txnOpts.MaxRetryDelay
	if maxDelay == 0 {
		maxDelay = kv.DefaultMaxRetryDelay
	}
	delay := max(bo.Next(min(maxDelay, max(remaining, time.Millisecond)), rand.Float64()), time.Millisecond)
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("%w: gave up waiting for key %s: %w", ErrInProgress, scoped(d.scope, d.key), ctx.Err())
	case <-t.C:
		return nil
	}
}
