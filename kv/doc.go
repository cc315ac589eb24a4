// Package kv is idemkv's seam to FoundationDB: the database, transaction and
// future types that the layers above (txn, cleanup, idemkv) are written
// against, FoundationDB's error codes, and the three predicates that classify
// them.
//
// A user of github.com/apple/foundationdb/bindings/go will recognise it:
// CreateTransaction, Get and GetRange returning futures with Get and
// MustGet, Set, Clear, ClearRange, atomic operations, conflict ranges,
// Commit, OnError, Reset, Cancel, versionstamps and transaction options. It
// differs where Go has moved on since the bindings were written: a
// transaction is bound to a context.Context, futures are generic, options
// take time.Duration, and errors are *Error values that errors.Is and
// errors.As understand.
//
// # Implementations
//
// kv/embedded is an engine with FoundationDB's semantics on one machine, the
// default and the stand-in for FoundationDB in every test. kv/fdbkv (build
// tag fdb) adapts a real cluster. kv/faulty wraps either and injects
// FoundationDB's failures from a seed. kv/kvtest is the conformance suite
// they all pass.
//
// # Errors and retries
//
// Every FoundationDB failure is an *Error with FoundationDB's code. Three
// predicates, with FoundationDB's membership, classify them:
//
//   - IsRetryableNotCommitted: the transaction did not commit and may be
//     retried (not_committed, transaction_too_old, future_version, ...).
//   - MaybeCommitted: the outcome is unknown (commit_unknown_result,
//     cluster_version_changed). Retrying blindly may apply the transaction
//     twice; package txn retries these safely.
//   - IsRetryable: either of the above; what Transaction.OnError retries.
//
// transaction_timed_out (1031) is in none of them, although a timeout that
// fires during a commit leaves the outcome unknown too.
//
// # Futures and goroutines
//
// Reads return a *Future at once; Get blocks until the result is ready.
// Issuing several reads before waiting on any lets a backend that talks to a
// server run them concurrently. A Transaction is for one goroutine at a
// time, except Cancel; a Database is safe for concurrent use.
//
// # Limits
//
// Keys up to MaxKeySize bytes, values up to MaxValueSize, transactions up to
// DefaultSizeLimit (mutations plus conflict ranges), and a read version that
// stays usable for MaxTransactionLifeVersions (five seconds of versions).
package kv
