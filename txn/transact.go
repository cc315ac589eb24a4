package txn

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"time"

	"github.com/idemkv/idemkv/kv"
)

// ErrFenced is returned by a call whose ID was fenced by Resolve while the
// call was still running. Resolve is meant for calls that have returned; a
// fenced call committed nothing.
var ErrFenced = errors.New("txn: transaction ID was fenced by Resolve while the call was running")

// Transact runs fn in a retry loop over db and makes its effect happen
// exactly once, or not at all with an error that says so.
//
// Every attempt writes the call's marker and adds a read conflict on it, so
// no two attempts of one call can both commit. After a maybe-committed error
// (commit_unknown_result, cluster_version_changed), each later attempt first
// reads the marker: present means an earlier attempt committed, and its
// result is returned without running fn again. transaction_timed_out is
// never retried: the call returns *UnknownResultError with the ID, for
// Resolve. Other retryable errors go through the transaction's OnError.
//
// fn may be run more than once (each attempt runs it on a fresh
// transaction state), so it must have no effects outside the transaction;
// what it returns from the attempt that commits is what Transact returns. An
// error from fn that is not a *kv.Error ends the call with nothing
// committed; a *kv.Error from fn (or from a MustGet inside it) is handled
// like a failed commit. A panic in fn is returned as *PanicError.
func Transact[T any](ctx context.Context, db kv.Database, fn func(kv.Transaction) (T, error), opts *Options) (T, error) {
	var zero T
	c, err := opts.config()
	if err != nil {
		return zero, err
	}
	if fn == nil {
		return zero, ErrNilFunc
	}
	if db == nil {
		return zero, ErrNilDatabase
	}
	r := runner[T]{cfg: &c, fn: fn, ctx: ctx}
	start := time.Now()
	v, err := r.run(db)
	if c.observe != nil {
		r.stats.Duration = time.Since(start)
		r.stats.Err = err
		c.observe(r.stats)
	}
	return v, err
}

// runner is the state of one Transact call.
type runner[T any] struct {
	cfg *config
	fn  func(kv.Transaction) (T, error)
	ctx context.Context

	id        ID
	key       []byte   // the marker key, fixed once the first read version is known
	keyRange  kv.Range // the marker's single-key conflict range
	deadline  time.Time
	backoff   kv.Backoff
	ambiguous bool // some commit of this call may have been applied
	// results holds what fn returned in each attempt whose commit may have
	// been applied, keyed by attempt number, so that the attempt found
	// committed can have its result returned.
	results map[uint32]T
	stats   Stats
}

func (r *runner[T]) run(db kv.Database) (T, error) {
	var zero T
	if err := r.ctx.Err(); err != nil {
		return zero, ctxError(r.ctx)
	}
	if r.cfg.timeout > 0 {
		r.deadline = time.Now().Add(r.cfg.timeout)
	}
	tr, err := db.CreateTransaction(r.ctx)
	if err != nil {
		return zero, err
	}
	if err := r.setOptions(tr); err != nil {
		return zero, err
	}
	for attempt := uint32(1); ; attempt++ {
		r.stats.Attempts++
		v, done, err := r.attempt(tr, attempt)
		if done {
			return v, err
		}
		if stop := r.retry(tr, err, attempt); stop != nil {
			return zero, r.fail(stop)
		}
	}
}

// attempt runs one transaction. done reports that the call is over with
// (v, err); otherwise err is the attempt's failure, for retry to classify.
func (r *runner[T]) attempt(tr kv.Transaction, n uint32) (v T, done bool, err error) {
	// Every attempt fixes its read version now, not lazily at commit: the
	// marker's read conflict must cover everything committed since the
	// attempt began, so that a Resolve (or a later attempt) that commits
	// while this one is still in flight makes it conflict.
	grv := tr.GetReadVersion()
	if r.key == nil {
		rv, err := grv.Get()
		if err != nil {
			return v, false, err
		}
		if r.id, err = newID(r.cfg.shards, rv); err != nil {
			return v, true, err
		}
		r.stats.ID = r.id
		r.key = MarkerKey(r.cfg.prefix, r.id)
		r.keyRange = kv.SingleKeyRange(r.key)
	}
	if r.ambiguous {
		// An earlier attempt may have committed: learn whether before
		// running fn again.
		val, err := tr.Get(r.key).Get()
		if err != nil {
			return v, false, err
		}
		if val != nil {
			v, err := r.committed(val)
			return v, true, err
		}
		if err := r.checkWatermark(tr); err != nil {
			return v, !isKVError(err), err
		}
	}
	if err := tr.AddReadConflictRange(r.keyRange); err != nil {
		return v, false, err
	}
	tr.Set(r.key, encodeMarker(n))
	v, err = callFn(r.fn, tr)
	if err != nil {
		if isKVError(err) {
			return v, false, err
		}
		// fn's own failure: this attempt commits nothing. If an earlier
		// attempt may still land, settle that first.
		if !r.ambiguous {
			return v, true, err
		}
		v, err = r.settle(tr, err)
		return v, true, err
	}
	err = tr.Commit().Err()
	if err == nil {
		return v, true, nil
	}
	if !definitelyNotCommitted(err) {
		r.ambiguous = true
		if r.results == nil {
			r.results = make(map[uint32]T)
		}
		r.results[n] = v
	}
	return v, false, err
}

// committed returns the result of the attempt whose marker value is val.
func (r *runner[T]) committed(val []byte) (T, error) {
	var zero T
	a, err := decodeMarker(val)
	if err != nil {
		return zero, err
	}
	if a == tombstoneAttempt {
		return zero, fmt.Errorf("%w: %v", ErrFenced, r.id)
	}
	v, ok := r.results[a]
	if !ok {
		// Only this call writes this key with attempt numbers, and it keeps
		// the result of every attempt that may have committed.
		return zero, fmt.Errorf("txn: internal error: marker of %v names attempt %d, whose result was not kept", r.id, a)
	}
	r.stats.MarkerFound = true
	return v, nil
}

// checkWatermark fails with *OutcomeLostError if the janitor may have removed
// the marker. The watermark is read as a snapshot: a janitor sweep that
// removes the marker also writes its key, which conflicts with this
// attempt's read of it, so no read conflict on the watermark is needed.
func (r *runner[T]) checkWatermark(tr kv.Transaction) error {
	b, err := tr.Snapshot().Get(r.cfg.watermarkKey).Get()
	if err != nil {
		return err
	}
	w, err := DecodeWatermark(b)
	if err != nil {
		return err
	}
	if w > r.id.Version {
		return &OutcomeLostError{ID: r.id, Watermark: w}
	}
	return nil
}

// settle is called when fn fails after an ambiguous commit. The marker was
// absent at this attempt's read version, but an earlier attempt may still be
// in flight. settle fences the ID: if an earlier attempt committed after all,
// the call succeeded with its result; otherwise none ever will, and fn's
// error stands.
func (r *runner[T]) settle(tr kv.Transaction, fnErr error) (T, error) {
	var zero T
	tr.Reset()
	if err := r.setOptions(tr); err != nil {
		return zero, r.fail(err)
	}
	outcome, attempt, err := fence(r.ctx, tr, r.cfg, r.id, r.key, r.cfg.maxRetryDelay)
	switch {
	case err != nil:
		return zero, r.fail(err)
	case outcome == Committed:
		v, ok := r.results[attempt]
		if !ok {
			return zero, fmt.Errorf("txn: internal error: marker of %v names attempt %d, whose result was not kept", r.id, attempt)
		}
		r.stats.MarkerFound = true
		return v, nil
	}
	return zero, fnErr
}

// retry decides what follows a failed attempt: nil to run another, or the
// error that ends the call.
func (r *runner[T]) retry(tr kv.Transaction, err error, attempt uint32) error {
	code, ok := kv.ErrorCode(err)
	if !ok {
		return err
	}
	if r.cfg.retryLimit >= 0 && int(attempt) > r.cfg.retryLimit {
		return err
	}
	switch {
	case code == kv.CodeTransactionTimedOut || code == kv.CodeTransactionCancelled:
		// Never retried: the caller's time is up. Caught before OnError.
		return err
	case code == kv.CodeClusterVersionChanged:
		// Maybe committed, like 1021, but never given to OnError: the
		// multi-version client's OnError would switch clusters and report
		// success, and a stock loop would run fn again blindly.
		r.stats.Ambiguous++
		return r.resetAndWait(tr)
	case code == kv.CodeCommitUnknownResult:
		r.stats.Ambiguous++
	}
	return tr.OnError(err)
}

// resetAndWait is OnError's backoff and reset, done here for the errors
// that must not reach OnError.
func (r *runner[T]) resetAndWait(tr kv.Transaction) error {
	d := r.backoff.Next(r.cfg.maxRetryDelay, rand.Float64())
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.ctx.Done():
		return ctxError(r.ctx)
	case <-t.C:
	}
	tr.Reset()
	return r.setOptions(tr)
}

// setOptions applies the call's options to a new or reset transaction. The
// timeout is what remains of the call's.
func (r *runner[T]) setOptions(tr kv.Transaction) error {
	o := tr.Options()
	if !r.deadline.IsZero() {
		rem := time.Until(r.deadline)
		if rem <= 0 {
			return &kv.Error{Code: kv.CodeTransactionTimedOut, Detail: fmt.Sprintf("txn: call timeout %v elapsed", r.cfg.timeout)}
		}
		if err := o.SetTimeout(rem); err != nil {
			return err
		}
	}
	return o.SetMaxRetryDelay(r.cfg.maxRetryDelay)
}

// fail wraps the error that ends a call whose commit may have been applied.
func (r *runner[T]) fail(err error) error {
	var lost *OutcomeLostError
	if !r.ambiguous || errors.As(err, &lost) || errors.Is(err, ErrUnknownResult) {
		return err
	}
	return &UnknownResultError{ID: r.id, Err: err}
}

// definitelyNotCommitted reports whether a commit that failed with err
// certainly applied nothing: FoundationDB's retryable-not-committed errors
// and the client-side errors (codes 2000-2999) raised before anything is
// sent. Anything else — 1021, 1039, a timeout or cancellation while the
// commit was in flight, a closed database — leaves it in doubt.
func definitelyNotCommitted(err error) bool {
	code, ok := kv.ErrorCode(err)
	return ok && (kv.IsRetryableNotCommitted(err) || (code >= 2000 && code < 3000))
}

func isKVError(err error) bool {
	_, ok := kv.ErrorCode(err)
	return ok
}

// callFn runs fn, turning a panic into an error: a *kv.Error (as MustGet
// panics with) or kv.ErrClosed is returned as is, anything else as
// *PanicError.
func callFn[T any](fn func(kv.Transaction) (T, error), tr kv.Transaction) (v T, err error) {
	defer func() {
		if p := recover(); p != nil {
			if e, ok := p.(error); ok && (isKVError(e) || errors.Is(e, kv.ErrClosed)) {
				err = e
				return
			}
			err = &PanicError{Value: p, Stack: debug.Stack()}
		}
	}()
	return fn(tr)
}

// ctxError is the FoundationDB error a transaction reports once ctx ended.
func ctxError(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &kv.Error{Code: kv.CodeTransactionTimedOut, Cause: ctx.Err()}
	}
	return &kv.Error{Code: kv.CodeTransactionCancelled, Cause: ctx.Err()}
}
