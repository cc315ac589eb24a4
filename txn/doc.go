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
// ID. The version is the first attempt's read version, so markers sort by
// age within a shard and the janitor (package cleanup) can remove old ones
// with one range clear per shard, never reading them.
//
// Every attempt adds a read conflict range on the marker key and writes the
// marker with its attempt number. Two attempts of one call therefore
// conflict whatever order their commits land in, including an attempt whose
// commit is still in flight after its client saw an error: at most one
// commits.
//
// After the first maybe-committed error, each attempt reads the marker
// before running the function. Present: an earlier attempt committed; its
// kept result is returned. Absent, and the janitor's watermark is not past
// the marker's version: nothing has committed as of this read version, the
// function runs, and any earlier attempt that lands later conflicts with
// this one. Absent with the watermark past it: the marker may have been
// cleaned, so the call returns *OutcomeLostError and does not run the
// function.
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
//     result if it did land).
//
// # What it costs
//
// On the happy path: one small extra key written (the marker, about 40 bytes
// with the default prefix) and one read conflict range per transaction; no
// extra transaction and no per-commit cleanup. A write-only function also
// needs the read version it would otherwise not ask for, to date the
// marker. After an ambiguous error: one point read per later attempt (two
// when the marker is absent: the watermark too). Markers are removed in bulk
// by the janitor, not by the commit path.
//
// # Resolving an unknown outcome
//
// A call that timed out returns *UnknownResultError. Resolve(ctx, db, e.ID,
// opts) settles it: it reads the marker and, if absent, writes a tombstone in
// the same transaction, so that no attempt still in flight can commit
// afterwards. The answer — Committed or NotCommitted — is final. Resolve
// before the janitor's minimum age has passed (ten minutes by default), or it
// may answer *OutcomeLostError.
//
// # The stock loop
//
// StockTransact reproduces the bindings' Database.Transact, retrying
// everything OnError retries. It is the unsafe baseline that tests and
// benchmarks compare against; do not use it for non-idempotent work.
package txn
