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
// call was still running. Resolve is meant for calls that have returned.
// The call returns it only once it has itself fenced the ID again, so that
// no attempt of it still in flight can land: a fenced call committed
// nothing, certainly.
var ErrFenced = errors.New("txn: transaction ID was fenced by Resolve while the call was running")

// Transact runs fn in a retry loop over db and makes its effect happen
// exactly once, or not at all with an error that says so.
//
// Every attempt writes the call's marker slot, after fn, and adds a read
// conflict on it, so no two attempts of one call can both commit. After a
// maybe-committed error (commit_unknown_result, cluster_version_changed),
// each later attempt first reads the slot: the call's own sequence means an
// earlier attempt committed, and its result is returned without running fn
// again (see the package doc).
// transaction_timed_out is never retried: the call returns
// *UnknownResultError with the ID, for Resolve. Other retryable errors go
// through the transaction's OnError.
//
// fn may be run more than once (each attempt runs it on a fresh
// transaction state), so it must have no effects outside the transaction;
// what it returns from the attempt that commits is what Transact returns. An
// error from fn that is not a *kv.Error ends the call with nothing
// committed; a *kv.Error from fn (or from a MustGet inside it) is handled
// like a failed commit. A panic in fn is returned as *PanicError. fn must
// not commit, reset or retry the transaction it is given: those calls fail
// with ErrTransactionControl, and so does the call.
//
// TransactCommit is Transact that also reports which commit took effect.
func Transact[T any](ctx context.Context, db kv.Database, fn func(kv.Transaction) (T, error), opts *Options) (T, error) {
	v, _, err := transact(ctx, db, fn, opts, false)
	return v, err
}

// Commit describes the transaction that committed a call's writes.
type Commit struct {
	// ID is the call's ID.
	ID ID
	// Attempt is the number of the call's attempt that committed, from 1.
	Attempt uint32
	// Versionstamp is the committing transaction's versionstamp: what
	// tr.GetVersionstamp() inside fn would have given, had the call not
	// lost that attempt's answer. Its Version is the commit version. It is
	// zero only for a legacy marker of format 1.
	Versionstamp kv.Versionstamp
}

// Version returns the commit version.
func (c Commit) Version() int64 { return c.Versionstamp.Version() }

// TransactCommit is Transact, and also returns the Commit of the attempt
// that committed — found from its slot when that attempt's answer was
// lost, so the versionstamp and commit version are known after every
// success. A versionstamp future that fn takes from its transaction fails
// when the attempt that took it is not the one whose answer the call
// received; this one does not.
func TransactCommit[T any](ctx context.Context, db kv.Database, fn func(kv.Transaction) (T, error), opts *Options) (T, Commit, error) {
	return transact(ctx, db, fn, opts, true)
}
func transact[T any](ctx context.Context, db kv.Database, fn func(kv.Transaction) (T, error), opts *Options, wantCommit bool) (T, Commit, error) {
	var zero T
	c, err := opts.config()
	if err != nil {
		return zero, Commit{}, err
	}
	if fn == nil {
		return zero, Commit{}, ErrNilFunc
	}
	if db == nil {
		return zero, Commit{}, ErrNilDatabase
	}
	r := runner[T]{cfg: c, fn: fn, ctx: ctx, db: db, wantCommit: wantCommit}
	var start time.Time
	if c.observe != nil {
		start = time.Now()
	}
	v, err := r.run()
	if c.observe != nil {
		r.stats.ID = r.id
		r.stats.Duration = time.Since(start)
		r.stats.Err = err
		c.observe(r.stats)
	}
	if err != nil {
		return zero, Commit{}, err
	}
	return v, r.commit, nil
}

// runner is the state of one Transact call.
type runner[T any] struct {
	cfg        config
	fn         func(kv.Transaction) (T, error)
	ctx        context.Context
	db         kv.Database
	wantCommit bool

	pool *slotPool
	slot *slot // held for the whole call
	id   ID
	// checked: the slot is known present and recent enough for the call's
	// first commit (see "Liveness" in the package doc). No commit is sent
	// before.
	checked   bool
	deadline  time.Time
	backoff   kv.Backoff
	ambiguous bool // some commit of this call may have been applied
	// results holds what fn returned in each attempt whose commit may have
	// been applied, keyed by attempt number, so that the attempt found
	// committed can have its result returned.
	results map[uint32]T
	commit  Commit // the committing attempt, once the call succeeded
	stats   Stats
}

// errRefreshed ends an attempt that refreshed the call's slot before its
// commit: the refresh wrote the key this attempt read (its conflict
// range), so the attempt is run again, at once.
var errRefreshed = errors.New("txn: slot refreshed; attempt again")

func (r *runner[T]) run() (v T, err error) {
	var zero T
	if err := r.ctx.Err(); err != nil {
		return zero, ctxError(r.ctx)
	}
	if r.cfg.timeout > 0 {
		r.deadline = time.Now().Add(r.cfg.timeout)
	}
	if r.pool, err = poolFor(r.db, &r.cfg); err != nil {
		return zero, err
	}
	r.slot = r.pool.acquire()
	r.id = ID{Owner: r.pool.owner, Slot: r.slot.index, Seq: r.slot.seq}
	defer func() {
		// A call ended by another writer of its slot (ErrSlotTaken, or
		// an outcome lost because the slot was reused) retires the slot.
		var lost *OutcomeLostError
		retire := errors.Is(err, ErrSlotTaken) || errors.As(err, &lost) && lost.Reused
		// A call whose outcome is unknown keeps its slot for Resolve.
		var pinUntil time.Time
		if errors.Is(err, ErrUnknownResult) {
			pinUntil = time.Now().Add(r.cfg.resolveWindow)
		}
		r.pool.release(r.slot, pinUntil, retire)
	}()
	tr, err := r.db.CreateTransaction(r.ctx)
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
	// slot's read conflict must cover everything committed since the
	// attempt began, so that a Resolve (or a later attempt) that commits
	// while this one is still in flight makes it conflict.
	rv, err := tr.GetReadVersion().Get()
	if err != nil {
		return v, false, err
	}
	var check *kv.Future[[]byte]
	if !r.checked {
		if rv, err = r.prepare(tr, rv); err != nil {
			return v, false, err
		}
		if r.slot.fresh(rv) {
			r.checked = true
		} else {
			// Until an attempt has found the slot present and recent, none
			// may send its commit. Read it now, and wait for it before the
			// commit, so that its round trip overlaps fn's.
			check = tr.Snapshot().Get(r.slot.key())
		}
	}
	if r.ambiguous {
		// An earlier attempt may have committed: learn whether before
		// running fn again.
		if v, done, err := r.read(tr, rv); done || err != nil {
			return v, done, err
		}
	}
	if err := tr.AddReadConflictRange(r.slot.keyRange()); err != nil {
		return v, false, err
	}
	// The guard is fn's to keep (fn may hold on to its transaction), so
	// it is its own small allocation, not a part of the runner, which
	// then need not live on the heap.
	g := &guarded{Transaction: tr}
	v, err = callFn(r.fn, g)
	if err == nil && g.refused != "" {
		err = fmt.Errorf("%w (it called %s)", ErrTransactionControl, g.refused)
	}
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
	if check != nil {
		if err := r.checkSlot(check, rv); err != nil {
			return v, !isKVError(err) && err != errRefreshed, err
		}
	}
	// The slot is the attempt's last word on its key: whatever fn wrote or
	// cleared, a range clear over the prefix included, the commit leaves
	// the slot in place. Its value gets the commit's versionstamp.
	tr.Atomic(kv.SetVersionstampedValue, r.slot.key(), slotParam(r.id.Seq, n))
	err = tr.Commit().Err()
	if err == nil {
		if cv, err := tr.GetCommittedVersion(); err == nil && cv > 0 {
			r.slot.saw(cv, cv)
		}
		r.commit = Commit{ID: r.id, Attempt: n}
		if r.wantCommit {
			if r.commit.Versionstamp, err = tr.GetVersionstamp().Get(); err != nil {
				// The commit took effect; only its stamp is missing.
				return v, true, fmt.Errorf("txn: transaction %v committed, but its versionstamp is unavailable: %w", r.id, err)
			}
		}
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

// read is a later attempt's read of the slot, at read version rv, after a
// maybe-committed error: it ends the call (done) when an earlier attempt
// is found committed, or the slot says the call was fenced, or the
// outcome is lost; with neither done nor an error, fn may run. The read
// is a conflict range, so an earlier attempt that lands after rv makes
// this one conflict.
func (r *runner[T]) read(tr kv.Transaction, rv int64) (v T, done bool, err error) {
	val, err := tr.Get(r.slot.key()).Get()
	if err != nil {
		return v, false, err
	}
	if val == nil {
		// Removed since the call checked it (by the janitor, past its
		// minimum age, or by a range clear): an earlier attempt may have
		// committed and been removed with it.
		r.slot.gone()
		return v, true, &OutcomeLostError{ID: r.id, Cleared: true}
	}
	st, err := DecodeSlot(val)
	if err != nil {
		return v, true, r.fail(err)
	}
	switch {
	case st.Seq == r.id.Seq && st.Attempt == SlotTombstone:
		// Resolve fenced this ID while the call ran. The tombstone was
		// read at this attempt's read version; an attempt of this call
		// still in flight could land after it (one that began after the
		// fence never read the slot). Fence again: after that commit,
		// none can.
		v, err = r.settle(tr, fmt.Errorf("%w: %v", ErrFenced, r.id))
		return v, true, err
	case st.Seq == r.id.Seq && st.Committed():
		v, err = r.found(st)
		return v, true, err
	case st.Seq >= r.id.Seq:
		// A sequence this call's pool has not issued, or its own as a
		// refresh, which only this call could have written, before its
		// first commit: another writer. Whatever this call committed
		// may be overwritten; never run fn again.
		return v, true, &OutcomeLostError{ID: r.id, Reused: true}
	}
	// An earlier call's sequence: no attempt of this call has committed as
	// of rv (see "Readers" in the package doc).
	r.slot.saw(st.Stamp.Version(), rv)
	return v, false, nil
}

// prepare is called by an attempt at read version rv before the call's
// slot is known fit for a first commit. If the pool knows the slot is
// absent (a new slot, or one a reader found gone) or was last written more
// than kv.MaxTransactionLifeVersions before rv (a slot idle for five
// seconds), it refreshes the slot now, before fn runs — rather than read
// it, run fn, and run fn again after the refresh — and starts the attempt
// again after it: tr is reset, and prepare returns its new read version.
// Otherwise it does nothing.
func (r *runner[T]) prepare(tr kv.Transaction, rv int64) (int64, error) {
	if !r.slot.absent && writtenRecently(r.slot.stamp, rv) {
		return rv, nil
	}
	if err := r.refresh(); err != nil {
		return rv, err
	}
	// The refresh wrote the slot after rv: an attempt at rv would conflict.
	tr.Reset()
	if err := r.setOptions(tr); err != nil {
		return rv, err
	}
	return tr.GetReadVersion().Get()
}

// checkSlot waits for the first attempts' snapshot read of the slot, made
// at read version rv, and makes sure the slot is present and recent enough
// for the call's first commit: written no more than
// kv.MaxTransactionLifeVersions before rv, so that the janitor cannot
// remove it before a reader of this call looks (see "Liveness" in the
// package doc). Otherwise it refreshes the slot, in a transaction of its
// own, and returns errRefreshed: this attempt read the slot, so it would
// conflict; the next one runs at once.
func (r *runner[T]) checkSlot(f *kv.Future[[]byte], rv int64) error {
	val, err := f.Get()
	if err != nil {
		return err
	}
	st, recent, err := slotBeforeCall(r.slot.key(), val, r.id.Seq, rv)
	if err != nil {
		return err
	}
	if recent {
		r.slot.saw(st.Stamp.Version(), rv)
		r.checked = true
		return nil
	}
	if err := r.refresh(); err != nil {
		return err
	}
	return errRefreshed
}

// refresh rewrites the call's slot before its first commit (see
// refreshSlot), within the call's deadline, and records the sighting.
func (r *runner[T]) refresh() error {
	ctx := r.ctx
	if !r.deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, r.deadline)
		defer cancel()
	}
	stamp, err := refreshSlot(ctx, r.db, &r.cfg, r.slot.key(), r.id.Seq)
	if err != nil {
		return err
	}
	r.slot.saw(stamp.Version(), stamp.Version())
	return nil
}

// found returns the kept result of the attempt that wrote slot state st.
func (r *runner[T]) found(st SlotState) (T, error) {
	var zero T
	v, ok := r.results[st.Attempt]
	if !ok {
		// Only this call writes its sequence with attempt numbers, and it
		// keeps the result of every attempt that may have committed.
		return zero, fmt.Errorf("txn: internal error: slot of %v names attempt %d, whose result was not kept", r.id, st.Attempt)
	}
	r.stats.MarkerFound = true
	r.commit = Commit{ID: r.id, Attempt: st.Attempt, Versionstamp: st.Stamp}
	return v, nil
}

// settle is called when the call must end with err but an earlier attempt
// may have committed or still be in flight: fn failed after an ambiguous
// commit, or the slot held a tombstone. settle fences the ID: if an
// earlier attempt committed after all, the call succeeded with its result;
// otherwise none ever will, and err stands.
func (r *runner[T]) settle(tr kv.Transaction, err error) (T, error) {
	var zero T
	tr.Reset()
	if serr := r.setOptions(tr); serr != nil {
		return zero, r.fail(serr)
	}
	outcome, st, ferr := fenceSlot(r.ctx, tr, &r.cfg, r.id, r.slot.key())
	switch {
	case ferr != nil:
		return zero, r.fail(ferr)
	case outcome == Committed:
		return r.found(st)
	}
	return zero, err
}

// retry decides what follows a failed attempt: nil to run another, or the
// error that ends the call.
func (r *runner[T]) retry(tr kv.Transaction, err error, attempt uint32) error {
	if err == errRefreshed {
		// Nothing was sent; attempt again at once, within the limit.
		if r.cfg.retryLimit >= 0 && int(attempt) > r.cfg.retryLimit {
			return fmt.Errorf("txn: %v reached its retry limit (%d) refreshing its marker slot", r.id, r.cfg.retryLimit)
		}
		tr.Reset()
		return r.setOptions(tr)
	}
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

// ErrTransactionControl is returned when the transaction function commits,
// resets or retries (OnError) the transaction it was given: Transact owns
// those steps — the marker must be the commit's last word, and a commit the
// protocol does not see may be applied twice. The refused call does
// nothing, and the call ends with nothing committed by that attempt.
var ErrTransactionControl = errors.New("txn: the transaction function must not commit, reset or retry its transaction; Transact does")

// guarded is the transaction fn is given: every operation but the ones that
// belong to the retry loop passes through.
type guarded struct {
	kv.Transaction
	refused string // the first refused call, if any
}

func (g *guarded) refuse(call string) error {
	if g.refused == "" {
		g.refused = call
	}
	return fmt.Errorf("%w (it called %s)", ErrTransactionControl, call)
}

// Commit is refused: Transact commits.
func (g *guarded) Commit() *kv.Future[struct{}] {
	return kv.Failed[struct{}](g.refuse("Commit"))
}

// OnError is refused: Transact retries.
func (g *guarded) OnError(error) error { return g.refuse("OnError") }

// Reset is refused, and does nothing: it would discard the read version
// and the marker's conflict range.
func (g *guarded) Reset() { _ = g.refuse("Reset") }

// Unwrap returns the attempt's transaction, for adapters that reach the
// backend's own transaction through wrappers (fdbkv.Unwrap, which
// fdbkv.Transact uses to hand fn the bindings' fdb.Transaction).
func (g *guarded) Unwrap() kv.Transaction { return g.Transaction }

// ctxError is the FoundationDB error a transaction reports once ctx ended.
func ctxError(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &kv.Error{Code: kv.CodeTransactionTimedOut, Cause: ctx.Err()}
	}
	return &kv.Error{Code: kv.CodeTransactionCancelled, Cause: ctx.Err()}
}
