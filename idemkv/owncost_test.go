package idemkv_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/kv"
)

// nullDB is the database of txn's BenchmarkOwnCost (txn/owncost_test.go):
// it does nothing and costs next to nothing — reads find no value, commits
// succeed, the read version is fixed and every versionstamp is older — so
// what a call costs on it is the library's own code.
type nullDB struct{ _ int } // sized: the sentinel cache skips zero-size databases

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
	_          = kv.Database((*nullDB)(nil))
	_          = kv.Transaction((*nullTx)(nil))
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

// BenchmarkKeyedOwnCost is what Transact and TransactKey's first call cost
// in idemkv's and txn's own code, one goroutine, on nullDB: the difference
// is TransactKey's (the record's key, fingerprint and encoding, the
// age-index entry, the result's Codec) before any engine stores a byte.
//
//	go test ./idemkv/ -run '^$' -bench KeyedOwnCost -benchtime 200000x
func BenchmarkKeyedOwnCost(b *testing.B) {
	ctx := context.Background()
	s, err := idemkv.Open(ctx, "mem:", &idemkv.Options{NoJanitor: true, WrapDatabase: func(kv.Database) kv.Database { return &nullDB{} }})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	key, one := []byte("counter"), []byte{1, 0, 0, 0, 0, 0, 0, 0}
	add := func(tr kv.Transaction) (int, error) { tr.Atomic(kv.Add, key, one); return 1, nil }
	b.Run("transact", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := idemkv.Transact(ctx, s, add); err != nil {
				b.Fatal(err)
			}
		}
	})
	var seq atomic.Int64
	b.Run("transactkey-first", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := idemkv.TransactKey(ctx, s, fmt.Sprintf("k%d", seq.Add(1)), nil, add, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
