// Package txn runs FoundationDB transactions exactly once.
//
// A FoundationDB commit can fail with commit_unknown_result (1021): it may or
// may not have been applied. The stock retry loop runs the transaction
// again, so an atomic add or a ledger append can land twice. Transact does
// not: every attempt of a call writes the call's marker, and once an attempt
// has failed ambiguously, later attempts look for the marker before running
// the function again.
//
// # What exactly-once means here
//
// For each call to Transact, the function's writes are committed at most
// once, and if Transact returns a nil error, exactly once. The value it
// returns is the one the committing attempt's function run returned — not a
// re-run's. If the call cannot know, it says so: *UnknownResultError (with
// the ID for Resolve) or *OutcomeLostError; it never guesses, and never runs
// the function again after an attempt may have committed unless it has
// proved that attempt did not.
//
// # The protocol
//
// A call owns one ID and one marker key: prefix + shard + version + random
// ID. The version is no later than the call's first commit (the first
// attempt's read version, or the creation of the shard's sentinel, below),
// so markers sort by age within a shard and the janitor (package cleanup)
// can remove old ones with one range clear per shard, never reading them.
// The shard is part of the ID: Options.Shards may change between calls and
// processes, and Resolve takes the shard from the ID.
//
// Every attempt adds a read conflict range on the marker key and, after fn
// has run, writes the marker: its attempt number and (a versionstamped
// value) the commit's versionstamp. Two attempts of one call therefore
// conflict whatever order their commits land in, including an attempt whose
// commit is still in flight after its client saw an error: at most one
// commits. The marker is the attempt's last word on its key, so nothing fn
// does — a range clear over the markers included — erases it; and fn's
// transaction refuses Commit, Reset and OnError (ErrTransactionControl),
// which would take the commit out of the protocol's hands.
//
// After the first maybe-committed error, each attempt reads the marker
// before running the function, and concludes:
//
//   - Present with an attempt number: that attempt committed; its kept
//     result and its versionstamp are returned, fn is not run again.
//   - Present as a tombstone: Resolve fenced the ID while the call ran. An
//     attempt still in flight could land after this read, so the call
//     fences again (a commit that writes the marker) before it reports
//     ErrFenced; if an attempt landed first, the call returns its result.
//   - Absent: no attempt has committed as of this read version — provided
//     the marker cannot have been removed. Two things remove markers. The
//     janitor's sweep advances the watermark past every version it clears,
//     in the same transaction: watermark past the ID's version means
//     *OutcomeLostError. Any other range clear that reaches the marker and
//     begins at or before its shard's start (a clear of the prefix, of the
//     keyspace, of the shard: a test reset, a "delete everything" job)
//     also removes the shard's sentinel, the shard's first key, whose value
//     is the versionstamp of its creation. A call makes sure the sentinel
//     exists and is no newer than the ID before its first commit (creating
//     it, in a transaction of its own, on a fresh shard; or trusting this
//     process's recent sighting of it, below). So a sentinel
//     missing, or created after the ID's version, means the markers may
//     have been cleared since: *OutcomeLostError, with Cleared set. With
//     both checks passed, the function runs, and any earlier attempt that
//     lands later conflicts with this one (a later sweep or clear writes
//     the marker key this attempt read, so it conflicts too).
//
// What no reader can see: a point Clear of one marker, or a range clear
// that begins inside a shard, after the shard's sentinel. Only the janitor
// writes there; nobody else should.
//
// # The sentinel cache
//
// The reader's conclusion above does not depend on what the call did
// before its commit: if an attempt committed at version C and its marker
// is gone, either the watermark passed the ID's version or a clear at some
// T > C removed the sentinel, which is then missing or re-created at a
// version after T, so newer than the ID. The check before the first commit
// is for liveness only: without a clear, a reader of this call will find
// the sentinel present and no newer than the ID, and can prove absence.
//
// So a process may remember it. Per database handle (the value behind the
// kv.Database), prefix and shard, it keeps the sentinel's creation version
// S and a version at which the sentinel was seen present. A call dated
// within one second of versions of that sighting skips its read: its ID's
// version is raised to S if it is older (the ID's version need only be no
// later than the first commit, and that commit is sent after S was
// learned, so it gets a later version), and no attempt has committed yet,
// so the marker key is still unused. Any sentinel read refreshes the
// sighting: a call's own read or creation, and every reader (a later
// attempt's or Resolve's) — missing drops it, present (newer, after a
// clear and a re-creation) replaces it. Sightings only move forward.
//
// A stale sighting — the sentinel cleared, or cleared and re-created newer,
// after it was cached — can only make a later reader of a call that used it
// conclude *OutcomeLostError, never run fn again: the reader still reads
// the real sentinel. What it costs is liveness after a foreign clear of the
// prefix (which is already a misuse): a call of this process dated within
// the second after the clear, or before any reader here has seen the
// sentinel gone, commits with no sentinel under it, and if it then needs a
// reader (a maybe-committed error), its outcome is lost even when it did
// not commit — where, without the cache, it would have re-created the
// sentinel and proved its absence. The first such reader drops the
// sighting; the second bound is the one-second window, after which every
// call reads the sentinel again.
//
// # What is retried, and why
//
//   - not_committed, transaction_too_old, future_version and the other
//     retryable-not-committed errors: through the transaction's OnError, with
//     FoundationDB's backoff.
//   - commit_unknown_result (1021): through OnError, then the marker check.
//   - cluster_version_changed (1039): maybe committed, like 1021, and
//     retried with the marker check — but never given to OnError, because the
//     multi-version client's OnError switches the transaction to the new
//     cluster and reports success, so a stock loop re-runs the function
//     blindly. Transact backs off and resets itself.
//   - transaction_timed_out (1031) and a canceled context: never retried. The
//     caller's time is up. If a commit may have been in flight, the error is
//     *UnknownResultError carrying the ID.
//   - errors from the function that are not *kv.Error: not retried; the call
//     ends with that error and commits nothing (if an earlier attempt may
//     still land, the call fences its ID first, and returns that attempt's
//     result if it did land). The fence retries within RetryLimit; past
//     it, the call returns *UnknownResultError.
//
// # What it costs
//
// On the happy path: one small extra key written (the marker, about 55
// bytes with the default prefix, as a versionstamped value) and one read
// conflict range per transaction, and, once a second per shard and process
// (the sentinel cache), one snapshot point read of the shard's sentinel,
// sent with the first read version and awaited only before the commit, so
// that it overlaps fn's own reads; no extra transaction and no per-commit
// cleanup. A write-only function also needs
// the read version it would otherwise not ask for, to date the marker. The
// first call on a fresh (or cleared) shard creates its sentinel in a small
// transaction of its own. After an ambiguous error: one point read per
// later attempt (three when the marker is absent: the watermark and the
// sentinel too, in parallel). Markers are removed in bulk by the janitor,
// not by the commit path. txn's own code — the ID, the sentinel cache,
// the marker's key and value, the retry loop — costs about a microsecond
// and two allocations per call (BenchmarkOwnCost, on a database that
// does nothing), small beside an engine's commit.
//
// # Resolving an unknown outcome
//
// A call that timed out returns *UnknownResultError. Resolve(ctx, db, e.ID,
// opts) settles it: it reads the marker and, unless an attempt committed,
// writes a tombstone in the same transaction (again, if one is there), so
// that no attempt still in flight can commit afterwards. The answer —
// Committed or NotCommitted — is final for a call that has returned.
// Resolve retries its own failures, timeouts included, within the retry
// limit and ctx, and otherwise returns *UnknownResultError: call it again.
// Resolve before the janitor's minimum age has passed (ten minutes by
// default), or it may answer *OutcomeLostError. ResolveCommit also returns
// the committing attempt's Commit.
//
// # Versionstamps
//
// The FoundationDB idiom of returning tr.GetVersionstamp() from the
// function breaks exactly when it matters: when the attempt that committed
// is not the one whose answer the call received, its future fails.
// TransactCommit returns the committing attempt's versionstamp and commit
// version after every success, read back from the marker when the answer
// was lost.
//
// # Time, and FoundationDB's version jumps
//
// The protocol itself measures no time: a marker is dated by a version only
// so that the janitor can find old ones. A recovery, which advances the
// cluster's versions by about 100 seconds' worth at once, fails the commits
// in flight with commit_unknown_result (handled as any other) and makes
// older read versions too old (transaction_too_old, retried). What a jump
// could shorten is the janitor's minimum age; package cleanup bounds it by
// the wall clock too, so a jump does not turn a call in progress into
// *OutcomeLostError.
//
// # The stock loop
//
// StockTransact reproduces the bindings' Database.Transact, retrying
// everything OnError retries. It is the unsafe baseline that tests and
// benchmarks compare against; do not use it for non-idempotent work.
package txn
