package kvtest_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/embedded"
	"github.com/idemkv/idemkv/kv/kvtest"
)

// injectDB fails every n-th commit with code: not_committed without
// committing, commit_unknown_result after committing.
type injectDB struct {
	kv.Database
	code    kv.Code
	every   int64
	commits atomic.Int64
}

type injectTxn struct {
	kv.Transaction
	db *injectDB
}

func (d *injectDB) CreateTransaction(ctx context.Context) (kv.Transaction, error) {
	tr, err := d.Database.CreateTransaction(ctx)
	if err != nil {
		return nil, err
	}
	return injectTxn{tr, d}, nil
}

func (t injectTxn) Commit() *kv.Future[struct{}] {
	if t.db.commits.Add(1)%t.db.every != 0 {
		return t.Transaction.Commit()
	}
	if t.db.code == kv.CodeCommitUnknownResult {
		if err := t.Transaction.Commit().Err(); err != nil {
			return kv.Failed[struct{}](err)
		}
	}
	return kv.Failed[struct{}](kv.NewError(t.db.code))
}

func openMem(t *testing.T) kv.Database {
	t.Helper()
	db, err := embedded.OpenMem(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Attempts that fail retryable-not-committed had no effect; the check drops
// them and the history stays strictly serializable.
func TestStrictSerializableDropsNotCommitted(t *testing.T) {
	db := &injectDB{Database: openMem(t), code: kv.CodeNotCommitted, every: 5}
	var dropped int
	for seed := uint64(1); seed <= 10; seed++ {
		rep := kvtest.CheckStrictSerializable(t, db, seed, nil, "go test ./kv/kvtest -run TestStrictSerializableDropsNotCommitted")
		dropped += rep.Dropped
	}
	if dropped == 0 {
		t.Fatal("no attempt was dropped although every fifth commit failed not_committed")
	}
}

// A maybe-committed error cannot be placed in the history; without fault
// injection it must not happen, so the run fails and says why.
func TestStrictSerializableRefusesMaybeCommitted(t *testing.T) {
	db := &injectDB{Database: openMem(t), code: kv.CodeCommitUnknownResult, every: 7}
	_, err := kvtest.VerifyStrictSerializable(db, 1, nil)
	if !errors.Is(err, kv.ErrCommitUnknownResult) || errors.Is(err, kvtest.ErrNotStrictlySerializable) {
		t.Fatalf("VerifyStrictSerializable with commit_unknown_result injected: %v, want that error", err)
	}
}
