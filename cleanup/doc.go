// Package cleanup removes idempotency markers that are old enough to be
// forgotten, cheaply and without ever making a duplicate possible.
//
// Every txn.Transact call leaves one marker; FoundationDB's own manual notes
// that the pattern "will slowly leak space" unless they are removed. A
// Janitor removes them in bulk, off the commit path.
//
// # What a sweep does
//
// Markers sort by database version within each shard, so one transaction
// removes every marker older than the minimum age, whatever their number:
// a range clear per shard — every one of txn.MaxShards, since the shard is
// part of each call's ID and transactions may use any Shards — below the
// cut-off version (read version minus the
// minimum age) and an atomic max of the watermark to that cut-off. It reads
// no markers. Keyed markers (package idemkv's) are removed through their age
// index, BatchSize entries per transaction, and only when the marker is
// still the one its entry was written for.
//
// # Why it can never cause a duplicate
//
// The watermark is advanced in the same transaction as the range clear.
// After an ambiguous commit, txn reads a call's marker; if it is absent and
// the watermark is past the marker's version, the marker may have been
// removed, so txn reports txn.ErrOutcomeLost instead of running the function
// again. A range clear that races with an attempt still in flight writes the
// attempt's marker key, so that attempt conflicts. Removing a marker early
// can therefore cost an answer ("outcome lost"), never a second commit. The
// minimum age — ten minutes by default, never under ten seconds — keeps even
// that from happening to calls that finish, and are resolved, in time.
//
// The janitor never removes a shard's sentinel (txn.SentinelKey; its range
// clears begin just after it). That is what tells its sweeps from a foreign
// range clear over the markers, which removes the sentinel too and which
// txn also reports as "outcome lost" rather than running a function again.
//
// # Versions and wall clocks
//
// Ages are measured in database versions (about 1,000,000 a second), the
// cluster's clock, so no client's clock skew can make a janitor remove a
// marker early. But FoundationDB's versions jump: every recovery advances
// them by about 100 seconds' worth at once (MAX_VERSIONS_IN_FLIGHT), a
// forced recovery by far more. So each sweep also records a clock sample
// under the prefix — its read version beside its wall-clock time, as
// FoundationDB's own idempotency cleaner stores time beside versions — and
// removes a marker only when both clocks say it is MinAge old: its version
// is below the read version minus MinAge, and below a sampled version that
// was current at least MinAge ago by the janitor's clock. A version jump
// alone, or a skewed clock alone, cannot shorten MinAge; only both at once
// can, by the smaller of the two errors. What that costs: a marker lives up
// to MinAge plus one sweep interval, and the first sweep of a database
// without samples (a new one, or one whose marker prefix was cleared) uses
// versions alone — from MinAge after that sweep on, both bounds hold.
// Samples are read as snapshots and written blind, so concurrent sweeps
// still never conflict; those older than the one in use are pruned.
//
// # Many janitors
//
// Every process may run a janitor; no leader is needed. Automatic sweeps
// write without reading, and the watermark only moves up (atomic max), so
// concurrent sweeps never conflict. Keyed sweeps that collide conflict and
// retry, finding the work done.
//
// # Safety against misconfiguration
//
// Before its first sweep a janitor looks at the first and last keys under
// its prefix and refuses (a *ForeignKeyError, matching ErrForeignPrefix, that
// names the key) if any is not a marker: a prefix that holds someone's data
// is never swept. Run does not stop on it: like any failed sweep it retries
// with backoff (up to MaxBackoff), so that the janitor resumes once the key
// is removed, and Stats (Failures, LastError) shows it meanwhile.
//
// # Running it
//
// Step does one sweep now, a deterministic function of the database's state
// and version, for tests to step. Run repeats it every Interval until its
// context ends or Close; Start runs Run in a goroutine that Close stops.
// Options.OnStep sees every sweep's result and error, for logs and metrics.
// Package idemkv starts one with every Store.
package cleanup
