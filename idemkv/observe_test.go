package idemkv_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkv/idemkv/cleanup"
	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/embedded"
	"github.com/idemkv/idemkv/kv/faulty"
	"github.com/idemkv/idemkv/txn"
)

// logRecorder is a slog JSON handler's output, decoded record by record.
type logRecorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logRecorder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logRecorder) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// records returns the records whose message begins with msg.
func (l *logRecorder) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var r map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &r), line)
		if m, _ := r["msg"].(string); strings.HasPrefix(m, msg) {
			out = append(out, r)
		}
	}
	return out
}

// metricsRecorder is an idemkv.Metrics that counts what it is told.
type metricsRecorder struct {
	mu          sync.Mutex
	calls       map[idemkv.CallOutcome]int
	attempts    int
	ambiguous   int
	markerFound int
	sweeps      int
	sweepErrs   int
	removed     int
	keyed       map[idemkv.KeyedResult]int
	alive       int64
}

func newMetricsRecorder() *metricsRecorder {
	return &metricsRecorder{calls: map[idemkv.CallOutcome]int{}, keyed: map[idemkv.KeyedResult]int{}}
}

func (m *metricsRecorder) Call(o idemkv.CallOutcome, st txn.Stats) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls[o]++
	m.attempts += st.Attempts
	m.ambiguous += st.Ambiguous
	if st.MarkerFound {
		m.markerFound++
	}
}

func (m *metricsRecorder) Sweep(res cleanup.StepResult, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.sweepErrs++
		return
	}
	m.sweeps++
	m.removed += res.KeyedRemoved
}

func (m *metricsRecorder) Keyed(r idemkv.KeyedResult) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keyed[r]++
}

func (m *metricsRecorder) MarkersAlive(n int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.alive = n
}

// Under maybe-committed faults and timeouts, every call is reported once
// with the outcome its caller saw, unknown outcomes are logged at warn with
// the ID the caller got, and the store's Observe hook sees the same calls.
func TestObserveCallsUnderFaults(t *testing.T) {
	sd := seed(t)
	cfg := ambiguous(sd)
	cfg.TimedOutApplied, cfg.TimedOutNotApplied = 0.05, 0.05
	var logs logRecorder
	m := newMetricsRecorder()
	var observed int
	var f *faulty.DB
	s := openMem(t, &idemkv.Options{
		NoJanitor:     true,
		MaxRetryDelay: 2 * time.Millisecond,
		WrapDatabase:  func(db kv.Database) kv.Database { f = faulty.Wrap(db, cfg); return f },
		Logger:        logs.logger(),
		Metrics:       m,
		Observe:       func(txn.Stats) { observed++ },
	})
	ctx := context.Background()
	c := s.Counter("n")
	const calls = 200
	var acked int
	unknownIDs := map[string]bool{}
	lastUnknown := false
	for range calls {
		err := c.Add(ctx, 1)
		var ur *txn.UnknownResultError
		lastUnknown = errors.As(err, &ur)
		switch {
		case err == nil:
			acked++
		case lastUnknown:
			unknownIDs[ur.ID.String()] = true
		default:
			t.Fatalf("Add: %v", err)
		}
	}
	f.Wait()
	require.NotEmpty(t, unknownIDs, "no call timed out; the schedule tests nothing")
	m.mu.Lock()
	defer m.mu.Unlock()
	assert.Equal(t, acked, m.calls[idemkv.CallCommitted])
	assert.Equal(t, len(unknownIDs), m.calls[idemkv.CallUnknown])
	assert.Equal(t, calls, observed, "Options.Observe calls")
	assert.GreaterOrEqual(t, m.attempts, calls)
	assert.Positive(t, m.ambiguous, "ambiguous commits")
	assert.Positive(t, m.markerFound, "marker-found recoveries")
	// None swept: every slot the calls used is alive — one for each call
	// whose outcome is unknown (its slot stays pinned for Resolve), and one
	// the calls in turn share, unless the last call's was unknown (the next
	// would make it) — a few dozen markers for 200 calls.
	slots, pinned := txn.PoolSlots(s.Database(), &txn.Options{Prefix: append(bytes.Clone(idemkv.DefaultPrefix), "tx/"...)}, 0)
	assert.Equal(t, len(unknownIDs), pinned, "a slot pinned per unknown outcome")
	shared := 1
	if lastUnknown {
		shared = 0
	}
	assert.Equal(t, pinned+shared, slots)
	assert.Equal(t, int64(slots), m.alive)
	assert.Equal(t, int64(slots), s.MarkersAlive())
	logged := map[string]bool{}
	for _, r := range logs.records(t, "idemkv: transaction outcome unknown") {
		assert.Equal(t, "WARN", r["level"])
		logged[r["id"].(string)] = true
	}
	assert.Equal(t, unknownIDs, logged, "IDs logged at warn")
	assert.Len(t, logs.records(t, "idemkv: ambiguous commit recovered"), m.markerFound)
}

// Sweeps are logged at debug and counted; the marker estimate forgets what
// a sweep's cut-off passes.
func TestObserveSweeps(t *testing.T) {
	var logs logRecorder
	m := newMetricsRecorder()
	s, clk := openClocked(t, &idemkv.Options{Logger: logs.logger(), Metrics: m, MinAge: cleanup.MinMinAge})
	ctx := context.Background()
	for range 5 {
		_, err := idemkv.Transact(ctx, s, func(tr kv.Transaction) (struct{}, error) {
			tr.Set([]byte("x"), []byte("y"))
			return struct{}{}, nil
		})
		require.NoError(t, err)
	}
	require.Equal(t, int64(1), s.MarkersAlive(), "one marker slot, reused call after call")
	res, err := s.Sweep(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(1), s.MarkersAlive(), "a sweep within MinAge keeps the markers")
	// The janitor's cut-off is also bounded by its clock samples (one per
	// sweep; issue 11 item 9): the second sweep's cut-off is the first
	// sweep's version, just past the markers, in their estimate bucket;
	// the third's is far past.
	for range 2 {
		clk.Advance(10 * cleanup.MinMinAge)
		_, err = s.Sweep(ctx)
		require.NoError(t, err)
	}
	assert.Zero(t, s.MarkersAlive(), "the markers are past the cut-off")

	recs := logs.records(t, "idemkv: janitor sweep")
	require.Len(t, recs, 3)
	assert.Equal(t, "DEBUG", recs[0]["level"])
	assert.Equal(t, float64(res.ReadVersion), recs[0]["read_version"])
	m.mu.Lock()
	assert.Equal(t, 3, m.sweeps)
	assert.Zero(t, m.alive)
	m.mu.Unlock()
}

// A foreign key under the marker prefix: the background janitor does not
// stop; it fails at error level with the key as an attribute, Health says
// so, and it recovers once the key is removed.
func TestHealthForeignKey(t *testing.T) {
	needsEngine(t, "a directory reopened")
	dir := t.TempDir()
	ctx := context.Background()
	foreign := append(append(bytes.Clone(idemkv.DefaultPrefix), "tx/"...), "not-a-marker"...)
	{
		s, err := idemkv.Open(ctx, dir, &idemkv.Options{NoJanitor: true})
		require.NoError(t, err)
		tr, err := s.Database().CreateTransaction(ctx)
		require.NoError(t, err)
		tr.Set(foreign, []byte("x"))
		require.NoError(t, tr.Commit().Err())
		h := s.Health()
		assert.Equal(t, idemkv.JanitorOff, h.Janitor)
		assert.NoError(t, h.Err())
		require.NoError(t, s.Close())
		assert.Error(t, s.Health().Err(), "closed")
	}
	var logs logRecorder
	m := newMetricsRecorder()
	s, err := idemkv.Open(ctx, dir, &idemkv.Options{JanitorInterval: time.Millisecond, Logger: logs.logger(), Metrics: m})
	require.NoError(t, err)
	defer s.Close()
	waitHealth(t, s, func(h idemkv.Health) bool { return h.Janitor == idemkv.JanitorFailing && h.Failures >= 2 })
	h := s.Health()
	err = h.Err()
	assert.ErrorIs(t, err, idemkv.ErrUnhealthy)
	assert.ErrorIs(t, err, cleanup.ErrForeignPrefix)
	var fk *cleanup.ForeignKeyError
	require.ErrorAs(t, h.LastError, &fk)
	assert.Equal(t, foreign, fk.Key)
	recs := logs.records(t, "idemkv: janitor sweep failed")
	require.NotEmpty(t, recs)
	assert.Equal(t, "ERROR", recs[0]["level"])
	assert.Equal(t, `\xfdidemkv/tx/not-a-marker`, recs[0]["key"])

	tr, err := s.Database().CreateTransaction(ctx)
	require.NoError(t, err)
	tr.Clear(foreign)
	require.NoError(t, tr.Commit().Err())
	// The janitor publishes its state before it calls OnStep, so the
	// recovering sweep's metrics may trail Health by a moment: wait for both.
	waitHealth(t, s, func(h idemkv.Health) bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return h.Janitor == idemkv.JanitorRunning && m.sweeps > 0
	})
	h = s.Health()
	assert.NoError(t, h.Err())
	assert.False(t, h.LastSuccess.IsZero())
	m.mu.Lock()
	assert.Positive(t, m.sweepErrs)
	assert.Positive(t, m.sweeps)
	m.mu.Unlock()
}

func waitHealth(t *testing.T, s *idemkv.Store, ok func(idemkv.Health) bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !ok(s.Health()) {
		if time.Now().After(deadline) {
			t.Fatalf("health never reached the wanted state: %+v", s.Health())
		}
		time.Sleep(time.Millisecond)
	}
}

// Keyed requests are counted by result, and a takeover is logged at warn
// with the key and both tokens.
func TestObserveKeyed(t *testing.T) {
	var logs logRecorder
	m := newMetricsRecorder()
	const lease = 30 * time.Second
	s, clk := openClocked(t, &idemkv.Options{Lease: lease, Logger: logs.logger(), Metrics: m})
	ctx := context.Background()
	do := func(key, payload string) error {
		_, err := idemkv.Do(ctx, s, key, []byte(payload), func(context.Context) (string, error) { return "v", nil }, nil)
		return err
	}
	require.NoError(t, do("a", "p"))                                // ran
	require.NoError(t, do("a", "p"))                                // replayed
	require.ErrorIs(t, do("a", "other"), idemkv.ErrPayloadMismatch) // mismatch
	var inProgress error
	var oldTok, newTok uint64
	_, err := idemkv.Do(ctx, s, "b", []byte("p"), func(ctx context.Context) (string, error) {
		oldTok, _ = idemkv.LeaseToken(ctx)
		inProgress = do("b", "p") // in progress
		clk.Advance(lease + time.Second)
		_, err := idemkv.Do(ctx, s, "b", []byte("p"), func(ctx context.Context) (string, error) {
			newTok, _ = idemkv.LeaseToken(ctx)
			return "newcomer", nil
		}, nil) // ran, by takeover
		require.NoError(t, err)
		return "late", nil
	}, nil) // ran, lease lost
	require.ErrorIs(t, err, idemkv.ErrLeaseLost)
	require.ErrorIs(t, inProgress, idemkv.ErrInProgress)
	require.NoError(t, s.Close())
	require.ErrorIs(t, do("c", "p"), idemkv.ErrClosed) // not counted: refused before it began

	m.mu.Lock()
	assert.Equal(t, map[idemkv.KeyedResult]int{
		idemkv.KeyedRan: 3, idemkv.KeyedReplayed: 1, idemkv.KeyedMismatch: 1, idemkv.KeyedInProgress: 1,
	}, m.keyed)
	m.mu.Unlock()
	recs := logs.records(t, "idemkv: keyed request's lease expired")
	require.Len(t, recs, 1)
	assert.Equal(t, "WARN", recs[0]["level"])
	assert.Equal(t, "b", recs[0]["key"])
	assert.Equal(t, float64(oldTok), recs[0]["previous_token"])
	assert.Equal(t, float64(newTok), recs[0]["token"])
}

// A nil Logger is silent, and a store without Metrics still estimates.
func TestObserveDefaults(t *testing.T) {
	needsEngine(t, "its Embedded options")
	s, err := idemkv.Open(context.Background(), "mem:", &idemkv.Options{NoJanitor: true, Embedded: &embedded.Options{}})
	require.NoError(t, err)
	defer s.Close()
	_, err = idemkv.Transact(context.Background(), s, func(tr kv.Transaction) (int, error) { return 1, nil })
	require.NoError(t, err)
	assert.Equal(t, int64(1), s.MarkersAlive())
	assert.Equal(t, idemkv.JanitorOff, s.Health().Janitor)
}

// New opens a store over a database the caller keeps: Close leaves it open.
func TestNewBorrowsTheDatabase(t *testing.T) {
	needsEngine(t, "an embedded.DB of its own; TestNewOverFDBDatabaseOnShim is this on the bindings")
	ctx := context.Background()
	db, err := embedded.OpenMem(nil)
	require.NoError(t, err)
	defer db.Close()
	s, err := idemkv.New(ctx, db, &idemkv.Options{NoJanitor: true})
	require.NoError(t, err)
	_, err = idemkv.Transact(ctx, s, func(tr kv.Transaction) (struct{}, error) {
		tr.Set([]byte("k"), []byte("v"))
		return struct{}{}, nil
	})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	tr, err := db.CreateTransaction(ctx)
	require.NoError(t, err, "the caller's database was closed with the store")
	v, err := tr.Get([]byte("k")).Get()
	require.NoError(t, err)
	assert.Equal(t, "v", string(v))

	_, err = idemkv.New(ctx, nil, nil)
	assert.ErrorIs(t, err, idemkv.ErrInvalidOptions)
}
