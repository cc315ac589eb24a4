// Package fdbkv adapts a FoundationDB cluster, through the official Go
// bindings (github.com/apple/foundationdb/bindings/go), to the kv seam that
// idemkv's layers are written against. Open connects to a cluster; Wrap
// adapts an fdb.Database opened by other code; Unwrap gives a transaction
// function the underlying fdb.Transaction; Transact is an exactly-once
// replacement for fdb.Database.Transact, for code written against the
// bindings.
//
// # Build tags
//
// The bindings call libfdb_c through cgo, so the adapter is compiled only
// with the build tag fdb, on a machine with the FoundationDB 7.3 client
// library and headers installed:
//
//	go test -tags fdb ./...
//
// or with kv/fdbc, the in-process shim, standing in for both (see below).
//
// Without the tag, the package still builds: Open returns ErrNoFoundationDB,
// which says what to install. The parts that need no cgo — the error-code
// mapping, option validation and conversion, API-version selection and the
// cluster-file check — are untagged and tested everywhere. typecheck_test.go
// (untagged) type-checks the tagged adapter and its tagged tests against the
// bindings' source from the module cache with go/types, so a wrong call into
// the bindings fails CI on machines that could never link it.
//
// # The API that needs the bindings
//
// Besides what go doc shows in any build, the fdb build declares the
// functions that take or return the bindings' types (docapi_test.go keeps
// this list equal to the declarations):
//
//	func Transact[T any](ctx context.Context, db fdb.Database, fn func(fdb.Transaction) (T, error), opts *txn.Options) (T, error)
//	func Unwrap(tr kv.Transaction) (fdb.Transaction, bool)
//	func Wrap(db fdb.Database) *DB
//
// Wrap adapts an fdb.Database opened by other code (the caller keeps
// ownership); Unwrap gives a transaction function the fdb.Transaction
// behind a transaction of this package, following wrappers with an
// Unwrap() kv.Transaction method; Transact is the exactly-once
// replacement for fdb.Database.Transact (its full documentation is in
// transact.go). In the fdb build Open connects to the cluster instead of
// failing.
//
// # Without a cluster: the in-process shim
//
// Package kv/fdbc implements FoundationDB's C API over the embedded engine.
// With a blank import of it and its include path in CGO_CFLAGS, the fdb
// build of this package — and any other code on the bindings — runs
// in-process, with no libfdb_c and no cluster; CI runs this package's
// tests that way (build tags fdb and fdbc). See docs/foundationdb.md.
//
// # API version and cluster file
//
// A process selects one FoundationDB API version. The first Open selects
// Options.APIVersion (default 730, accepted 620 to 730: 730 is the bindings'
// header version, 620 the oldest with every feature the adapter uses); a
// later Open asking for another version fails with
// api_version_already_set (2201) naming both. A version selected directly
// through the bindings counts as selected.
//
// Open("") looks for the cluster file as libfdb_c does ($FDB_CLUSTER_FILE,
// ./fdb.cluster, then /etc/foundationdb/fdb.cluster on Linux) and checks
// that it can be read and holds a connection string before handing it to
// the client, so that a wrong path fails at once with an error naming the
// path and FDB_CLUSTER_FILE instead of a bare no_cluster_file_found or a
// hang.
//
// # Errors
//
// Every fdb.Error becomes a *kv.Error with the same code: the codes are
// FoundationDB's on both sides of the seam, so kv.IsRetryable,
// kv.MaybeCommitted and errors.Is(err, kv.ErrNotCommitted) classify a
// cluster's errors exactly as the embedded engine's. Codes kv does not name
// carry FoundationDB's name in Detail. Errors that are not fdb.Error (the
// bindings' network errors, a missing cluster file) are returned as they
// are, with context. Option values out of range fail with
// invalid_option_value (2006) and a message naming the range, before
// reaching the client.
//
// # Contexts
//
// CreateTransaction(ctx) binds the transaction to ctx for its whole life,
// across Reset and OnError:
//
//   - ctx's deadline becomes the transaction's timeout option (the smaller
//     of it and any SetTimeout, measured from creation or the last Reset,
//     rounded up to a millisecond), so the client itself fails the
//     transaction with transaction_timed_out (1031). Such a 1031 carries
//     context.DeadlineExceeded as its cause.
//   - When ctx is done, a context.AfterFunc cancels the transaction, so
//     operations in flight fail; and every later operation checks ctx
//     first, so none can succeed after cancel() has returned. The error is
//     transaction_cancelled (1025) caused by context.Canceled, or 1031
//     caused by context.DeadlineExceeded — whichever ctx reports.
//   - The watcher is unregistered when a commit succeeds. A transaction
//     abandoned without a successful commit stays registered with a
//     cancelable ctx until ctx is done; cancel contexts (defer cancel()) as
//     usual.
//
// GetCommittedVersion, GetVersionstamp and GetApproximateSize keep working
// after ctx is done, since callers commonly cancel right after a commit.
//
// # Versionstamps after Commit
//
// FoundationDB refuses every operation on a transaction from Commit until
// OnError or Reset with used_during_commit (2017), get_versionstamp and
// get_approximate_size included: its versionstamp must be asked for before
// committing. kv promises it after a successful commit (package txn reads
// it then), so Commit asks the bindings for the versionstamp future just
// before committing, and GetVersionstamp called after Commit returns that
// future; called before, it asks the bindings itself. GetApproximateSize
// after Commit fails with used_during_commit, as FoundationDB's does.
//
// # Why OnError is not called for 1031 and 1039
//
// Transaction.OnError implements FoundationDB's retry policy by calling the
// bindings' OnError, except for two codes:
//
//   - transaction_timed_out (1031) is returned as is. It is not retryable,
//     and when it fires during a commit the outcome is unknown: package txn
//     must see it and resolve it, not a retry loop.
//   - cluster_version_changed (1039) means the cluster was upgraded under
//     the multi-version client, and the commit may have landed. The
//     client's OnError answers it by swapping in the new version's
//     transaction and reporting success, which would make any loop built
//     on it re-run the function blindly. fdbkv resets the transaction
//     itself, backs off with kv.Backoff (FoundationDB's 10 ms doubling,
//     jittered, capped by the max retry delay) and returns nil, leaving the
//     decision to the caller, who saw the 1039 first: txn treats it as
//     maybe-committed and checks its marker before running the function
//     again.
//
// The timeout, retry limit and max retry delay persist across OnError
// (FoundationDB's persistent options; they are applied again after each
// retry); the size limit and system key access do not, as on a cluster,
// and Reset forgets everything. The retry limit counts both kinds of
// retry; an error OnError refuses cancels the transaction until Reset.
//
// # Concurrency
//
// A DB is safe for concurrent use. A transaction is for one goroutine at a
// time, except Cancel. Close must not run while transactions are in the
// middle of an operation; afterwards they fail with kv.ErrClosed. DBs from
// Open for the same cluster file share one client connection, closed with
// the last of them; a DB from Wrap never closes the fdb.Database it wraps.
// The bindings keep their per-cluster-file cache in an unguarded map, so
// code that also calls fdb.OpenDatabase directly must not do so
// concurrently with Open or Close.
package fdbkv
