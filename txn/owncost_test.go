package txn_test

import (
	"context"
	"testing"
	"time"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/txn"
)

// nullDB is a kv.Database that does nothing and costs next to nothing:
// reads find no value, commits succeed, the read version is fixed, and
// every versionstamp is older than it (so the sentinel a call creates, and
// caches, is older than its ID, as on a real database). Under it,
// what a Transact call costs is txn's own code — the ID, the sentinel cache,
// the marker's key and value, the futures it waits on, the retry loop's
// plumbing — which on a real engine hides in the engine's noise. (It has
// a field: the sentinel cache keeps nothing for a zero-size database.)
type nullDB struct{ _ int }

var _ kv.Database = (*nullDB)(nil)

func (db *nullDB) CreateTransaction(context.Context) (kv.Transaction, error) {
	return &nullTx{}, nil
}
func (db *nullDB) Close() error { return nil }

const nullVersion = 1_000_000

type nullTx struct{}

var (
	nullValue  = kv.Ready[[]byte](nil, nil)
	nullRange  = kv.Ready[[]kv.KeyValue](nil, nil)
	nullRV     = kv.Ready[int64](nullVersion, nil)
	nullCommit = kv.Ready(struct{}{}, nil)
	nullStamp  = kv.Ready(kv.NewVersionstamp(nullVersion/2, 0), nil)
	nullApprox = kv.Ready[int64](0, nil)
	_          = kv.Transaction((*nullTx)(nil))
	_          = kv.TransactionOptions(nullOptions{})
)

func (*nullTx) Get([]byte) *kv.Future[[]byte]                                { return nullValue }
func (*nullTx) GetRange(kv.Range, kv.RangeOptions) *kv.Future[[]kv.KeyValue] { return nullRange }
func (*nullTx) GetReadVersion() *kv.Future[int64]                            { return nullRV }
func (t *nullTx) Snapshot() kv.ReadTransaction                               { return t }
func (*nullTx) Set(_, _ []byte)                                              {}
func (*nullTx) Clear([]byte)                                                 {}
func (*nullTx) ClearRange(kv.Range)                                          {}
func (*nullTx) Atomic(kv.MutationType, []byte, []byte)                       {}
func (*nullTx) AddReadConflictRange(kv.Range) error                          { return nil }
func (*nullTx) AddWriteConflictRange(kv.Range) error                         { return nil }
func (*nullTx) SetReadVersion(int64)                                         {}
func (*nullTx) Options() kv.TransactionOptions                               { return nullOptions{} }
func (*nullTx) Commit() *kv.Future[struct{}]                                 { return nullCommit }
func (*nullTx) OnError(err error) error                                      { return err }
func (*nullTx) Reset()                                                       {}
func (*nullTx) Cancel()                                                      {}
func (*nullTx) GetCommittedVersion() (int64, error)                          { return nullVersion + 1, nil }
func (*nullTx) GetVersionstamp() *kv.Future[kv.Versionstamp]                 { return nullStamp }
func (*nullTx) GetApproximateSize() *kv.Future[int64]                        { return nullApprox }

type nullOptions struct{}

func (nullOptions) SetTimeout(time.Duration) error       { return nil }
func (nullOptions) SetRetryLimit(int) error              { return nil }
func (nullOptions) SetMaxRetryDelay(time.Duration) error { return nil }
func (nullOptions) SetSizeLimit(int) error               { return nil }
func (nullOptions) SetAccessSystemKeys() error           { return nil }
func (nullOptions) SetReadSystemKeys() error             { return nil }

// BenchmarkOwnCost is txn's own cost per call, on nullDB: a blind add
// through the stock loop and through Transact, one goroutine. The
// difference is what the protocol's code adds to every call on any
// backend, before the engine does anything with the marker.
func BenchmarkOwnCost(b *testing.B) {
	ctx := context.Background()
	db := &nullDB{}
	key := []byte("counter")
	fn := func(tr kv.Transaction) (struct{}, error) {
		tr.Atomic(kv.Add, key, one)
		return struct{}{}, nil
	}
	opts := &txn.Options{Prefix: []byte("\xfdowncost/"), Observe: func(txn.Stats) {}}
	b.Run("stock", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := txn.StockTransact(ctx, db, fn); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("exactly-once", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := txn.Transact(ctx, db, fn, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("exactly-once/options", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := txn.Transact(ctx, db, fn, opts); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("commit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := txn.TransactCommit(ctx, db, fn, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
