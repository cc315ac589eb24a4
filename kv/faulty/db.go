package faulty

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/idemkv/idemkv/kv"
)

// DB wraps a kv.Database and injects faults into its transactions' commits.
// It is safe for concurrent use.
type DB struct {
	inner kv.Database
	cfg   Config
	// cfgErr is the reason Wrap's arguments were refused; every
	// CreateTransaction returns it.
	cfgErr error

	// commits numbers Commit calls: the next call's n.
	commits atomic.Uint64
	closed  atomic.Bool
	stats   counters

	// late tracks late-commit goroutines. A sync.WaitGroup does not fit:
	// a late commit may start while another goroutine is in Wait.
	late struct {
		sync.Mutex
		pending int
		idle    *sync.Cond // signalled when pending drops to zero
		closing bool       // set by Close: no more late commits start
	}

	closeOnce sync.Once
	closeErr  error

	// replays reports that the configuration has late commits, which are
	// sent again from the attempt's recorded operations: only then do
	// transactions record (and copy) their mutations and conflict ranges.
	// A DB without them forwards them and keeps nothing, so that wrapping a
	// database costs little when no late fault can happen (the bench wraps
	// both of its modes even at 0% faults).
	replays bool

	// beforeLateCommit, when set (by tests), runs in a late commit's
	// goroutine after its delay and before the inner commit is sent.
	beforeLateCommit func(n uint64)
}

var _ kv.Database = (*DB)(nil)

// errNilDatabase is CreateTransaction's error when Wrap was given nil.
var errNilDatabase = errors.New("faulty: Wrap was given a nil kv.Database; pass the database to wrap")

// Wrap returns a database whose transactions are inner's, with commits
// failing as cfg says. The caller keeps ownership of inner unless
// cfg.CloseInner is set, and must not close it before the DB's Close (or
// Wait) has returned, since late commits still use it.
//
// Wrap does not fail: if cfg is invalid (a probability outside [0, 1], the
// fault probabilities summing past 1, a negative duration) or inner is nil,
// every CreateTransaction returns an error naming the problem.
func Wrap(inner kv.Database, cfg Config) *DB {
	db := &DB{inner: inner, cfg: cfg, replays: cfg.late()}
	db.late.idle = sync.NewCond(&db.late.Mutex)
	if inner == nil {
		db.cfgErr = errNilDatabase
	} else if err := cfg.validate(); err != nil {
		db.cfgErr = err
	} else if _, ok := inner.(Recoverer); cfg.recovers() && !ok {
		db.cfgErr = fmt.Errorf("faulty: Config.RecoveryApplied/RecoveryNotApplied need a database that can jump its version (faulty.Recoverer, e.g. kv/embedded's DB); %T is not one", inner)
	}
	return db
}

// CreateTransaction starts a transaction of the inner database bound to
// ctx, wrapped so that its commits may fail.
func (db *DB) CreateTransaction(ctx context.Context) (kv.Transaction, error) {
	if db.cfgErr != nil {
		return nil, db.cfgErr
	}
	if db.closed.Load() {
		return nil, kv.ErrClosed
	}
	inner, err := db.inner.CreateTransaction(ctx)
	if err != nil {
		return nil, err
	}
	return newTransaction(db, ctx, inner), nil
}

// Wait blocks until every late commit started so far has landed or failed,
// so that a test can check the final state. Commits started while Wait runs
// are waited for too.
func (db *DB) Wait() {
	db.late.Lock()
	for db.late.pending > 0 {
		db.late.idle.Wait()
	}
	db.late.Unlock()
}

// Close stops new transactions and commits (both then fail with
// kv.ErrClosed), waits for late commits (at most the late delay plus the
// inner commit), and closes the inner database if Config.CloseInner is set.
// Reads of transactions still open pass through to the inner database,
// which stays usable unless the DB owns it. It may
// be called more than once; later calls return the first one's result.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.closed.Store(true)
		db.late.Lock()
		db.late.closing = true
		db.late.Unlock()
		db.Wait()
		if db.cfg.CloseInner && db.inner != nil {
			db.closeErr = db.inner.Close()
		}
	})
	return db.closeErr
}

// startLate registers a late commit, unless Close has begun: then it
// returns false and no goroutine may be started, so none outlives Close.
// After true, the caller must call lateDone.
func (db *DB) startLate() bool {
	db.late.Lock()
	defer db.late.Unlock()
	if db.late.closing {
		return false
	}
	db.late.pending++
	return true
}

// recover jumps the inner database's version, as a recovery does.
func (db *DB) recover() error {
	return db.inner.(Recoverer).AdvanceVersion(db.cfg.recoveryJump())
}

func (db *DB) lateDone() {
	db.late.Lock()
	db.late.pending--
	if db.late.pending == 0 {
		db.late.idle.Broadcast()
	}
	db.late.Unlock()
}
