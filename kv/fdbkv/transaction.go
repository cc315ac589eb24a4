//go:build fdb

package fdbkv

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/apple/foundationdb/bindings/go/src/fdb"

	"github.com/idemkv/idemkv/kv"
)

// transaction is a kv.Transaction over an fdb.Transaction. Like the
// bindings' transaction it is for one goroutine at a time, except Cancel
// (and the context watcher, which only calls Cancel).
type transaction struct {
	db  *DB
	tr  fdb.Transaction
	ctx context.Context

	// start is the transaction's creation or last Reset, from which an
	// explicit timeout runs. clock is when FoundationDB's own timeout clock
	// started: the same, except after OnError reset the transaction itself
	// for cluster_version_changed.
	start, clock time.Time
	// timeoutFromCtx reports that the timeout given to FoundationDB is the
	// context's deadline, not an explicit SetTimeout.
	timeoutFromCtx bool

	// opts are the options set through Options(), re-applied after
	// OnError (kv's contract: they persist across OnError) and forgotten
	// on Reset.
	opts       txnOptions
	retries    int        // OnError retries since creation or Reset
	backoff    kv.Backoff // for the retries OnError does itself (1039)
	pendingErr error      // an invalid write, reported by reads and Commit until Reset

	// stamp is the versionstamp future Commit asked for just before
	// committing: FoundationDB answers get_versionstamp with
	// used_during_commit (2017) once the commit has been issued, while kv
	// promises the versionstamp after a successful commit. Cleared by
	// Reset and OnError.
	stamp fdb.FutureKey

	mu struct {
		sync.Mutex
		// stop unregisters the context watcher; nil when none is
		// registered. Guarded because a commit's future may be awaited
		// from another goroutine.
		stop func() bool
	}
}

// txnOptions records the options set on a transaction. Only options the
// caller set are ever passed to FoundationDB, so that the database's own
// defaults (fdb.DatabaseOptions.SetTransactionTimeout and friends) stay in
// force otherwise.
type txnOptions struct {
	timeout          time.Duration // 0: none
	timeoutSet       bool          // a timeout, possibly 0, was given to FoundationDB
	retryLimit       int
	retryLimitSet    bool
	maxRetryDelay    time.Duration
	maxRetryDelaySet bool
	sizeLimit        int // 0: not set
	accessSystem     bool
	readSystem       bool
}

var (
	_ kv.Transaction        = (*transaction)(nil)
	_ kv.ReadTransaction    = snapshot{}
	_ kv.TransactionOptions = options{}
)

// begin starts FoundationDB's clock at now, applies the context's deadline
// as the timeout and registers the watcher that cancels the transaction
// when the context is done.
func (t *transaction) begin(now time.Time) error {
	t.start, t.clock = now, now
	t.arm()
	if t.ctx.Err() != nil {
		// The watcher would cancel from its own goroutine; do it now so
		// that the very next operation already fails.
		t.tr.Cancel()
	}
	return t.applyTimeout()
}

// arm registers the context watcher if none is registered.
func (t *transaction) arm() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.stop == nil {
		tr := t.tr
		t.mu.stop = context.AfterFunc(t.ctx, tr.Cancel)
	}
}

// disarm unregisters the context watcher, so that a finished transaction is
// not kept alive by a long-lived context.
func (t *transaction) disarm() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.stop != nil {
		t.mu.stop()
		t.mu.stop = nil
	}
}

// applyTimeout gives FoundationDB the smaller of the explicit timeout and
// the context's deadline.
func (t *transaction) applyTimeout() error {
	deadline, ok := t.ctx.Deadline()
	ms, fromCtx := effectiveTimeout(t.opts.timeout, deadline, ok, t.start, t.clock)
	t.timeoutFromCtx = fromCtx
	if ms == 0 && !t.opts.timeoutSet {
		return nil // leave the database's default timeout alone
	}
	t.opts.timeoutSet = true
	return t.err(t.tr.Options().SetTimeout(ms))
}

// state is what error mapping needs to know about t.
func (t *transaction) state() txnState {
	return txnState{ctxErr: t.ctx.Err(), timeoutFromCtx: t.timeoutFromCtx}
}

// err maps an error from the bindings.
func (t *transaction) err(err error) error { return fromFDB(err, t.state()) }

// unusable reports the error every read, write and commit returns
// without asking FoundationDB: a closed DB (whose handle may be
// destroyed), a done context, or a remembered invalid write. The context is
// checked here, synchronously, because the watcher cancels from its own
// goroutine: without the check an operation issued just after cancel()
// returned could still succeed.
func (t *transaction) unusable() error {
	if t.db.closed.Load() {
		return kv.ErrClosed
	}
	if err := t.ctx.Err(); err != nil {
		return ctxError(err)
	}
	return t.pendingErr
}

// closedErr is the check for what may still be asked of a transaction once
// its context is done — its committed version, versionstamp and size —
// since a caller commonly cancels the context right after a commit.
func (t *transaction) closedErr() error {
	if t.db.closed.Load() {
		return kv.ErrClosed
	}
	return nil
}

func fdbRange(r kv.Range) fdb.KeyRange {
	return fdb.KeyRange{Begin: fdb.Key(r.Begin), End: fdb.Key(r.End)}
}

// rangeOptions chooses the streaming mode up front, so that the first
// batch (issued by GetRange itself) already uses it: exact for a limited
// read, want-all for the whole range, as GetSliceWithError would for
// later batches.
func rangeOptions(o kv.RangeOptions) fdb.RangeOptions {
	mode := fdb.StreamingModeWantAll
	if o.Limit > 0 {
		mode = fdb.StreamingModeExact
	}
	return fdb.RangeOptions{Limit: o.Limit, Mode: mode, Reverse: o.Reverse}
}

// reader is what Transaction and Snapshot share in the bindings.
type reader interface {
	Get(key fdb.KeyConvertible) fdb.FutureByteSlice
	GetRange(r fdb.Range, options fdb.RangeOptions) fdb.RangeResult
	GetReadVersion() fdb.FutureInt64
}

// get issues the read at once and waits in the future. The bindings
// return nil for an absent key and, through C.GoBytes, a non-nil empty
// slice for a present empty value, which is kv's contract as is.
func (t *transaction) get(rd reader, key []byte) *kv.Future[[]byte] {
	if err := t.unusable(); err != nil {
		return kv.Failed[[]byte](err)
	}
	f := rd.Get(fdb.Key(key))
	return kv.NewFuture(func() ([]byte, error) {
		v, err := f.Get()
		if err != nil {
			return nil, t.err(err)
		}
		return v, nil
	})
}

func (t *transaction) getRange(rd reader, r kv.Range, o kv.RangeOptions) *kv.Future[[]kv.KeyValue] {
	if err := t.unusable(); err != nil {
		return kv.Failed[[]kv.KeyValue](err)
	}
	if o.Limit < 0 {
		return kv.Failed[[]kv.KeyValue](kv.Errorf(2012, "fdbkv: range limit %d is negative: use 0 (no limit) or more", o.Limit))
	}
	rr := rd.GetRange(fdbRange(r), rangeOptions(o))
	return kv.NewFuture(func() ([]kv.KeyValue, error) {
		kvs, err := rr.GetSliceWithError()
		if err != nil {
			return nil, t.err(err)
		}
		out := make([]kv.KeyValue, len(kvs))
		for i, p := range kvs {
			out[i] = kv.KeyValue{Key: p.Key, Value: p.Value}
		}
		return out, nil
	})
}

func (t *transaction) getReadVersion(rd reader) *kv.Future[int64] {
	if err := t.unusable(); err != nil {
		return kv.Failed[int64](err)
	}
	f := rd.GetReadVersion()
	return kv.NewFuture(func() (int64, error) {
		v, err := f.Get()
		return v, t.err(err)
	})
}

func (t *transaction) Get(key []byte) *kv.Future[[]byte] { return t.get(t.tr, key) }

func (t *transaction) GetRange(r kv.Range, o kv.RangeOptions) *kv.Future[[]kv.KeyValue] {
	return t.getRange(t.tr, r, o)
}

func (t *transaction) GetReadVersion() *kv.Future[int64] { return t.getReadVersion(t.tr) }

// snapshot is the snapshot view of a transaction.
type snapshot struct{ t *transaction }

func (t *transaction) Snapshot() kv.ReadTransaction { return snapshot{t} }

func (s snapshot) Get(key []byte) *kv.Future[[]byte] { return s.t.get(s.t.tr.Snapshot(), key) }

func (s snapshot) GetRange(r kv.Range, o kv.RangeOptions) *kv.Future[[]kv.KeyValue] {
	return s.t.getRange(s.t.tr.Snapshot(), r, o)
}

func (s snapshot) GetReadVersion() *kv.Future[int64] { return s.t.getReadVersion(s.t.tr.Snapshot()) }

func (t *transaction) Set(key, value []byte) {
	if t.unusable() == nil {
		t.tr.Set(fdb.Key(key), value)
	}
}

func (t *transaction) Clear(key []byte) {
	if t.unusable() == nil {
		t.tr.Clear(fdb.Key(key))
	}
}

func (t *transaction) ClearRange(r kv.Range) {
	if t.unusable() == nil {
		t.tr.ClearRange(fdbRange(r))
	}
}

// Atomic maps each kv.MutationType to the bindings' method with the same
// FoundationDB code (typecheck_test checks the codes against the bindings'
// generated.go). An unknown op is remembered as client_invalid_operation
// and reported by later reads and by Commit, as kv.Transaction requires of
// invalid writes; passing it to FoundationDB would be undefined.
func (t *transaction) Atomic(op kv.MutationType, key, param []byte) {
	if t.unusable() != nil {
		return
	}
	k := fdb.Key(key)
	switch op {
	case kv.Add:
		t.tr.Add(k, param)
	case kv.BitAnd:
		t.tr.BitAnd(k, param)
	case kv.BitOr:
		t.tr.BitOr(k, param)
	case kv.BitXor:
		t.tr.BitXor(k, param)
	case kv.AppendIfFits:
		t.tr.AppendIfFits(k, param)
	case kv.Max:
		t.tr.Max(k, param)
	case kv.Min:
		t.tr.Min(k, param)
	case kv.SetVersionstampedKey:
		t.tr.SetVersionstampedKey(k, param)
	case kv.SetVersionstampedValue:
		t.tr.SetVersionstampedValue(k, param)
	case kv.ByteMin:
		t.tr.ByteMin(k, param)
	case kv.ByteMax:
		t.tr.ByteMax(k, param)
	case kv.CompareAndClear:
		t.tr.CompareAndClear(k, param)
	default:
		// The bindings have no call for an unknown type. FoundationDB
		// checks the key's range first (key_outside_legal_range) and then
		// the type (invalid_mutation_type, 2018).
		if len(key) > 0 && key[0] == kv.SystemPrefix && !t.opts.accessSystem {
			t.pendingErr = kv.Errorf(kv.CodeKeyOutsideLegalRange, "fdbkv: key %q is in the system keyspace", key)
			return
		}
		t.pendingErr = kv.Errorf(2018, "fdbkv: %v is not an atomic operation", op)
	}
}

func (t *transaction) AddReadConflictRange(r kv.Range) error {
	if err := t.unusable(); err != nil {
		return err
	}
	return t.err(t.tr.AddReadConflictRange(fdbRange(r)))
}

func (t *transaction) AddWriteConflictRange(r kv.Range) error {
	if err := t.unusable(); err != nil {
		return err
	}
	return t.err(t.tr.AddWriteConflictRange(fdbRange(r)))
}

func (t *transaction) SetReadVersion(v int64) {
	if t.unusable() == nil {
		t.tr.SetReadVersion(v)
	}
}

// Commit issues the commit at once. A successful commit unregisters the
// context watcher: the transaction is done, and canceling it now would
// only fail GetVersionstamp.
func (t *transaction) Commit() *kv.Future[struct{}] {
	if err := t.unusable(); err != nil {
		return kv.Failed[struct{}](err)
	}
	// Ask for the versionstamp first: afterwards FoundationDB refuses to
	// (used_during_commit). The future costs a little client memory and
	// resolves with the commit.
	t.stamp = t.tr.GetVersionstamp()
	f := t.tr.Commit()
	return kv.NewFuture(func() (struct{}, error) {
		if err := f.Get(); err != nil {
			return struct{}{}, t.err(err)
		}
		t.disarm()
		return struct{}{}, nil
	})
}

// OnError is FoundationDB's retry policy with two codes taken away from
// the bindings' OnError, which is never called for them:
//
//   - transaction_timed_out (1031) is returned as is: not retryable, and
//     the caller (txn) must decide whether the commit landed.
//   - cluster_version_changed (1039) is maybe-committed. The multi-version
//     client's OnError answers it by switching to the new client's
//     transaction and reporting success, which would make a stock retry
//     loop re-run the function blindly. Here the transaction is reset and
//     backed off (kv.Backoff, jittered, capped by the max retry delay) and
//     nil returned, as for any retryable error; the caller still saw the
//     1039 first and can act on it before retrying.
//
// Once the context is done, OnError retries nothing and returns err (which,
// from this transaction's operations, already carries the context's error
// as its cause). Errors that are not *kv.Error are returned as is.
func (t *transaction) OnError(err error) error {
	code, ok := kv.ErrorCode(err)
	if !ok {
		return err
	}
	if t.ctx.Err() != nil {
		return err // nothing is retried for a done context
	}
	if t.opts.retryLimitSet && t.opts.retryLimit >= 0 && t.retries >= t.opts.retryLimit && kv.CodeRetryable(code) {
		// FoundationDB's onError cancels a transaction whose error it
		// refuses (API >= 610); this path refuses without asking it.
		t.tr.Cancel()
		return err
	}
	switch code {
	case kv.CodeTransactionTimedOut:
		return err
	case kv.CodeClusterVersionChanged:
		maxDelay := kv.DefaultMaxRetryDelay
		if t.opts.maxRetryDelaySet {
			maxDelay = t.opts.maxRetryDelay
		}
		d := t.backoff.Next(maxDelay, rand.Float64())
		timer := time.NewTimer(d)
		select {
		case <-timer.C:
		case <-t.ctx.Done():
			timer.Stop()
			return ctxError(t.ctx.Err())
		}
		t.tr.Reset()
		t.pendingErr, t.stamp = nil, nil
		t.retries++
		// The reset restarts FoundationDB's timeout clock and drops every
		// option; kv's clock (start) runs on, as it does across the
		// bindings' OnError.
		t.clock = time.Now()
		if t.ctx.Err() != nil {
			t.tr.Cancel()
		}
		t.dropTransientOptions()
		return t.reapplyOptions()
	}
	if t.db.closed.Load() {
		return kv.ErrClosed
	}
	if e := t.tr.OnError(fdb.Error{Code: int(code)}).Get(); e != nil {
		mapped := t.err(e)
		if c, ok := kv.ErrorCode(mapped); ok && c == code {
			return err // the same error: keep the caller's value, cause and all
		}
		return mapped
	}
	t.pendingErr, t.stamp = nil, nil
	t.retries++
	// FoundationDB (API >= 610) keeps the timeout, retry limit and max
	// retry delay across OnError but not the others (size limit, system
	// key access), and so does kv's contract; re-applying the kept ones is
	// cheap (options are set locally).
	t.dropTransientOptions()
	return t.reapplyOptions()
}

// dropTransientOptions forgets the options OnError does not keep: those
// fdb.options does not mark persistent.
func (t *transaction) dropTransientOptions() {
	t.opts.sizeLimit, t.opts.accessSystem, t.opts.readSystem = 0, false, false
}

// reapplyOptions sets every option set through Options() again, and the
// context-derived timeout.
func (t *transaction) reapplyOptions() error {
	o, p := t.tr.Options(), &t.opts
	if p.retryLimitSet {
		if err := o.SetRetryLimit(int64(p.retryLimit)); err != nil {
			return t.err(err)
		}
	}
	if p.maxRetryDelaySet {
		ms, _ := durationMillis("max retry delay", p.maxRetryDelay) // validated when set
		if err := o.SetMaxRetryDelay(ms); err != nil {
			return t.err(err)
		}
	}
	if p.sizeLimit != 0 {
		if err := o.SetSizeLimit(int64(p.sizeLimit)); err != nil {
			return t.err(err)
		}
	}
	if p.accessSystem {
		if err := o.SetAccessSystemKeys(); err != nil {
			return t.err(err)
		}
	}
	if p.readSystem {
		if err := o.SetReadSystemKeys(); err != nil {
			return t.err(err)
		}
	}
	return t.applyTimeout()
}

// Reset returns the transaction to its freshly created state: options are
// forgotten (except the context's deadline, which is re-applied), the
// retry count and backoff start over, and the context watcher is
// registered again if a commit had removed it.
func (t *transaction) Reset() {
	if t.db.closed.Load() {
		return
	}
	t.tr.Reset()
	t.opts = txnOptions{}
	t.retries, t.pendingErr, t.stamp = 0, nil, nil
	t.backoff.Reset()
	// The only failure is setting the timeout, which was valid before.
	_ = t.begin(time.Now())
}

// Cancel may be called from any goroutine.
func (t *transaction) Cancel() {
	if !t.db.closed.Load() {
		t.tr.Cancel()
	}
}

func (t *transaction) GetCommittedVersion() (int64, error) {
	if err := t.closedErr(); err != nil {
		return 0, err
	}
	v, err := t.tr.GetCommittedVersion()
	return v, t.err(err)
}

func (t *transaction) GetVersionstamp() *kv.Future[kv.Versionstamp] {
	if err := t.closedErr(); err != nil {
		return kv.Failed[kv.Versionstamp](err)
	}
	f := t.stamp
	if f == nil {
		f = t.tr.GetVersionstamp()
	}
	return kv.NewFuture(func() (kv.Versionstamp, error) {
		k, err := f.Get()
		if err != nil {
			return kv.Versionstamp{}, t.err(err)
		}
		return versionstampFromBytes(k)
	})
}

func (t *transaction) GetApproximateSize() *kv.Future[int64] {
	if err := t.closedErr(); err != nil {
		return kv.Failed[int64](err)
	}
	f := t.tr.GetApproximateSize()
	return kv.NewFuture(func() (int64, error) {
		v, err := f.Get()
		return v, t.err(err)
	})
}

func (t *transaction) Options() kv.TransactionOptions { return options{t} }

// options sets transaction options, validating them here so that a bad
// value names the limit (FoundationDB's invalid_option_value says only
// that it is invalid).
type options struct{ t *transaction }

func (o options) SetTimeout(d time.Duration) error {
	if _, err := durationMillis("timeout", d); err != nil {
		return err
	}
	old := o.t.opts
	o.t.opts.timeout, o.t.opts.timeoutSet = d, true
	if err := o.t.applyTimeout(); err != nil {
		o.t.opts = old
		return err
	}
	return nil
}

func (o options) SetRetryLimit(n int) error {
	p, err := retryLimitParam(n)
	if err != nil {
		return err
	}
	if err := o.t.tr.Options().SetRetryLimit(p); err != nil {
		return o.t.err(err)
	}
	o.t.opts.retryLimit, o.t.opts.retryLimitSet = n, true
	return nil
}

func (o options) SetMaxRetryDelay(d time.Duration) error {
	ms, err := durationMillis("max retry delay", d)
	if err != nil {
		return err
	}
	if err := o.t.tr.Options().SetMaxRetryDelay(ms); err != nil {
		return o.t.err(err)
	}
	o.t.opts.maxRetryDelay, o.t.opts.maxRetryDelaySet = d, true
	return nil
}

func (o options) SetSizeLimit(n int) error {
	p, err := sizeLimitParam(n)
	if err != nil {
		return err
	}
	if err := o.t.tr.Options().SetSizeLimit(p); err != nil {
		return o.t.err(err)
	}
	o.t.opts.sizeLimit = n
	return nil
}

func (o options) SetAccessSystemKeys() error {
	if err := o.t.tr.Options().SetAccessSystemKeys(); err != nil {
		return o.t.err(err)
	}
	o.t.opts.accessSystem = true
	return nil
}

func (o options) SetReadSystemKeys() error {
	if err := o.t.tr.Options().SetReadSystemKeys(); err != nil {
		return o.t.err(err)
	}
	o.t.opts.readSystem = true
	return nil
}

// Unwrap returns the fdb.Transaction behind a transaction from this
// package, for code that needs the bindings' own API inside a transaction
// function: tuple and subspace keys, the directory layer, watches. Writes
// made through it are part of the same transaction. It follows wrappers
// that have an Unwrap() kv.Transaction method. It reports false for a
// transaction from any other backend.
func Unwrap(tr kv.Transaction) (fdb.Transaction, bool) {
	for tr != nil {
		if t, ok := tr.(*transaction); ok {
			return t.tr, true
		}
		u, ok := tr.(interface{ Unwrap() kv.Transaction })
		if !ok {
			break
		}
		tr = u.Unwrap()
	}
	return fdb.Transaction{}, false
}
