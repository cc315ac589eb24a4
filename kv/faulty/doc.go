// Package faulty wraps any kv.Database and, from a seed, makes commits fail
// the ways FoundationDB's do, so that retry loops and the exactly-once
// protocol above them can be tested against the failures that matter:
// commits whose outcome the client cannot know.
//
//	db := faulty.Wrap(engine, faulty.Config{Seed: 42, UnknownResultApplied: 0.05})
//	defer db.Close()
//
// # Faults
//
// Each kind has a probability in Config (see Kinds); at most one is chosen
// per commit, and a commit may independently be delayed by added latency.
//
//   - commit_unknown_result (1021), transaction_timed_out (1031) and
//     cluster_version_changed (1039) come "applied" (the inner commit ran
//     and succeeded; the caller is told it failed) and "not applied" (the
//     inner transaction is abandoned). 1021 and 1031 also come "late": the
//     caller is told at once, and a goroutine sends the inner commit after a
//     delay in [0, Config.LateDelay], while the caller may already be
//     retrying. The late commit keeps its original read version and goes
//     through the inner engine's conflict detection, so it lands only if
//     nothing it read was written meanwhile — exactly the in-flight commit
//     that makes retrying unsafe.
//   - not_committed (1020), transaction_too_old (1007) and future_version
//     (1009) are spurious: nothing is applied.
//   - A recovery (RecoveryApplied, RecoveryNotApplied) is what a
//     FoundationDB cluster recovery does to a commit in flight: the
//     database's version jumps forward by Config.RecoveryJump's worth of
//     versions (default 100 s, FoundationDB's MAX_VERSIONS_IN_FLIGHT; a
//     forced recovery jumps further), the commit fails with
//     commit_unknown_result, applied or not, and every read version handed
//     out before the jump is too old afterwards, so the reads and commits
//     of transactions still open at it fail with transaction_too_old — as
//     a commit with reads at an old version does on a recovered cluster.
//     The wrapped database must implement Recoverer (kv/embedded's DB
//     does); anything that measures time in versions (leases, minimum
//     ages) sees the jump.
//
// "Applied" means applied: if the inner commit fails by itself (a real
// conflict, say), the caller gets that error and the fault counts as not
// applied. Injected errors are *kv.Error values with the real code, so
// kv.IsRetryable, kv.MaybeCommitted and errors.Is classify them as they
// would FoundationDB's; the detail names the seed and the commit number.
//
// Only commits of transactions that wrote something (a mutation or a write
// conflict range) are faulted: FoundationDB commits a read-only transaction
// without contacting the cluster. Reads, GRV and options are never faulted.
//
// # Determinism
//
// The n-th Commit call on a DB (counting from 0, every call, faulted or
// not) has a fate that is a pure function of (Config.Seed, n): a PCG seeded
// with the two. With one goroutine, the same seed replays the same schedule
// exactly. With several, which transaction gets the n-th commit follows the
// scheduler, so the mix of faults holds but not its assignment. Backoff
// jitter and the timing of late commits against retries are not part of
// the schedule.
//
// # Transactions after a fault
//
// A wrapped transaction whose commit failed behaves like a FoundationDB
// transaction that failed: GetCommittedVersion and GetVersionstamp return the
// commit's error, and OnError applies FoundationDB's policy — for an error
// that kv.IsRetryable accepts (1039 included, as the multi-version client
// does; 1031 not), it waits kv.Backoff's delay under the transaction's max
// retry delay, counts the retry against the retry limit, resets and returns
// nil; otherwise it returns the error. The wrapper implements OnError itself
// and keeps the retry count, the backoff and the options in force
// (timeout, retry limit, max retry delay, size limit, system-key access),
// because a late commit takes the inner transaction away: the next attempt
// runs on a fresh inner transaction, created with the same context, with
// those options re-applied. The timeout keeps running from the wrapped
// transaction's creation or last Reset, as FoundationDB's does across
// OnError. Between a late fault and OnError or Reset, every operation fails
// with the fault's error.
//
// # Counters
//
// Stats reports, per kind, how many faults were injected and what became of
// them: applied, not applied, late-applied, late-not-applied. Applied plus
// late-applied is how many commits took effect although their caller was
// told they failed: the duplicates a stock retry loop produces for a
// non-idempotent transaction, and zero duplicates is what package txn must
// show under the same schedule.
//
// # Goroutines and ownership
//
// A DB is safe for concurrent use; a transaction is for one goroutine at a
// time, except Cancel. Late commits run on goroutines that the DB tracks:
// Wait blocks until all of them have finished, and Close waits for them too
// (at most the late delay). A late commit is detached from its caller, as a
// commit on the wire is: it is sent as a transaction of its own, on the
// caller's context without its cancellation or deadline and without the
// transaction's timeout, at the original read version with the recorded
// reads (as conflict ranges), conflict ranges and mutations. So it lands
// after its caller has given up — canceled its context, timed out, moved on
// to Resolve — unless something it read was written meanwhile; Stats counts
// what did land (late-applied) and what did not (late-not-applied).
//
// After Close, CreateTransaction and Commit fail with kv.ErrClosed and no
// late commit starts; a commit that would have been late is abandoned
// instead (counted late-not-applied).
//
// The caller owns the wrapped database: Close closes it only if
// Config.CloseInner is set. Do not close it yourself before Wait or Close
// has returned, since late commits still use it.
package faulty
