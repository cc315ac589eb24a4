// Package prom exports an idemkv store's metrics to Prometheus: a ready
// idemkv.Metrics for Options.Metrics. It lives in its own package so that
// idemkv itself does not import the Prometheus client.
//
// # Metrics
//
// All names begin with the namespace (default "idemkv"):
//
//	idemkv_calls_total{outcome}                  exactly-once calls by outcome: committed, failed,
//	                                             unknown (resolve by ID), outcome_lost
//	idemkv_call_attempts_total                   FoundationDB transactions those calls ran
//	idemkv_call_duration_seconds                 histogram of a call's wall time
//	idemkv_ambiguous_commits_total               maybe-committed errors seen (1021, 1039)
//	idemkv_marker_recoveries_total               calls that found an earlier attempt committed
//	                                             and returned its result
//	idemkv_unknown_outcomes_total                calls whose outcome was unknown (= calls_total{outcome="unknown"})
//	idemkv_outcomes_lost_total                   calls whose outcome was lost (= calls_total{outcome="outcome_lost"})
//	idemkv_janitor_sweeps_total                  successful janitor sweeps
//	idemkv_janitor_errors_total                  failed janitor sweeps
//	idemkv_janitor_sweep_duration_seconds        histogram of a sweep's duration, failed ones included
//	idemkv_janitor_removed_total                 keyed records the janitor removed (transaction markers go by
//	                                             range clears, uncounted: see the watermark)
//	idemkv_janitor_watermark_version             the version below which the janitor removed every marker
//	idemkv_markers_alive                         estimate of this process's markers not yet removed
//	idemkv_keyed_requests_total{result}          Do calls by result: ran, replayed, in_progress, mismatch,
//	                                             unknown, error
//
// Every counter of a label is created at zero, so that rate() and alerts
// see it before the first event.
package prom
