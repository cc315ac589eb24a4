package kvtest

import (
	"context"
	"time"

	"github.com/idemkv/idemkv/kv"
)

// NullDB is a kv.Database that does nothing and costs next to nothing,
// for measuring a caller's own cost (txn's and idemkv's OwnCost
// benchmarks): reads find no value, commits succeed, the read version is
// fixed at NullVersion, and every versionstamp is older than it (so a shard
// sentinel a txn call creates, and caches, is older than its ID, as on a
// real database). Under it, what a call costs is the library's own code,
// which on a real engine hides in the engine's noise. (It has a field:
// txn's sentinel cache keeps nothing for a zero-size database.)
type NullDB struct{ _ int }

var _ kv.Database = (*NullDB)(nil)

// CreateTransaction returns a transaction that does nothing.
func (db *NullDB) CreateTransaction(context.Context) (kv.Transaction, error) {
	return &nullTx{}, nil
}

// Close does nothing.
func (db *NullDB) Close() error { return nil }

// NullVersion is NullDB's read version.
const NullVersion = 1_000_000

type nullTx struct{}

var (
	nullValue  = kv.Ready[[]byte](nil, nil)
	nullRange  = kv.Ready[[]kv.KeyValue](nil, nil)
	nullRV     = kv.Ready[int64](NullVersion, nil)
	nullCommit = kv.Ready(struct{}{}, nil)
	nullStamp  = kv.Ready(kv.NewVersionstamp(NullVersion/2, 0), nil)
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
func (*nullTx) GetCommittedVersion() (int64, error)                          { return NullVersion + 1, nil }
func (*nullTx) GetVersionstamp() *kv.Future[kv.Versionstamp]                 { return nullStamp }
func (*nullTx) GetApproximateSize() *kv.Future[int64]                        { return nullApprox }

type nullOptions struct{}

func (nullOptions) SetTimeout(time.Duration) error       { return nil }
func (nullOptions) SetRetryLimit(int) error              { return nil }
func (nullOptions) SetMaxRetryDelay(time.Duration) error { return nil }
func (nullOptions) SetSizeLimit(int) error               { return nil }
func (nullOptions) SetAccessSystemKeys() error           { return nil }
func (nullOptions) SetReadSystemKeys() error             { return nil }
