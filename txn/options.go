package txn

import (
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/idemkv/idemkv/kv"
)

// DefaultPrefix is where markers live unless Options.Prefix says otherwise.
// 0xfd keeps them near the end of the user keyspace, clear of the tuple
// layer's common type codes and of the directory layer's 0xfe.
var DefaultPrefix = []byte("\xfdidemkv/tx/")

// Defaults for Options fields left zero.
const (
	DefaultShards     = 16
	DefaultRetryLimit = 100
	// DefaultResolveWindow is Options.ResolveWindow's default: ten
	// minutes, the janitor's default minimum age (cleanup.DefaultMinAge).
	DefaultResolveWindow = 10 * time.Minute
	// MaxShards is the most shards a prefix can have: the shard is one byte
	// and 0xff is reserved for the prefix's metadata (the watermark). The
	// janitor sweeps all of them.
	MaxShards = 255
	// maxPrefixLen leaves room for a slot's (and a legacy marker's) suffix
	// under kv.MaxKeySize.
	maxPrefixLen = kv.MaxKeySize - max(slotSuffixLen, markerSuffixLen)
)

// Options configures Transact and Resolve. A nil *Options means all
// defaults; zero fields take their defaults too. Transact and Resolve must
// be given the same Prefix for the same markers.
type Options struct {
	// Prefix is the key prefix of the markers and their metadata. Default
	// DefaultPrefix. It must not be empty, must not begin with 0xff (the
	// system keyspace) and must leave room for a marker slot under
	// kv.MaxKeySize.
	Prefix []byte
	// Shards has no effect: calls write marker slots, not the fresh
	// per-call markers that earlier versions spread over this many shards
	// (legacy IDs carry their shard, so Resolve and the janitor never
	// needed it). It is still checked, 0 or 1 to MaxShards, for callers
	// that set it.
	//
	// Deprecated: leave it zero.
	Shards int
	// ResolveWindow is how long a call's marker slot stays reserved after
	// the call returned *UnknownResultError, so that Resolve of its ID can
	// answer: a Resolve within it is answered, one after it may find the
	// slot reused by a later call and return *OutcomeLostError. Default
	// DefaultResolveWindow, the janitor's default minimum age (within
	// which the slot is not removed either). Any positive duration is
	// safe: a slot reused sooner only makes a later Resolve answer
	// *OutcomeLostError, never a wrong answer.
	ResolveWindow time.Duration
	// RetryLimit bounds the retries of one call, and of the fences and
	// Resolves that settle it. 0 means DefaultRetryLimit; a negative value
	// means no limit (only ctx and Timeout end the call).
	RetryLimit int
	// Timeout bounds the whole call, all attempts included (FoundationDB's
	// timeout option, which since API 610 is not reset by OnError). A call
	// that times out is never retried: it returns *UnknownResultError if a
	// commit may have been in flight. 0 means no timeout beyond ctx's.
	Timeout time.Duration
	// MaxRetryDelay caps the backoff between attempts. Default
	// kv.DefaultMaxRetryDelay (1 s).
	MaxRetryDelay time.Duration
	// Observe, if set, is called once at the end of every call with what the
	// call did, for metrics. It runs on the caller's goroutine and must not
	// block.
	Observe func(Stats)
}

// Stats is what one call did, reported to Options.Observe.
type Stats struct {
	ID ID // the call's slot ID; zero if the call ended before it had one
	// Attempts is the number of FoundationDB transactions the call ran.
	Attempts int
	// Ambiguous is the number of maybe-committed errors seen
	// (commit_unknown_result, cluster_version_changed).
	Ambiguous int
	// MarkerFound reports that an earlier attempt was found committed and
	// its result returned without running the function again.
	MarkerFound bool
	// Duration is the call's wall time.
	Duration time.Duration
	// Err is the call's error, nil on success.
	Err error
}

// config is Options with defaults applied and checked.
type config struct {
	*prefixKeys   // the prefix and what is made from it: shared, read only
	shards        int
	retryLimit    int
	resolveWindow time.Duration
	timeout       time.Duration
	maxRetryDelay time.Duration
	observe       func(Stats)
}

func (o *Options) config() (config, error) {
	var opts Options
	if o != nil {
		opts = *o
	}
	prefix := opts.Prefix
	if prefix == nil {
		prefix = DefaultPrefix
	}
	c := config{
		shards:        opts.Shards,
		retryLimit:    opts.RetryLimit,
		resolveWindow: opts.ResolveWindow,
		timeout:       opts.Timeout,
		maxRetryDelay: opts.MaxRetryDelay,
		observe:       opts.Observe,
	}
	if c.shards == 0 {
		c.shards = DefaultShards
	}
	if c.retryLimit == 0 {
		c.retryLimit = DefaultRetryLimit
	}
	if c.resolveWindow == 0 {
		c.resolveWindow = DefaultResolveWindow
	}
	if c.maxRetryDelay == 0 {
		c.maxRetryDelay = kv.DefaultMaxRetryDelay
	}
	if err := c.validate(prefix); err != nil {
		return config{}, err
	}
	c.prefixKeys = internPrefix(prefix)
	return c, nil
}

// prefixKeys are what a call derives from its prefix alone: the prefix as a
// string (the slot pool registry's key), a private copy of its bytes (so that a
// caller changing Options.Prefix during a call changes nothing) and the
// watermark key. They are made once per prefix and process and shared,
// read-only, by every call with that prefix: a call costs no allocation
// for them.
type prefixKeys struct {
	prefixKey    string
	prefix       []byte
	watermarkKey []byte
}

// internedPrefixes maps a prefix to its prefixKeys. It is replaced, never
// changed, so that lookups take no lock; it holds few entries (a process
// uses a prefix or two), and past internedPrefixesMax it starts over.
var internedPrefixes atomic.Pointer[map[string]*prefixKeys]

const internedPrefixesMax = 64

func internPrefix(prefix []byte) *prefixKeys {
	if m := internedPrefixes.Load(); m != nil {
		if p, ok := (*m)[string(prefix)]; ok {
			return p
		}
	}
	s := string(prefix)
	// Clipped: an append to the shared prefix must copy, never write into it.
	p := &prefixKeys{prefixKey: s, prefix: slices.Clip([]byte(s))}
	p.watermarkKey = WatermarkKey(p.prefix)
	for {
		old := internedPrefixes.Load()
		next := make(map[string]*prefixKeys, 1)
		if old != nil && len(*old) < internedPrefixesMax {
			if q, ok := (*old)[s]; ok {
				return q
			}
			maps.Copy(next, *old)
		}
		next[s] = p
		if internedPrefixes.CompareAndSwap(old, &next) {
			return p
		}
	}
}

func (c *config) validate(prefix []byte) error {
	switch {
	case len(prefix) == 0:
		return fmt.Errorf("%w: Prefix is empty; leave it nil for the default %q or give a non-empty prefix", ErrInvalidOptions, DefaultPrefix)
	case prefix[0] == kv.SystemPrefix:
		return fmt.Errorf("%w: Prefix %q begins with 0xff, FoundationDB's system keyspace; choose a prefix in the user keyspace", ErrInvalidOptions, prefix)
	case len(prefix) > maxPrefixLen:
		return fmt.Errorf("%w: Prefix is %d bytes; at most %d leave room for a marker under the %d-byte key limit", ErrInvalidOptions, len(prefix), maxPrefixLen, kv.MaxKeySize)
	case c.shards < 1 || c.shards > MaxShards:
		return fmt.Errorf("%w: Shards is %d; it must be 1 to %d", ErrInvalidOptions, c.shards, MaxShards)
	case c.resolveWindow < 0:
		return fmt.Errorf("%w: ResolveWindow is %v; it must be 0 (default %v) or positive", ErrInvalidOptions, c.resolveWindow, DefaultResolveWindow)
	case c.timeout < 0:
		return fmt.Errorf("%w: Timeout is %v; it must be 0 (none) or positive", ErrInvalidOptions, c.timeout)
	case c.maxRetryDelay < 0:
		return fmt.Errorf("%w: MaxRetryDelay is %v; it must be 0 (default %v) or positive", ErrInvalidOptions, c.maxRetryDelay, kv.DefaultMaxRetryDelay)
	}
	return nil
}
