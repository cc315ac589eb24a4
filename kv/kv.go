package kv

import (
	"context"
	"time"
)

// FoundationDB's limits and clock, as the embedded engine enforces them and
// as a real cluster does by default.
const (
	// MaxKeySize is the largest key a transaction may read or write
	// (key_too_large, 2102, above it).
	MaxKeySize = 10_000
	// MaxValueSize is the largest value a transaction may write
	// (value_too_large, 2103, above it).
	MaxValueSize = 100_000
	// DefaultSizeLimit is the default limit on a transaction's approximate
	// size: mutations plus conflict ranges (transaction_too_large, 2101).
	DefaultSizeLimit = 10_000_000
	// VersionsPerSecond is how fast database versions advance.
	VersionsPerSecond = 1_000_000
	// MaxTransactionLifeVersions is how many versions a read version stays
	// usable: FoundationDB's five-second transaction lifetime. Older reads and
	// commits fail with transaction_too_old (1007).
	MaxTransactionLifeVersions = 5 * VersionsPerSecond
	// DefaultMaxRetryDelay caps OnError's backoff unless SetMaxRetryDelay says
	// otherwise.
	DefaultMaxRetryDelay = time.Second
	// InitialRetryDelay is OnError's first backoff; each retry doubles it.
	InitialRetryDelay = 10 * time.Millisecond
)

// Database is a FoundationDB database: the source of transactions. It is safe
// for concurrent use. Implementations: kv/embedded (the default), kv/fdbkv (a
// real cluster, build tag fdb) and kv/faulty (a fault injector around either).
type Database interface {
	// CreateTransaction starts a transaction bound to ctx. Once ctx is
	// canceled, the transaction's operations fail with transaction_cancelled
	// (1025) whose cause is ctx.Err(); once ctx's deadline passes they fail
	// with transaction_timed_out (1031) whose cause is
	// context.DeadlineExceeded. The binding outlives Reset and OnError.
	CreateTransaction(ctx context.Context) (Transaction, error)
	// Close releases the database. Transactions still open fail afterwards;
	// Close may be called more than once.
	Close() error
}

// ReadTransaction is the read half of a transaction, and all that a
// snapshot view offers.
type ReadTransaction interface {
	// Get reads key at the transaction's read version, seeing the
	// transaction's own writes. An absent key yields a nil value and no
	// error; a present but empty value yields a non-nil empty slice.
	Get(key []byte) *Future[[]byte]
	// GetRange reads the keys in [r.Begin, r.End), in order (or in reverse),
	// at most opts.Limit of them when Limit > 0.
	GetRange(r Range, opts RangeOptions) *Future[[]KeyValue]
	// GetReadVersion returns the version the transaction reads at, getting
	// one from the database if none was set.
	GetReadVersion() *Future[int64]
}

// Transaction is a FoundationDB transaction: strictly serializable, with
// read-your-writes, committed optimistically. A Transaction is not meant for
// concurrent use except that Cancel may be called from any goroutine.
//
// Writes report no error when they are made: as in FoundationDB, an invalid
// write (key or value too large, a key in the system space) is remembered and
// returned by every later read and by Commit, and nothing is written.
//
// From Commit until OnError or Reset — after a successful commit too —
// reads, writes, conflict ranges and a second Commit fail with
// used_during_commit (2017), as FoundationDB's do. GetVersionstamp,
// GetCommittedVersion, GetReadVersion and GetApproximateSize keep working
// (FoundationDB refuses getVersionstamp after commit; kv promises it, and
// kv/fdbkv asks for it before committing).
type Transaction interface {
	ReadTransaction

	// Snapshot returns a view whose reads add no read conflict ranges.
	Snapshot() ReadTransaction

	Set(key, value []byte)
	Clear(key []byte)
	ClearRange(r Range)
	// Atomic applies op to key with param at commit time, against the value
	// then current, without a read conflict. See MutationType for each op's
	// byte semantics.
	Atomic(op MutationType, key, param []byte)

	// AddReadConflictRange makes the transaction conflict with any write to
	// r committed after its read version, as if it had read r.
	AddReadConflictRange(r Range) error
	// AddWriteConflictRange makes other transactions that read r conflict
	// with this one, as if it had written r.
	AddWriteConflictRange(r Range) error

	// SetReadVersion fixes the read version instead of asking the database.
	// As in FoundationDB it fails, deferred to the next read or Commit,
	// with read_version_already_set (2010) once the transaction has a read
	// version (from GetReadVersion, a read, or an earlier SetReadVersion)
	// and with version_invalid (2011) for v <= 0.
	SetReadVersion(v int64)
	// Options returns the transaction's option setter.
	Options() TransactionOptions

	// Commit commits the transaction. A read-only transaction commits
	// without contacting the database. The returned future's error is one
	// of FoundationDB's: not_committed (1020) on a conflict,
	// commit_unknown_result (1021) when the outcome is unknown, and so on.
	Commit() *Future[struct{}]
	// OnError implements FoundationDB's retry policy: if err is retryable
	// (IsRetryable) and the retry limit allows, it waits the backoff (10 ms
	// doubling, capped by the max retry delay, jittered), resets the
	// transaction and returns nil. Otherwise it returns err and, as
	// FoundationDB does since API 610, cancels the transaction: its writes
	// can no longer commit and every operation (OnError included) fails
	// with transaction_cancelled (1025) until Reset. The timeout, retry
	// limit and max retry delay persist across OnError (FoundationDB's
	// persistent options); the size limit and system key access do not.
	// Nothing persists across Reset.
	OnError(err error) error
	// Reset returns the transaction to its freshly created state.
	Reset()
	// Cancel makes pending and future operations fail with
	// transaction_cancelled (1025) until Reset.
	Cancel()

	// GetCommittedVersion returns the version at which the transaction
	// committed; -1, with no error, for a read-only transaction and before
	// a successful commit (FoundationDB's invalidVersion).
	GetCommittedVersion() (int64, error)
	// GetVersionstamp returns the transaction's versionstamp: ready after a
	// successful commit of a transaction that wrote (as FoundationDB's
	// client, whether or not it used a versionstamped operation), failing
	// for a read-only commit (no_commit_version, 2021) or a failed one
	// (transaction_invalid_version, 2020, as FoundationDB's).
	GetVersionstamp() *Future[Versionstamp]
	// GetApproximateSize returns the size of the mutations and conflict
	// ranges added so far, every call counted. The size limit is checked
	// at Commit against what is sent, as FoundationDB's client does: one
	// mutation per key after read-your-writes coalescing and merged
	// conflict ranges; a read-only transaction is not checked.
	GetApproximateSize() *Future[int64]
}

// TransactionOptions sets per-transaction options. Values out of range fail
// with invalid_option_value (2006) and leave the option as it was.
type TransactionOptions interface {
	// SetTimeout cancels the transaction with transaction_timed_out (1031)
	// once d has passed since it was created or last Reset; 0 disables.
	SetTimeout(d time.Duration) error
	// SetRetryLimit bounds how many times OnError retries; -1 is no limit.
	SetRetryLimit(n int) error
	// SetMaxRetryDelay caps OnError's backoff.
	SetMaxRetryDelay(d time.Duration) error
	// SetSizeLimit sets the transaction size limit, from 32 bytes to
	// DefaultSizeLimit, until OnError or Reset.
	SetSizeLimit(n int) error
	// SetAccessSystemKeys allows reading and writing keys that begin with
	// 0xff, until OnError or Reset.
	SetAccessSystemKeys() error
	// SetReadSystemKeys allows reading keys that begin with 0xff, until
	// OnError or Reset.
	SetReadSystemKeys() error
}

// KeyValue is one key and its value, as range reads return them.
type KeyValue struct {
	Key, Value []byte
}

// RangeOptions shapes a range read. The zero value reads everything, in
// order.
type RangeOptions struct {
	// Limit caps the number of pairs returned; 0 means no limit. A
	// negative limit fails with range_limits_invalid (2012).
	Limit int
	// Reverse returns the pairs from the end of the range backwards.
	Reverse bool
}
