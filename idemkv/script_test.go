package idemkv_test

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/embedded"
)

// scriptDB wraps the store's database to fail chosen commits the ways
// FoundationDB's can, and to count commits and point reads. A test scripts
// a failure sequence as a rule over the commit's writes: deterministic,
// unlike kv/faulty's seeded schedules, so each test reads as the sequence
// it reproduces.
type scriptDB struct {
	kv.Database
	mu struct {
		sync.Mutex
		// rule decides a commit's fate: apply it or not, and the error
		// reported (nil: commit normally).
		rule    func(w *writes) (apply bool, err error)
		commits int // commits that applied
		gets    int // point reads
	}
}

// writes is what one transaction wrote, key by key (a nil value for a
// clear; atomic ops are recorded as sets of their parameter).
type writes struct{ m map[string][]byte }

// has reports a write to a key under idemkv's prefix + family, e.g. "k/".
func (w *writes) has(family string) bool {
	p := string(idemkv.DefaultPrefix) + family
	for k := range w.m {
		if len(k) >= len(p) && k[:len(p)] == p {
			return true
		}
	}
	return false
}

// sentinelOnly reports a commit that only creates a marker shard's
// sentinel (txn does that once per shard of a fresh database): not a
// commit of the call being counted.
func (w *writes) sentinelOnly() bool {
	tx := append(bytes.Clone(idemkv.DefaultPrefix), "tx/"...)
	for k := range w.m {
		if len(k) != len(tx)+1 || k[:len(tx)] != string(tx) {
			return false
		}
	}
	return true
}

// recordStatus is the status byte of a keyed record written, or 0.
func (w *writes) recordStatus() byte {
	p := string(idemkv.DefaultPrefix) + "k/"
	for k, v := range w.m {
		if len(k) >= len(p) && k[:len(p)] == p && len(v) > 1 {
			return v[1]
		}
	}
	return 0
}

// Record statuses, as record.go lays them out.
const (
	stInProgress = 1
	stCompleted  = 2
	stUnknown    = 3
)

func (db *scriptDB) setRule(r func(w *writes) (bool, error)) {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.mu.rule = r
}

// counts returns the commits applied and point reads made so far.
func (db *scriptDB) counts() (commits, gets int) {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.mu.commits, db.mu.gets
}

func (db *scriptDB) CreateTransaction(ctx context.Context) (kv.Transaction, error) {
	tr, err := db.Database.CreateTransaction(ctx)
	if err != nil {
		return nil, err
	}
	return &scriptTxn{Transaction: tr, db: db, w: writes{m: map[string][]byte{}}}, nil
}

type scriptTxn struct {
	kv.Transaction
	db *scriptDB
	w  writes
}

func (t *scriptTxn) Get(key []byte) *kv.Future[[]byte] {
	t.db.mu.Lock()
	t.db.mu.gets++
	t.db.mu.Unlock()
	return t.Transaction.Get(key)
}

func (t *scriptTxn) Set(k, v []byte) { t.w.m[string(k)] = bytes.Clone(v); t.Transaction.Set(k, v) }
func (t *scriptTxn) Clear(k []byte)  { t.w.m[string(k)] = nil; t.Transaction.Clear(k) }
func (t *scriptTxn) Atomic(op kv.MutationType, k, p []byte) {
	t.w.m[string(k)] = bytes.Clone(p)
	t.Transaction.Atomic(op, k, p)
}
func (t *scriptTxn) Reset() { t.w.m = map[string][]byte{}; t.Transaction.Reset() }
func (t *scriptTxn) OnError(err error) error {
	t.w.m = map[string][]byte{}
	return t.Transaction.OnError(err)
}

func (t *scriptTxn) Commit() *kv.Future[struct{}] {
	t.db.mu.Lock()
	rule := t.db.mu.rule
	t.db.mu.Unlock()
	apply, ferr := true, error(nil)
	if rule != nil && len(t.w.m) > 0 {
		apply, ferr = rule(&t.w)
	}
	if !apply {
		return kv.Failed[struct{}](ferr)
	}
	err := t.Transaction.Commit().Err()
	if err == nil && len(t.w.m) > 0 && !t.w.sentinelOnly() {
		t.db.mu.Lock()
		t.db.mu.commits++
		t.db.mu.Unlock()
	}
	if err == nil && ferr != nil {
		err = ferr
	}
	return kv.Ready(struct{}{}, err)
}

// openScripted opens an in-memory store on a manual clock behind a
// scriptDB.
func openScripted(t testing.TB, opts *idemkv.Options) (*idemkv.Store, *scriptDB, *embedded.ManualClock) {
	t.Helper()
	sdb := &scriptDB{}
	var o idemkv.Options
	if opts != nil {
		o = *opts
	}
	o.WrapDatabase = func(db kv.Database) kv.Database { sdb.Database = db; return sdb }
	s, clk := openClocked(t, &o)
	return s, sdb, clk
}

// openScriptedUnstepped is openScripted for tests that never step the
// clock: in the shim run, behind an "fdb:" store.
func openScriptedUnstepped(t testing.TB, opts *idemkv.Options) (*idemkv.Store, *scriptDB) {
	t.Helper()
	sdb := &scriptDB{}
	var o idemkv.Options
	if opts != nil {
		o = *opts
	}
	o.WrapDatabase = func(db kv.Database) kv.Database { sdb.Database = db; return sdb }
	return openUnstepped(t, &o), sdb
}

// once returns a rule that fails the first commit matching match with err
// (applied or not), and lets every other commit through.
func once(match func(w *writes) bool, apply bool, err error) func(w *writes) (bool, error) {
	var mu sync.Mutex
	fired := false
	return func(w *writes) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		if fired || !match(w) {
			return true, nil
		}
		fired = true
		return apply, err
	}
}

var (
	errTimedOut      = &kv.Error{Code: kv.CodeTransactionTimedOut}
	errUnknownResult = &kv.Error{Code: kv.CodeCommitUnknownResult}
)
