package fdbkv

import (
	"context"
	"errors"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/idemkv/idemkv/kv"
)

var seedFlag = flag.Uint64("seed", 0, "seed for randomized tests (0: derive from the time)")

func testSeed(t *testing.T) uint64 {
	s := *seedFlag
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d; replay: go test ./kv/fdbkv/ -run '^%s$' -count=1 -seed %d", s, t.Name(), s)
		}
	})
	return s
}

func TestMapCode(t *testing.T) {
	cases := []struct {
		name      string
		code      int
		st        txnState
		wantCode  kv.Code
		wantCause error
		wantNil   bool
	}{
		{name: "success", code: 0, wantNil: true},
		{name: "conflict keeps code", code: 1020, wantCode: kv.CodeNotCommitted},
		{name: "unknown result", code: 1021, wantCode: kv.CodeCommitUnknownResult},
		{name: "cluster version changed", code: 1039, wantCode: kv.CodeClusterVersionChanged},
		{name: "explicit timeout has no cause", code: 1031, wantCode: kv.CodeTransactionTimedOut},
		{name: "deadline-derived timeout", code: 1031, st: txnState{timeoutFromCtx: true},
			wantCode: kv.CodeTransactionTimedOut, wantCause: context.DeadlineExceeded},
		{name: "cancel from ctx", code: 1025, st: txnState{ctxErr: context.Canceled},
			wantCode: kv.CodeTransactionCancelled, wantCause: context.Canceled},
		{name: "cancel from ctx deadline", code: 1025, st: txnState{ctxErr: context.DeadlineExceeded},
			wantCode: kv.CodeTransactionTimedOut, wantCause: context.DeadlineExceeded},
		{name: "timeout after ctx canceled", code: 1031, st: txnState{ctxErr: context.Canceled},
			wantCode: kv.CodeTransactionCancelled, wantCause: context.Canceled},
		{name: "explicit Cancel, live ctx", code: 1025, wantCode: kv.CodeTransactionCancelled},
		{name: "other errors ignore ctx", code: 1020, st: txnState{ctxErr: context.Canceled}, wantCode: kv.CodeNotCommitted},
		{name: "client code kv does not name", code: 2201, wantCode: 2201},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := mapCode(c.code, "", c.st)
			if c.wantNil {
				if err != nil {
					t.Fatalf("mapCode(0) = %v; want nil", err)
				}
				return
			}
			var ke *kv.Error
			if !errors.As(err, &ke) {
				t.Fatalf("mapCode(%d) = %T %v; want *kv.Error", c.code, err, err)
			}
			if ke.Code != c.wantCode {
				t.Errorf("code = %d; want %d", ke.Code, c.wantCode)
			}
			if !errors.Is(err, kv.NewError(c.wantCode)) {
				t.Errorf("errors.Is(err, code %d) = false", c.wantCode)
			}
			if ke.Cause != c.wantCause {
				t.Errorf("cause = %v; want %v", ke.Cause, c.wantCause)
			}
		})
	}
}

// The predicates must classify mapped errors as FoundationDB does: the
// mapping keeps codes, so a cluster's 1021 is maybe-committed here too.
func TestMapCodeKeepsClassification(t *testing.T) {
	for code := 1000; code < 2300; code++ {
		err := mapCode(code, "detail", txnState{})
		if got, want := kv.IsRetryable(err), kv.CodeRetryable(kv.Code(code)); got != want {
			t.Errorf("code %d: IsRetryable = %v; want %v", code, got, want)
		}
	}
}

func TestMapCodeNamesCodesKVDoesNot(t *testing.T) {
	err := mapCode(2203, "", txnState{})
	if !strings.Contains(err.Error(), "api_version_not_supported") {
		t.Errorf("2203: %q does not name api_version_not_supported", err)
	}
	if err := mapCode(4242, "FoundationDB error code 4242 (made up)", txnState{}); !strings.Contains(err.Error(), "made up") {
		t.Errorf("unnamed code: %q lost the bindings' description", err)
	}
	// 2021 is no_commit_version (kv names it); an earlier table called it
	// transaction_read_only, which is 2023.
	if err := mapCode(2021, "", txnState{}); !strings.Contains(err.Error(), "no_commit_version (2021)") {
		t.Errorf("2021: %q, want no_commit_version", err)
	}
	if err := mapCode(2023, "", txnState{}); !strings.Contains(err.Error(), "transaction_read_only (2023)") {
		t.Errorf("2023: %q, want transaction_read_only", err)
	}
	if err := mapCode(1020, "ignored", txnState{}); strings.Contains(err.Error(), "ignored") {
		t.Errorf("1020: %q carries a detail kv's name already covers", err)
	}
}

func TestCtxError(t *testing.T) {
	if err := ctxError(context.Canceled); !errors.Is(err, kv.ErrTransactionCancelled) || !errors.Is(err, context.Canceled) {
		t.Errorf("ctxError(Canceled) = %v", err)
	}
	if err := ctxError(context.DeadlineExceeded); !errors.Is(err, kv.ErrTransactionTimedOut) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ctxError(DeadlineExceeded) = %v", err)
	}
}

func TestOptionsDefaultsAndValidation(t *testing.T) {
	o, err := (*Options)(nil).withDefaults()
	if err != nil || o.APIVersion != DefaultAPIVersion {
		t.Fatalf("nil Options = %+v, %v; want APIVersion %d", o, err, DefaultAPIVersion)
	}
	for _, v := range []int{MinAPIVersion, 710, MaxAPIVersion} {
		if _, err := (&Options{APIVersion: v}).withDefaults(); err != nil {
			t.Errorf("APIVersion %d: %v", v, err)
		}
	}
	for _, v := range []int{-1, 200, MinAPIVersion - 1, MaxAPIVersion + 1, 800} {
		_, err := (&Options{APIVersion: v}).withDefaults()
		if err == nil || !strings.Contains(err.Error(), "Options.APIVersion") || !strings.Contains(err.Error(), "620 to 730") {
			t.Errorf("APIVersion %d: err = %v; want one naming the field and 620 to 730", v, err)
		}
	}
}

func TestOptionParams(t *testing.T) {
	ms := func(d time.Duration) int64 {
		t.Helper()
		v, err := durationMillis("timeout", d)
		if err != nil {
			t.Fatalf("durationMillis(%v): %v", d, err)
		}
		return v
	}
	if ms(0) != 0 || ms(time.Nanosecond) != 1 || ms(time.Millisecond) != 1 || ms(1500*time.Microsecond) != 2 || ms(time.Second) != 1000 {
		t.Error("durationMillis rounds wrong")
	}
	if ms(maxOptionDuration) != maxOptionInt {
		t.Errorf("max duration = %d ms", ms(maxOptionDuration))
	}
	for _, d := range []time.Duration{-time.Nanosecond, maxOptionDuration + time.Millisecond} {
		_, err := durationMillis("timeout", d)
		if !errors.Is(err, kv.ErrInvalidOptionValue) || !strings.Contains(err.Error(), "timeout") {
			t.Errorf("durationMillis(%v) = %v; want invalid_option_value naming timeout", d, err)
		}
	}
	for _, n := range []int{-1, 0, 5, maxOptionInt} {
		if p, err := retryLimitParam(n); err != nil || p != int64(n) {
			t.Errorf("retryLimitParam(%d) = %d, %v", n, p, err)
		}
	}
	for _, n := range []int{-2, maxOptionInt + 1} {
		if _, err := retryLimitParam(n); !errors.Is(err, kv.ErrInvalidOptionValue) {
			t.Errorf("retryLimitParam(%d) = %v; want invalid_option_value", n, err)
		}
	}
	for _, n := range []int{32, 1000, kv.DefaultSizeLimit} {
		if _, err := sizeLimitParam(n); err != nil {
			t.Errorf("sizeLimitParam(%d): %v", n, err)
		}
	}
	for _, n := range []int{0, 31, kv.DefaultSizeLimit + 1} {
		if _, err := sizeLimitParam(n); !errors.Is(err, kv.ErrInvalidOptionValue) || !strings.Contains(err.Error(), "32 to 10000000") {
			t.Errorf("sizeLimitParam(%d) = %v; want invalid_option_value naming 32 to 10000000", n, err)
		}
	}
}

// TestEffectiveTimeoutRandomized checks effectiveTimeout against its
// definition on random inputs: the timeout ends at the earlier of start +
// explicit and the deadline, is expressed from FoundationDB's clock,
// rounded up to a millisecond, is never 0 when either is set, and is
// attributed to the context exactly when the deadline is the earlier.
func TestEffectiveTimeoutRandomized(t *testing.T) {
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 0x6664626b76))
	start := time.Unix(1_800_000_000, 0)
	for i := 0; i < 10_000; i++ {
		var explicit time.Duration
		if rng.IntN(3) > 0 {
			explicit = time.Duration(rng.Int64N(int64(10 * time.Second)))
		}
		hasDeadline := rng.IntN(3) > 0
		deadline := start.Add(time.Duration(rng.Int64N(int64(20*time.Second))) - 5*time.Second)
		clock := start
		if rng.IntN(2) == 0 {
			clock = start.Add(time.Duration(rng.Int64N(int64(3 * time.Second))))
		}
		ms, fromCtx := effectiveTimeout(explicit, deadline, hasDeadline, start, clock)

		// The model: durations from start, then shifted to the clock.
		want, wantCtx := explicit, false
		if hasDeadline {
			left := deadline.Sub(start)
			if explicit == 0 || left < explicit {
				want, wantCtx = left, true
			}
		}
		wantMS := int64(0)
		if explicit > 0 || hasDeadline {
			fromClock := max(want-clock.Sub(start), time.Nanosecond)
			wantMS = int64((fromClock + time.Millisecond - 1) / time.Millisecond)
		}
		if ms != wantMS || fromCtx != wantCtx {
			t.Fatalf("effectiveTimeout(%v, deadline %v from start, %v, clock %v after start) = %d, %v; want %d, %v",
				explicit, deadline.Sub(start), hasDeadline, clock.Sub(start), ms, fromCtx, wantMS, wantCtx)
		}
		if (explicit > 0 || hasDeadline) && ms == 0 {
			t.Fatalf("a set timeout became 0 (disabled): explicit %v, deadline %v", explicit, hasDeadline)
		}
	}
}

func TestSelectAPIVersionOncePerProcess(t *testing.T) {
	apiVersion.Lock()
	saved := apiVersion.selected
	apiVersion.selected = 0
	apiVersion.Unlock()
	t.Cleanup(func() {
		apiVersion.Lock()
		apiVersion.selected = saved
		apiVersion.Unlock()
	})
	none := func() int { return 0 }
	var calls []int
	set := func(v int) error { calls = append(calls, v); return nil }

	if err := selectAPIVersion(MaxAPIVersion+1, none, set); err == nil || len(calls) != 0 {
		t.Fatalf("unsupported version: err %v, set called %v", err, calls)
	}
	if err := selectAPIVersion(730, none, set); err != nil {
		t.Fatal(err)
	}
	if err := selectAPIVersion(730, none, set); err != nil {
		t.Fatalf("same version again: %v", err)
	}
	if len(calls) != 1 {
		t.Fatalf("set called %v; want once", calls)
	}
	err := selectAPIVersion(710, none, set)
	var ke *kv.Error
	if !errors.As(err, &ke) || ke.Code != codeAPIVersionAlreadySet ||
		!strings.Contains(err.Error(), "710") || !strings.Contains(err.Error(), "730") {
		t.Fatalf("different version = %v; want api_version_already_set naming 710 and 730", err)
	}

	// A version selected by user code through the bindings counts too.
	apiVersion.Lock()
	apiVersion.selected = 0
	apiVersion.Unlock()
	if err := selectAPIVersion(730, func() int { return 720 }, set); !errors.As(err, &ke) || len(calls) != 1 {
		t.Fatalf("version selected outside fdbkv: err %v, set called %v", err, calls)
	}

	// A failing set leaves nothing selected.
	apiVersion.Lock()
	apiVersion.selected = 0
	apiVersion.Unlock()
	boom := errors.New("no libfdb_c")
	if err := selectAPIVersion(730, none, func(int) error { return boom }); err != boom {
		t.Fatalf("set failure = %v", err)
	}
	if err := selectAPIVersion(710, none, set); err != nil {
		t.Fatalf("after a failed selection: %v", err)
	}
}

func TestResolveClusterFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "fdb.cluster")
	if err := os.WriteFile(good, []byte("# test cluster\ndocker:docker@127.0.0.1:4500\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == ClusterFileEnv {
				return v
			}
			return ""
		}
	}
	if p, err := resolveClusterFile(good, env("")); err != nil || p != good {
		t.Errorf("explicit path = %q, %v", p, err)
	}
	if p, err := resolveClusterFile("", env(good)); err != nil || p != good {
		t.Errorf("from env = %q, %v", p, err)
	}

	missing := filepath.Join(dir, "nope.cluster")
	for _, c := range []struct {
		name, path, env string
	}{
		{"explicit", missing, ""},
		{"env", "", missing},
	} {
		_, err := resolveClusterFile(c.path, env(c.env))
		if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), ClusterFileEnv) ||
			!errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s missing file: %v; want an error naming %s and %s, wrapping ErrNotExist", c.name, err, missing, ClusterFileEnv)
		}
	}

	for _, bad := range []string{"", "\n# only a comment\n", "no-at-sign", "@127.0.0.1:4500", "a:b@", "a:b@1.2.3.4:1\nc:d@1.2.3.4:2"} {
		p := filepath.Join(dir, "bad.cluster")
		if err := os.WriteFile(p, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := resolveClusterFile(p, env("")); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("cluster file %q accepted or error %v does not name it", bad, err)
		}
	}
}

func TestVersionstampFromBytes(t *testing.T) {
	want := kv.NewVersionstamp(123456789, 7)
	got, err := versionstampFromBytes(want[:])
	if err != nil || got != want {
		t.Errorf("versionstampFromBytes = %v, %v", got, err)
	}
	if _, err := versionstampFromBytes(make([]byte, 9)); !errors.Is(err, kv.NewError(kv.CodeInternalError)) {
		t.Errorf("9 bytes: %v; want internal_error", err)
	}
}
