//go:build cgo

package fdbc

import "C"

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/idemkv/idemkv/kv"
)

// transaction is an FDBTransaction over a kv/embedded transaction.
//
// The bindings (and C callers) may call into one transaction from several
// threads at once; kv/embedded's transactions are for one goroutine at a
// time, so mu serializes every call. A commit or OnError holds mu from the
// call until its future is ready (on a goroutine of its own), and releases
// it before completing the future, so callbacks never run under it.
//
// FoundationDB's read-your-writes transaction refuses every operation from
// Commit until OnError or Reset with used_during_commit (2017), including
// after the commit has finished (get_committed_version is the exception);
// commitStarted carries that, and is read without mu so that a caller is
// refused at once instead of waiting for the commit.
type transaction struct {
	h  uintptr
	db *database
	tr kv.Transaction

	commitStarted atomic.Bool
	committed     atomic.Int64 // committed version; -1 until a commit succeeds
	// cancelled is set by cancel and by an on_error that refused its
	// error, until reset: FoundationDB's commit then fails with
	// transaction_cancelled without starting (no used_during_commit after).
	cancelled atomic.Bool

	mu struct {
		sync.Mutex
		// deferred is an error a bad write (negative length) left; every
		// later read and the commit return it until Reset or OnError.
		deferred int
		watches  []*pendingWatch // set in this attempt, armed at commit
		// system records access_system_keys or read_system_keys, which
		// last until Reset or OnError: key selectors then resolve up to
		// \xff\xff instead of \xff.
		system bool
		gone   bool // destroyed
	}
}

func newTransaction(d *database) (*transaction, int) {
	tr, err := d.s.db.CreateTransaction(context.Background())
	if err != nil {
		return nil, codeOf(err)
	}
	d.s.ref()
	t := &transaction{db: d, tr: tr}
	t.committed.Store(-1)
	if c := t.applyDefaults(); c != 0 {
		d.s.unref()
		return nil, c
	}
	t.h = newHandle(t)
	return t, errSuccess
}

// applyDefaults sets the database's transaction options on a new or reset
// transaction.
func (t *transaction) applyDefaults() int {
	d := t.db.defaults()
	o := t.tr.Options()
	if d.timeout > 0 {
		if err := o.SetTimeout(d.timeout); err != nil {
			return codeOf(err)
		}
	}
	if d.retryLimit >= 0 {
		if err := o.SetRetryLimit(int(d.retryLimit)); err != nil {
			return codeOf(err)
		}
	}
	if d.maxRetryDelay > 0 {
		if err := o.SetMaxRetryDelay(d.maxRetryDelay); err != nil {
			return codeOf(err)
		}
	}
	if d.sizeLimit > 0 {
		if err := o.SetSizeLimit(int(d.sizeLimit)); err != nil {
			return codeOf(err)
		}
	}
	return errSuccess
}

// do runs fn with the transaction locked, unless a commit has started or
// a bad write is pending, in which case it returns that error without
// calling fn.
func (t *transaction) do(fn func() int) int {
	if t.commitStarted.Load() {
		return errUsedDuringCommit
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.commitStarted.Load():
		return errUsedDuringCommit
	case t.mu.deferred != 0:
		return t.mu.deferred
	}
	return fn()
}

// read runs a read that completes at once into a future of kind k.
func read(h uintptr, k kind, fn func(t *transaction) (int, *result)) uintptr {
	t := lookup[transaction](h)
	if t == nil {
		return failed(k, errClientInvalidOp)
	}
	var r *result
	code := t.do(func() int {
		c, res := fn(t)
		r = res
		return c
	})
	f := newFuture(k)
	f.complete(code, r)
	return f.h
}

// write runs a write, which reports nothing: a negative length becomes the
// transaction's deferred error, and writes after Commit are dropped (their
// transaction is already on its way, as in FoundationDB).
func write(h uintptr, lengths []int32, fn func(t *transaction)) {
	t := lookup[transaction](h)
	if t == nil {
		return
	}
	t.do(func() int {
		for _, n := range lengths {
			if n < 0 {
				t.mu.deferred = errClientInvalidOp
				return 0
			}
		}
		fn(t)
		return 0
	})
}

// reader is the transaction's read view, with or without conflicts.
func (t *transaction) reader(snapshot int32) kv.ReadTransaction {
	if snapshot != 0 {
		return t.tr.Snapshot()
	}
	return t.tr
}

//export fdb_transaction_destroy
func fdb_transaction_destroy(h uintptr) {
	t := dropHandle[transaction](h)
	if t == nil {
		return
	}
	t.tr.Cancel()
	t.mu.Lock()
	t.mu.gone = true
	t.tr.Reset() // resolves a pending versionstamp future
	ws := t.mu.watches
	t.mu.watches = nil
	t.mu.Unlock()
	failWatches(ws, errTransactionCancelled)
	t.db.s.unref()
}

//export fdb_transaction_cancel
func fdb_transaction_cancel(h uintptr) {
	t := lookup[transaction](h)
	if t == nil {
		return
	}
	t.cancelled.Store(true)
	t.tr.Cancel()
	if t.mu.TryLock() {
		ws := t.mu.watches
		t.mu.watches = nil
		t.mu.Unlock()
		failWatches(ws, errTransactionCancelled)
	}
}

//export fdb_transaction_reset
func fdb_transaction_reset(h uintptr) {
	t := lookup[transaction](h)
	if t == nil {
		return
	}
	if t.commitStarted.Load() {
		// Reset abandons a commit in flight, as FoundationDB's does: it may
		// still land.
		t.tr.Cancel()
	}
	t.mu.Lock()
	t.tr.Reset()
	t.applyDefaults()
	t.mu.deferred, t.mu.system = 0, false
	ws := t.mu.watches
	t.mu.watches = nil
	t.commitStarted.Store(false)
	t.cancelled.Store(false)
	t.committed.Store(-1)
	t.mu.Unlock()
	failWatches(ws, errTransactionCancelled)
}

//export fdb_transaction_set_option
func fdb_transaction_set_option(h uintptr, code int32, value *byte, n int32) int32 {
	t := lookup[transaction](h)
	if t == nil {
		return errClientInvalidOp
	}
	if c := checkOption(transactionOptions, int(code), value, n); c != 0 {
		return int32(c)
	}
	if transactionOptions[int(code)].effect != takesEffect {
		return errSuccess
	}
	var v int64
	if transactionOptions[int(code)].param == paramInt {
		v = intParam(value)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	o := t.tr.Options()
	var err error
	switch code {
	case trOptAccessSystemKeys:
		err = o.SetAccessSystemKeys()
		t.mu.system = err == nil || t.mu.system
	case trOptReadSystemKeys:
		err = o.SetReadSystemKeys()
		t.mu.system = err == nil || t.mu.system
	case optTimeout:
		err = o.SetTimeout(time.Duration(v) * time.Millisecond)
	case optRetryLimit:
		err = o.SetRetryLimit(int(v))
	case optMaxRetryDelay:
		err = o.SetMaxRetryDelay(time.Duration(v) * time.Millisecond)
	case optSizeLimit:
		err = o.SetSizeLimit(int(v))
	}
	return int32(codeOf(err))
}

//export fdb_transaction_set_read_version
func fdb_transaction_set_read_version(h uintptr, v int64) {
	write(h, nil, func(t *transaction) { t.tr.SetReadVersion(v) })
}

//export fdb_transaction_get_read_version
func fdb_transaction_get_read_version(h uintptr) uintptr {
	return read(h, kindInt64, func(t *transaction) (int, *result) {
		v, err := t.tr.GetReadVersion().Get()
		return codeOf(err), &result{i64: v}
	})
}

//export fdb_transaction_get
func fdb_transaction_get(h uintptr, key *byte, n int32, snapshot int32) uintptr {
	if n < 0 {
		return failed(kindValue, errClientInvalidOp)
	}
	k := goBytes(key, n)
	return read(h, kindValue, func(t *transaction) (int, *result) {
		v, err := t.reader(snapshot).Get(k).Get()
		if err != nil {
			return codeOf(err), nil
		}
		if v == nil {
			return errSuccess, &result{}
		}
		return errSuccess, &result{present: true, mem: cBytes(v), n: len(v)}
	})
}

//export fdb_transaction_set
func fdb_transaction_set(h uintptr, key *byte, kn int32, value *byte, vn int32) {
	write(h, []int32{kn, vn}, func(t *transaction) { t.tr.Set(goBytes(key, kn), goBytes(value, vn)) })
}

//export fdb_transaction_clear
func fdb_transaction_clear(h uintptr, key *byte, n int32) {
	write(h, []int32{n}, func(t *transaction) { t.tr.Clear(goBytes(key, n)) })
}

//export fdb_transaction_clear_range
func fdb_transaction_clear_range(h uintptr, b *byte, bn int32, e *byte, en int32) {
	write(h, []int32{bn, en}, func(t *transaction) {
		t.tr.ClearRange(kv.Range{Begin: goBytes(b, bn), End: goBytes(e, en)})
	})
}

//export fdb_transaction_atomic_op
func fdb_transaction_atomic_op(h uintptr, key *byte, kn int32, param *byte, pn int32, op int32) {
	write(h, []int32{kn, pn}, func(t *transaction) {
		t.tr.Atomic(kv.MutationType(op), goBytes(key, kn), goBytes(param, pn))
	})
}

// Conflict range types.
const (
	conflictRead  = 0
	conflictWrite = 1
)

//export fdb_transaction_add_conflict_range
func fdb_transaction_add_conflict_range(h uintptr, b *byte, bn int32, e *byte, en int32, typ int32) int32 {
	t := lookup[transaction](h)
	if t == nil || bn < 0 || en < 0 || (typ != conflictRead && typ != conflictWrite) {
		return errClientInvalidOp
	}
	r := kv.Range{Begin: goBytes(b, bn), End: goBytes(e, en)}
	return int32(t.do(func() int {
		if typ == conflictRead {
			return codeOf(t.tr.AddReadConflictRange(r))
		}
		return codeOf(t.tr.AddWriteConflictRange(r))
	}))
}

// fdb_transaction_commit starts the commit and returns at once; the future
// is ready when kv/embedded's commit has ended. Watches set in the
// transaction are armed if it commits and fail with its error if not.
//
//export fdb_transaction_commit
func fdb_transaction_commit(h uintptr) uintptr {
	t := lookup[transaction](h)
	if t == nil {
		return failed(kindNil, errClientInvalidOp)
	}
	if t.commitStarted.Load() {
		return failed(kindNil, errUsedDuringCommit)
	}
	if t.cancelled.Load() {
		return failed(kindNil, errTransactionCancelled)
	}
	t.mu.Lock()
	if !t.commitStarted.CompareAndSwap(false, true) {
		t.mu.Unlock()
		return failed(kindNil, errUsedDuringCommit)
	}
	f := newFuture(kindNil)
	if c := t.mu.deferred; c != 0 {
		ws := t.mu.watches
		t.mu.watches = nil
		t.mu.Unlock()
		failWatches(ws, c)
		f.complete(c, nil)
		return f.h
	}
	ws := t.mu.watches
	t.mu.watches = nil
	go func() {
		code := codeOf(t.tr.Commit().Err())
		if code == 0 {
			if v, err := t.tr.GetCommittedVersion(); err == nil {
				t.committed.Store(v)
			}
		}
		t.mu.Unlock()
		if code == 0 {
			t.db.armWatches(ws)
		} else {
			failWatches(ws, code)
		}
		f.complete(code, nil)
	}()
	return f.h
}

// fdb_transaction_get_committed_version is -1 until a commit succeeds (and
// for a committed read-only transaction), as FoundationDB's.
//
//export fdb_transaction_get_committed_version
func fdb_transaction_get_committed_version(h uintptr, out *int64) int32 {
	t := lookup[transaction](h)
	if t == nil || out == nil {
		return errClientInvalidOp
	}
	*out = t.committed.Load()
	return errSuccess
}

//export fdb_transaction_get_approximate_size
func fdb_transaction_get_approximate_size(h uintptr) uintptr {
	return read(h, kindInt64, func(t *transaction) (int, *result) {
		v, err := t.tr.GetApproximateSize().Get()
		return codeOf(err), &result{i64: v}
	})
}

// fdb_transaction_get_versionstamp returns a future that is ready when the
// commit ends: the 10-byte versionstamp, no_commit_version (2021) for a
// read-only commit, or the commit's error. Asked for after Commit, it
// fails with used_during_commit (2017), as FoundationDB's does.
//
//export fdb_transaction_get_versionstamp
func fdb_transaction_get_versionstamp(h uintptr) uintptr {
	t := lookup[transaction](h)
	if t == nil {
		return failed(kindKey, errClientInvalidOp)
	}
	var vf *kv.Future[kv.Versionstamp]
	code := t.do(func() int {
		vf = t.tr.GetVersionstamp()
		return 0
	})
	if code != 0 {
		return failed(kindKey, code)
	}
	f := newFuture(kindKey)
	go func() {
		vs, err := vf.Get()
		if err != nil {
			f.complete(codeOf(err), nil)
			return
		}
		f.complete(errSuccess, &result{mem: cBytes(vs[:]), n: len(vs)})
	}()
	return f.h
}

// fdb_transaction_on_error is FoundationDB's retry policy, kv/embedded's
// OnError: for a retryable code it waits the backoff, resets the
// transaction (keeping the timeout, retry limit, max retry delay and size
// limit) and succeeds; otherwise the future fails with the code.
//
//export fdb_transaction_on_error
func fdb_transaction_on_error(h uintptr, code int32) uintptr {
	t := lookup[transaction](h)
	if t == nil {
		return failed(kindNil, errClientInvalidOp)
	}
	f := newFuture(kindNil)
	t.mu.Lock()
	go func() {
		var err error
		if code == 0 {
			err = kv.NewError(kv.CodeClientInvalidOperation)
		} else {
			err = t.tr.OnError(kv.NewError(kv.Code(code)))
		}
		var ws []*pendingWatch
		if err != nil {
			t.cancelled.Store(true)
		}
		if err == nil {
			t.mu.deferred, t.mu.system = 0, false
			ws = t.mu.watches
			t.mu.watches = nil
			t.commitStarted.Store(false)
			t.committed.Store(-1)
		}
		t.mu.Unlock()
		failWatches(ws, errTransactionCancelled)
		f.complete(codeOf(err), nil)
	}()
	return f.h
}
