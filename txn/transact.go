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
// Every attempt writes the call's marker, after fn, and adds a read
// conflict on it, so no two attempts of one call can both commit. After a
// maybe-committed error (commit_unknown_result, cluster_version_changed),
// each later attempt first reads the marker: present means an earlier
// attempt committed, and its result is returned without running fn again.
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
	// zero only for a marker written by an earlier version of this package.
	Versionstamp kv.Versionstamp
}

// Version returns the commit version.
func (c Commit) Version() int64 { return c.Versionstamp.Version() }

// TransactCommit is Transact, and also returns the Commit of the attempt
// that committed — found from its marker when that attempt's answer was
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
		if r.mbuf != nil {
			r.stats.ID = r.id // dated: the call got its first read version
		}
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

	id ID
	// mbuf holds the marker key, its conflict range's end and the first
	// attempt's marker parameter (key, keyRange, firstParam); nil until
	// the first read version dates the ID.
	mbuf []byte
	// sentinelChecked: an attempt found the shard's sentinel no newer than
	// the ID's version. No commit is sent before.
	sentinelChecked bool
	deadline        time.Time
	backoff         kv.Backoff
	guard           guarded // what fn is given: the transaction, refusing control
	ambiguous       bool    // some commit of this call may have been applied
	// results holds what fn returned in each attempt whose commit may have
	// been applied, keyed by attempt number, so that the attempt found
	// committed can have its result returned.
	results map[uint32]T
	commit  Commit // the committing attempt, once the call succeeded
	stats   Stats
}

func (r *runner[T]) run() (T, error) {
	var zero T
	if err := r.ctx.Err(); err != nil {
		return zero, ctxError(r.ctx)
	}
	if r.cfg.timeout > 0 {
		r.deadline = time.Now().Add(r.cfg.timeout)
	}
	id, err := newID(r.cfg.shards)
	if err != nil {
		return zero, err
	}
	r.id = id
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
	// marker's read conflict must cover everything committed since the
	// attempt began, so that a Resolve (or a later attempt) that commits
	// while this one is still in flight makes it conflict.
	grv := tr.GetReadVersion()
	if r.mbuf == nil {
		// The call's first attempt: its read version dates the ID.
		rv, err := grv.Get()
		if err != nil {
			return v, false, err
		}
		r.setVersion(rv)
	}
	if !r.sentinelChecked {
		// A sentinel this process saw recently, no newer than the ID (or
		// the ID dated up to it), stands for the read: see "The sentinel
		// cache" in the package doc.
		if created, ok := cachedSentinel(r.db, &r.cfg, r.id.Shard, r.id.Version); ok {
			if created > r.id.Version {
				r.setVersion(created)
			}
			r.sentinelChecked = true
		}
	}
	var sentinel *kv.Future[[]byte]
	if !r.sentinelChecked {
		// Until an attempt has found the shard's sentinel no newer than
		// the ID, none may send its commit. Read it now, and wait for it
		// before the commit, so that its round trip overlaps fn's.
		sentinel = tr.Snapshot().Get(SentinelKey(r.cfg.prefix, r.id.Shard))
	}
	if r.ambiguous {
		// An earlier attempt may have committed: learn whether before
		// running fn again.
		val, err := tr.Get(r.key()).Get()
		if err != nil {
			return v, false, err
		}
		if val != nil {
			v, err := r.committed(tr, val)
			return v, true, err
		}
		if err := checkAbsent(tr, r.db, &r.cfg, r.id); err != nil {
			return v, !isKVError(err), err
		}
	}
	if err := tr.AddReadConflictRange(r.keyRange()); err != nil {
		return v, false, err
	}
	r.guard = guarded{Transaction: tr}
	v, err = callFn(r.fn, &r.guard)
	if err == nil && r.guard.refused != "" {
		err = fmt.Errorf("%w (it called %s)", ErrTransactionControl, r.guard.refused)
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
	if sentinel != nil {
		if err := r.checkSentinel(tr, sentinel); err != nil {
			return v, false, err
		}
	}
	// The marker is the attempt's last word on its key: whatever fn wrote
	// or cleared, a range clear over the markers included, the commit
	// leaves the marker in place. Its value gets the commit's versionstamp.
	param := r.firstParam()
	if n != 1 {
		param = markerParam(n)
	}
	tr.Atomic(kv.SetVersionstampedValue, r.key(), param)
	err = tr.Commit().Err()
	if err == nil {
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

// checkSentinel waits for an attempt's read of the shard's sentinel, made
// at its read version, and makes sure the sentinel is no newer than the ID,
// as checkAbsent requires: absent, it is created now in a transaction of its
// own; newer than the ID (created since the first attempt), the ID's
// version moves up to it. The version need only be no later than the
// call's first commit, and no attempt has sent one before this check
// passed, so the marker key is a name that nothing has used yet.
func (r *runner[T]) checkSentinel(tr kv.Transaction, f *kv.Future[[]byte]) error {
	val, err := f.Get()
	if err != nil {
		return err
	}
	var stamp kv.Versionstamp
	if val != nil {
		stamp, err = decodeSentinel(val)
	} else {
		stamp, err = createSentinel(r.ctx, r.db, &r.cfg, SentinelKey(r.cfg.prefix, r.id.Shard))
	}
	if err != nil {
		return err
	}
	seen := stamp.Version()
	if val != nil {
		if seen, err = tr.GetReadVersion().Get(); err != nil {
			return err
		}
	}
	sentinelSeen(r.db, &r.cfg, r.id.Shard, stamp.Version(), seen)
	if v := stamp.Version(); v > r.id.Version {
		r.setVersion(v)
		if err := tr.AddReadConflictRange(r.keyRange()); err != nil {
			return err
		}
	}
	r.sentinelChecked = true
	return nil
}

// setVersion dates the call's ID, and so its marker key, at version v. It
// is only called before any attempt has sent a commit.
func (r *runner[T]) setVersion(v int64) {
	r.id.Version = v
	// One allocation holds the key, its conflict range's end (the key and a
	// zero byte: kv.KeyAfter) and the first attempt's marker parameter;
	// each is handed out clipped, so that no append can reach the next.
	// Nothing writes to them once they are handed out.
	n := r.keyLen()
	b := appendMarkerKey(make([]byte, 0, n+1+markerParamLen), r.cfg.prefix, r.id)
	b = append(b, 0)
	r.mbuf = appendMarkerParam(b, 1)
}

func (r *runner[T]) keyLen() int { return len(r.cfg.prefix) + markerSuffixLen }

// key is the call's marker key.
func (r *runner[T]) key() []byte { n := r.keyLen(); return r.mbuf[:n:n] }

// keyRange is the marker's single-key conflict range.
func (r *runner[T]) keyRange() kv.Range {
	n := r.keyLen()
	return kv.Range{Begin: r.mbuf[:n:n], End: r.mbuf[: n+1 : n+1]}
}

// firstParam is the first attempt's marker parameter.
func (r *runner[T]) firstParam() []byte { return r.mbuf[r.keyLen()+1:] }

// createSentinel makes sure key's sentinel exists and returns its
// versionstamp. Creating it twice is harmless — the second transaction
// reads the first's and writes nothing — so a maybe-committed error is
// simply retried.
func createSentinel(ctx context.Context, db kv.Database, c *config, key []byte) (kv.Versionstamp, error) {
	var stamp kv.Versionstamp
	tr, err := db.CreateTransaction(ctx)
	if err != nil {
		return stamp, err
	}
	defer tr.Cancel()
	if err := tr.Options().SetMaxRetryDelay(c.maxRetryDelay); err != nil {
		return stamp, err
	}
	err = retryIdempotent(ctx, tr, c, func() error {
		val, err := tr.Get(key).Get()
		if err != nil {
			return err
		}
		if val != nil {
			stamp, err = decodeSentinel(val)
			return err
		}
		tr.Atomic(kv.SetVersionstampedValue, key, sentinelParam())
		if err := tr.Commit().Err(); err != nil {
			return err
		}
		stamp, err = tr.GetVersionstamp().Get()
		return err
	})
	return stamp, err
}

// committed returns the result of the attempt whose marker value is val: an
// earlier attempt's, or — for a tombstone — ErrFenced once the call has
// fenced its ID itself.
func (r *runner[T]) committed(tr kv.Transaction, val []byte) (T, error) {
	var zero T
	m, err := decodeMarker(val)
	if err != nil {
		return zero, err
	}
	if m.attempt == tombstoneAttempt {
		// Resolve fenced this ID while the call ran. The tombstone was
		// read at this attempt's read version; an attempt of this call
		// still in flight could land after it (one that began after the
		// fence never read the marker). Fence again: after that commit,
		// none can.
		return r.settle(tr, fmt.Errorf("%w: %v", ErrFenced, r.id))
	}
	return r.found(m)
}

// found returns the kept result of the attempt that marker m names.
func (r *runner[T]) found(m marker) (T, error) {
	var zero T
	v, ok := r.results[m.attempt]
	if !ok {
		// Only this call writes this key with attempt numbers, and it keeps
		// the result of every attempt that may have committed.
		return zero, fmt.Errorf("txn: internal error: marker of %v names attempt %d, whose result was not kept", r.id, m.attempt)
	}
	r.stats.MarkerFound = true
	r.commit = Commit{ID: r.id, Attempt: m.attempt, Versionstamp: m.stamp}
	return v, nil
}

// checkAbsent is called with a call's marker absent at tr's read version.
// It fails with *OutcomeLostError unless the absence proves that no attempt
// has committed: the janitor's watermark has not passed the ID's version,
// and the shard's sentinel is present and older than the ID. Both are read
// as snapshots: a janitor sweep or a range clear that removes the marker
// after this read version also writes the marker key, which this
// transaction has read (a conflict range), so it conflicts.
//
// What it finds of the sentinel updates this process's sentinel cache for
// db: a missing sentinel drops the cached sighting, a present one (newer,
// say, after a clear and a re-creation) replaces it.
func checkAbsent(tr kv.Transaction, db kv.Database, c *config, id ID) error {
	wf := tr.Snapshot().Get(c.watermarkKey)
	sf := tr.Snapshot().Get(SentinelKey(c.prefix, id.Shard))
	b, err := wf.Get()
	if err != nil {
		return err
	}
	w, err := DecodeWatermark(b)
	if err != nil {
		return err
	}
	if w > id.Version {
		return &OutcomeLostError{ID: id, Watermark: w}
	}
	sv, err := sf.Get()
	if err != nil {
		return err
	}
	rv, err := tr.GetReadVersion().Get()
	if err != nil {
		return err
	}
	if sv == nil {
		sentinelMissing(db, c, id.Shard, rv)
		return &OutcomeLostError{ID: id, Watermark: w, Cleared: true}
	}
	stamp, err := decodeSentinel(sv)
	if err != nil {
		return err
	}
	sentinelSeen(db, c, id.Shard, stamp.Version(), rv)
	if stamp.Version() > id.Version {
		return &OutcomeLostError{ID: id, Watermark: w, Cleared: true}
	}
	return nil
}

// settle is called when the call must end with err but an earlier attempt
// may have committed or still be in flight: fn failed after an ambiguous
// commit, or the marker was a tombstone. settle fences the ID: if an
// earlier attempt committed after all, the call succeeded with its result;
// otherwise none ever will, and err stands.
func (r *runner[T]) settle(tr kv.Transaction, err error) (T, error) {
	var zero T
	tr.Reset()
	if serr := r.setOptions(tr); serr != nil {
		return zero, r.fail(serr)
	}
	outcome, m, ferr := fence(r.ctx, tr, r.db, &r.cfg, r.id, r.key())
	switch {
	case ferr != nil:
		return zero, r.fail(ferr)
	case outcome == Committed:
		return r.found(m)
	}
	return zero, err
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
