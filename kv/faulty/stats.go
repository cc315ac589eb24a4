package faulty

import "sync/atomic"

// Outcomes counts what became of injected faults.
//
// Applied + LateApplied is the number of commits that took effect although
// the caller was told they failed: exactly the duplicates a stock retry loop
// produces for a non-idempotent transaction that it retries (1031 is not
// retried by OnError, so its applied commits are not duplicated but are
// still acknowledged as failed).
type Outcomes struct {
	// Injected is how many times the fault was chosen.
	Injected int64
	// Applied: the inner commit succeeded, the caller was told it failed.
	Applied int64
	// NotApplied: the inner transaction was abandoned, or an "applied"
	// fault's inner commit failed by itself (its own error was returned).
	NotApplied int64
	// LateApplied and LateNotApplied: a late commit landed, or failed
	// (typically not_committed because a retry's write conflicted).
	LateApplied    int64
	LateNotApplied int64
}

// Pending is the number of late commits not yet finished.
func (o Outcomes) Pending() int64 {
	return o.Injected - o.Applied - o.NotApplied - o.LateApplied - o.LateNotApplied
}

// Stats is a snapshot of a DB's counters.
type Stats struct {
	// Commits counts Commit calls, faulted or not.
	Commits int64
	// Delayed counts commits that were given added latency.
	Delayed int64
	// ByKind holds the outcomes for every kind that Kinds returns.
	ByKind map[Kind]Outcomes
}

// Total sums the outcomes over all kinds.
func (s Stats) Total() Outcomes {
	var t Outcomes
	for _, o := range s.ByKind {
		t.Injected += o.Injected
		t.Applied += o.Applied
		t.NotApplied += o.NotApplied
		t.LateApplied += o.LateApplied
		t.LateNotApplied += o.LateNotApplied
	}
	return t
}

// AppliedButFailed is the number of commits that took effect while their
// caller was told they failed (Applied + LateApplied over all kinds).
func (s Stats) AppliedButFailed() int64 {
	t := s.Total()
	return t.Applied + t.LateApplied
}

// outcome indexes counters.
type outcome int

const (
	injected outcome = iota
	applied
	notApplied
	lateApplied
	lateNotApplied
	numOutcomes
)

type counters struct {
	commits atomic.Int64
	delayed atomic.Int64
	kinds   [numKinds][numOutcomes]atomic.Int64
}

func (c *counters) add(k Kind, o outcome) { c.kinds[k][o].Add(1) }

// Stats returns the counters as they are now. Counters move independently,
// so a snapshot taken while commits run may be mid-update; take it after
// Wait for exact figures.
func (db *DB) Stats() Stats {
	c := &db.stats
	s := Stats{
		Commits: c.commits.Load(),
		Delayed: c.delayed.Load(),
		ByKind:  make(map[Kind]Outcomes, len(kindOrder)),
	}
	for _, k := range kindOrder {
		ks := &c.kinds[k]
		s.ByKind[k] = Outcomes{
			Injected:       ks[injected].Load(),
			Applied:        ks[applied].Load(),
			NotApplied:     ks[notApplied].Load(),
			LateApplied:    ks[lateApplied].Load(),
			LateNotApplied: ks[lateNotApplied].Load(),
		}
	}
	return s
}
