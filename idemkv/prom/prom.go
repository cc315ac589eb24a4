package prom

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/idemkv/idemkv/cleanup"
	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/txn"
)

// Metrics is an idemkv.Metrics that updates Prometheus collectors.
type Metrics struct {
	calls          *prometheus.CounterVec
	attempts       prometheus.Counter
	duration       prometheus.Histogram
	ambiguous      prometheus.Counter
	recoveries     prometheus.Counter
	unknown        prometheus.Counter
	lost           prometheus.Counter
	sweeps         prometheus.Counter
	sweepErrors    prometheus.Counter
	sweepDuration  prometheus.Histogram
	removed        prometheus.Counter
	watermark      prometheus.Gauge
	markMu         sync.Mutex // guards mark, the watermark gauge's value
	mark           int64
	markersAlive   prometheus.Gauge
	keyed          *prometheus.CounterVec
	callOutcomes   []idemkv.CallOutcome
	keyedOutcomes  []idemkv.KeyedResult
	collectorsList []prometheus.Collector
}

var _ idemkv.Metrics = (*Metrics)(nil)

// Options configures New. A nil *Options means the defaults.
type Options struct {
	// Namespace prefixes every metric name. Default "idemkv".
	Namespace string
	// ConstLabels are added to every metric, e.g. {"store": "payments"}
	// for a process with several stores on one registry.
	ConstLabels prometheus.Labels
}

// New creates the collectors and registers them with reg (for example
// prometheus.DefaultRegisterer, or a prometheus.NewRegistry()). It fails,
// registering nothing, if reg already holds metrics of the same names and
// labels: give a second store its own ConstLabels.
func New(reg prometheus.Registerer, opts *Options) (*Metrics, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Namespace == "" {
		o.Namespace = "idemkv"
	}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: o.Namespace, Name: name, Help: help, ConstLabels: o.ConstLabels})
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: o.Namespace, Name: name, Help: help, ConstLabels: o.ConstLabels})
	}
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: o.Namespace, Name: "calls_total", ConstLabels: o.ConstLabels,
			Help: "Exactly-once calls (Transact, counter adds, keyed requests' claims and completions) by outcome: committed, failed, unknown, outcome_lost."}, []string{"outcome"}),
		attempts: counter("call_attempts_total", "FoundationDB transactions run by exactly-once calls."),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: o.Namespace, Name: "call_duration_seconds", ConstLabels: o.ConstLabels,
			Help: "Wall time of exactly-once calls, all attempts included.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		ambiguous:   counter("ambiguous_commits_total", "Maybe-committed errors (commit_unknown_result 1021, cluster_version_changed 1039) seen by exactly-once calls."),
		recoveries:  counter("marker_recoveries_total", "Calls that found an earlier attempt committed by its marker and returned its result without running the function again."),
		unknown:     counter("unknown_outcomes_total", "Calls that ended without knowing whether they committed; resolve them by ID."),
		lost:        counter("outcomes_lost_total", "Calls whose outcome could no longer be learned (the janitor's watermark or a range clear passed their marker)."),
		sweeps:      counter("janitor_sweeps_total", "Janitor sweeps that succeeded."),
		sweepErrors: counter("janitor_errors_total", "Janitor sweeps that failed; the janitor retries with backoff."),
		sweepDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: o.Namespace, Name: "janitor_sweep_duration_seconds", ConstLabels: o.ConstLabels,
			Help: "Duration of janitor sweeps, failed ones included.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		removed:      counter("janitor_removed_total", "Keyed request records the janitor removed after their retention."),
		watermark:    gauge("janitor_watermark_version", "Database version below which this process's janitor has removed every transaction marker."),
		markersAlive: gauge("markers_alive", "Estimate of the transaction markers this process's calls left that the janitor has not removed; sum over processes."),
		keyed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: o.Namespace, Name: "keyed_requests_total", ConstLabels: o.ConstLabels,
			Help: "Keyed requests (Do) by result: ran, replayed, in_progress, mismatch, unknown, error."}, []string{"result"}),
		callOutcomes:  []idemkv.CallOutcome{idemkv.CallCommitted, idemkv.CallFailed, idemkv.CallUnknown, idemkv.CallOutcomeLost},
		keyedOutcomes: []idemkv.KeyedResult{idemkv.KeyedRan, idemkv.KeyedReplayed, idemkv.KeyedInProgress, idemkv.KeyedMismatch, idemkv.KeyedUnknown, idemkv.KeyedError},
	}
	for _, c := range m.callOutcomes {
		m.calls.WithLabelValues(string(c))
	}
	for _, r := range m.keyedOutcomes {
		m.keyed.WithLabelValues(string(r))
	}
	m.collectorsList = []prometheus.Collector{m.calls, m.attempts, m.duration, m.ambiguous, m.recoveries, m.unknown, m.lost,
		m.sweeps, m.sweepErrors, m.sweepDuration, m.removed, m.watermark, m.markersAlive, m.keyed}
	for i, c := range m.collectorsList {
		if err := reg.Register(c); err != nil {
			for _, done := range m.collectorsList[:i] {
				reg.Unregister(done)
			}
			return nil, err
		}
	}
	return m, nil
}

// Unregister removes the collectors from reg, for a store that closes
// while the process goes on.
func (m *Metrics) Unregister(reg prometheus.Registerer) {
	for _, c := range m.collectorsList {
		reg.Unregister(c)
	}
}

// Call implements idemkv.Metrics.
func (m *Metrics) Call(outcome idemkv.CallOutcome, st txn.Stats) {
	m.calls.WithLabelValues(string(outcome)).Inc()
	m.attempts.Add(float64(st.Attempts))
	m.duration.Observe(st.Duration.Seconds())
	m.ambiguous.Add(float64(st.Ambiguous))
	if st.MarkerFound {
		m.recoveries.Inc()
	}
	switch outcome {
	case idemkv.CallUnknown:
		m.unknown.Inc()
	case idemkv.CallOutcomeLost:
		m.lost.Inc()
	}
}

// Sweep implements idemkv.Metrics.
func (m *Metrics) Sweep(res cleanup.StepResult, err error) {
	m.sweepDuration.Observe(res.Duration.Seconds())
	if err != nil {
		m.sweepErrors.Inc()
		return
	}
	m.sweeps.Inc()
	m.removed.Add(float64(res.KeyedRemoved))
	// The watermark only moves up, whatever order sweeps report in.
	m.markMu.Lock()
	defer m.markMu.Unlock()
	if res.Cutoff > m.mark {
		m.mark = res.Cutoff
		m.watermark.Set(float64(res.Cutoff))
	}
}

// Keyed implements idemkv.Metrics.
func (m *Metrics) Keyed(r idemkv.KeyedResult) { m.keyed.WithLabelValues(string(r)).Inc() }

// MarkersAlive implements idemkv.Metrics.
func (m *Metrics) MarkersAlive(n int64) { m.markersAlive.Set(float64(n)) }
