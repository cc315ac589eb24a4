package faulty

import (
	"time"

	"github.com/idemkv/idemkv/kv"
)

// deadTxn stands in for an inner transaction that a late commit took away
// (or that could not be created): every operation fails with err, as
// FoundationDB's do on a transaction whose commit failed, until the wrapper's
// OnError or Reset replaces it.
type deadTxn struct{ err error }

var _ kv.Transaction = deadTxn{}

func (d deadTxn) Get([]byte) *kv.Future[[]byte] { return kv.Failed[[]byte](d.err) }

func (d deadTxn) GetRange(kv.Range, kv.RangeOptions) *kv.Future[[]kv.KeyValue] {
	return kv.Failed[[]kv.KeyValue](d.err)
}

func (d deadTxn) GetReadVersion() *kv.Future[int64]      { return kv.Failed[int64](d.err) }
func (d deadTxn) Snapshot() kv.ReadTransaction           { return d }
func (d deadTxn) Set(_, _ []byte)                        {}
func (d deadTxn) Clear([]byte)                           {}
func (d deadTxn) ClearRange(kv.Range)                    {}
func (d deadTxn) Atomic(kv.MutationType, []byte, []byte) {}
func (d deadTxn) AddReadConflictRange(kv.Range) error    { return d.err }
func (d deadTxn) AddWriteConflictRange(kv.Range) error   { return d.err }
func (d deadTxn) SetReadVersion(int64)                   {}
func (d deadTxn) Options() kv.TransactionOptions         { return deadOptions(d) }
func (d deadTxn) Commit() *kv.Future[struct{}]           { return kv.Failed[struct{}](d.err) }
func (d deadTxn) OnError(err error) error                { return err }
func (d deadTxn) Reset()                                 {}
func (d deadTxn) Cancel()                                {}
func (d deadTxn) GetCommittedVersion() (int64, error)    { return -1, d.err }
func (d deadTxn) GetApproximateSize() *kv.Future[int64]  { return kv.Failed[int64](d.err) }
func (d deadTxn) GetVersionstamp() *kv.Future[kv.Versionstamp] {
	return kv.Failed[kv.Versionstamp](d.err)
}

// deadOptions refuses every option with the dead transaction's error.
type deadOptions deadTxn

func (d deadOptions) SetTimeout(time.Duration) error       { return d.err }
func (d deadOptions) SetRetryLimit(int) error              { return d.err }
func (d deadOptions) SetMaxRetryDelay(time.Duration) error { return d.err }
func (d deadOptions) SetSizeLimit(int) error               { return d.err }
func (d deadOptions) SetAccessSystemKeys() error           { return d.err }
func (d deadOptions) SetReadSystemKeys() error             { return d.err }
