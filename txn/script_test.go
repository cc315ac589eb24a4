package txn_test

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/txn"
)

// action is what a scriptDB does to one commit.
type action int

const (
	pass            action = iota
	applied1021            // commit, then report commit_unknown_result
	notApplied1021         // do not commit, report commit_unknown_result
	held1021               // keep the commit for release(), report commit_unknown_result
	applied1039            // commit, then report cluster_version_changed
	applied1031            // commit, then report transaction_timed_out
	releaseThenPass        // land every held commit, then commit normally
	fail1020               // do not commit, report not_committed (certainly not applied)
	notApplied1031         // do not commit, report transaction_timed_out
)

// scriptDB wraps a database and does to the n-th commit (from 1) what plan
// says, so that a test can stage an exact interleaving — an earlier attempt
// landing while a later one runs — that the seeded fault injector only
// produces by chance. It also records every error its transactions' OnError
// was asked about.
type scriptDB struct {
	kv.Database
	plan func(n int) action
	// before, if set, runs before the n-th commit's action.
	before func(n int)
	// after, if set, runs after the n-th commit's inner commit applied
	// (the applied actions), before its error is reported.
	after func(n int)
	// refreshPlan, if set, says what to do to the n-th slot refresh's
	// commit (from 1; pass or held1021), which plan does not number.
	refreshPlan func(n int) action
	refreshes   int

	mu      sync.Mutex
	marker  txn.ID // the ID of the last slot write of an attempt through the db
	n       int
	held    []kv.Transaction
	landed  []error // results of held commits, in release order
	onError []kv.Code
}

func (db *scriptDB) CreateTransaction(ctx context.Context) (kv.Transaction, error) {
	tr, err := db.Database.CreateTransaction(ctx)
	if err != nil {
		return nil, err
	}
	return &scriptTx{Transaction: tr, db: db, ctx: ctx}, nil
}

// release commits every held transaction now.
func (db *scriptDB) release() {
	db.mu.Lock()
	held := db.held
	db.held = nil
	db.mu.Unlock()
	for _, tr := range held {
		err := tr.Commit().Err()
		db.mu.Lock()
		db.landed = append(db.landed, err)
		db.mu.Unlock()
	}
}

func (db *scriptDB) codesSeen() []kv.Code {
	db.mu.Lock()
	defer db.mu.Unlock()
	return append([]kv.Code(nil), db.onError...)
}

type scriptTx struct {
	kv.Transaction
	db  *scriptDB
	ctx context.Context
	// refresh reports that the transaction refreshes (or creates) a call's
	// marker slot: such commits pass through unnumbered, so that plans
	// number the commits of attempts and fences alike on fresh and used
	// databases.
	refresh bool
}

// Atomic records the slot an attempt writes (a versionstamped value, which
// its own transaction cannot read back), for lastMarker.
func (t *scriptTx) Atomic(op kv.MutationType, key, param []byte) {
	if owner, slot, err := txn.ParseSlotKey(txn.DefaultPrefix, key); err == nil && op == kv.SetVersionstampedValue && len(param) == 1+8+4+10+4 {
		seq, attempt := binary.BigEndian.Uint64(param[1:9]), binary.BigEndian.Uint32(param[9:13])
		switch attempt {
		case txn.SlotRefreshed:
			t.refresh = true
		case txn.SlotTombstone:
		default:
			t.db.mu.Lock()
			t.db.marker = txn.ID{Owner: owner, Slot: slot, Seq: seq}
			t.db.mu.Unlock()
		}
	}
	t.Transaction.Atomic(op, key, param)
}

// lastMarker returns the ID of the call whose attempt last wrote its slot
// through db.
func (db *scriptDB) lastMarker() (txn.ID, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.marker.IsZero() {
		return txn.ID{}, errors.New("no attempt has written a slot through the database")
	}
	return db.marker, nil
}

func (t *scriptTx) Reset() {
	t.refresh = false
	t.Transaction.Reset()
}

func (t *scriptTx) OnError(err error) error {
	t.refresh = false
	if c, ok := kv.ErrorCode(err); ok {
		t.db.mu.Lock()
		t.db.onError = append(t.db.onError, c)
		t.db.mu.Unlock()
	}
	return t.Transaction.OnError(err)
}

func (t *scriptTx) Commit() *kv.Future[struct{}] {
	if t.refresh {
		t.refresh = false
		if t.db.refreshPlan != nil {
			t.db.mu.Lock()
			t.db.refreshes++
			n := t.db.refreshes
			t.db.mu.Unlock()
			if t.db.refreshPlan(n) == held1021 {
				return t.hold()
			}
		}
		return t.Transaction.Commit()
	}
	t.db.mu.Lock()
	t.db.n++
	n := t.db.n
	t.db.mu.Unlock()
	if t.db.before != nil {
		t.db.before(n)
	}
	fail := func(c kv.Code) *kv.Future[struct{}] { return kv.Failed[struct{}](kv.NewError(c)) }
	switch t.db.plan(n) {
	case applied1021, applied1039, applied1031:
		if err := t.Transaction.Commit().Err(); err != nil {
			return kv.Failed[struct{}](err)
		}
		if t.db.after != nil {
			t.db.after(n)
		}
		return fail(map[action]kv.Code{applied1021: kv.CodeCommitUnknownResult, applied1039: kv.CodeClusterVersionChanged, applied1031: kv.CodeTransactionTimedOut}[t.db.plan(n)])
	case notApplied1021:
		return fail(kv.CodeCommitUnknownResult)
	case fail1020:
		return fail(kv.CodeNotCommitted)
	case notApplied1031:
		return fail(kv.CodeTransactionTimedOut)
	case held1021:
		return t.hold()
	case releaseThenPass:
		t.db.release()
	}
	return t.Transaction.Commit()
}

// hold hands the inner transaction to release() and carries on with a
// fresh one, as a client does whose commit is still in flight, reporting
// commit_unknown_result.
func (t *scriptTx) hold() *kv.Future[struct{}] {
	fresh, err := t.db.Database.CreateTransaction(t.ctx)
	if err != nil {
		return kv.Failed[struct{}](err)
	}
	t.db.mu.Lock()
	t.db.held = append(t.db.held, t.Transaction)
	t.db.mu.Unlock()
	t.Transaction = fresh
	return kv.Failed[struct{}](kv.NewError(kv.CodeCommitUnknownResult))
}

// firstCommit is the plan most scripts use: act on the call's first
// commit, pass every other.
func firstCommit(act action) func(int) action {
	return func(n int) action {
		if n == 1 {
			return act
		}
		return pass
	}
}
