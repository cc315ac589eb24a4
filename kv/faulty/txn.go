package faulty

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/idemkv/idemkv/kv"
)

// transaction wraps one inner transaction at a time. It replaces the inner
// transaction when a late commit takes the current one away, so it keeps
// what must survive that: the options in force, the retry count and the
// backoff, and the timeout's start.
type transaction struct {
	db  *DB
	ctx context.Context

	// mu guards inner and canceled against Cancel, the one method that may
	// run on another goroutine. Only the owning goroutine writes them, and
	// it does so under mu; it reads them without the lock.
	mu struct {
		sync.Mutex
		inner    kv.Transaction
		canceled bool
	}
	// handedOff reports that the real inner transaction went to a late
	// commit and mu.inner is a deadTxn until OnError or Reset.
	handedOff bool
	// att is the current attempt: replaced by OnError and Reset.
	att *attempt

	opts    options
	retries int
	backoff kv.Backoff
	// timeoutStart is when the transaction was created or last Reset: the
	// timeout runs from it across OnError, as FoundationDB's does.
	// innerBorn is when the current inner transaction was created or
	// reset, from which the inner engine measures its own timeout.
	timeoutStart, innerBorn time.Time
}

var _ kv.Transaction = (*transaction)(nil)

// attempt is one try of a transaction, from creation, OnError or Reset to
// the next.
type attempt struct {
	// wrote reports a mutation or write conflict range: only such a commit
	// reaches FoundationDB's proxies and can fail in the injected ways.
	wrote bool
	// ops records the attempt's mutations and conflict ranges, in order,
	// so that a late commit can be sent as a transaction of its own,
	// detached from the caller's context and timeout (see replay).
	ops []op
	// fault is set once the attempt's commit was given an injected fault
	// (or, for an "applied" one whose inner commit failed, that failure).
	// Versionstamp futures read it from any goroutine.
	fault atomic.Pointer[failure]
}

type failure struct{ err error }

// op is one recorded mutation or conflict range.
type op struct {
	kind     opKind
	mutation kv.MutationType // opAtomic
	key, val []byte          // opSet, opClear, opAtomic
	r        kv.Range        // opClearRange and the conflict ranges
}

type opKind uint8

const (
	opSet opKind = iota
	opClear
	opClearRange
	opAtomic
	opReadConflict
	opWriteConflict
)

func (a *attempt) record(o op) { a.ops = append(a.ops, o) }

func (a *attempt) failed() error {
	if f := a.fault.Load(); f != nil {
		return f.err
	}
	return nil
}

// options are the transaction options in force, re-applied to every new
// inner transaction. They persist across OnError and not across Reset, the
// kv.Transaction contract.
type options struct {
	timeout          time.Duration
	retryLimit       int
	maxRetryDelay    time.Duration
	sizeLimit        int // 0: never set
	accessSystemKeys bool
	readSystemKeys   bool
}

func defaultOptions() options {
	return options{retryLimit: -1, maxRetryDelay: kv.DefaultMaxRetryDelay}
}

func newTransaction(db *DB, ctx context.Context, inner kv.Transaction) *transaction {
	now := time.Now()
	t := &transaction{db: db, ctx: ctx, att: &attempt{}, opts: defaultOptions(),
		timeoutStart: now, innerBorn: now}
	t.mu.inner = inner
	return t
}

func (t *transaction) inner() kv.Transaction { return t.mu.inner }

// Get and GetRange record a read conflict range for a late commit's
// replay (only when the DB can make late commits: see DB.replays): the key, or the whole range asked for (a superset of what a limit
// lets the engine read, so a replayed late commit conflicts at least as
// often as the original would).
func (t *transaction) Get(key []byte) *kv.Future[[]byte] {
	if t.db.replays {
		t.att.record(op{kind: opReadConflict, r: kv.SingleKeyRange(key)})
	}
	return t.inner().Get(key)
}

func (t *transaction) GetRange(r kv.Range, opts kv.RangeOptions) *kv.Future[[]kv.KeyValue] {
	if t.db.replays {
		t.att.record(op{kind: opReadConflict, r: cloneRange(r)})
	}
	return t.inner().GetRange(r, opts)
}

func cloneRange(r kv.Range) kv.Range {
	return kv.Range{Begin: bytes.Clone(r.Begin), End: bytes.Clone(r.End)}
}

func (t *transaction) GetReadVersion() *kv.Future[int64] { return t.inner().GetReadVersion() }

// Snapshot returns a view that follows the transaction's current inner
// transaction, so it stays valid across OnError.
func (t *transaction) Snapshot() kv.ReadTransaction { return snapshot{t} }

func (t *transaction) Set(key, value []byte) {
	t.att.wrote = true
	if t.db.replays {
		t.att.record(op{kind: opSet, key: bytes.Clone(key), val: bytes.Clone(value)})
	}
	t.inner().Set(key, value)
}

func (t *transaction) Clear(key []byte) {
	t.att.wrote = true
	if t.db.replays {
		t.att.record(op{kind: opClear, key: bytes.Clone(key)})
	}
	t.inner().Clear(key)
}

func (t *transaction) ClearRange(r kv.Range) {
	t.att.wrote = true
	if t.db.replays {
		t.att.record(op{kind: opClearRange, r: cloneRange(r)})
	}
	t.inner().ClearRange(r)
}

func (t *transaction) Atomic(mt kv.MutationType, key, param []byte) {
	t.att.wrote = true
	if t.db.replays {
		t.att.record(op{kind: opAtomic, mutation: mt, key: bytes.Clone(key), val: bytes.Clone(param)})
	}
	t.inner().Atomic(mt, key, param)
}

func (t *transaction) AddReadConflictRange(r kv.Range) error {
	if err := t.inner().AddReadConflictRange(r); err != nil {
		return err
	}
	if t.db.replays {
		t.att.record(op{kind: opReadConflict, r: cloneRange(r)})
	}
	return nil
}

func (t *transaction) AddWriteConflictRange(r kv.Range) error {
	t.att.wrote = true
	if err := t.inner().AddWriteConflictRange(r); err != nil {
		return err
	}
	if t.db.replays {
		t.att.record(op{kind: opWriteConflict, r: cloneRange(r)})
	}
	return nil
}

func (t *transaction) SetReadVersion(v int64) { t.inner().SetReadVersion(v) }

func (t *transaction) Options() kv.TransactionOptions { return (*txnOptions)(t) }

// Commit draws the commit's fate (Config.fateOf with the DB's next commit
// number) and carries it out. The state changes a fault implies (the
// attempt marked failed, the inner transaction handed to a late commit)
// happen here, on the owning goroutine; only the added latency and the
// "applied" form's inner commit wait for the future's Get.
func (t *transaction) Commit() *kv.Future[struct{}] {
	db := t.db
	n := db.commits.Add(1) - 1
	db.stats.commits.Add(1)
	f := db.cfg.fateOf(n)
	a := t.att
	inner := t.inner()

	if db.closed.Load() {
		return kv.Failed[struct{}](kv.ErrClosed)
	}
	if err := a.failed(); err != nil {
		// Committing again after a failed commit, without OnError or Reset.
		return kv.Failed[struct{}](err)
	}
	if !a.wrote || t.handedOff {
		// A read-only commit never leaves the client in FoundationDB, so
		// none of the injected failures can happen to it.
		return inner.Commit()
	}
	if f.delayed {
		db.stats.delayed.Add(1)
	}
	if f.kind == None {
		if !f.delayed {
			return inner.Commit()
		}
		return kv.NewFuture(func() (struct{}, error) {
			t.sleep(f.latency)
			return inner.Commit().Get()
		})
	}

	db.stats.add(f.kind, injected)
	fault := &kv.Error{Code: f.kind.Code(),
		Detail: fmt.Sprintf("injected by kv/faulty (seed %d, commit %d)", db.cfg.Seed, n)}
	a.fault.Store(&failure{fault})

	switch kindInfo[f.kind].form {
	case formApplied:
		return kv.NewFuture(func() (struct{}, error) {
			t.sleep(f.latency)
			if err := inner.Commit().Err(); err != nil {
				// "Applied" must mean applied: the real failure stands.
				a.fault.Store(&failure{err})
				db.stats.add(f.kind, notApplied)
				return struct{}{}, err
			}
			db.stats.add(f.kind, applied)
			if kindInfo[f.kind].jump {
				// The recovery follows the commit it let through.
				if err := db.recover(); err != nil {
					return struct{}{}, err
				}
			}
			return struct{}{}, fault
		})
	case formLate:
		// A commit on the wire already carries its read version and is not
		// recalled when its client gives up: it is sent as a transaction of
		// its own, detached from the caller's context and timeout, with the
		// same read version, conflict ranges and mutations, so that
		// whatever commits between now and the late landing is checked for
		// conflicts, as FoundationDB would.
		late, err := t.replay(inner)
		inner.Cancel()
		if err != nil {
			// Nothing could be sent: the commit is abandoned.
			db.stats.add(f.kind, lateNotApplied)
			break
		}
		if db.startLate() {
			t.handedOff = true
			t.setInner(deadTxn{fault}, true)
			go db.lateCommit(late, f.kind, f.latency+f.lateDelay, n)
			break
		}
		// Close began after the check above: no goroutine may start now,
		// so the commit is abandoned instead.
		late.Cancel()
		db.stats.add(f.kind, lateNotApplied)
	default: // formNotApplied
		// Cancel settles the inner transaction's pending futures (a
		// versionstamp, say); OnError or Reset resets it.
		inner.Cancel()
		db.stats.add(f.kind, notApplied)
		if kindInfo[f.kind].jump {
			if err := db.recover(); err != nil {
				return kv.Failed[struct{}](err)
			}
		}
	}
	return kv.NewFuture(func() (struct{}, error) {
		t.sleep(f.latency)
		return struct{}{}, fault
	})
}

// replay builds the transaction a late commit sends: a fresh inner
// transaction on a context detached from the caller's (its values kept,
// not its cancellation or deadline), at inner's read version, with the
// attempt's conflict ranges and mutations and the options that shape a
// commit (size limit, system-key access), but no timeout.
func (t *transaction) replay(inner kv.Transaction) (kv.Transaction, error) {
	rv, err := inner.GetReadVersion().Get()
	if err != nil {
		return nil, err
	}
	late, err := t.db.inner.CreateTransaction(context.WithoutCancel(t.ctx))
	if err != nil {
		return nil, err
	}
	late.SetReadVersion(rv)
	o := late.Options()
	if t.opts.sizeLimit != 0 {
		err = o.SetSizeLimit(t.opts.sizeLimit)
	}
	if err == nil && t.opts.accessSystemKeys {
		err = o.SetAccessSystemKeys()
	}
	for _, p := range t.att.ops {
		if err != nil {
			break
		}
		switch p.kind {
		case opSet:
			late.Set(p.key, p.val)
		case opClear:
			late.Clear(p.key)
		case opClearRange:
			late.ClearRange(p.r)
		case opAtomic:
			late.Atomic(p.mutation, p.key, p.val)
		case opReadConflict:
			err = late.AddReadConflictRange(p.r)
		case opWriteConflict:
			err = late.AddWriteConflictRange(p.r)
		}
	}
	if err != nil {
		late.Cancel()
		return nil, err
	}
	return late, nil
}

// lateCommit sends a late commit after delay. Neither the delay nor the
// commit depends on the caller's context: a commit already on the wire is
// not recalled by the client. The commit goes through the inner engine's
// conflict detection at its original read version, so it fails if anything
// it read was written meanwhile; that, a closed database, or its read
// version growing too old are the only ways it fails, and each is counted
// late-not-applied.
func (db *DB) lateCommit(inner kv.Transaction, k Kind, delay time.Duration, n uint64) {
	defer db.lateDone()
	if delay > 0 {
		time.Sleep(delay)
	}
	if h := db.beforeLateCommit; h != nil {
		h(n)
	}
	if err := inner.Commit().Err(); err != nil {
		db.stats.add(k, lateNotApplied)
	} else {
		db.stats.add(k, lateApplied)
	}
}

// sleep waits d, or less if the transaction's context ends first (the
// commit that follows then fails with the context's error).
func (t *transaction) sleep(d time.Duration) {
	if d <= 0 {
		return
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-t.ctx.Done():
	}
}

// OnError is FoundationDB's retry policy, kept here rather than delegated
// because the inner transaction may be replaced between attempts: the
// retry count and backoff belong to the wrapper.
func (t *transaction) OnError(err error) error {
	t.mu.Lock()
	canceled := t.mu.canceled
	t.mu.Unlock()
	if canceled {
		return kv.NewError(kv.CodeTransactionCancelled)
	}
	if !kv.IsRetryable(err) || t.opts.retryLimit >= 0 && t.retries >= t.opts.retryLimit {
		// FoundationDB (API >= 610) cancels a transaction whose error
		// OnError refuses, until Reset (kvtest's OnError/RefusedCancels...).
		t.Cancel()
		return err
	}
	if d := t.backoff.Next(t.opts.maxRetryDelay, rand.Float64()); d > 0 {
		timer := time.NewTimer(d)
		select {
		case <-timer.C:
		case <-t.ctx.Done():
			timer.Stop()
			return contextError(t.ctx.Err())
		}
	}
	t.mu.Lock()
	canceled = t.mu.canceled
	t.mu.Unlock()
	if canceled { // during the backoff
		return kv.NewError(kv.CodeTransactionCancelled)
	}
	t.retries++
	// OnError keeps only FoundationDB's persistent options (timeout, retry
	// limit, max retry delay): the size limit and system key access go,
	// as on a cluster (kvtest's Options/SizeLimitDroppedByOnError).
	t.opts.sizeLimit, t.opts.accessSystemKeys, t.opts.readSystemKeys = 0, false, false
	return t.renew(true)
}

// contextError is the kv.Error a transaction reports once its context ends.
func contextError(err error) error {
	if err == context.DeadlineExceeded {
		return &kv.Error{Code: kv.CodeTransactionTimedOut, Cause: err}
	}
	return &kv.Error{Code: kv.CodeTransactionCancelled, Cause: err}
}

func (t *transaction) Reset() {
	t.retries = 0
	t.backoff.Reset()
	t.opts = defaultOptions()
	t.timeoutStart = time.Now()
	_ = t.renew(false) // a failure is kept in a deadTxn and shows on use
}

// renew starts the next attempt: it resets the inner transaction, or
// creates a fresh one if the last went to a late commit, and (keep) re-applies
// the options in force.
func (t *transaction) renew(keep bool) error {
	var inner kv.Transaction
	switch {
	case !t.handedOff:
		inner = t.inner()
		inner.Reset()
	case t.db.closed.Load():
		inner = deadTxn{kv.ErrClosed}
	default:
		fresh, err := t.db.inner.CreateTransaction(t.ctx)
		if err != nil {
			inner = deadTxn{err}
		} else {
			inner = fresh
		}
	}
	t.handedOff = false
	t.att = &attempt{}
	t.innerBorn = time.Now()
	if d, ok := inner.(deadTxn); ok {
		t.setInner(inner, keep)
		return d.err
	}
	var err error
	if keep {
		err = t.applyOptions(inner)
	}
	t.setInner(inner, keep)
	return err
}

// setInner installs inner. With keepCancel (Commit, OnError), a Cancel
// that raced in is carried over to inner; without (Reset), Cancel's effect
// ends, as the kv.Transaction contract says.
func (t *transaction) setInner(inner kv.Transaction, keepCancel bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mu.inner = inner
	if !keepCancel {
		t.mu.canceled = false
	} else if t.mu.canceled {
		inner.Cancel()
	}
}

// applyOptions sets the options in force on a new inner transaction. They
// were accepted by an inner transaction when set, so a failure here is the
// inner engine's and is returned.
func (t *transaction) applyOptions(inner kv.Transaction) error {
	o := inner.Options()
	if t.opts.timeout > 0 {
		if err := o.SetTimeout(t.innerTimeout(t.opts.timeout)); err != nil {
			return err
		}
	}
	if err := o.SetRetryLimit(t.opts.retryLimit); err != nil {
		return err
	}
	if err := o.SetMaxRetryDelay(t.opts.maxRetryDelay); err != nil {
		return err
	}
	if t.opts.sizeLimit != 0 {
		if err := o.SetSizeLimit(t.opts.sizeLimit); err != nil {
			return err
		}
	}
	if t.opts.accessSystemKeys {
		if err := o.SetAccessSystemKeys(); err != nil {
			return err
		}
	}
	if t.opts.readSystemKeys {
		if err := o.SetReadSystemKeys(); err != nil {
			return err
		}
	}
	return nil
}

// innerTimeout converts the transaction's timeout d into the current inner
// transaction's: what remains of d once the time between the transaction's
// start and the inner one's is taken off, and at least a nanosecond so that
// an expired timeout still fires rather than being disabled.
func (t *transaction) innerTimeout(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return max(d-t.innerBorn.Sub(t.timeoutStart), time.Nanosecond)
}

func (t *transaction) Cancel() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mu.canceled = true
	t.mu.inner.Cancel()
}

// GetCommittedVersion fails with the commit's error after an injected
// fault, even an applied one: the caller was told the commit failed.
func (t *transaction) GetCommittedVersion() (int64, error) {
	if err := t.att.failed(); err != nil {
		return -1, err
	}
	return t.inner().GetCommittedVersion()
}

// GetVersionstamp, like GetCommittedVersion, fails after an injected fault.
func (t *transaction) GetVersionstamp() *kv.Future[kv.Versionstamp] {
	a := t.att
	if err := a.failed(); err != nil {
		return kv.Failed[kv.Versionstamp](err)
	}
	f := t.inner().GetVersionstamp()
	return kv.NewFuture(func() (kv.Versionstamp, error) {
		// Check first: an abandoned inner transaction's future resolves
		// only when OnError or Reset resets it, which the caller may be
		// about to do after this Get.
		if ferr := a.failed(); ferr != nil {
			return kv.Versionstamp{}, ferr
		}
		v, err := f.Get()
		if ferr := a.failed(); ferr != nil {
			return kv.Versionstamp{}, ferr
		}
		return v, err
	})
}

func (t *transaction) GetApproximateSize() *kv.Future[int64] {
	return t.inner().GetApproximateSize()
}

// txnOptions forwards options to the current inner transaction, which
// validates them, and records those it accepts so that a fresh inner
// transaction gets them too.
type txnOptions transaction

var _ kv.TransactionOptions = (*txnOptions)(nil)

func (o *txnOptions) t() *transaction { return (*transaction)(o) }

func (o *txnOptions) SetTimeout(d time.Duration) error {
	t := o.t()
	if err := t.inner().Options().SetTimeout(t.innerTimeout(d)); err != nil {
		return err
	}
	t.opts.timeout = d
	return nil
}

func (o *txnOptions) SetRetryLimit(n int) error {
	t := o.t()
	if err := t.inner().Options().SetRetryLimit(n); err != nil {
		return err
	}
	t.opts.retryLimit = n
	return nil
}

func (o *txnOptions) SetMaxRetryDelay(d time.Duration) error {
	t := o.t()
	if err := t.inner().Options().SetMaxRetryDelay(d); err != nil {
		return err
	}
	t.opts.maxRetryDelay = d
	return nil
}

func (o *txnOptions) SetSizeLimit(n int) error {
	t := o.t()
	if err := t.inner().Options().SetSizeLimit(n); err != nil {
		return err
	}
	t.opts.sizeLimit = n
	return nil
}

func (o *txnOptions) SetAccessSystemKeys() error {
	t := o.t()
	if err := t.inner().Options().SetAccessSystemKeys(); err != nil {
		return err
	}
	t.opts.accessSystemKeys = true
	return nil
}

func (o *txnOptions) SetReadSystemKeys() error {
	t := o.t()
	if err := t.inner().Options().SetReadSystemKeys(); err != nil {
		return err
	}
	t.opts.readSystemKeys = true
	return nil
}

// snapshot is Transaction.Snapshot's view.
type snapshot struct{ t *transaction }

func (s snapshot) Get(key []byte) *kv.Future[[]byte] { return s.t.inner().Snapshot().Get(key) }

func (s snapshot) GetRange(r kv.Range, opts kv.RangeOptions) *kv.Future[[]kv.KeyValue] {
	return s.t.inner().Snapshot().GetRange(r, opts)
}

func (s snapshot) GetReadVersion() *kv.Future[int64] {
	return s.t.inner().Snapshot().GetReadVersion()
}
