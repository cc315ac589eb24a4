package embedded

import (
	"fmt"
	"time"
)

// Options configures a DB. The zero value (and a nil *Options) means the
// defaults documented on each field.
type Options struct {
	// Clock, if non-nil, replaces time.Now as the source of database versions
	// (tests step it to age markers without sleeping). Versions advance
	// kv.VersionsPerSecond per second of clock time and never go backwards,
	// even if the clock does. Transaction timeouts and OnError's backoff use
	// real time regardless.
	Clock func() time.Time

	// NoSync skips the fsync after each commit group on a durable DB. It is
	// UNSAFE: an acknowledged commit can be lost on a machine crash (a
	// process crash alone loses nothing once Pebble has written the WAL).
	// Ignored by OpenMem.
	NoSync bool

	// OverlapSyncs makes a durable DB apply the next commit groups while
	// the current one's WAL sync is in flight (Pebble's ApplyNoSyncWait, a
	// publisher goroutine answering each group after its sync, in order),
	// instead of applying each group with a synced write and answering it
	// before taking the next. Every commit is still acknowledged only after
	// its fsync. Measured on the development VM: it wins when fsyncs are
	// slow (BenchmarkCommitRatio at 4,000-8,000 synced Pebble batches/s:
	// 0.87-1.02 of raw Pebble against 0.70-0.90) and loses when they are
	// fast: its groups shrink to ~1.1 transactions, and the bench's blind
	// adds at 16 callers ran at 0.85 of the throughput with 2.2 times the
	// p99 (stock loop, two interleaved pairs, 19k against 22.4k calls/s,
	// p99 4.5 ms against 2.0 ms). Off by default; ignored by OpenMem and
	// with NoSync.
	OverlapSyncs bool

	// MustExist makes Open fail with ErrNotExist instead of creating a
	// database where there is none. Not for OpenMem.
	MustExist bool

	// ReadOnly opens an existing database for reading only: Pebble writes
	// nothing to the directory, and a commit of a transaction that wrote
	// fails with ErrReadOnly (read-only transactions commit as usual). The
	// database's LOCK is still taken, so a read-only open and a writer
	// exclude each other. Not for OpenMem.
	ReadOnly bool

	// MaxBatchTransactions caps how many transactions one group commit
	// applies in one Pebble batch. Default 1024; allowed 1 to 32768 (a
	// versionstamp's batch order is the position in the group, at most
	// 32767 as in FoundationDB, whose batch index is a signed 16 bits).
	MaxBatchTransactions int
}

const (
	defaultMaxBatchTransactions = 1024
	maxMaxBatchTransactions     = 1 << 15
)

// withDefaults returns a copy of o (nil allowed) with defaults filled in.
func (o *Options) withDefaults() Options {
	var out Options
	if o != nil {
		out = *o
	}
	if out.Clock == nil {
		out.Clock = time.Now
	}
	if out.MaxBatchTransactions == 0 {
		out.MaxBatchTransactions = defaultMaxBatchTransactions
	}
	return out
}

// validate names the first bad field and its allowed range.
func (o *Options) validate() error {
	if o.MaxBatchTransactions < 1 || o.MaxBatchTransactions > maxMaxBatchTransactions {
		return fmt.Errorf("embedded: Options.MaxBatchTransactions = %d, want 1 to %d (0 means the default %d)",
			o.MaxBatchTransactions, maxMaxBatchTransactions, defaultMaxBatchTransactions)
	}
	return nil
}
