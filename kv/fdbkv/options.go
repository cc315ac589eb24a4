package fdbkv

import (
	"fmt"
	"math"
	"time"

	"github.com/idemkv/idemkv/kv"
)

// API versions this package accepts. The bindings it is built against
// (github.com/apple/foundationdb/bindings/go at the version go.mod pins)
// declare header version 730, so nothing newer can be selected; the adapter
// needs API 620 or later because it relies on behaviour introduced by then:
// timeout, retry-limit and max-retry-delay options that survive OnError
// (610) and fdb_transaction_get_approximate_size (620).
const (
	MinAPIVersion     = 620
	MaxAPIVersion     = 730
	DefaultAPIVersion = 730
)

// Options configures Open. A nil *Options means the defaults.
type Options struct {
	// APIVersion is the FoundationDB API version to select, from
	// MinAPIVersion to MaxAPIVersion; 0 means DefaultAPIVersion. A process
	// can select only one API version: a later Open asking for a different
	// one fails.
	APIVersion int
}

// withDefaults returns a copy of o with defaults filled in, or an error
// naming the bad field and its allowed range.
func (o *Options) withDefaults() (Options, error) {
	var out Options
	if o != nil {
		out = *o
	}
	if out.APIVersion == 0 {
		out.APIVersion = DefaultAPIVersion
	}
	if err := validateAPIVersion(out.APIVersion); err != nil {
		return Options{}, err
	}
	return out, nil
}

// validateAPIVersion checks v against the range this package supports.
func validateAPIVersion(v int) error {
	if v < MinAPIVersion || v > MaxAPIVersion {
		return fmt.Errorf("fdbkv: Options.APIVersion %d is not supported: use %d to %d (0 means %d)",
			v, MinAPIVersion, MaxAPIVersion, DefaultAPIVersion)
	}
	return nil
}

// maxOptionInt is INT_MAX, the upper bound of FoundationDB's integer
// transaction options (timeout and max retry delay in milliseconds, retry
// limit).
const maxOptionInt = math.MaxInt32

// minSizeLimit is FoundationDB's lower bound for the size_limit option.
const minSizeLimit = 32

// durationMillis converts d to the milliseconds FoundationDB's timeout and
// max_retry_delay options take. It rounds up, so that a positive duration
// never becomes 0 (which would disable a timeout instead of firing it at
// once). Out-of-range values fail with invalid_option_value (2006) naming
// the option and the range.
func durationMillis(option string, d time.Duration) (int64, error) {
	if d < 0 {
		return 0, kv.Errorf(kv.CodeInvalidOptionValue, "fdbkv: %s %v is negative: use 0 to %v", option, d, maxOptionDuration)
	}
	ms := int64((d + time.Millisecond - 1) / time.Millisecond)
	if ms > maxOptionInt {
		return 0, kv.Errorf(kv.CodeInvalidOptionValue, "fdbkv: %s %v is too long: use 0 to %v", option, d, maxOptionDuration)
	}
	return ms, nil
}

// maxOptionDuration is the longest duration a millisecond option can hold.
const maxOptionDuration = time.Duration(maxOptionInt) * time.Millisecond

// retryLimitParam validates a retry limit: -1 (no limit) to INT_MAX.
func retryLimitParam(n int) (int64, error) {
	if n < -1 || int64(n) > maxOptionInt {
		return 0, kv.Errorf(kv.CodeInvalidOptionValue, "fdbkv: retry limit %d is out of range: use -1 (no limit) to %d", n, maxOptionInt)
	}
	return int64(n), nil
}

// sizeLimitParam validates a transaction size limit: 32 bytes to
// kv.DefaultSizeLimit, FoundationDB's range for size_limit.
func sizeLimitParam(n int) (int64, error) {
	if n < minSizeLimit || n > kv.DefaultSizeLimit {
		return 0, kv.Errorf(kv.CodeInvalidOptionValue, "fdbkv: size limit %d is out of range: use %d to %d bytes", n, minSizeLimit, kv.DefaultSizeLimit)
	}
	return int64(n), nil
}

// effectiveTimeout combines an explicit timeout (0: none), measured from
// start (the transaction's creation or last Reset, as kv defines it), with
// a context deadline into the one timeout FoundationDB is given, which
// FoundationDB measures from clock (its own creation time for the
// transaction; later than start after fdbkv resets the transaction itself
// for cluster_version_changed). It returns the milliseconds to set (0: no
// timeout), rounded up so that a timeout never becomes 0 (disabled), and
// whether the deadline is the binding constraint, so that a 1031 it causes
// can carry context.DeadlineExceeded as its cause.
func effectiveTimeout(explicit time.Duration, deadline time.Time, hasDeadline bool, start, clock time.Time) (ms int64, fromCtx bool) {
	var end time.Time
	if explicit > 0 {
		end = start.Add(explicit)
	}
	if hasDeadline && (end.IsZero() || deadline.Before(end)) {
		end, fromCtx = deadline, true
	}
	if end.IsZero() {
		return 0, false
	}
	left := end.Sub(clock)
	if left <= 0 {
		left = time.Nanosecond // fire at once: rounds up to 1 ms
	}
	ms = int64((left + time.Millisecond - 1) / time.Millisecond)
	return min(ms, maxOptionInt), fromCtx
}

// versionstampFromBytes checks the bindings' versionstamp key is ten bytes.
func versionstampFromBytes(b []byte) (kv.Versionstamp, error) {
	var vs kv.Versionstamp
	if len(b) != len(vs) {
		return vs, kv.Errorf(kv.CodeInternalError, "fdbkv: versionstamp of %d bytes, want %d", len(b), len(vs))
	}
	copy(vs[:], b)
	return vs, nil
}
