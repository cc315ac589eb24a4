package faulty

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/idemkv/idemkv/kv"
)

// Kind is one way a commit can be made to fail. Each has a probability in
// Config; at most one kind is injected per commit.
type Kind int

// The fault kinds. "Applied" means the inner commit ran and succeeded but
// the caller is told it failed; "not applied" means the inner transaction
// was abandoned; "late" means the caller is told it failed at once while the
// inner commit is sent afterwards by a goroutine, and lands only if nothing
// committed in between conflicts with it.
const (
	// None is a commit left alone (it may still be delayed).
	None Kind = iota
	UnknownResultApplied
	UnknownResultNotApplied
	UnknownResultLate
	TimedOutApplied
	TimedOutNotApplied
	TimedOutLate
	ClusterVersionChangedApplied
	ClusterVersionChangedNotApplied
	// NotCommitted, TransactionTooOld and FutureVersion are spurious
	// retryable errors: nothing is applied.
	NotCommitted
	TransactionTooOld
	FutureVersion
	// RecoveryApplied and RecoveryNotApplied are a cluster recovery while
	// the commit is in flight: the database's version jumps forward by
	// Config.RecoveryJump (FoundationDB's MAX_VERSIONS_IN_FLIGHT, about 100
	// seconds' worth), the commit fails with commit_unknown_result (1021),
	// applied (before the jump) or not, and every read version handed out
	// before the jump is too old from then on (transaction_too_old, 1007).
	// The wrapped database must implement Recoverer (kv/embedded does).
	RecoveryApplied
	RecoveryNotApplied

	numKinds
)

// Kinds returns every fault kind (not None), in the order Config draws
// them.
func Kinds() []Kind { return append([]Kind(nil), kindOrder[:]...) }

// kindOrder is the draw order: changing it changes every schedule.
var kindOrder = [...]Kind{
	UnknownResultApplied, UnknownResultNotApplied, UnknownResultLate,
	TimedOutApplied, TimedOutNotApplied, TimedOutLate,
	ClusterVersionChangedApplied, ClusterVersionChangedNotApplied,
	NotCommitted, TransactionTooOld, FutureVersion,
	RecoveryApplied, RecoveryNotApplied,
}

// kindInfo is what each kind injects and how: its error code, the name of
// its Config field (for validation messages and String), and its form.
var kindInfo = [numKinds]struct {
	code  kv.Code
	field string
	form  form
	jump  bool // a recovery: the version jumps
}{
	None:                            {code: 0, field: "None", form: formNone},
	UnknownResultApplied:            {code: kv.CodeCommitUnknownResult, field: "UnknownResultApplied", form: formApplied},
	UnknownResultNotApplied:         {code: kv.CodeCommitUnknownResult, field: "UnknownResultNotApplied", form: formNotApplied},
	UnknownResultLate:               {code: kv.CodeCommitUnknownResult, field: "UnknownResultLate", form: formLate},
	TimedOutApplied:                 {code: kv.CodeTransactionTimedOut, field: "TimedOutApplied", form: formApplied},
	TimedOutNotApplied:              {code: kv.CodeTransactionTimedOut, field: "TimedOutNotApplied", form: formNotApplied},
	TimedOutLate:                    {code: kv.CodeTransactionTimedOut, field: "TimedOutLate", form: formLate},
	ClusterVersionChangedApplied:    {code: kv.CodeClusterVersionChanged, field: "ClusterVersionChangedApplied", form: formApplied},
	ClusterVersionChangedNotApplied: {code: kv.CodeClusterVersionChanged, field: "ClusterVersionChangedNotApplied", form: formNotApplied},
	NotCommitted:                    {code: kv.CodeNotCommitted, field: "NotCommitted", form: formNotApplied},
	TransactionTooOld:               {code: kv.CodeTransactionTooOld, field: "TransactionTooOld", form: formNotApplied},
	FutureVersion:                   {code: kv.CodeFutureVersion, field: "FutureVersion", form: formNotApplied},
	RecoveryApplied:                 {code: kv.CodeCommitUnknownResult, field: "RecoveryApplied", form: formApplied, jump: true},
	RecoveryNotApplied:              {code: kv.CodeCommitUnknownResult, field: "RecoveryNotApplied", form: formNotApplied, jump: true},
}

type form int

const (
	formNone form = iota
	formApplied
	formNotApplied
	formLate
)

// String returns the kind's Config field name, e.g. "UnknownResultLate".
func (k Kind) String() string {
	if k < 0 || k >= numKinds {
		return fmt.Sprintf("Kind(%d)", int(k))
	}
	return kindInfo[k].field
}

// Code returns the FoundationDB error code the kind injects (0 for None).
func (k Kind) Code() kv.Code {
	if k < 0 || k >= numKinds {
		return 0
	}
	return kindInfo[k].code
}

// Defaults for zero durations in Config.
const (
	// DefaultLateDelay bounds a late commit's delay when Config.LateDelay
	// is zero.
	DefaultLateDelay = 20 * time.Millisecond
	// DefaultMaxLatency bounds added latency when Config.MaxLatency is zero.
	DefaultMaxLatency = 5 * time.Millisecond
	// DefaultRecoveryJump is a recovery's version jump when
	// Config.RecoveryJump is zero: FoundationDB's MAX_VERSIONS_IN_FLIGHT,
	// 100 seconds' worth of versions.
	DefaultRecoveryJump = 100 * time.Second
)

// Recoverer is what a wrapped database must implement for the recovery
// faults: AdvanceVersion moves its version forward by n at once
// (kv/embedded's DB does).
type Recoverer interface {
	AdvanceVersion(n int64) error
}

// Config says how often each fault happens. The zero Config injects nothing:
// the wrapper is then a pass-through. Probabilities are per Commit call of a
// transaction that wrote something; each is in [0, 1] and the fault
// probabilities together are at most 1.
type Config struct {
	// Seed fixes the schedule: the n-th Commit call's fate is a function of
	// (Seed, n) alone.
	Seed uint64

	// commit_unknown_result (1021).
	UnknownResultApplied    float64
	UnknownResultNotApplied float64
	UnknownResultLate       float64
	// transaction_timed_out (1031). The caller's OnError does not retry it.
	TimedOutApplied    float64
	TimedOutNotApplied float64
	TimedOutLate       float64
	// cluster_version_changed (1039). OnError retries it, as the
	// multi-version client does.
	ClusterVersionChangedApplied    float64
	ClusterVersionChangedNotApplied float64
	// Spurious retryable errors, nothing applied: not_committed (1020),
	// transaction_too_old (1007), future_version (1009).
	NotCommitted      float64
	TransactionTooOld float64
	FutureVersion     float64
	// A cluster recovery during the commit (see RecoveryApplied): the
	// version jumps by RecoveryJump's worth of versions (zero means
	// DefaultRecoveryJump), and the commit fails with 1021.
	RecoveryApplied    float64
	RecoveryNotApplied float64
	RecoveryJump       time.Duration

	// Latency is the probability that a commit is delayed by a uniform
	// duration in [0, MaxLatency] before anything else happens to it. It is
	// drawn independently of the fault kinds.
	Latency float64
	// MaxLatency bounds added latency; zero means DefaultMaxLatency.
	MaxLatency time.Duration
	// LateDelay bounds how long a late commit waits, uniformly in
	// [0, LateDelay], before it is sent; zero means DefaultLateDelay.
	LateDelay time.Duration

	// CloseInner makes DB.Close close the wrapped database too. By default
	// the caller keeps ownership of it.
	CloseInner bool
}

// prob returns the probability Config gives kind k.
func (c *Config) prob(k Kind) float64 {
	switch k {
	case UnknownResultApplied:
		return c.UnknownResultApplied
	case UnknownResultNotApplied:
		return c.UnknownResultNotApplied
	case UnknownResultLate:
		return c.UnknownResultLate
	case TimedOutApplied:
		return c.TimedOutApplied
	case TimedOutNotApplied:
		return c.TimedOutNotApplied
	case TimedOutLate:
		return c.TimedOutLate
	case ClusterVersionChangedApplied:
		return c.ClusterVersionChangedApplied
	case ClusterVersionChangedNotApplied:
		return c.ClusterVersionChangedNotApplied
	case NotCommitted:
		return c.NotCommitted
	case TransactionTooOld:
		return c.TransactionTooOld
	case FutureVersion:
		return c.FutureVersion
	case RecoveryApplied:
		return c.RecoveryApplied
	case RecoveryNotApplied:
		return c.RecoveryNotApplied
	}
	return 0
}

// recovers reports whether c injects recoveries.
// late reports whether any kind of late commit can be drawn.
func (c *Config) late() bool {
	for k := Kind(0); k < numKinds; k++ {
		if kindInfo[k].form == formLate && c.prob(k) > 0 {
			return true
		}
	}
	return false
}

func (c *Config) recovers() bool { return c.RecoveryApplied > 0 || c.RecoveryNotApplied > 0 }

// recoveryJump is a recovery's jump in versions.
func (c *Config) recoveryJump() int64 {
	d := c.RecoveryJump
	if d == 0 {
		d = DefaultRecoveryJump
	}
	return int64(d / (time.Second / kv.VersionsPerSecond))
}

// validate reports the first field out of range, by name.
func (c *Config) validate() error {
	sum := 0.0
	for _, k := range kindOrder {
		p := c.prob(k)
		if math.IsNaN(p) || p < 0 || p > 1 {
			return fmt.Errorf("faulty: Config.%s = %v, want a probability in [0, 1]", k, p)
		}
		sum += p
	}
	// A little slack for sums such as 0.1+0.2+0.7 that float rounding
	// pushes past 1.
	if sum > 1+1e-9 {
		return fmt.Errorf("faulty: the fault probabilities in Config sum to %v, want at most 1", sum)
	}
	if p := c.Latency; math.IsNaN(p) || p < 0 || p > 1 {
		return fmt.Errorf("faulty: Config.Latency = %v, want a probability in [0, 1]", p)
	}
	if c.MaxLatency < 0 {
		return fmt.Errorf("faulty: Config.MaxLatency = %v, want >= 0 (0 means %v)", c.MaxLatency, DefaultMaxLatency)
	}
	if c.RecoveryJump < 0 {
		return fmt.Errorf("faulty: Config.RecoveryJump = %v, want >= 0 (0 means %v)", c.RecoveryJump, DefaultRecoveryJump)
	}
	if c.LateDelay < 0 {
		return fmt.Errorf("faulty: Config.LateDelay = %v, want >= 0 (0 means %v)", c.LateDelay, DefaultLateDelay)
	}
	return nil
}

// fate is what happens to one Commit call.
type fate struct {
	kind Kind
	// delayed says latency is added before the commit (it may be zero).
	delayed bool
	latency time.Duration
	// lateDelay is how long a late commit waits before it is sent.
	lateDelay time.Duration
}

// fateOf is the n-th Commit call's fate: a pure function of (c.Seed, n).
// It always makes the same four draws, so that changing one probability
// does not shift the randomness of the others.
func (c *Config) fateOf(n uint64) fate {
	r := rand.New(rand.NewPCG(c.Seed, n))
	uKind, uLat, uLatDur, uLate := r.Float64(), r.Float64(), r.Float64(), r.Float64()

	var f fate
	acc := 0.0
	for _, k := range kindOrder {
		acc += c.prob(k)
		if uKind < acc {
			f.kind = k
			break
		}
	}
	if uLat < c.Latency {
		f.delayed = true
		f.latency = scale(c.maxLatency(), uLatDur)
	}
	if kindInfo[f.kind].form == formLate {
		f.lateDelay = scale(c.lateDelay(), uLate)
	}
	return f
}

// scale maps u in [0, 1) to a duration in [0, d].
func scale(d time.Duration, u float64) time.Duration {
	return time.Duration(u * float64(d+1))
}

func (c *Config) maxLatency() time.Duration {
	if c.MaxLatency == 0 {
		return DefaultMaxLatency
	}
	return c.MaxLatency
}

func (c *Config) lateDelay() time.Duration {
	if c.LateDelay == 0 {
		return DefaultLateDelay
	}
	return c.LateDelay
}
