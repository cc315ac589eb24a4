package idemkv

import (
	"errors"
	"log/slog"
	"strconv"
	"sync/atomic"

	"github.com/idemkv/idemkv/cleanup"
	"github.com/idemkv/idemkv/txn"
)

// Metrics receives what a Store does, for a metrics system: set
// Options.Metrics. Package idemkv/prom is a ready implementation for
// Prometheus. The methods are called on the goroutines that do the work
// (callers', the janitor's), so they must be safe for concurrent use and
// must not block.
type Metrics interface {
	// Call is called at the end of every exactly-once call the store makes
	// — Transact, counters' Add, and the claims, completions and releases
	// of Do — with its outcome and what txn reports about it (attempts,
	// ambiguous commits, whether a marker was found).
	Call(outcome CallOutcome, stats txn.Stats)
	// Sweep is called after every janitor sweep, background or Store.Sweep,
	// with what it did and its error.
	Sweep(res cleanup.StepResult, err error)
	// Keyed is called at the end of every Do call that passed its input
	// checks, with its result.
	Keyed(result KeyedResult)
	// MarkersAlive is called with a new estimate of the transaction markers
	// this process's calls have left that the janitor has not yet removed
	// (see Store.MarkersAlive). Summed over processes, it estimates the
	// markers alive in the database.
	MarkersAlive(n int64)
}

// CallOutcome is how an exactly-once call ended.
type CallOutcome string

// Call outcomes.
const (
	// CallCommitted: the call committed exactly once.
	CallCommitted CallOutcome = "committed"
	// CallFailed: the call did not commit (its function's error, a
	// conflict past the retry limit, a canceled context, ...).
	CallFailed CallOutcome = "failed"
	// CallUnknown: the call ended without knowing whether it committed
	// (*txn.UnknownResultError); Resolve its ID.
	CallUnknown CallOutcome = "unknown"
	// CallOutcomeLost: the call's outcome can no longer be learned
	// (*txn.OutcomeLostError); its function was not run again.
	CallOutcomeLost CallOutcome = "outcome_lost"
)

// callOutcome classifies a call's error.
func callOutcome(err error) CallOutcome {
	switch {
	case err == nil:
		return CallCommitted
	case errors.Is(err, txn.ErrOutcomeLost):
		return CallOutcomeLost
	case errors.Is(err, txn.ErrUnknownResult):
		return CallUnknown
	}
	return CallFailed
}

// KeyedResult is how a Do call ended.
type KeyedResult string

// Keyed request results.
const (
	// KeyedRan: this call claimed the key and ran fn.
	KeyedRan KeyedResult = "ran"
	// KeyedReplayed: the key was completed; its stored result was returned
	// without running fn.
	KeyedReplayed KeyedResult = "replayed"
	// KeyedInProgress: another caller held the key (ErrInProgress).
	KeyedInProgress KeyedResult = "in_progress"
	// KeyedMismatch: the key was used with another payload
	// (ErrPayloadMismatch).
	KeyedMismatch KeyedResult = "mismatch"
	// KeyedUnknown: the outcome of the call's own commit is unknown
	// (txn.ErrUnknownResult) or the key's outcome is (txn.ErrOutcomeLost).
	KeyedUnknown KeyedResult = "unknown"
	// KeyedError: any other failure before fn ran (a closed store, a
	// storage error).
	KeyedError KeyedResult = "error"
)

// keyedResult classifies a Do call from whether fn ran or a stored result
// was replayed, and its error.
func keyedResult(ran, replayed bool, err error) KeyedResult {
	switch {
	case ran:
		return KeyedRan
	case replayed:
		return KeyedReplayed
	case errors.Is(err, ErrPayloadMismatch):
		return KeyedMismatch
	case errors.Is(err, ErrInProgress):
		return KeyedInProgress
	case errors.Is(err, txn.ErrUnknownResult), errors.Is(err, txn.ErrOutcomeLost), errors.Is(err, ErrOutcomeUnknown):
		return KeyedUnknown
	}
	return KeyedError
}

// observer is where a Store's calls, sweeps and keyed requests report, for
// its logger, its metrics and the caller's Observe hook.
type observer struct {
	log     *slog.Logger // never nil: a discarding logger when none is set
	metrics Metrics      // may be nil
	user    func(txn.Stats)
	// slots, once the store is open, counts this process's marker slots
	// for the store written at or after a version (txn.PoolSlots).
	slots func(since int64) int64
	// cutoff is the last sweep's cut-off: slots last written below it are
	// gone.
	cutoff atomic.Int64
}

// raiseCutoff records a sweep's cut-off; cut-offs only move up.
func (o *observer) raiseCutoff(v int64) {
	for {
		c := o.cutoff.Load()
		if v <= c || o.cutoff.CompareAndSwap(c, v) {
			return
		}
	}
}

// markersAlive is the process's estimate of its markers alive: its marker
// slots not last written below the last sweep's cut-off. (Every call of
// this version of txn uses a slot; legacy markers, one per call of earlier
// versions, are not this process's to count.)
func (o *observer) markersAlive() int64 {
	if o.slots == nil {
		return 0
	}
	return o.slots(o.cutoff.Load())
}

func newObserver(log *slog.Logger, m Metrics, user func(txn.Stats)) *observer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &observer{log: log, metrics: m, user: user}
}

// call is txn.Options.Observe for every call the store makes.
func (o *observer) call(st txn.Stats) {
	outcome := callOutcome(st.Err)
	switch outcome {
	case CallUnknown:
		o.log.Warn("idemkv: transaction outcome unknown; resolve it by its ID (Store.Resolve, or idemkv resolve ID) within the janitor's MinAge",
			slog.String("id", st.ID.String()), slog.Int("attempts", st.Attempts), slog.Int("ambiguous", st.Ambiguous), slog.Any("err", st.Err))
	case CallOutcomeLost:
		attrs := []any{slog.String("id", st.ID.String()), slog.Any("err", st.Err)}
		var lost *txn.OutcomeLostError
		if errors.As(st.Err, &lost) {
			attrs = append(attrs, slog.Int64("watermark", lost.Watermark), slog.Bool("cleared", lost.Cleared))
		}
		o.log.Warn("idemkv: transaction outcome lost; the function was not run again", attrs...)
	case CallCommitted:
		if st.MarkerFound {
			o.log.Info("idemkv: ambiguous commit recovered from its marker",
				slog.String("id", st.ID.String()), slog.Int("attempts", st.Attempts), slog.Int("ambiguous", st.Ambiguous))
		}
	}
	if o.metrics != nil {
		o.metrics.Call(outcome, st)
		// After every call: one whose outcome is unknown pins its slot.
		o.metrics.MarkersAlive(o.markersAlive())
	}
	if o.user != nil {
		o.user(st)
	}
}

// sweep is cleanup.Options.OnStep; failures is the janitor's count of
// consecutive failed sweeps, this one included.
func (o *observer) sweep(res cleanup.StepResult, err error, failures int64) {
	if err != nil {
		attrs := []any{slog.Any("err", err), slog.Int64("failures", failures), slog.Duration("duration", res.Duration)}
		var fk *cleanup.ForeignKeyError
		if errors.As(err, &fk) {
			attrs = append(attrs, slog.String("key", printable(fk.Key)), slog.String("prefix", printable(fk.Prefix)))
		}
		o.log.Error("idemkv: janitor sweep failed; retrying with backoff", attrs...)
	} else {
		o.log.Debug("idemkv: janitor sweep",
			slog.Int64("read_version", res.ReadVersion), slog.Int64("cutoff", res.Cutoff),
			slog.Int("keyed_removed", res.KeyedRemoved), slog.Bool("keyed_more", res.KeyedMore),
			slog.Duration("duration", res.Duration))
		o.raiseCutoff(res.Cutoff)
	}
	if o.metrics != nil {
		o.metrics.Sweep(res, err)
		o.metrics.MarkersAlive(o.markersAlive())
	}
}

// keyed reports the end of a Do call.
func (o *observer) keyed(key string, ran, replayed bool, err error) {
	r := keyedResult(ran, replayed, err)
	if r == KeyedUnknown {
		o.log.Warn("idemkv: keyed request's outcome unknown", slog.String("key", key), slog.Any("err", err))
	}
	if o.metrics != nil {
		o.metrics.Keyed(r)
	}
}

// takeover reports a claim that took a key over from a holder whose lease
// expired.
func (o *observer) takeover(key string, from, to uint64) {
	o.log.Warn("idemkv: keyed request's lease expired; key taken over",
		slog.String("key", key), slog.Uint64("token", to), slog.Uint64("previous_token", from))
}

// resolved reports a Resolve.
func (o *observer) resolved(id txn.ID, out txn.Outcome, err error) {
	switch {
	case errors.Is(err, txn.ErrOutcomeLost):
		o.log.Warn("idemkv: resolve: transaction outcome lost", slog.String("id", id.String()), slog.Any("err", err))
	case err == nil:
		o.log.Info("idemkv: resolved", slog.String("id", id.String()), slog.String("outcome", out.String()))
	}
}

// printable is a byte key as Go would quote it, without the quotes: the
// prefix's 0xfd is "\xfd", not an invalid UTF-8 sequence in a log line.
func printable(b []byte) string {
	q := strconv.Quote(string(b))
	return q[1 : len(q)-1]
}
