package idemkv

import (
	"errors"
	"fmt"
	"time"
)

// JanitorState is what a store's janitor is doing.
type JanitorState string

// Janitor states.
const (
	// JanitorRunning: sweeping every JanitorInterval, the last sweep (if
	// any) succeeded.
	JanitorRunning JanitorState = "running"
	// JanitorFailing: running, but the last sweep failed; it retries with
	// backoff. LastError says why (a *cleanup.ForeignKeyError names the key
	// it refuses).
	JanitorFailing JanitorState = "failing"
	// JanitorOff: the store was opened with NoJanitor; it sweeps only on
	// Store.Sweep. Another process must run one.
	JanitorOff JanitorState = "off"
	// JanitorStopped: the janitor's loop has ended (the store is closed).
	JanitorStopped JanitorState = "stopped"
)

// Health is a store's health, as Store.Health reports it.
type Health struct {
	// Janitor is the janitor's state.
	Janitor JanitorState
	// LastError is the last sweep's error, nil once a sweep succeeds.
	LastError error
	// Failures counts the sweeps that failed since the last success.
	Failures int64
	// LastSuccess is when the last sweep succeeded (zero if none has);
	// NextSweep when the janitor sweeps next (zero if it is not running).
	LastSuccess, NextSweep time.Time
	// Watermark is the version below which this store's janitor has
	// removed every transaction marker.
	Watermark int64
	// MarkersAlive estimates the markers this process's calls left that
	// the janitor has not removed (see Store.MarkersAlive).
	MarkersAlive int64
	// Closed reports that the store is closed.
	Closed bool
}

// ErrUnhealthy is wrapped by Health.Err.
var ErrUnhealthy = errors.New("idemkv: store unhealthy")

// Err returns nil for a healthy store — open, its janitor running or off,
// and the last sweep successful — and otherwise an error wrapping
// ErrUnhealthy (and the janitor's last error) that says what is wrong: for
// a readiness probe.
func (h Health) Err() error {
	switch {
	case h.Closed:
		return fmt.Errorf("%w: the store is closed", ErrUnhealthy)
	case h.LastError != nil:
		return fmt.Errorf("%w: janitor %s, %d sweeps failed in a row: %w", ErrUnhealthy, h.Janitor, h.Failures, h.LastError)
	case h.Janitor == JanitorStopped:
		return fmt.Errorf("%w: the janitor has stopped", ErrUnhealthy)
	}
	return nil
}

// Health reports the state of the store's janitor and its last error. The
// janitor does not stop on errors: it retries with backoff, and Health
// shows the failure until a sweep succeeds.
func (s *Store) Health() Health {
	st := s.janitor.Stats()
	h := Health{
		LastError:    st.LastError,
		Failures:     st.Failures,
		LastSuccess:  st.LastSuccess,
		NextSweep:    st.NextSweep,
		Watermark:    st.Watermark,
		MarkersAlive: s.MarkersAlive(),
		Closed:       s.check() != nil,
	}
	switch {
	case st.Running && st.LastError != nil:
		h.Janitor = JanitorFailing
	case st.Running:
		h.Janitor = JanitorRunning
	case s.cfg.noJanitor:
		h.Janitor = JanitorOff
	default:
		h.Janitor = JanitorStopped
	}
	return h
}

// MarkersAlive estimates, without reading the database, how many
// transaction markers this process's calls have left that the janitor has
// not yet removed: the marker slots its calls hold or held (txn.PoolSlots;
// each one key, reused call after call, so the number stays near the calls
// in flight at once), less those the janitor's last cut-off has passed.
// Summed over all processes, it estimates the slots alive. Legacy markers,
// which earlier versions of txn left one per call, are not counted: no
// call of this version leaves one. The idemkv CLI's markers command counts
// both exactly, by reading them.
func (s *Store) MarkersAlive() int64 { return s.cfg.obs.markersAlive() }
