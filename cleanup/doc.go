// Package cleanup removes idempotency markers that are old enough to be
// forgotten, cheaply and without ever making a duplicate possible.
//
// txn.Transact calls write marker slots: a few keys per process and
// database handle (an owner), each reused call after call (see "Marker
// slots" in txn's doc). Slots stay when their owner goes — a process that
// crashed or exited, a handle dropped — and a process's idle slots stay
// too; earlier versions of txn left one marker per call (legacy markers),
// which stay in stores until swept. FoundationDB's own manual notes that
// such markers "will slowly leak space" unless they are removed. A Janitor
// removes them, off the commit path.
//
// # What a sweep does
//
// Marker slots: a snapshot read of the slot space (txn.SlotRange), a page
// per transaction, and for each slot whose versionstamp is below the
// cut-off version (below), a read conflict on its key and a clear of it.
// The read is a snapshot because the hot slots are written by every call:
// a sweep that read them all with conflicts would conflict with every call
// in flight. The slots alive are those of calls in flight, pinned ones
// (their calls' outcomes unknown, kept for Resolve) and those of owners
// gone or idle for less than the minimum age, so a page or a few cover
// them.
//
// Legacy markers sort by database version within each shard, so one
// transaction removes every one older than the minimum age, whatever their
// number: a range clear per shard — every one of txn.MaxShards — below the
// cut-off version and an atomic max of the watermark to that cut-off. It
// reads no markers. Keyed markers (package idemkv's) are removed through
// their age index, BatchSize entries per transaction, and only when the
// marker is still the one its entry was written for.
//
// # Why it can never cause a duplicate
//
// A slot's clear only ever makes a reader conclude that the outcome is
// lost (txn's readers treat an absent slot as *txn.OutcomeLostError, never
// as "not committed", so a removal can never make a function run again),
// and it cannot even do that to a live call in time:
//
//   - An attempt in flight on the slot read it (a conflict range), so a
//     clear that commits after the attempt's read version makes the
//     attempt conflict: the attempt does not commit over the clear.
//   - A write of the slot between the sweep's snapshot read and its commit
//     (an attempt, a refresh, a Resolve) conflicts with the read conflict
//     the sweep adds on each slot it clears: the sweep fails, and its retry
//     reads the slot again and finds it recent.
//   - A call makes sure its slot was written within five seconds of
//     versions before its first commit's read version (refreshing it
//     otherwise), and the janitor removes only slots written more than
//     MinAge — at least MinMinAge, ten seconds — before its own read
//     version: by then that attempt is too old to commit. So a call's slot
//     is not removed under it before its first commit, nor for MinAge
//     after its last write; a call and the Resolve of its ID that finish
//     within MinAge less five seconds always get their answer.
//
// For legacy markers, the watermark is advanced in the same transaction as
// the range clear. After an ambiguous commit, a legacy reader (Resolve of
// a legacy ID) finding a marker absent with the watermark past its version
// reports txn.ErrOutcomeLost. A range clear that races with an attempt
// still in flight writes the attempt's marker key, so that attempt
// conflicts. The janitor never removes a shard's sentinel (txn.SentinelKey;
// its range clears begin just after it). That is what tells its sweeps
// from a foreign range clear over the markers, which removes the sentinel
// too and which txn also reports as "outcome lost".
//
// Removing a marker early can therefore cost an answer ("outcome lost"),
// never a second commit. The minimum age — ten minutes by default, never
// under ten seconds — keeps even that from happening to calls that finish,
// and are resolved, in time.
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
// Every process may run a janitor; no leader is needed. Legacy sweeps
// write without reading, and the watermark only moves up (atomic max), so
// concurrent sweeps never conflict. Slot sweeps and keyed sweeps that
// collide conflict and retry, finding the work done.
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
