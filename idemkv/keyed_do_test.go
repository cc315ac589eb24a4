package idemkv_test

// Scripted failure sequences of Do, each one a way main before this change
// applied a keyed request twice or lost its outcome (the test names say
// which).

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/kv"
)

// payOutside is a Do function whose effect is its own exactly-once
// transaction (as examples/httpapi's pay is): a ledger add.
func payOutside(s *idemkv.Store, key string, runs *atomic.Int32) func(context.Context) (receipt, error) {
	return func(ctx context.Context) (receipt, error) {
		n := runs.Add(1)
		if err := s.Counter("ledger/"+key).Add(ctx, 1); err != nil {
			return receipt{}, err
		}
		return receipt{ID: int(n), Amount: "10.00"}, nil
	}
}

// fn's own transaction commits its effect but reports a timeout
// (*txn.UnknownResultError). On main, Do released the key and the retry
// paid again. Now the key is kept as outcome unknown, across the lease,
// until ForgetKey.
func TestDoFnUnknownResultNeverFreesKey(t *testing.T) {
	const lease = 30 * time.Second
	s, sdb, clk := openScripted(t, &idemkv.Options{Lease: lease})
	ctx := context.Background()
	sdb.setRule(once(func(w *writes) bool { return w.has("c/") }, true, errTimedOut))
	var runs atomic.Int32
	_, err := idemkv.Do(ctx, s, "k", nil, payOutside(s, "k", &runs), nil)
	var ou *idemkv.OutcomeUnknownError
	if !errors.As(err, &ou) || !ou.Kept {
		t.Fatalf("first call: %v, want *OutcomeUnknownError with Kept", err)
	}
	if strings.Contains(err.Error(), "txn.Resolve") || !strings.Contains(err.Error(), "ForgetKey") {
		t.Fatalf("the error must point at what a Do caller can do (ForgetKey), not txn.Resolve: %v", err)
	}
	for _, wait := range []time.Duration{0, 2 * lease} {
		clk.Advance(wait)
		_, err := idemkv.Do(ctx, s, "k", nil, payOutside(s, "k", &runs), nil)
		if !errors.As(err, &ou) || !ou.Kept {
			t.Fatalf("call after %v: %v, want the kept *OutcomeUnknownError", wait, err)
		}
	}
	if runs.Load() != 1 || ledger(t, s, "k") != 1 {
		t.Fatalf("fn ran %d times, ledger %d; want 1, 1", runs.Load(), ledger(t, s, "k"))
	}
	// Someone checked: the payment happened. Had it not, ForgetKey and a
	// retry would run fn again.
	if err := s.ForgetKey(ctx, "", "k"); err != nil {
		t.Fatal(err)
	}
	if v, err := idemkv.Do(ctx, s, "k", nil, payOutside(s, "k", &runs), nil); err != nil || v.ID != 2 {
		t.Fatalf("after ForgetKey: %+v, %v", v, err)
	}
}

// The same with a nested keyed call whose outcome is unknown: fn returns
// TransactKey's *OutcomeUnknownError, which may mean committed.
func TestDoNestedOutcomeUnknownKeepsKey(t *testing.T) {
	s, sdb := openScriptedUnstepped(t, nil)
	ctx := context.Background()
	var runs atomic.Int32
	sdb.setRule(once(func(w *writes) bool { return w.has("c/") }, true, errTimedOut))
	_, err := idemkv.Do(ctx, s, "outer", nil, func(ctx context.Context) (receipt, error) {
		return idemkv.TransactKey(ctx, s, "inner", nil, pay(s, "inner", &runs), nil)
	}, nil)
	if !errors.Is(err, idemkv.ErrOutcomeUnknown) {
		t.Fatalf("%v, want ErrOutcomeUnknown", err)
	}
	if _, err := idemkv.Do(ctx, s, "outer", nil, func(context.Context) (receipt, error) {
		t.Error("fn ran again after an unknown outcome")
		return receipt{}, nil
	}, nil); !errors.Is(err, idemkv.ErrOutcomeUnknown) {
		t.Fatalf("repeat: %v, want ErrOutcomeUnknown", err)
	}
}

// fn finished well within its lease; the completion's commit timed out.
// On main, Do returned the completion's *txn.UnknownResultError, nobody
// could complete the claim any more, and after the lease the next caller
// ran fn again. Now Do resolves the completion and retries it.
func TestDoCompletionUnknownIsSettled(t *testing.T) {
	const lease = 30 * time.Second
	for _, tc := range []struct {
		name  string
		apply bool
		err   error
	}{
		{"timed out, not applied", false, errTimedOut},
		{"timed out, applied", true, errTimedOut},
		{"unknown result, not applied", false, errUnknownResult},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, sdb, clk := openScripted(t, &idemkv.Options{Lease: lease})
			ctx := context.Background()
			sdb.setRule(once(func(w *writes) bool { return w.recordStatus() == stCompleted }, tc.apply, tc.err))
			var runs atomic.Int32
			v, err := idemkv.Do(ctx, s, "k", nil, payOutside(s, "k", &runs), nil)
			if err != nil || v.ID != 1 {
				t.Fatalf("first call: %+v, %v; want the result, its completion settled", v, err)
			}
			clk.Advance(2 * lease)
			var info idemkv.KeyInfo
			again, err := idemkv.Do(ctx, s, "k", nil, payOutside(s, "k", &runs), &idemkv.DoOptions{Info: &info})
			if err != nil || again != v || !info.Replayed || runs.Load() != 1 || ledger(t, s, "k") != 1 {
				t.Fatalf("after the lease: %+v, %v, %+v; fn ran %d times, ledger %d; want the replay of %+v", again, err, info, runs.Load(), ledger(t, s, "k"), v)
			}
		})
	}
}

// Every completion fails without applying: the result cannot be stored,
// so the key is kept as outcome unknown rather than left to expire.
func TestDoCompletionNeverLandsKeepsKey(t *testing.T) {
	const lease = 30 * time.Second
	s, sdb, clk := openScripted(t, &idemkv.Options{Lease: lease})
	ctx := context.Background()
	sdb.setRule(func(w *writes) (bool, error) {
		if w.recordStatus() == stCompleted {
			return false, errTimedOut
		}
		return true, nil
	})
	var runs atomic.Int32
	_, err := idemkv.Do(ctx, s, "k", nil, payOutside(s, "k", &runs), nil)
	var ou *idemkv.OutcomeUnknownError
	if !errors.As(err, &ou) || !ou.Kept {
		t.Fatalf("first call: %v, want *OutcomeUnknownError with Kept", err)
	}
	sdb.setRule(nil)
	clk.Advance(2 * lease)
	if _, err := idemkv.Do(ctx, s, "k", nil, payOutside(s, "k", &runs), nil); !errors.Is(err, idemkv.ErrOutcomeUnknown) {
		t.Fatalf("after the lease: %v, want ErrOutcomeUnknown", err)
	}
	if runs.Load() != 1 {
		t.Fatalf("fn ran %d times, want 1", runs.Load())
	}
}

// The claim's commit timed out without applying: Do resolves it, finds it
// fenced, and claims again; fn runs once.
func TestDoClaimUnknownNotAppliedClaimsAgain(t *testing.T) {
	s, sdb := openScriptedUnstepped(t, nil)
	ctx := context.Background()
	sdb.setRule(once(func(w *writes) bool { return w.recordStatus() == stInProgress }, false, errTimedOut))
	var runs atomic.Int32
	if v, err := idemkv.Do(ctx, s, "k", nil, payOutside(s, "k", &runs), nil); err != nil || v.ID != 1 {
		t.Fatalf("%+v, %v", v, err)
	}
	// Applied: the claim stands with no holder; the caller is told to
	// retry, and fn has not run.
	sdb.setRule(once(func(w *writes) bool { return w.recordStatus() == stInProgress }, true, errTimedOut))
	_, err := idemkv.Do(ctx, s, "k2", nil, payOutside(s, "k2", &runs), nil)
	var ou *idemkv.OutcomeUnknownError
	if !errors.As(err, &ou) || !ou.Retry || runs.Load() != 1 {
		t.Fatalf("applied claim: %v (fn ran %d times); want *OutcomeUnknownError with Retry and fn not run", err, runs.Load())
	}
}

// A replay of a completed key is a read: no commit, no marker. On main,
// every replay committed a claim transaction.
func TestDoReplayIsARead(t *testing.T) {
	s, sdb := openScriptedUnstepped(t, nil)
	ctx := context.Background()
	var runs atomic.Int32
	if _, err := idemkv.Do(ctx, s, "k", nil, payOutside(s, "k", &runs), nil); err != nil {
		t.Fatal(err)
	}
	c0, _ := sdb.counts()
	for range 3 {
		var info idemkv.KeyInfo
		if _, err := idemkv.Do(ctx, s, "k", nil, payOutside(s, "k", &runs), &idemkv.DoOptions{Info: &info}); err != nil || !info.Replayed {
			t.Fatalf("replay: %v, %+v", err, info)
		}
	}
	if c1, _ := sdb.counts(); c1 != c0 {
		t.Fatalf("3 replays committed %d transactions, want 0", c1-c0)
	}
	if _, err := idemkv.Do(ctx, s, "k", []byte("other"), payOutside(s, "k", &runs), nil); !errors.Is(err, idemkv.ErrPayloadMismatch) {
		t.Fatalf("other payload: %v", err)
	}
	if c2, _ := sdb.counts(); c2 != c0 {
		t.Fatalf("a mismatch committed %d transactions, want 0", c2-c0)
	}
}

// A duplicate sees a typed *InProgressError with the lease left, for a
// Retry-After.
func TestDoInProgressErrorCarriesTimeLeft(t *testing.T) {
	const lease = 30 * time.Second
	s, clk := openClocked(t, &idemkv.Options{Lease: lease})
	ctx := context.Background()
	_, err := idemkv.Do(ctx, s, "k", nil, func(ctx context.Context) (int, error) {
		clk.Advance(10 * time.Second)
		_, err := idemkv.Do(ctx, s, "k", nil, func(context.Context) (int, error) { return 0, nil }, nil)
		var ip *idemkv.InProgressError
		if !errors.As(err, &ip) || !errors.Is(err, idemkv.ErrInProgress) || ip.Key != "k" {
			return 0, fmt.Errorf("duplicate: %v, want *InProgressError", err)
		}
		if left := ip.RetryAfter; left < 19*time.Second || left > 20*time.Second {
			return 0, fmt.Errorf("RetryAfter %v, want about 20s", left)
		}
		// A TransactKey meeting the Do's key reports it the same way, and
		// writes nothing.
		_, err = idemkv.TransactKey(ctx, s, "k", nil, func(tr kv.Transaction) (int, error) { return 0, nil }, nil)
		if !errors.As(err, &ip) || ip.RetryAfter <= 0 {
			return 0, fmt.Errorf("TransactKey on a Do's key in progress: %v, want *InProgressError", err)
		}
		return 1, nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
}

// A long fn renews its lease (RenewLease, or the Heartbeat option): no
// takeover while it works.
func TestDoRenewLease(t *testing.T) {
	const lease = 30 * time.Second
	s, clk := openClocked(t, &idemkv.Options{Lease: lease})
	ctx := context.Background()
	if _, err := idemkv.RenewLease(ctx); !errors.Is(err, idemkv.ErrNoLease) {
		t.Fatalf("RenewLease outside Do: %v", err)
	}
	v, err := idemkv.Do(ctx, s, "k", nil, func(ctx context.Context) (string, error) {
		for range 4 {
			clk.Advance(lease - time.Second)
			if d, err := idemkv.RenewLease(ctx); err != nil || d != lease {
				return "", fmt.Errorf("RenewLease: %v, %v", d, err)
			}
		}
		clk.Advance(lease - time.Second)
		_, err := idemkv.Do(ctx, s, "k", nil, func(context.Context) (string, error) { return "taken over", nil }, nil)
		if !errors.Is(err, idemkv.ErrInProgress) {
			return "", fmt.Errorf("duplicate after renewals: %v, want ErrInProgress", err)
		}
		return "first", nil
	}, nil)
	if err != nil || v != "first" {
		t.Fatalf("%q, %v", v, err)
	}
}

func TestDoHeartbeat(t *testing.T) {
	const lease = 60 * time.Millisecond
	s, clk := openClocked(t, &idemkv.Options{Lease: lease})
	ctx := context.Background()
	v, err := idemkv.Do(ctx, s, "k", nil, func(ctx context.Context) (string, error) {
		// The database's clock runs at half the wall clock's speed here,
		// so beats every lease/3 of wall time keep renewing in time.
		for range 20 {
			clk.Advance(5 * time.Millisecond)
			time.Sleep(10 * time.Millisecond)
		}
		_, err := idemkv.Do(ctx, s, "k", nil, func(context.Context) (string, error) { return "taken over", nil }, nil)
		if !errors.Is(err, idemkv.ErrInProgress) {
			return "", fmt.Errorf("duplicate after %v of database time: %v, want ErrInProgress", 100*time.Millisecond, err)
		}
		return "first", nil
	}, &idemkv.DoOptions{Heartbeat: true})
	if err != nil || v != "first" {
		t.Fatalf("%q, %v", v, err)
	}
	// Taken over despite the heartbeat (here: forgotten): fn's context
	// is canceled with ErrLeaseLost.
	_, err = idemkv.Do(ctx, s, "k2", nil, func(ctx context.Context) (string, error) {
		if err := s.ForgetKey(ctx, "", "k2"); err != nil {
			return "", err
		}
		select {
		case <-ctx.Done():
			return "", context.Cause(ctx)
		case <-time.After(10 * time.Second):
			return "", errors.New("fn's context was not canceled")
		}
	}, &idemkv.DoOptions{Heartbeat: true})
	if !errors.Is(err, idemkv.ErrLeaseLost) {
		t.Fatalf("lost lease: %v, want ErrLeaseLost", err)
	}
}

// A Do's Final error keeps its structure through the store.
func TestDoFinalErrorKeepsStructure(t *testing.T) {
	s := openUnstepped(t, nil)
	ctx := context.Background()
	for i := range 2 {
		_, err := idemkv.Do(ctx, s, "k", nil, func(context.Context) (int, error) {
			return 0, idemkv.Final(&declined{Reason: "expired", Card: "1111"})
		}, nil)
		var d *declined
		if !errors.As(err, &d) || d.Reason != "expired" || d.Card != "1111" {
			t.Fatalf("call %d: %v, want a *declined", i, err)
		}
	}
}
