package txn_test

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/embedded"
	"github.com/idemkv/idemkv/txn"
)

// countDB counts the reads of one key (a shard's sentinel) made through its
// transactions, snapshot reads included.
type countDB struct {
	kv.Database
	key   []byte
	reads atomic.Int64
}

func (db *countDB) CreateTransaction(ctx context.Context) (kv.Transaction, error) {
	tr, err := db.Database.CreateTransaction(ctx)
	if err != nil {
		return nil, err
	}
	return &countTx{Transaction: tr, db: db}, nil
}

type countTx struct {
	kv.Transaction
	db *countDB
}

func (t *countTx) Get(key []byte) *kv.Future[[]byte] {
	if bytes.Equal(key, t.db.key) {
		t.db.reads.Add(1)
	}
	return t.Transaction.Get(key)
}

func (t *countTx) Snapshot() kv.ReadTransaction {
	return &countSnap{ReadTransaction: t.Transaction.Snapshot(), db: t.db}
}

type countSnap struct {
	kv.ReadTransaction
	db *countDB
}

func (s *countSnap) Get(key []byte) *kv.Future[[]byte] {
	if bytes.Equal(key, s.db.key) {
		s.db.reads.Add(1)
	}
	return s.ReadTransaction.Get(key)
}

// openStill opens an in-memory engine whose clock stands still, so that its
// versions advance only by commits and AdvanceVersion: the sentinel cache's
// one-second window does not run out under a slow, shared test machine.
func openStill(t *testing.T) *embedded.DB {
	t.Helper()
	now := time.Now()
	db, err := embedded.OpenMem(&embedded.Options{Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// oneShard puts every call on shard 0, whose sentinel countDB counts.
var oneShard = &txn.Options{Shards: 1, MaxRetryDelay: time.Millisecond}

func foreignClear(t *testing.T, db kv.Database) {
	t.Helper()
	all, err := kv.PrefixRange(txn.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := txn.StockTransact(context.Background(), db, func(tr kv.Transaction) (struct{}, error) {
		tr.ClearRange(all)
		return struct{}{}, nil
	}); err != nil {
		t.Fatal(err)
	}
}

// Once a call has seen its shard's sentinel, later calls on the same
// database skip the read, until the sighting is a second of versions old.
func TestSentinelCacheSkipsTheRead(t *testing.T) {
	inner := openStill(t)
	db := &countDB{Database: inner, key: txn.SentinelKey(txn.DefaultPrefix, 0)}
	runs := 0
	if _, err := txn.Transact(context.Background(), db, incr([]byte("c"), &runs), oneShard); err != nil {
		t.Fatal(err)
	}
	// The first call reads the sentinel, finds none and creates it (which
	// reads it again).
	if n := db.reads.Load(); n == 0 {
		t.Fatalf("the first call read the sentinel %d times; want at least once", n)
	}
	before := db.reads.Load()
	for range 20 {
		if _, err := txn.Transact(context.Background(), db, incr([]byte("c"), &runs), oneShard); err != nil {
			t.Fatal(err)
		}
	}
	if n := db.reads.Load() - before; n != 0 {
		t.Fatalf("20 later calls read the sentinel %d times; want 0 (cached)", n)
	}
	// Another handle on the same engine has a cache of its own.
	other := &countDB{Database: inner, key: db.key}
	if _, err := txn.Transact(context.Background(), other, incr([]byte("c"), &runs), oneShard); err != nil {
		t.Fatal(err)
	}
	if n := other.reads.Load(); n != 1 {
		t.Fatalf("a call through another handle read the sentinel %d times; want 1 (its own cache is empty; the sentinel exists)", n)
	}
	// A sighting more than a second of versions old is read again.
	if err := inner.AdvanceVersion(2 * kv.VersionsPerSecond); err != nil {
		t.Fatal(err)
	}
	before = db.reads.Load()
	for range 3 {
		if _, err := txn.Transact(context.Background(), db, incr([]byte("c"), &runs), oneShard); err != nil {
			t.Fatal(err)
		}
	}
	if n := db.reads.Load() - before; n != 1 {
		t.Fatalf("3 calls two seconds later read the sentinel %d times; want 1 (the first refreshes the sighting)", n)
	}
	if n := readCount(t, inner, []byte("c")); n != 25 {
		t.Fatalf("counter = %d after 25 calls", n)
	}
}

// A foreign clear of the prefix after the sentinel was cached: the cache is
// stale, and the calls that trust it commit with no sentinel under them. A
// reader that then finds their marker absent still checks the real
// sentinel: the outcome is lost, and fn never runs twice.
func TestSentinelCacheStaleAfterForeignClear(t *testing.T) {
	t.Run("applied-then-cleared", func(t *testing.T) {
		inner := openStill(t)
		var fireAt atomic.Int64 // the commit to apply and report 1021 for
		sdb := &scriptDB{Database: inner,
			plan: func(n int) action {
				if int64(n) == fireAt.Load() {
					return applied1021
				}
				return pass
			},
			after: func(int) {
				foreignClear(t, inner) // removes the marker just committed
			}}
		db := &countDB{Database: sdb, key: txn.SentinelKey(txn.DefaultPrefix, 0)}
		runs := 0
		if _, err := txn.Transact(context.Background(), db, incr([]byte("c"), &runs), oneShard); err != nil {
			t.Fatal(err)
		}
		foreignClear(t, inner)
		before := db.reads.Load()
		sdb.mu.Lock()
		fireAt.Store(int64(sdb.n) + 1)
		sdb.mu.Unlock()
		runs = 0
		_, err := txn.Transact(context.Background(), db, incr([]byte("c"), &runs), oneShard)
		var lost *txn.OutcomeLostError
		if !errors.As(err, &lost) || !lost.Cleared || runs != 1 {
			t.Fatalf("Transact = %v after %d runs; want *OutcomeLostError with Cleared after 1 run", err, runs)
		}
		if n := db.reads.Load() - before; n != 1 {
			t.Fatalf("the call read the sentinel %d times; want 1 (only the reader's: the commit trusted the cache)", n)
		}
		if n := readCount(t, inner, []byte("c")); n != 2 {
			t.Fatalf("counter = %d, want 2: one add per call", n)
		}
	})

	// The cost of a stale cache: a call that committed nothing, but whose
	// reader finds the sentinel gone, cannot prove it, and reports the
	// outcome lost. The reader drops the sighting, so the next call reads
	// the sentinel, re-creates it, and settles the same fault by running fn
	// again.
	t.Run("not-applied", func(t *testing.T) {
		inner := openStill(t)
		var arm atomic.Bool
		sdb := &scriptDB{Database: inner, plan: func(int) action {
			if arm.CompareAndSwap(true, false) {
				return notApplied1021
			}
			return pass
		}}
		db := &countDB{Database: sdb, key: txn.SentinelKey(txn.DefaultPrefix, 0)}
		runs := 0
		if _, err := txn.Transact(context.Background(), db, incr([]byte("c"), &runs), oneShard); err != nil {
			t.Fatal(err)
		}
		foreignClear(t, inner)
		arm.Store(true)
		runs = 0
		_, err := txn.Transact(context.Background(), db, incr([]byte("c"), &runs), oneShard)
		var lost *txn.OutcomeLostError
		if !errors.As(err, &lost) || !lost.Cleared || runs != 1 {
			t.Fatalf("Transact = %v after %d runs; want *OutcomeLostError with Cleared after 1 run", err, runs)
		}
		if n := readCount(t, inner, []byte("c")); n != 1 {
			t.Fatalf("counter = %d, want 1 (the first call's add only)", n)
		}
		before := db.reads.Load()
		arm.Store(true)
		runs = 0
		got, err := txn.Transact(context.Background(), db, incr([]byte("c"), &runs), oneShard)
		if err != nil || got != 2 || runs != 2 {
			t.Fatalf("Transact after the reader's refresh = %d, %v after %d runs; want 2, nil after 2 runs", got, err, runs)
		}
		if n := db.reads.Load() - before; n < 2 {
			t.Fatalf("the call after the refresh read the sentinel %d times; want its own read and its creation's", n)
		}
		if n := readCount(t, inner, []byte("c")); n != 2 {
			t.Fatalf("counter = %d, want 2 (the first call's and the last's)", n)
		}
	})

	// Cleared and re-created newer than a call's ID while the call runs:
	// the reader finds the sentinel newer, the outcome is lost, and the
	// cache learns the new sentinel, so the next call neither reads it nor
	// is dated before it.
	t.Run("recreated-newer", func(t *testing.T) {
		inner := openStill(t)
		var arm atomic.Bool
		sdb := &scriptDB{Database: inner, plan: func(int) action {
			if arm.CompareAndSwap(true, false) {
				return notApplied1021
			}
			return pass
		}}
		db := &countDB{Database: sdb, key: txn.SentinelKey(txn.DefaultPrefix, 0)}
		runs := 0
		if _, err := txn.Transact(context.Background(), db, incr([]byte("c"), &runs), oneShard); err != nil {
			t.Fatal(err)
		}
		arm.Store(true)
		runs = 0
		_, err := txn.Transact(context.Background(), db, func(tr kv.Transaction) (int, error) {
			if runs == 0 {
				// Another process resets the store and starts again.
				foreignClear(t, inner)
				if _, err := txn.Transact(context.Background(), inner, func(kv.Transaction) (struct{}, error) { return struct{}{}, nil }, oneShard); err != nil {
					t.Error(err)
				}
			}
			return incr([]byte("c"), &runs)(tr)
		}, oneShard)
		var lost *txn.OutcomeLostError
		if !errors.As(err, &lost) || !lost.Cleared || runs != 1 {
			t.Fatalf("Transact = %v after %d runs; want *OutcomeLostError with Cleared after 1 run", err, runs)
		}
		before := db.reads.Load()
		arm.Store(true)
		runs = 0
		var id txn.ID
		got, err := txn.Transact(context.Background(), db, incr([]byte("c"), &runs), &txn.Options{Shards: 1, MaxRetryDelay: time.Millisecond, Observe: func(s txn.Stats) { id = s.ID }})
		if err != nil || got != 2 || runs != 2 {
			t.Fatalf("Transact after the refresh = %d, %v after %d runs; want 2, nil after 2 runs", got, err, runs)
		}
		if n := db.reads.Load() - before; n != 1 {
			t.Fatalf("the call after the refresh read the sentinel %d times; want 1, its reader's (the last reader cached the new sentinel)", n)
		}
		sv := readKey(t, inner, db.key)
		if created := kv.Versionstamp(sv[1:]).Version(); id.Version < created {
			t.Fatalf("ID version %d is before the sentinel's creation at %d", id.Version, created)
		}
		if n := readCount(t, inner, []byte("c")); n != 2 {
			t.Fatalf("counter = %d, want 2 (the first call's and the last's)", n)
		}
	})
}

func readKey(t *testing.T, db kv.Database, key []byte) []byte {
	t.Helper()
	v, err := txn.StockTransact(context.Background(), db, func(tr kv.Transaction) ([]byte, error) {
		return tr.Get(key).Get()
	})
	if err != nil || v == nil {
		t.Fatalf("read %q = %x, %v", key, v, err)
	}
	return v
}
