package embedded

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"sort"
	"sync"
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
	sizeLimit     int
	// start is when the transaction was created or last Reset; the timeout
	// runs from it and OnError does not restart it (API >= 610).
	start   time.Time
	retries int
	backoff kv.Backoff

	// cmu covers cancel, which Cancel may close from any goroutine.
	cmu    sync.Mutex
	cancel chan struct{}

	a attempt
}

// attempt is the state OnError and Reset discard.
type attempt struct {
	accessSystem, readSystem bool

	rv    int64
	hasRV bool
	read  bool // a read has used rv

	writes   writeMap
	muts     []mutation
	reads    []kv.Range
	wconf    []kv.Range
	size     int64
	deferred error // first invalid write; returned by reads and Commit

	committing bool
	committed  bool
	version    int64
	// stamp resolves this attempt's GetVersionstamp futures.
	stamp *stampResult
}

// stampResult is an attempt's versionstamp: done is closed when the commit
// ends or the attempt is discarded, with val or err set before.
type stampResult struct {
	done chan struct{}
	val  kv.Versionstamp
	err  error
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
	codeInvalidMutationType kv.Code = 2018 // invalid_mutation_type
	codeNoCommitVersion     kv.Code = 2021 // no_commit_version
)

func newTransaction(db *DB, ctx context.Context) *transaction {
	t := &transaction{db: db, ctx: ctx, rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
	t.reset()
	return t
}

// reset returns t to its freshly created state.
func (t *transaction) reset() {
	t.timeout = 0
	t.retryLimit = -1
	t.maxRetryDelay = kv.DefaultMaxRetryDelay
	t.sizeLimit = kv.DefaultSizeLimit
	t.start = time.Now()
	t.retries = 0
	t.backoff.Reset()
	t.cmu.Lock()
	t.cancel = make(chan struct{})
	t.cmu.Unlock()
	t.newAttempt()
}

// newAttempt discards the attempt state, keeping options and the cancel
// state.
func (t *transaction) newAttempt() {
	if t.a.stamp != nil {
		t.a.stamp.resolve(kv.Versionstamp{}, kv.Errorf(kv.CodeTransactionCancelled, "transaction was reset before its commit ended"))
	}
	t.a = attempt{writes: newWriteMap(), stamp: &stampResult{done: make(chan struct{})}}
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
	select {
	case <-t.cancelCh():
		return kv.NewError(kv.CodeTransactionCancelled)
	default:
	}
	if err := t.ctx.Err(); err != nil {
		return ctxError(err)
	}
	if t.timeout > 0 && time.Since(t.start) >= t.timeout {
		return kv.Errorf(kv.CodeTransactionTimedOut, "timeout of %v passed", t.timeout)
	}
	return nil
}

func ctxError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return &kv.Error{Code: kv.CodeTransactionTimedOut, Cause: context.DeadlineExceeded}
	}
	return &kv.Error{Code: kv.CodeTransactionCancelled, Cause: err}
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
	var timer <-chan time.Time
	if t.timeout > 0 {
		tm := time.NewTimer(t.timeout - time.Since(t.start))
		defer tm.Stop()
		timer = tm.C
	}
	select {
	case <-ch:
		return nil
	case <-t.cancelCh():
		return kv.NewError(kv.CodeTransactionCancelled)
	case <-t.ctx.Done():
		return ctxError(t.ctx.Err())
	case <-timer:
		return kv.Errorf(kv.CodeTransactionTimedOut, "timeout of %v passed", t.timeout)
	case <-closing:
		return errClosed("transaction")
	}
}

// readCheck is what every read checks first.
func (t *transaction) readCheck() error {
	if err := t.live(); err != nil {
		return err
	}
	if t.a.committing {
		return kv.NewError(kv.CodeUsedDuringCommit)
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
	s, err := t.db.snapshotAt(t.a.rv)
	if err != nil {
		return nil, err
	}
	t.a.read = true
	return s, nil
}

// ---- reads ----

func (t *transaction) Get(key []byte) *kv.Future[[]byte] { return t.get(key, false) }

func (t *transaction) GetRange(r kv.Range, opts kv.RangeOptions) *kv.Future[[]kv.KeyValue] {
	return t.getRange(r, opts, false)
}

func (t *transaction) GetReadVersion() *kv.Future[int64] {
	if err := t.live(); err != nil {
		return kv.Failed[int64](err)
	}
	if !t.a.hasRV {
		v, err := t.db.readVersion()
		if err != nil {
			return kv.Failed[int64](err)
		}
		t.a.rv, t.a.hasRV = v, true
	}
	return kv.Ready(t.a.rv, nil)
}

func (t *transaction) Snapshot() kv.ReadTransaction { return snapshotView{t} }

// snapshotView reads without adding read conflict ranges.
type snapshotView struct{ t *transaction }

func (s snapshotView) Get(key []byte) *kv.Future[[]byte] { return s.t.get(key, true) }
func (s snapshotView) GetRange(r kv.Range, opts kv.RangeOptions) *kv.Future[[]kv.KeyValue] {
	return s.t.getRange(r, opts, true)
}
func (s snapshotView) GetReadVersion() *kv.Future[int64] { return s.t.GetReadVersion() }

func (t *transaction) maxReadKey() []byte {
	if t.a.accessSystem || t.a.readSystem {
		return []byte{0xff, 0xff}
	}
	return []byte{0xff}
}

func (t *transaction) maxWriteKey() []byte {
	if t.a.accessSystem {
		return []byte{0xff, 0xff}
	}
	return []byte{0xff}
}

func (t *transaction) get(key []byte, snapshot bool) *kv.Future[[]byte] {
	if err := t.readCheck(); err != nil {
		return kv.Failed[[]byte](err)
	}
	if bytes.Compare(key, t.maxReadKey()) >= 0 {
		return kv.Failed[[]byte](kv.Errorf(kv.CodeKeyOutsideLegalRange, "key %q is in the system keyspace; use SetReadSystemKeys or SetAccessSystemKeys", trunc(key)))
	}
	if len(key) > kv.MaxKeySize {
		// No key this long can exist (FoundationDB answers absent too).
		return kv.Ready[[]byte](nil, nil)
	}
	e, ok := t.a.writes.get(key)
	if ok && e.kind == entryUnreadable {
		return kv.Failed[[]byte](kv.Errorf(kv.CodeAccessedUnreadable, "key %q was written by SetVersionstampedValue", trunc(key)))
	}
	if ok && e.kind == entryKnown {
		return kv.Ready(clone(e.value, e.present), nil)
	}
	if !ok && t.a.writes.inCleared(key) {
		return kv.Ready[[]byte](nil, nil)
	}
	s, err := t.snapshotForRead()
	if err != nil {
		return kv.Failed[[]byte](err)
	}
	v, present, err := s.get(key)
	if err != nil {
		return kv.Failed[[]byte](t.readErr(err))
	}
	if ok {
		v, present = e.resolve(v, present)
	}
	if !snapshot {
		t.addRead(kv.SingleKeyRange(clone(key, true)))
	}
	return kv.Ready(clone(v, present), nil)
}

func (t *transaction) getRange(r kv.Range, opts kv.RangeOptions, snapshot bool) *kv.Future[[]kv.KeyValue] {
	if err := t.readCheck(); err != nil {
		return kv.Failed[[]kv.KeyValue](err)
	}
	if opts.Limit < 0 {
		return kv.Failed[[]kv.KeyValue](kv.Errorf(kv.CodeInvalidOptionValue, "range limit %d is negative (0 means no limit)", opts.Limit))
	}
	if max := t.maxReadKey(); bytes.Compare(r.Begin, max) > 0 || bytes.Compare(r.End, max) > 0 {
		return kv.Failed[[]kv.KeyValue](kv.Errorf(kv.CodeKeyOutsideLegalRange, "range %v reaches the system keyspace; use SetReadSystemKeys or SetAccessSystemKeys", r))
	}
	if r.Empty() {
		return kv.Ready[[]kv.KeyValue](nil, nil)
	}
	s, err := t.snapshotForRead()
	if err != nil {
		return kv.Failed[[]kv.KeyValue](err)
	}
	out, full, err := t.mergeRange(s, r, opts)
	if err != nil {
		return kv.Failed[[]kv.KeyValue](t.readErr(err))
	}
	if !snapshot {
		cr := kv.Range{Begin: clone(r.Begin, true), End: clone(r.End, true)}
		if !full && len(out) > 0 {
			// A limited read conflicts only on the part it actually read.
			last := out[len(out)-1].Key
			if opts.Reverse {
				cr.Begin = clone(last, true)
			} else {
				cr.End = kv.KeyAfter(last)
			}
		}
		t.addReadExceptOwn(cr)
	}
	return kv.Ready(out, nil)
}

// mergeRange merges the snapshot's keys in r with the transaction's own
// writes. full reports whether the whole range was read (no limit cut it).
func (t *transaction) mergeRange(s *snapshot, r kv.Range, opts kv.RangeOptions) (out []kv.KeyValue, full bool, err error) {
	ents := t.a.writes.entriesIn(r.Begin, r.End, opts.Reverse)
	before := func(a, b []byte) bool { // a comes first in scan order
		if opts.Reverse {
			return bytes.Compare(a, b) > 0
		}
		return bytes.Compare(a, b) < 0
	}
	limitHit := func() bool { return opts.Limit > 0 && len(out) >= opts.Limit }
	emitEntry := func(e *entry, base []byte, present bool) error {
		if e.kind == entryUnreadable {
			return kv.Errorf(kv.CodeAccessedUnreadable, "range read reached key %q written by SetVersionstampedValue", trunc(e.key))
		}
		if v, ok := e.resolve(base, present); ok {
			out = append(out, kv.KeyValue{Key: clone(e.key, true), Value: clone(v, true)})
		}
		return nil
	}
	i := 0
	stopped := false
	serr := s.scan(r.Begin, r.End, opts.Reverse, func(k, v []byte) bool {
		// Entries strictly before k have no snapshot value.
		for i < len(ents) && before(ents[i].key, k) {
			if err = emitEntry(ents[i], nil, false); err != nil {
				return false
			}
			i++
			if limitHit() {
				stopped = true
				return false
			}
		}
		if i < len(ents) && bytes.Equal(ents[i].key, k) {
			err = emitEntry(ents[i], v, true)
			i++
		} else if !t.a.writes.inCleared(k) {
			out = append(out, kv.KeyValue{Key: clone(k, true), Value: clone(v, true)})
		}
		if err != nil {
			return false
		}
		if limitHit() {
			stopped = true
			return false
		}
		return true
	})
	if serr != nil {
		return nil, false, serr
	}
	if err != nil {
		return nil, false, err
	}
	for !stopped && i < len(ents) {
		if err := emitEntry(ents[i], nil, false); err != nil {
			return nil, false, err
		}
		i++
		if limitHit() {
			stopped = true
		}
	}
	return out, !stopped, nil
}

// readErr prefers kv.ErrClosed to the transaction_too_old a snapshot
// released by Close reports.
func (t *transaction) readErr(err error) error {
	if t.db.closed.Load() {
		return errClosed("read")
	}
	return err
}

// clone copies v, keeping nil for absent and non-nil for present-but-empty.
func clone(v []byte, present bool) []byte {
	if !present {
		return nil
	}
	return append([]byte{}, v...)
}

// trunc shortens a key for messages.
func trunc(k []byte) []byte {
	if len(k) > 64 {
		return k[:64]
	}
	return k
}

// ---- conflict ranges and size ----

func (t *transaction) addRead(r kv.Range) {
	t.a.reads = append(t.a.reads, r)
	t.a.size += int64(len(r.Begin) + len(r.End))
}

// addReadExceptOwn adds the read conflict ranges of a range read: r minus
// the parts the transaction's own writes fully determine (cleared ranges
// and keys with a known value), as FoundationDB's read-your-writes layer
// does, so that a concurrent write to a key this transaction overwrote
// blindly is not a conflict.
func (t *transaction) addReadExceptOwn(r kv.Range) {
	var holes []kv.Range
	for _, c := range t.a.writes.cleared {
		if bytes.Compare(c.End, r.Begin) > 0 && bytes.Compare(c.Begin, r.End) < 0 {
			holes = append(holes, c)
		}
	}
	for _, e := range t.a.writes.entriesIn(r.Begin, r.End, false) {
		if e.kind == entryKnown {
			holes = append(holes, kv.SingleKeyRange(e.key))
		}
	}
	if len(holes) == 0 {
		t.addRead(r)
		return
	}
	sort.Slice(holes, func(i, j int) bool { return bytes.Compare(holes[i].Begin, holes[j].Begin) < 0 })
	cur := r.Begin
	for _, h := range holes {
		if bytes.Compare(h.Begin, cur) > 0 {
			end := h.Begin
			if bytes.Compare(end, r.End) > 0 {
				end = r.End
			}
			if bytes.Compare(cur, end) < 0 {
				t.addRead(kv.Range{Begin: cur, End: end})
			}
		}
		if bytes.Compare(h.End, cur) > 0 {
			cur = h.End
		}
	}
	if bytes.Compare(cur, r.End) < 0 {
		t.addRead(kv.Range{Begin: cur, End: r.End})
	}
}

func (t *transaction) addWrite(r kv.Range) {
	t.a.wconf = append(t.a.wconf, r)
	t.a.size += int64(len(r.Begin) + len(r.End))
}

func (t *transaction) checkConflictRange(r kv.Range, max []byte) error {
	if err := t.live(); err != nil {
		return err
	}
	if bytes.Compare(r.Begin, r.End) > 0 {
		return kv.Errorf(kv.CodeInvertedRange, "conflict range %v has begin after end", r)
	}
	if bytes.Compare(r.Begin, max) > 0 || bytes.Compare(r.End, max) > 0 {
		return kv.Errorf(kv.CodeKeyOutsideLegalRange, "conflict range %v reaches the system keyspace; use SetAccessSystemKeys", r)
	}
	return nil
}

func (t *transaction) AddReadConflictRange(r kv.Range) error {
	if err := t.checkConflictRange(r, t.maxReadKey()); err != nil {
		return err
	}
	if !r.Empty() {
		t.addRead(kv.Range{Begin: clone(r.Begin, true), End: clone(r.End, true)})
	}
	return nil
}

func (t *transaction) AddWriteConflictRange(r kv.Range) error {
	if err := t.checkConflictRange(r, t.maxWriteKey()); err != nil {
		return err
	}
	if !r.Empty() {
		t.addWrite(kv.Range{Begin: clone(r.Begin, true), End: clone(r.End, true)})
	}
	return nil
}

func (t *transaction) GetApproximateSize() *kv.Future[int64] {
	if err := t.live(); err != nil {
		return kv.Failed[int64](err)
	}
	return kv.Ready(t.a.size, nil)
}

// ---- writes ----

// writeCheck validates a write's key and value; an error is deferred.
func (t *transaction) writeCheck(key []byte, valueLen int) bool {
	if t.a.deferred != nil || t.a.committing {
		return false
	}
	var err error
	switch {
	case bytes.Compare(key, t.maxWriteKey()) >= 0:
		err = kv.Errorf(kv.CodeKeyOutsideLegalRange, "key %q is in the system keyspace; use SetAccessSystemKeys", trunc(key))
	case len(key) > kv.MaxKeySize:
		err = kv.Errorf(kv.CodeKeyTooLarge, "key of %d bytes exceeds the limit of %d", len(key), kv.MaxKeySize)
	case valueLen > kv.MaxValueSize:
		err = kv.Errorf(kv.CodeValueTooLarge, "value of %d bytes exceeds the limit of %d", valueLen, kv.MaxValueSize)
	}
	if err != nil {
		t.a.deferred = err
		return false
	}
	return true
}

func (t *transaction) record(m mutation) {
	t.a.muts = append(t.a.muts, m)
	t.a.size += int64(len(m.key) + len(m.end) + len(m.value))
}

func (t *transaction) Set(key, value []byte) {
	if !t.writeCheck(key, len(value)) {
		return
	}
	k, v := clone(key, true), clone(value, true)
	t.record(mutation{kind: mutSet, key: k, value: v})
	t.a.writes.set(k, v)
	t.addWrite(kv.SingleKeyRange(k))
}

func (t *transaction) Clear(key []byte) {
	if !t.writeCheck(key, 0) {
		return
	}
	k := clone(key, true)
	t.record(mutation{kind: mutClear, key: k})
	t.a.writes.clear(k)
	t.addWrite(kv.SingleKeyRange(k))
}

func (t *transaction) ClearRange(r kv.Range) {
	if t.a.deferred != nil || t.a.committing {
		return
	}
	if bytes.Compare(r.Begin, r.End) > 0 {
		t.a.deferred = kv.Errorf(kv.CodeInvertedRange, "ClearRange %v has begin after end", r)
		return
	}
	if max := t.maxWriteKey(); bytes.Compare(r.Begin, max) > 0 || bytes.Compare(r.End, max) > 0 {
		t.a.deferred = kv.Errorf(kv.CodeKeyOutsideLegalRange, "ClearRange %v reaches the system keyspace; use SetAccessSystemKeys", r)
		return
	}
	if r.Empty() {
		return
	}
	cr := kv.Range{Begin: clone(r.Begin, true), End: clone(r.End, true)}
	t.record(mutation{kind: mutClearRange, key: cr.Begin, end: cr.End})
	t.a.writes.clearRange(cr)
	t.addWrite(cr)
}

func (t *transaction) Atomic(op kv.MutationType, key, param []byte) {
	if t.a.deferred != nil || t.a.committing {
		return
	}
	if !op.Valid() {
		t.a.deferred = kv.Errorf(codeInvalidMutationType, "unknown atomic operation %d", int(op))
		return
	}
	switch op {
	case kv.SetVersionstampedKey:
		if _, err := kv.VersionstampOffset(key); err != nil {
			t.a.deferred = err
			return
		}
		if !t.writeCheck(key[:len(key)-4], len(param)) {
			return
		}
		k, p := clone(key, true), clone(param, true)
		t.record(mutation{kind: mutAtomic, op: op, key: k, value: p})
		lo, _ := kv.PlaceVersionstamp(k, kv.Versionstamp{})
		hi, _ := kv.PlaceVersionstamp(k, kv.Versionstamp{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
		if bytes.Compare(hi, t.maxWriteKey()) >= 0 {
			t.a.muts = t.a.muts[:len(t.a.muts)-1]
			t.a.deferred = kv.Errorf(kv.CodeKeyOutsideLegalRange, "versionstamped key %q can reach the system keyspace; use SetAccessSystemKeys", trunc(hi))
			return
		}
		t.addWrite(kv.Range{Begin: lo, End: kv.KeyAfter(hi)})
		return
	case kv.SetVersionstampedValue:
		if _, err := kv.VersionstampOffset(param); err != nil {
			t.a.deferred = err
			return
		}
		if !t.writeCheck(key, len(param)-4) {
			return
		}
		k, p := clone(key, true), clone(param, true)
		t.record(mutation{kind: mutAtomic, op: op, key: k, value: p})
		t.a.writes.setUnreadable(k)
		t.addWrite(kv.SingleKeyRange(k))
		return
	}
	if !t.writeCheck(key, len(param)) {
		return
	}
	k, p := clone(key, true), clone(param, true)
	t.record(mutation{kind: mutAtomic, op: op, key: k, value: p})
	t.a.writes.atomic(k, op, p)
	t.addWrite(kv.SingleKeyRange(k))
}

func (t *transaction) SetReadVersion(v int64) {
	if t.a.hasRV && t.a.read {
		// FoundationDB rejects this too (read_version_already_set); keep the
		// version already read at and remember the misuse.
		if t.a.deferred == nil && v != t.a.rv {
			t.a.deferred = kv.Errorf(kv.CodeClientInvalidOperation, "SetReadVersion(%d) after reading at %d", v, t.a.rv)
		}
		return
	}
	t.a.rv, t.a.hasRV = v, true
}

// ---- commit ----

func (t *transaction) Commit() *kv.Future[struct{}] {
	err := t.commit()
	return kv.Ready(struct{}{}, err)
}

func (t *transaction) commit() error {
	if err := t.live(); err != nil {
		return t.failStamp(err)
	}
	switch {
	case t.a.committing:
		return kv.NewError(kv.CodeUsedDuringCommit)
	case t.a.committed:
		return kv.Errorf(kv.CodeClientInvalidOperation, "transaction already committed; Reset it to reuse it")
	case t.a.deferred != nil:
		return t.failStamp(t.a.deferred)
	case t.a.size > int64(t.sizeLimit):
		return t.failStamp(kv.Errorf(kv.CodeTransactionTooLarge, "transaction size %d exceeds the limit of %d", t.a.size, t.sizeLimit))
	}
	if len(t.a.muts) == 0 && len(t.a.wconf) == 0 {
		t.a.committed, t.a.version = true, -1
		t.a.stamp.resolve(kv.Versionstamp{}, kv.Errorf(codeNoCommitVersion, "a read-only transaction has no commit version or versionstamp"))
		return nil
	}
	req := &commitReq{muts: t.a.muts, writes: t.a.wconf, size: t.a.size, done: make(chan struct{})}
	if len(t.a.reads) > 0 && t.a.hasRV {
		req.reads, req.rv = t.a.reads, t.a.rv
	}
	t.a.committing = true
	defer func() { t.a.committing = false }()

	select {
	case t.db.reqs <- req:
	case <-t.db.closing:
		return t.failStamp(errClosed("commit"))
	case <-t.cancelCh():
		return t.failStamp(kv.NewError(kv.CodeTransactionCancelled))
	case <-t.ctx.Done():
		return t.failStamp(ctxError(t.ctx.Err()))
	}
	if err := t.wait(req.done, false); err != nil {
		// The commit is queued or in flight and may still land: the
		// maybe-committed outcome FoundationDB gives for a timeout too.
		return t.failStamp(err)
	}
	if req.err != nil {
		return t.failStamp(req.err)
	}
	t.a.committed, t.a.version = true, req.version
	t.a.stamp.resolve(req.stamp, nil)
	return nil
}

// failStamp resolves pending GetVersionstamp futures with the commit error
// and returns it.
func (t *transaction) failStamp(err error) error {
	t.a.stamp.resolve(kv.Versionstamp{}, err)
	return err
}

func (t *transaction) GetCommittedVersion() (int64, error) {
	if !t.a.committed {
		return 0, kv.Errorf(kv.CodeClientInvalidOperation, "GetCommittedVersion before a successful Commit")
	}
	return t.a.version, nil
}

func (t *transaction) GetVersionstamp() *kv.Future[kv.Versionstamp] {
	s := t.a.stamp
	return kv.NewFuture(func() (kv.Versionstamp, error) {
		<-s.done
		return s.val, s.err
	})
}

// ---- retries, reset, cancel ----

func (t *transaction) OnError(err error) error {
	if !kv.IsRetryable(err) {
		return err
	}
	if t.retryLimit >= 0 && t.retries >= t.retryLimit {
		return err
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
	} else if lerr := t.live(); lerr != nil {
		return lerr
	}
	t.retries++
	t.newAttempt()
	return nil
}

func (t *transaction) Reset() { t.reset() }

func (t *transaction) Cancel() {
	t.cmu.Lock()
	defer t.cmu.Unlock()
	select {
	case <-t.cancel:
	default:
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
	o.t.sizeLimit = n
	return nil
}

func (o options) SetAccessSystemKeys() error { o.t.a.accessSystem = true; return nil }
func (o options) SetReadSystemKeys() error   { o.t.a.readSystem = true; return nil }

var _ kv.Transaction = (*transaction)(nil)
