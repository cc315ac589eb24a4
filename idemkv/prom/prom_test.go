package prom_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/idemkv/prom"
	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/embedded"
	"github.com/idemkv/idemkv/kv/faulty"
	"github.com/idemkv/idemkv/txn"
)

var seedFlag = flag.Uint64("seed", 0, "seed for the fault schedule (0: derive from the time)")

// scrape fetches reg's metrics over HTTP, as Prometheus does, and returns
// each sample line's value by its name and labels.
func scrape(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		require.NoError(t, err, line)
		out[line[:i]] = v
	}
	return out
}

// Calls under injected faults and timeouts, keyed requests of every result
// and janitor sweeps, checked against what the test itself saw, through a
// scrape of the registry.
func TestScrape(t *testing.T) {
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	defer func() {
		if t.Failed() {
			t.Logf("seed %d; replay: go test ./idemkv/prom -run TestScrape -count=1 -seed %d", seed, seed)
		}
	}()
	reg := prometheus.NewRegistry()
	m, err := prom.New(reg, &prom.Options{ConstLabels: prometheus.Labels{"store": "test"}})
	require.NoError(t, err)
	var f *faulty.DB
	clk := embedded.NewManualClock(time.Unix(1_700_000_000, 0))
	s, err := idemkv.Open(context.Background(), "mem:", &idemkv.Options{
		NoJanitor:     true,
		MaxRetryDelay: 2 * time.Millisecond,
		Metrics:       m,
		Embedded:      &embedded.Options{Clock: clk.Now},
		WrapDatabase: func(db kv.Database) kv.Database {
			f = faulty.Wrap(db, faulty.Config{
				Seed: seed, UnknownResultApplied: 0.1, UnknownResultNotApplied: 0.05,
				ClusterVersionChangedApplied: 0.05, TimedOutApplied: 0.05, TimedOutNotApplied: 0.05,
			})
			return f
		},
	})
	require.NoError(t, err)
	defer s.Close()
	ctx := context.Background()

	var committed, unknown int
	lastUnknown := false
	for range 200 {
		err := s.Counter("n").Add(ctx, 1)
		lastUnknown = errors.Is(err, txn.ErrUnknownResult)
		switch {
		case err == nil:
			committed++
		case errors.Is(err, txn.ErrUnknownResult):
			unknown++
		default:
			t.Fatalf("Add: %v", err)
		}
	}
	f.Wait()
	got := scrape(t, reg)
	lbl := func(name, labels string) string {
		if labels == "" {
			return name + `{store="test"}`
		}
		return name + "{" + labels + `,store="test"}`
	}
	assert.Equal(t, float64(committed), got[lbl("idemkv_calls_total", `outcome="committed"`)])
	assert.Equal(t, float64(unknown), got[lbl("idemkv_calls_total", `outcome="unknown"`)])
	assert.Equal(t, float64(unknown), got[lbl("idemkv_unknown_outcomes_total", "")])
	assert.Zero(t, got[lbl("idemkv_calls_total", `outcome="outcome_lost"`)])
	assert.Equal(t, float64(committed+unknown), got[lbl("idemkv_call_duration_seconds_count", "")])
	assert.Greater(t, got[lbl("idemkv_call_attempts_total", "")], float64(committed+unknown), "retries add attempts")
	assert.Positive(t, got[lbl("idemkv_ambiguous_commits_total", "")])
	assert.Positive(t, got[lbl("idemkv_marker_recoveries_total", "")])
	// The calls, one at a time, reuse one marker slot; each unknown
	// outcome pins its slot for Resolve, and the next call takes another
	// (none yet if the last call's outcome was unknown).
	shared := 1
	if lastUnknown {
		shared = 0
	}
	assert.Equal(t, float64(unknown+shared), got[lbl("idemkv_markers_alive", "")])
	assert.Contains(t, got, lbl("idemkv_keyed_requests_total", `result="mismatch"`), "every result is exported at zero")

}

// Keyed requests of every result and janitor sweeps, on a store without
// faults so that each count is known.
func TestScrapeKeyedAndJanitor(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := prom.New(reg, nil)
	require.NoError(t, err)
	clk := embedded.NewManualClock(time.Unix(1_700_000_000, 0))
	s, err := idemkv.Open(context.Background(), "mem:", &idemkv.Options{
		NoJanitor: true,
		Metrics:   m,
		Embedded:  &embedded.Options{Clock: clk.Now},
		Retention: time.Hour,
	})
	require.NoError(t, err)
	defer s.Close()
	ctx := context.Background()
	do := func(key, payload string) error {
		_, err := idemkv.Do(ctx, s, key, []byte(payload), func(context.Context) (int, error) { return 1, nil }, nil)
		return err
	}
	for i := range 3 {
		require.NoError(t, do(fmt.Sprint("k", i), "p"))
	}
	require.NoError(t, do("k0", "p"))
	require.NoError(t, do("k1", "p"))
	require.ErrorIs(t, do("k0", "other"), idemkv.ErrPayloadMismatch)
	_, err = idemkv.Do(ctx, s, "held", []byte("p"), func(context.Context) (int, error) {
		require.ErrorIs(t, do("held", "p"), idemkv.ErrInProgress)
		return 2, nil
	}, nil)
	require.NoError(t, err)

	_, err = s.Sweep(ctx)
	require.NoError(t, err)
	clk.Advance(2 * time.Hour)
	res, err := s.Sweep(ctx)
	require.NoError(t, err)
	require.Equal(t, 4, res.KeyedRemoved, "the four records are past their retention")
	// The janitor's cut-off also holds MinAge by its clock, through the
	// clock samples its sweeps leave: a third sweep, MinAge after the
	// second, cuts off above every call.
	clk.Advance(2 * time.Hour)
	res, err = s.Sweep(ctx)
	require.NoError(t, err)

	got := scrape(t, reg)
	for result, want := range map[string]float64{"ran": 4, "replayed": 2, "mismatch": 1, "in_progress": 1, "unknown": 0, "error": 0} {
		assert.Equal(t, want, got[`idemkv_keyed_requests_total{result="`+result+`"}`], result)
	}
	assert.Equal(t, 3.0, got["idemkv_janitor_sweeps_total"])
	assert.Equal(t, 0.0, got["idemkv_janitor_errors_total"])
	assert.Equal(t, 3.0, got["idemkv_janitor_sweep_duration_seconds_count"])
	assert.Equal(t, 4.0, got["idemkv_janitor_removed_total"])
	assert.Equal(t, float64(res.Cutoff), got["idemkv_janitor_watermark_version"])
	assert.Equal(t, 0.0, got["idemkv_markers_alive"], "every marker is past the cut-off")

	// A second registration on the same registry fails and registers
	// nothing; Unregister frees the names.
	_, err = prom.New(reg, nil)
	require.Error(t, err)
	m.Unregister(reg)
	_, err = prom.New(reg, nil)
	require.NoError(t, err)
}
