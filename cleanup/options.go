package cleanup

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/txn"
)

// Defaults and limits for Options.
const (
	// DefaultMinAge is how old, in database versions, a marker must be
	// before it is removed. FoundationDB's own idempotency IDs live 7 days;
	// ten minutes is ample for a call and a Resolve after it.
	DefaultMinAge = 10 * time.Minute
	// MinMinAge is the smallest MinAge allowed: twice FoundationDB's
	// five-second transaction lifetime, so that no attempt of a call can
	// still be in flight when its marker goes, with room for a Resolve.
	MinMinAge = 2 * kv.MaxTransactionLifeVersions * time.Second / kv.VersionsPerSecond
	// DefaultInterval is the time between sweeps (FoundationDB's cleaner
	// also sweeps every ten seconds).
	DefaultInterval = 10 * time.Second
	// DefaultBatchSize is how many keyed entries one sweep transaction
	// removes at most.
	DefaultBatchSize = 500
	// MaxBatchSize keeps a batch well inside FoundationDB's limits.
	MaxBatchSize = 10_000
	// MaxBackoff caps how long Run waits after repeated failed sweeps
	// (unless Interval is longer).
	MaxBackoff = 5 * time.Minute
	// maxBatchesPerStep bounds a Step's keyed work; what is left waits for
	// the next sweep (StepResult.KeyedMore says so).
	maxBatchesPerStep = 16
)

// Options configures a Janitor. A nil *Options means all defaults; zero
// fields take their defaults too.
type Options struct {
	// Prefix is the marker prefix the transactions use (txn.Options.Prefix).
	// Default txn.DefaultPrefix. The janitor refuses a prefix under which
	// it finds keys that are not markers.
	Prefix []byte
	// Shards is ignored: a janitor sweeps every shard a marker can be in
	// (txn.MaxShards), because the shard is part of each call's ID and
	// transactions may use any Shards, changed at any time. A sweep costs
	// one range clear per shard, in one transaction. 0 to txn.MaxShards
	// are accepted, for callers that still set it.
	//
	// Deprecated: every shard is swept; leave it zero.
	Shards int
	// MinAge is how old a marker must be before it may be removed: both in
	// database versions (kv.VersionsPerSecond a second of this duration)
	// and in wall-clock time, by the clock samples janitors keep beside the
	// versions, so that a version jump (a FoundationDB recovery advances
	// versions by about 100 seconds' worth at once) does not eat into it. Calls and the Resolve of their IDs must finish within it.
	// Default DefaultMinAge; at least MinMinAge.
	MinAge time.Duration
	// Interval is the time between sweeps of Run and Start. Default
	// DefaultInterval; it must be positive, and a little jitter is added so
	// that janitors in many processes spread out.
	Interval time.Duration
	// BatchSize is how many keyed entries one transaction removes. Default
	// DefaultBatchSize; 1 to MaxBatchSize.
	BatchSize int
	// Clock is the janitor's wall clock, for the clock samples that guard
	// MinAge against version jumps (see the package doc). Default time.Now;
	// tests that step an engine's clock pass the same clock here.
	Clock func() time.Time
	// Keyed lists the age indexes of keyed markers to sweep (package idemkv
	// supplies its own).
	Keyed []KeyedIndex
	// OnStep, if set, is called after every Step (Run's and direct ones)
	// with what it did and its error, for logs and metrics. It runs on the
	// sweeping goroutine, without the janitor's lock, and must not block.
	OnStep func(StepResult, error)
}

// KeyedIndex describes the age index of a family of keyed markers. Each
// index entry is Prefix + 8-byte big-endian due version + ref, and its value
// is a token identifying the marker it was written for. An entry is due once
// the database version passes its due version.
type KeyedIndex struct {
	// Name names the index in errors and stats.
	Name string
	// Prefix is the index's key prefix.
	Prefix []byte
	// Remove is called inside the sweep's transaction for each due entry,
	// with the entry's ref and token. It must clear the marker that ref
	// names if and only if that marker is still the one the entry was written
	// for (its token matches), so that a marker written again under the same
	// ref since is kept. The janitor clears the entry itself.
	Remove func(tr kv.Transaction, ref, token []byte) error
}

// IndexKey returns the age-index key for ref, due at version due.
func (k KeyedIndex) IndexKey(due int64, ref []byte) []byte {
	key := make([]byte, 0, len(k.Prefix)+8+len(ref))
	key = append(key, k.Prefix...)
	key = binary.BigEndian.AppendUint64(key, uint64(due))
	return append(key, ref...)
}

// config is Options with defaults applied and checked.
type config struct {
	prefix    []byte
	minAge    int64 // in versions
	interval  time.Duration
	batchSize int
	keyed     []KeyedIndex
	onStep    func(StepResult, error)
	clock     func() time.Time
	minAgeDur time.Duration
}

func (o *Options) config() (config, error) {
	var opts Options
	if o != nil {
		opts = *o
	}
	if opts.Prefix == nil {
		opts.Prefix = txn.DefaultPrefix
	}
	if opts.Shards == 0 {
		opts.Shards = txn.DefaultShards
	}
	if opts.MinAge == 0 {
		opts.MinAge = DefaultMinAge
	}
	if opts.Interval == 0 {
		opts.Interval = DefaultInterval
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	switch {
	case len(opts.Prefix) == 0:
		return config{}, fmt.Errorf("%w: Prefix is empty; leave it nil for txn's default or give the prefix your transactions use", ErrInvalidOptions)
	case opts.Prefix[0] == kv.SystemPrefix:
		return config{}, fmt.Errorf("%w: Prefix %q begins with 0xff, FoundationDB's system keyspace, where no markers can be", ErrInvalidOptions, opts.Prefix)
	case opts.Shards < 1 || opts.Shards > txn.MaxShards:
		return config{}, fmt.Errorf("%w: Shards is %d; it must be 0 to %d (it is ignored: every shard is swept)", ErrInvalidOptions, opts.Shards, txn.MaxShards)
	case opts.MinAge < MinMinAge:
		return config{}, fmt.Errorf("%w: MinAge is %v; it must be at least %v (twice FoundationDB's five-second transaction lifetime), and longer than your calls plus their Resolve", ErrInvalidOptions, opts.MinAge, MinMinAge)
	case opts.Interval < 0:
		return config{}, fmt.Errorf("%w: Interval is %v; it must be positive (0 means the default %v)", ErrInvalidOptions, opts.Interval, DefaultInterval)
	case opts.BatchSize < 1 || opts.BatchSize > MaxBatchSize:
		return config{}, fmt.Errorf("%w: BatchSize is %d; it must be 1 to %d", ErrInvalidOptions, opts.BatchSize, MaxBatchSize)
	}
	for i, k := range opts.Keyed {
		switch {
		case len(k.Prefix) == 0 || k.Prefix[0] == kv.SystemPrefix:
			return config{}, fmt.Errorf("%w: Keyed[%d] (%q) has an empty or system Prefix %q", ErrInvalidOptions, i, k.Name, k.Prefix)
		case k.Remove == nil:
			return config{}, fmt.Errorf("%w: Keyed[%d] (%q) has no Remove function", ErrInvalidOptions, i, k.Name)
		case bytes.HasPrefix(k.Prefix, opts.Prefix) || bytes.HasPrefix(opts.Prefix, k.Prefix):
			return config{}, fmt.Errorf("%w: Keyed[%d] (%q) prefix %q overlaps the marker prefix %q", ErrInvalidOptions, i, k.Name, k.Prefix, opts.Prefix)
		}
	}
	return config{
		prefix:    bytes.Clone(opts.Prefix),
		minAge:    int64(opts.MinAge / time.Microsecond * (kv.VersionsPerSecond / 1_000_000)),
		interval:  opts.Interval,
		batchSize: opts.BatchSize,
		keyed:     append([]KeyedIndex(nil), opts.Keyed...),
		onStep:    opts.OnStep,
		clock:     opts.Clock,
		minAgeDur: opts.MinAge,
	}, nil
}
