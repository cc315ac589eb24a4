// Package txn runs FoundationDB transactions exactly once.
//
// A FoundationDB commit can fail with commit_unknown_result (1021): it may or
// may not have been applied. The stock retry loop runs the transaction
// again, so an atomic add or a ledger append can land twice. Transact does
// not: every attempt of a call writes the call's marker slot, and once an
// attempt has failed ambiguously, later attempts read the slot before
// running the function again.
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
// # Marker slots
//
// A process keeps, per database handle (the value behind the kv.Database)
// and prefix, a pool of marker slots. The pool has an owner, a random
// version-4 UUID drawn when the pool is made: a new process or a new handle
// is a new owner, and an owner's slots are written only by its own pool's
// calls, by Resolve's tombstones and by the janitor's clears. A slot is a
// key, SlotKey: prefix + 0xff + "slot/" + owner + index, under the prefix's
// metadata. Its value (SlotState) is the sequence number of the call that
// wrote it, an attempt number and the versionstamp of the writing
// transaction.
//
// A call takes a slot from its pool for its whole life — the one released
// last, so that hot slots stay hot — and gives it back at its end. Each
// slot counts its calls: the call's sequence number is one more than the
// slot's last call's. The call's ID is (owner, slot, sequence). A call that
// returns *UnknownResultError does not give its slot back at once: the
// slot stays pinned, unused, for Options.ResolveWindow (ten minutes by
// default, the janitor's default minimum age), so that Resolve of the ID
// finds the call's answer. The marker space is therefore the slots of the
// calls in flight, the pinned ones, and those of owners that went away
// (until the janitor removes them) — not one key per call.
//
// # The protocol
//
// Every attempt fixes its read version when it starts, adds a read
// conflict range on its slot and, after fn has run, writes the slot: the
// call's sequence, the attempt's number and (a versionstamped value) the
// commit's versionstamp. Two attempts of one call therefore conflict
// whatever order their commits land in, including an attempt whose commit
// is still in flight after its client saw an error: at most one commits.
// The slot is the attempt's last word on its key, so nothing fn does — a
// range clear over the prefix included — erases it; and fn's transaction
// refuses Commit, Reset and OnError (ErrTransactionControl), which would
// take the commit out of the protocol's hands.
//
// # What can be in flight, and what writes a slot
//
// Whoever reads a slot must know every writer of it. Besides the call
// holding it, these can write slot k of owner O:
//
//   - attempts of earlier calls of k that are still in flight (their
//     client saw an error and moved on). Each began before its call
//     returned, so before the current call began, and each has a read
//     conflict on k: it can only commit if nothing wrote k since its read
//     version.
//   - refreshes of k by earlier calls (below), in flight likewise. A
//     refresh reads k in its own transaction, a read conflict, so the same
//     holds for it.
//   - Resolve of an ID of k. It reads k (a conflict range) and writes a
//     tombstone — the ID's sequence, attempt SlotTombstone — only if k
//     holds an earlier sequence, or the ID's own tombstone.
//   - the janitor, and any range clear over the prefix: they only remove
//     k. The janitor removes a slot only when its versionstamp is older
//     than its minimum age (at least cleanup.MinMinAge, ten seconds), and
//     with a read conflict on it (package cleanup).
//
// Nothing else writes O's slots: only O's pool issues O's IDs, and the pool
// hands slot k to one call at a time.
//
// # Readers
//
// After the first maybe-committed error, each later attempt of the call
// with sequence s reads the slot (a read conflict) before running fn, at
// its read version r, and concludes:
//
//   - sequence s with an attempt number a: attempt a committed. Its kept
//     result and its versionstamp are returned; fn is not run again.
//   - sequence s as a tombstone: Resolve fenced the ID while the call ran.
//     An attempt of the call still in flight could land after r (one that
//     began after the fence never read the slot), so the call fences again
//     (a commit that writes the slot) before it reports ErrFenced; if an
//     attempt landed first, the call returns its result.
//   - an earlier sequence (any attempt value, a refresh or a tombstone):
//     no attempt of this call has committed as of r. Suppose one had, at
//     C < r: the slot then held (s, attempt). What can have written it
//     between C and r? Not a later call (the call still holds the slot);
//     not an earlier call's attempt or refresh in flight (its read version
//     is before C, and it reads the slot, so it conflicts with C's write);
//     not a Resolve of an earlier sequence (reading at or after C, it finds
//     s, later than its own, and writes nothing; reading before C, it
//     conflicts with C's write); not a refresh of this call (sent before
//     its first commit, and reading the slot before C: one still in flight
//     conflicts); not Resolve of s, nor the call's own fence (reading at or
//     after C, they find the commit and write nothing; reading before,
//     they conflict); and the janitor and clears only remove.
//     So the slot would hold s, or be absent. Hence fn runs; an earlier
//     attempt that lands after r conflicts with this one, and a sweep or
//     clear after r writes the slot this attempt read, so it conflicts too.
//   - absent: the slot was removed — by the janitor, the call having
//     outlived its minimum age, or by a range clear over the prefix —
//     possibly after an attempt committed: *OutcomeLostError with Cleared.
//     fn is never run again.
//   - a later sequence, or s as a refresh: impossible while the call holds
//     the slot, unless something outside the protocol wrote it (a Resolve
//     of an ID no call has issued yet, a second process with the same
//     owner): *OutcomeLostError with Reused, never a rerun, and the pool
//     never uses the slot again.
//
// # Liveness: the slot before the first commit
//
// "Absent" is safe but not live: a call whose first commit went out with
// no slot present (a new slot, never written) and then failed ambiguously
// without being applied would find the slot absent and have to report its
// outcome lost. So before a call sends its first commit, its slot must be
// known present and recent: written no more than
// kv.MaxTransactionLifeVersions (five seconds of versions) before the
// attempt's read version r. Then the janitor cannot remove it before that
// attempt commits or fails: it removes only slots written more than its
// minimum age (at least ten seconds) before its own read version, which is
// therefore more than five seconds after r, when the attempt is too old to
// commit (transaction_too_old); and a reader that comes later finds either
// the call's own commit or that recent write, for the janitor's minimum age
// less five seconds.
//
// The pool remembers, per slot, a sighting: the version of a write it knows
// the slot holds (or a later one) and a version at which it saw the slot
// present — its own call's commit, a read, a refresh. A call whose read
// version is within one second of versions of the sighting, with the write
// within five, trusts it and reads nothing. Otherwise, if the pool knows
// the slot is absent (a new slot, or a reader found it gone) or its write
// older than five seconds, the first attempt refreshes it first; else it
// reads the slot as a snapshot, sent with the read version and awaited just
// before the commit (overlapping fn), and refreshes it if it turns out
// absent or old, then attempts again (the refresh wrote the slot the
// attempt read). A refresh is a transaction of its own that reads the slot
// (a conflict range: see above) and writes the previous call's sequence
// with attempt SlotRefreshed and a new versionstamp — unless the slot is
// already recent, when it writes nothing.
//
// The conclusion of a reader does not depend on any of this: a sighting
// that is wrong — the slot cleared by a foreign range clear after it was
// seen — can only make a later reader of a call that trusted it conclude
// *OutcomeLostError, never run fn again. What it costs is liveness after a
// foreign clear of the prefix (which is already a misuse): a call that
// trusted the sighting commits with no slot under it, and if it then needs
// a reader, its outcome is lost even when it did not commit. The reader
// marks the slot gone, so the pool's next call on it refreshes it first;
// the one-second window bounds the rest.
//
// # What is retried, and why
//
//   - not_committed, transaction_too_old, future_version and the other
//     retryable-not-committed errors: through the transaction's OnError, with
//     FoundationDB's backoff.
//   - commit_unknown_result (1021): through OnError, then the slot check.
//   - cluster_version_changed (1039): maybe committed, like 1021, and
//     retried with the slot check — but never given to OnError, because the
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
// On the happy path: one small key written, the slot, which the call before
// wrote too (a 37-byte key and a 23-byte versionstamped value with the
// default prefix), and one read conflict range per transaction; no extra
// read, no extra transaction, no per-commit cleanup. Overwritten keys cost
// a storage engine less than fresh ones (an LSM collapses them; the
// conflict window holds one entry per slot). Each attempt asks for its read
// version first, to check the pool's sighting; a write-only function would
// otherwise not ask for one, but a transaction with a read conflict range
// needs one anyway — FoundationDB's client gets it before committing, and
// so does kv/embedded — so this only asks earlier (no extra cost, measured
// on the in-memory engine). A slot idle for more than a second (of
// versions) costs one point read, overlapping fn; a new slot, or one idle
// for five seconds, a small transaction before the call's first attempt. After an ambiguous
// error: one point read per later attempt. txn's own code — the pool, the
// slot's value, the retry loop — costs about a third of a microsecond and
// two small allocations per call (the slot's value and fn's guarded
// transaction; BenchmarkOwnCost, on a database that does nothing), small
// beside an engine's commit.
//
// # Resolving an unknown outcome
//
// A call that timed out returns *UnknownResultError. Resolve(ctx, db, e.ID,
// opts) settles it, in one transaction: it reads the slot and, unless an
// attempt of the ID committed, writes a tombstone in the same transaction
// (again, if one is there), so that no attempt still in flight can commit
// afterwards. The answer — Committed or NotCommitted — is final for a call
// that has returned. Resolve retries its own failures, timeouts included,
// within the retry limit and ctx, and otherwise returns
// *UnknownResultError: call it again. Resolve within the resolve window
// (Options.ResolveWindow) and the janitor's minimum age (ten minutes by
// default), or it may answer *OutcomeLostError: the slot reused by a later
// call, or removed. Resolve is for the IDs of *UnknownResultError: a call
// that returned a definite answer gave its slot back at once, and a later
// call may have reused it. ResolveCommit also returns the committing
// attempt's Commit.
//
// # Legacy IDs
//
// Earlier versions of this package wrote one fresh marker per call instead
// of a slot: MarkerKey, prefix + shard + version + random ID, sorted by age
// within each shard (ShardRange) so that the janitor removes old ones with
// one range clear per shard, advancing a watermark (WatermarkKey) past them
// in the same transaction. Their IDs (legacy IDs: Shard, Version, Rand)
// still parse and Resolve, since their markers stay in stores until the
// janitor sweeps them. For a legacy ID Resolve reads the marker: present
// with an attempt, committed; a tombstone or absent, it fences the ID —
// but absent is trusted only if the marker cannot have been removed: the
// watermark must not have passed the ID's version (else the janitor may
// have swept it) and the shard's sentinel (SentinelKey, the shard's first
// key, whose value is the versionstamp of its creation) must be present and
// no newer than the ID (else a range clear that began at or before the
// shard removed it). Otherwise *OutcomeLostError. No call of this version
// writes markers, sentinels or the watermark.
//
// # Versionstamps
//
// The FoundationDB idiom of returning tr.GetVersionstamp() from the
// function breaks exactly when it matters: when the attempt that committed
// is not the one whose answer the call received, its future fails.
// TransactCommit returns the committing attempt's versionstamp and commit
// version after every success, read back from the slot when the answer
// was lost.
//
// # Time, and FoundationDB's version jumps
//
// The protocol itself measures no time: a slot's versionstamp dates it only
// so that the janitor can find old ones, and the five-second rule above is
// FoundationDB's own transaction lifetime, in versions. A recovery, which
// advances the cluster's versions by about 100 seconds' worth at once,
// fails the commits in flight with commit_unknown_result (handled as any
// other) and makes older read versions too old (transaction_too_old,
// retried) and older slot writes stale (refreshed). What a jump could
// shorten is the janitor's minimum age; package cleanup bounds it by the
// wall clock too, so a jump does not turn a call in progress into
// *OutcomeLostError.
//
// # The stock loop
//
// StockTransact reproduces the bindings' Database.Transact, retrying
// everything OnError retries. It is the unsafe baseline that tests and
// benchmarks compare against; do not use it for non-idempotent work.
package txn
