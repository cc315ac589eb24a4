package embedded

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/idemkv/idemkv/kv"
)

// transaction implements kv.Transaction. It is for one goroutine at a time,
// except Cancel.
type transaction struct {
	db  *DB
	ctx context.Context
	rng *rand.Rand

	// Persistent options: kept by OnError, cleared by Reset.
	timeout       time.Duration
	retryLimit    int
	maxRetryDelay time.Duration
	// start is when the transaction was created or last Reset; the timeout
	// runs from it and OnError does not restart it (API >= 610).
	start   time.Time
	retries int
	backoff kv.Backoff

	// cmu covers cancel, which Cancel may close from any goroutine.
	// isCancelled mirrors it being closed, for live to check on every
	// operation without the lock.
	cmu         sync.Mutex
	cancel      chan struct{}
	isCancelled atomic.Bool

	a attempt
}

// attempt is the state OnError and Reset discard.
type attempt struct {
	// Options FoundationDB does not keep across onError (they are not
	// "persistent" in fdb.options): system key access and the size limit.
	accessSystem, readSystem bool
	sizeLimit                int

	rv    int64
	hasRV bool
	// read: rv came from the database (GetReadVersion, a read) or a read
	// has checked it, so a commit need not check it again.
	read bool
	// memSnap is the in-memory store at rv, once a read made it.
	memSnap *snapshot

	writes writeMap
	// req is the commit request, made by the first write or conflict
	// range: muts, reads and wconf start in its inline arrays, and Commit
	// sends it. The committer owns it from the send on, and the attempt is
	// discarded before anything is written again, so the arrays are never
	// modified under the committer.
	req *commitReq
	// arena is the room left in req's read arena (readCopy).
	arena []byte
	muts  []mutation
	// points indexes muts by key for the point writes, so that a Set or
	// Clear can supersede the earlier ones (see record).
	points   map[string][]int
	reads    []kv.Range
	wconf    []kv.Range
	size     int64
	deferred error // first invalid write; returned by reads and Commit

	// commitStarted is set by Commit and cleared only by OnError and
	// Reset: until then reads, writes, conflict ranges and a second Commit
	// fail with used_during_commit, as RYW's checkUsedDuringCommit makes
	// them (after a successful commit too).
	commitStarted bool
	committed     bool
	version       int64
	// stamp resolves this attempt's GetVersionstamp futures; made by the
	// first GetVersionstamp (most transactions never ask), holding the
	// outcome already in stampDone if there is one.
	stamp *stampResult
	// stampSet, stampVal, stampErr: the outcome, once the commit ended.
	stampSet bool
	stampVal kv.Versionstamp
	stampErr error
}

// stampResult is an attempt's versionstamp: done is closed when the commit
// ends or the attempt is discarded, with val or err set before.
type stampResult struct {
	done chan struct{}
	val  kv.Versionstamp
	err  error
}

// resolveStamp sets the attempt's versionstamp outcome once; later calls
// are no-ops.
func (t *transaction) resolveStamp(v kv.Versionstamp, err error) {
	if t.a.stampSet {
		return
	}
	t.a.stampSet, t.a.stampVal, t.a.stampErr = true, v, err
	if t.a.stamp != nil {
		t.a.stamp.resolve(v, err)
	}
}

// resolve sets the outcome once; later calls are no-ops.
func (s *stampResult) resolve(v kv.Versionstamp, err error) {
	select {
	case <-s.done:
	default:
		s.val, s.err = v, err
		close(s.done)
	}
}

// FoundationDB codes the kv package does not name.
const (
	codeReadVersionAlreadySet     kv.Code = 2010 // read_version_already_set
	codeVersionInvalid            kv.Code = 2011 // version_invalid
	codeRangeLimitsInvalid        kv.Code = 2012 // range_limits_invalid
	codeInvalidMutationType       kv.Code = 2018 // invalid_mutation_type
	codeTransactionInvalidVersion kv.Code = 2020 // transaction_invalid_version
	codeNoCommitVersion           kv.Code = 2021 // no_commit_version
)

func newTransaction(db *DB, ctx context.Context) *transaction {
	// reset's state, built in place: reset would zero the attempt a second
	// time.
	return &transaction{
		db: db, ctx: ctx,
		retryLimit: -1, maxRetryDelay: kv.DefaultMaxRetryDelay, start: time.Now(),
		cancel: make(chan struct{}),
		a:      attempt{sizeLimit: kv.DefaultSizeLimit},
	}
}

// reset returns t to its freshly created state.
func (t *transaction) reset() {
	t.timeout = 0
	t.retryLimit = -1
	t.maxRetryDelay = kv.DefaultMaxRetryDelay
	t.start = time.Now()
	t.retries = 0
	t.backoff.Reset()
	t.cmu.Lock()
	t.cancel = make(chan struct{})
	t.isCancelled.Store(false)
	t.cmu.Unlock()
	t.newAttempt()
}

// newAttempt discards the attempt state, keeping options and the cancel
// state.
func (t *transaction) newAttempt() {
	if !t.a.stampSet && t.a.stamp != nil {
		// Only a GetVersionstamp future is waiting for an outcome; the
		// error is made for it alone (formatting one on every attempt
		// cost two allocations per transaction).
		t.resolveStamp(kv.Versionstamp{}, kv.Errorf(kv.CodeTransactionCancelled, "transaction was reset before its commit ended"))
	}
	t.a = attempt{sizeLimit: kv.DefaultSizeLimit}
}

func (t *transaction) cancelCh() chan struct{} {
	t.cmu.Lock()
	defer t.cmu.Unlock()
	return t.cancel
}

// live returns the error every operation fails with once the transaction
// is closed, canceled or timed out; nil otherwise.
func (t *transaction) live() error {
	if t.db.closed.Load() {
		return errClosed("transaction")
	}
	if t.isCancelled.Load() {
		return kv.NewError(kv.CodeTransactionCancelled)
	}
	if err := t.ctx.Err(); err != nil {
		return ctxError(err)
	}
	if t.timeout > 0 && time.Since(t.start) >= t.timeout {
		return t.timedOut()
	}
	return nil
}

func ctxError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return &kv.Error{Code: kv.CodeTransactionTimedOut, Cause: context.DeadlineExceeded}
	}
	return &kv.Error{Code: kv.CodeTransactionCancelled, Cause: err}
}

// timeoutTimer returns a channel that fires when the transaction's timeout
// passes (nil, never firing, without one) and a func to stop it.
func (t *transaction) timeoutTimer() (<-chan time.Time, func()) {
	if t.timeout <= 0 {
		return nil, func() {}
	}
	tm := time.NewTimer(t.timeout - time.Since(t.start))
	return tm.C, func() { tm.Stop() }
}

func (t *transaction) timedOut() error {
	return kv.Errorf(kv.CodeTransactionTimedOut, "timeout of %v passed", t.timeout)
}

// wait blocks until ch is closed or the transaction is interrupted, and
// returns the interruption's error. untilClose also gives up when the
// database closes; a commit the committer has received does not (the
// committer finishes its group before Close returns).
func (t *transaction) wait(ch <-chan struct{}, untilClose bool) error {
	var closing <-chan struct{}
	if untilClose {
		closing = t.db.closing
	}
	timer, stop := t.timeoutTimer()
	defer stop()
	select {
	case <-ch:
		return nil
	case <-t.cancelCh():
		return kv.NewError(kv.CodeTransactionCancelled)
	case <-t.ctx.Done():
		return ctxError(t.ctx.Err())
	case <-timer:
		return t.timedOut()
	case <-closing:
		return errClosed("transaction")
	}
}

// readCheck is what every read checks first.
func (t *transaction) readCheck() error {
	if err := t.live(); err != nil {
		return err
	}
	if t.a.commitStarted {
		return usedDuringCommit()
	}
	return t.a.deferred
}

// snapshotForRead returns the state at the read version, getting one first
// if needed. It asks the database every time, so that a read version that
// has aged past five seconds fails with transaction_too_old even when its
// snapshot has not been released yet (an idle database releases nothing).
func (t *transaction) snapshotForRead() (*snapshot, error) {
	if !t.a.hasRV {
		v, err := t.db.readVersion()
		if err != nil {
			return nil, err
		}
		t.a.rv, t.a.hasRV = v, true
	}
	if t.a.memSnap != nil {
		// In memory a snapshot is only the store and the version: the
		// attempt's is reused once the version is checked again.
		if err := t.db.checkReadVersion(t.a.rv); err != nil {
			return nil, err
		}
		return t.a.memSnap, nil
	}
	s, err := t.db.snapshotAt(t.a.rv)
	if err != nil {
		return nil, err
	}
	if s.mem != nil {
		t.a.memSnap = s
	}
	t.a.read = true
	return s, nil
}

// ---- commit ----

func (t *transaction) Commit() *kv.Future[struct{}] {
	if err := t.commit(); err != nil {
		return kv.Failed[struct{}](err)
	}
	return committed
}

// errNoCommitVersion is a read-only commit's versionstamp error, one
// value for all (errors are never modified).
var errNoCommitVersion = kv.Errorf(codeNoCommitVersion, "a read-only transaction has no commit version or versionstamp")

// committed is every successful Commit's future: a resolved future is
// never modified, so one is shared rather than one allocated per commit.
var committed = kv.Ready(struct{}{}, nil)

func (t *transaction) commit() error {
	if err := t.live(); err != nil {
		return t.failStamp(err)
	}
	if t.a.commitStarted {
		return usedDuringCommit()
	}
	t.a.commitStarted = true
	if t.a.deferred != nil {
		return t.failStamp(t.a.deferred)
	}
	if len(t.a.muts) == 0 && len(t.a.wconf) == 0 {
		// Read-only: commits even on a failed DB, whose reads still work.
		t.a.committed, t.a.version = true, -1
		t.resolveStamp(kv.Versionstamp{}, errNoCommitVersion)
		if t.a.req != nil { // made for read conflict ranges, never sent
			t.recycle()
		}
		return nil
	}
	if ferr := t.db.fail.get(); ferr != nil {
		return t.failStamp(failedCommitError(ferr))
	}
	if t.db.opts.ReadOnly {
		return t.failStamp(fmt.Errorf("embedded: commit: %w", ErrReadOnly))
	}
	// The size limit applies to what a FoundationDB client sends: one
	// mutation per key after read-your-writes coalescing and merged
	// conflict ranges, not every call (GetApproximateSize counts those).
	// The sent size is at most the approximate size (every call counted in
	// full), so most commits skip computing it.
	if t.a.size > int64(t.a.sizeLimit) {
		if sent := t.sentSize(); sent > int64(t.a.sizeLimit) {
			return t.failStamp(kv.Errorf(kv.CodeTransactionTooLarge, "transaction size %d exceeds the limit of %d", sent, t.a.sizeLimit))
		}
	}
	req := t.request()
	req.muts, req.writes, req.size = t.a.muts, t.a.wconf, t.a.size
	if len(t.a.reads) > 0 && !t.a.hasRV {
		// Only explicit read conflict ranges and no read version yet: get
		// one now, as FoundationDB's client does before committing.
		v, err := t.db.readVersion()
		if err != nil {
			return t.failStamp(err)
		}
		t.a.rv, t.a.hasRV, t.a.read = v, true, true
	}
	if len(t.a.reads) > 0 {
		if !t.a.read {
			// Only explicit read conflict ranges at a version from
			// SetReadVersion: check it as a read would have. (One the
			// database handed out is readable; if it has aged past five
			// seconds since, the committer fails it as too old.)
			if err := t.db.checkReadVersion(t.a.rv); err != nil {
				return t.failStamp(t.readErr(err))
			}
		}
		req.reads, req.rv = t.a.reads, t.a.rv
	}
	if !t.db.queue.send(req) {
		return t.failStamp(errClosed("commit"))
	}
	if err := t.wait(req.done, false); err != nil {
		// The commit is queued or in flight and may still land: the
		// maybe-committed outcome FoundationDB gives for a timeout too.
		// (The committer still holds req: it is not recycled.)
		return t.failStamp(err)
	}
	version, stamp, err := req.version, req.stamp, req.err
	t.recycle()
	if err != nil {
		return t.failStamp(err)
	}
	t.a.committed, t.a.version = true, version
	t.resolveStamp(stamp, nil)
	return nil
}

// reqPool holds answered commit requests for reuse, each with its done
// channel emptied by the answer's receipt.
var reqPool = sync.Pool{New: func() any { return &commitReq{done: make(chan struct{}, 1)} }}

// recycle returns the attempt's commit request, answered and received, to
// reqPool. Nothing else refers to it by then: the committer let it go with
// the answer, and what it stored (keys, values, conflict ranges) are
// slices of their own, not the request's arrays. The attempt forgets its
// mutations, conflict ranges and write map, which lived in the request:
// after Commit nothing reads them (reads fail with used_during_commit).
func (t *transaction) recycle() {
	r := t.a.req
	t.a.req, t.a.muts, t.a.reads, t.a.wconf, t.a.points, t.a.arena = nil, nil, nil, nil, nil, nil
	t.a.writes = writeMap{}
	*r = commitReq{done: r.done}
	reqPool.Put(r)
}

// request returns the attempt's commit request, making it (and starting
// muts, reads and wconf in its inline arrays) on first use.
func (t *transaction) request() *commitReq {
	if t.a.req == nil {
		r := reqPool.Get().(*commitReq)
		t.a.req = r
		t.a.muts = r.inline.muts[:0]
		t.a.reads = r.inline.reads[:0]
		t.a.wconf = r.inline.writes[:0]
		t.a.arena = r.inline.arena[:0]
		if t.a.writes.keys.small == nil && t.a.writes.keys.tree == nil {
			t.a.writes.keys.small = r.inline.index[:0]
		}
		t.a.writes.spare = r.inline.entries[:]
	}
	return t.a.req
}

// failStamp resolves pending GetVersionstamp futures with
// transaction_invalid_version (2020), as FoundationDB's client does for a
// commit that failed (the commit error is its cause), and returns err.
func (t *transaction) failStamp(err error) error {
	t.resolveStamp(kv.Versionstamp{}, &kv.Error{Code: codeTransactionInvalidVersion, Detail: "the commit failed", Cause: err})
	return err
}

func usedDuringCommit() error {
	return kv.Errorf(kv.CodeUsedDuringCommit, "Commit was called: OnError or Reset the transaction to use it again")
}

// GetCommittedVersion is -1 (and no error) until a commit that wrote
// succeeds, as FoundationDB's committedVersion starts at invalidVersion.
func (t *transaction) GetCommittedVersion() (int64, error) {
	if !t.a.committed {
		return -1, nil
	}
	return t.a.version, nil
}

// GetVersionstamp works after Commit too, unlike FoundationDB's (which
// fails with used_during_commit): kv promises the stamp of a committed
// transaction, and kv/fdbkv keeps that promise on a cluster by asking for
// it before committing.
func (t *transaction) GetVersionstamp() *kv.Future[kv.Versionstamp] {
	if t.a.stampSet {
		return kv.Ready(t.a.stampVal, t.a.stampErr)
	}
	if t.a.stamp == nil {
		t.a.stamp = &stampResult{done: make(chan struct{})}
	}
	s := t.a.stamp
	return kv.NewFuture(func() (kv.Versionstamp, error) {
		<-s.done
		return s.val, s.err
	})
}

// ---- retries, reset, cancel ----

func (t *transaction) OnError(err error) error {
	if err == nil {
		// nil would tell the caller's loop to retry a transaction that did
		// not fail.
		return kv.Errorf(kv.CodeClientInvalidOperation, "OnError(nil): pass the error the transaction returned")
	}
	if t.cancelled() {
		return kv.NewError(kv.CodeTransactionCancelled)
	}
	if !kv.IsRetryable(err) || t.retryLimit >= 0 && t.retries >= t.retryLimit {
		// FoundationDB (API >= 610) cancels a transaction whose error it
		// refuses: its writes can no longer commit, and every operation
		// fails with transaction_cancelled until Reset.
		t.Cancel()
		return err
	}
	if t.rng == nil { // made on the first retry: most transactions never retry
		t.rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	d := t.backoff.Next(t.maxRetryDelay, t.rng.Float64())
	if d > 0 {
		slept := make(chan struct{})
		tm := time.AfterFunc(d, func() { close(slept) })
		werr := t.wait(slept, true)
		tm.Stop()
		if werr != nil {
			return werr
		}
	}
	// Checked after the backoff too: when the backoff and the timeout end
	// together, wait's select may pick either (seen on a loaded machine).
	if lerr := t.live(); lerr != nil {
		return lerr
	}
	t.retries++
	t.newAttempt()
	return nil
}

func (t *transaction) Reset() { t.reset() }

// cancelled reports whether Cancel (or a refused OnError) has cancelled
// the transaction.
func (t *transaction) cancelled() bool { return t.isCancelled.Load() }

func (t *transaction) Cancel() {
	t.cmu.Lock()
	defer t.cmu.Unlock()
	select {
	case <-t.cancel:
	default:
		t.isCancelled.Store(true)
		close(t.cancel)
	}
}

// ---- options ----

func (t *transaction) Options() kv.TransactionOptions { return options{t} }

type options struct{ t *transaction }

func badOption(format string, args ...any) error {
	return kv.Errorf(kv.CodeInvalidOptionValue, format, args...)
}

func (o options) SetTimeout(d time.Duration) error {
	if d < 0 {
		return badOption("timeout %v is negative (0 disables)", d)
	}
	o.t.timeout = d
	return nil
}

func (o options) SetRetryLimit(n int) error {
	if n < -1 {
		return badOption("retry limit %d is below -1 (-1 means no limit)", n)
	}
	o.t.retryLimit = n
	return nil
}

func (o options) SetMaxRetryDelay(d time.Duration) error {
	if d < 0 {
		return badOption("max retry delay %v is negative", d)
	}
	o.t.maxRetryDelay = d
	return nil
}

func (o options) SetSizeLimit(n int) error {
	if n < 32 || n > kv.DefaultSizeLimit {
		return badOption("size limit %d is outside 32 to %d", n, kv.DefaultSizeLimit)
	}
	o.t.a.sizeLimit = n
	return nil
}

func (o options) SetAccessSystemKeys() error { o.t.a.accessSystem = true; return nil }
func (o options) SetReadSystemKeys() error   { o.t.a.readSystem = true; return nil }

var _ kv.Transaction = (*transaction)(nil)
