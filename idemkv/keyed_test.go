package idemkv_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idemkv/idemkv/idemkv"
)

type receipt struct {
	ID     int    `json:"id"`
	Amount string `json:"amount"`
}

func TestDoFirstCallAndReplay(t *testing.T) {
	s := openUnstepped(t, nil)
	ctx := context.Background()
	var runs atomic.Int32
	fn := func(context.Context) (receipt, error) {
		n := runs.Add(1)
		return receipt{ID: int(n), Amount: "10.00"}, nil
	}
	first, err := idemkv.Do(ctx, s, "pay-1", []byte(`{"amount":"10.00"}`), fn, nil)
	if err != nil || first.ID != 1 {
		t.Fatalf("first call: %+v, %v", first, err)
	}
	for range 3 {
		again, err := idemkv.Do(ctx, s, "pay-1", []byte(`{"amount":"10.00"}`), fn, nil)
		if err != nil || again != first {
			t.Fatalf("replay: %+v, %v; want %+v", again, err, first)
		}
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("fn ran %d times, want 1", n)
	}
	// Another key runs fn again.
	other, err := idemkv.Do(ctx, s, "pay-2", []byte(`{"amount":"10.00"}`), fn, nil)
	if err != nil || other.ID != 2 {
		t.Fatalf("other key: %+v, %v", other, err)
	}
}

func TestDoReplayAfterReopen(t *testing.T) {
	needsEngine(t, "a directory reopened")
	dir := t.TempDir()
	ctx := context.Background()
	var runs int
	fn := func(context.Context) (string, error) { runs++; return fmt.Sprintf("run %d", runs), nil }
	for i := range 2 {
		s, err := idemkv.Open(ctx, "file:"+dir, &idemkv.Options{NoJanitor: true})
		if err != nil {
			t.Fatal(err)
		}
		v, err := idemkv.Do(ctx, s, "k", []byte("p"), fn, nil)
		if err != nil || v != "run 1" {
			t.Fatalf("open %d: %q, %v", i, v, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if runs != 1 {
		t.Fatalf("fn ran %d times across a restart, want 1", runs)
	}
}

func TestDoPayloadMismatch(t *testing.T) {
	s := openUnstepped(t, nil)
	ctx := context.Background()
	fn := func(context.Context) (int, error) { return 1, nil }
	if _, err := idemkv.Do(ctx, s, "k", []byte("a"), fn, nil); err != nil {
		t.Fatal(err)
	}
	_, err := idemkv.Do(ctx, s, "k", []byte("b"), fn, nil)
	if !errors.Is(err, idemkv.ErrPayloadMismatch) {
		t.Fatalf("different payload: %v, want ErrPayloadMismatch", err)
	}
	// Also while in progress.
	_, err = idemkv.Do(ctx, s, "busy", []byte("a"), func(ctx context.Context) (int, error) {
		_, err := idemkv.Do(ctx, s, "busy", []byte("b"), fn, nil)
		if !errors.Is(err, idemkv.ErrPayloadMismatch) {
			t.Errorf("different payload while in progress: %v, want ErrPayloadMismatch", err)
		}
		return 0, nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
}

func TestDoInProgressAndWait(t *testing.T) {
	s := openUnstepped(t, &idemkv.Options{MaxRetryDelay: 5 * time.Millisecond})
	ctx := context.Background()
	waited := make(chan error, 1)
	var got string
	v, err := idemkv.Do(ctx, s, "k", nil, func(ctx context.Context) (string, error) {
		// A concurrent duplicate without Wait fails at once.
		_, err := idemkv.Do(ctx, s, "k", nil, func(context.Context) (string, error) {
			t.Error("duplicate ran fn while the key was in progress")
			return "", nil
		}, nil)
		if !errors.Is(err, idemkv.ErrInProgress) {
			t.Errorf("duplicate: %v, want ErrInProgress", err)
		}
		// One that waits gets the first call's result once it completes.
		go func() {
			var err error
			got, err = idemkv.Do(context.Background(), s, "k", nil, func(context.Context) (string, error) {
				return "waiter ran fn", nil
			}, &idemkv.DoOptions{Wait: true})
			waited <- err
		}()
		// A waiter whose context ends gives up with ErrInProgress and the
		// context's error.
		cctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err = idemkv.Do(cctx, s, "k", nil, func(context.Context) (string, error) { return "", nil }, &idemkv.DoOptions{Wait: true})
		if err == nil {
			t.Error("waiter with a canceled context: no error")
		}
		return "first", nil
	}, nil)
	if err != nil || v != "first" {
		t.Fatalf("first: %q, %v", v, err)
	}
	if err := <-waited; err != nil || got != "first" {
		t.Fatalf("waiter: %q, %v; want the first call's result", got, err)
	}
}

func TestDoLeaseExpiryTakeoverAndFencing(t *testing.T) {
	const lease = 30 * time.Second
	s, clk := openClocked(t, &idemkv.Options{Lease: lease})
	ctx := context.Background()
	var oldToken, newToken uint64
	_, err := idemkv.Do(ctx, s, "k", []byte("p"), func(ctx context.Context) (string, error) {
		oldToken, _ = idemkv.LeaseToken(ctx)
		// This holder stalls past its lease; a newcomer takes over.
		clk.Advance(lease + time.Second)
		v, err := idemkv.Do(ctx, s, "k", []byte("p"), func(ctx context.Context) (string, error) {
			newToken, _ = idemkv.LeaseToken(ctx)
			return "newcomer", nil
		}, nil)
		if err != nil || v != "newcomer" {
			t.Errorf("takeover: %q, %v", v, err)
		}
		return "late original", nil
	}, nil)
	if !errors.Is(err, idemkv.ErrLeaseLost) {
		t.Fatalf("late original: %v, want ErrLeaseLost", err)
	}
	if oldToken == 0 || newToken <= oldToken {
		t.Fatalf("tokens: original %d, newcomer %d; want the newcomer's larger", oldToken, newToken)
	}
	v, err := idemkv.Do(ctx, s, "k", []byte("p"), func(context.Context) (string, error) { return "third", nil }, nil)
	if err != nil || v != "newcomer" {
		t.Fatalf("replay after takeover: %q, %v; want the newcomer's result", v, err)
	}
	if _, ok := idemkv.LeaseToken(ctx); ok {
		t.Fatal("LeaseToken outside Do reported a token")
	}
}

func TestDoErrorReleasesKey(t *testing.T) {
	s := openUnstepped(t, nil)
	ctx := context.Background()
	boom := errors.New("downstream unavailable")
	_, err := idemkv.Do(ctx, s, "k", nil, func(context.Context) (int, error) { return 0, boom }, nil)
	if !errors.Is(err, boom) {
		t.Fatalf("fn's error: %v", err)
	}
	if kvs := dump(t, s, "k/"); len(kvs) != 0 {
		t.Fatalf("released key left a record: %q", kvs)
	}
	if kvs := dump(t, s, "a/"); len(kvs) != 0 {
		t.Fatalf("released key left an index entry: %q", kvs)
	}
	v, err := idemkv.Do(ctx, s, "k", nil, func(context.Context) (int, error) { return 7, nil }, nil)
	if err != nil || v != 7 {
		t.Fatalf("retry after release: %d, %v", v, err)
	}
}

func TestDoPanicReleasesKey(t *testing.T) {
	s := openUnstepped(t, nil)
	ctx := context.Background()
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("fn's panic did not continue")
			}
		}()
		idemkv.Do(ctx, s, "k", nil, func(context.Context) (int, error) { panic("fn bug") }, nil)
	}()
	v, err := idemkv.Do(ctx, s, "k", nil, func(context.Context) (int, error) { return 3, nil }, nil)
	if err != nil || v != 3 {
		t.Fatalf("after a panic: %d, %v; want the key released", v, err)
	}
}

var errDeclined = errors.New("card declined")

func TestDoFinalErrorIsReplayed(t *testing.T) {
	s := openUnstepped(t, nil)
	ctx := context.Background()
	runs := 0
	fn := func(context.Context) (int, error) {
		runs++
		return 0, idemkv.Final(fmt.Errorf("charge 42: %w", errDeclined))
	}
	_, err := idemkv.Do(ctx, s, "k", nil, fn, nil)
	if !errors.Is(err, errDeclined) {
		t.Fatalf("first call: %v, want errDeclined", err)
	}
	for range 2 {
		_, err = idemkv.Do(ctx, s, "k", nil, fn, nil)
		var se *idemkv.StoredError
		if !errors.As(err, &se) || !errors.Is(err, errDeclined) || err.Error() != "charge 42: card declined" {
			t.Fatalf("replay: %#v, want a *StoredError matching errDeclined", err)
		}
	}
	if runs != 1 {
		t.Fatalf("fn ran %d times, want 1", runs)
	}
	if idemkv.Final(nil) != nil {
		t.Fatal("Final(nil) != nil")
	}
}

func TestDoRetentionRemovedByJanitor(t *testing.T) {
	const retention = time.Hour
	s, clk := openClocked(t, &idemkv.Options{Retention: retention})
	ctx := context.Background()
	runs := 0
	fn := func(context.Context) (int, error) { runs++; return runs, nil }
	if _, err := idemkv.Do(ctx, s, "k", nil, fn, nil); err != nil {
		t.Fatal(err)
	}
	// A second key whose record is claimed later stays.
	clk.Advance(retention / 2)
	if _, err := idemkv.Do(ctx, s, "later", nil, fn, nil); err != nil {
		t.Fatal(err)
	}
	res, err := s.Sweep(ctx)
	if err != nil || res.KeyedRemoved != 0 {
		t.Fatalf("sweep before retention: %+v, %v; want nothing removed", res, err)
	}
	clk.Advance(retention/2 + time.Second)
	res, err = s.Sweep(ctx)
	if err != nil || res.KeyedRemoved != 1 {
		t.Fatalf("sweep after retention: %+v, %v; want 1 removed", res, err)
	}
	if kvs := dump(t, s, "k/"); len(kvs) != 1 || !strings.HasSuffix(string(kvs[0].Key), "later") {
		t.Fatalf("records after sweep: %q; want only \"later\"", kvs)
	}
	v, err := idemkv.Do(ctx, s, "k", nil, fn, nil)
	if err != nil || v != 3 {
		t.Fatalf("after retention: %d, %v; want fn run again", v, err)
	}
}

// A takeover's record must not be removed by the displaced claim's index
// entry, nor an in-progress record before its lease.
func TestDoRetentionKeepsNewerClaim(t *testing.T) {
	s, clk := openClocked(t, &idemkv.Options{Retention: time.Minute, Lease: time.Minute})
	ctx := context.Background()
	_, err := idemkv.Do(ctx, s, "k", nil, func(ctx context.Context) (int, error) {
		clk.Advance(2 * time.Minute)
		if _, err := s.Sweep(ctx); err != nil {
			t.Error(err)
		}
		return 1, nil
	}, nil)
	// The sweep removed the expired in-progress record: the late call
	// cannot complete.
	if !errors.Is(err, idemkv.ErrLeaseLost) {
		t.Fatalf("completion after removal: %v, want ErrLeaseLost", err)
	}
	if v, err := idemkv.Do(ctx, s, "k", nil, func(context.Context) (int, error) { return 2, nil }, nil); err != nil || v != 2 {
		t.Fatalf("new claim: %d, %v", v, err)
	}
	if res, err := s.Sweep(ctx); err != nil || res.KeyedRemoved != 0 {
		t.Fatalf("sweep of a fresh record: %+v, %v", res, err)
	}
	if kvs := dump(t, s, "a/"); len(kvs) != 1 {
		t.Fatalf("index entries: %d, want 1 (the completed record's)", len(kvs))
	}
}

// A caller that gives up once fn's work is done must not lose the result:
// the completion runs on a detached context.
func TestDoCompletesAfterCallerCancels(t *testing.T) {
	s := openUnstepped(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	v, err := idemkv.Do(ctx, s, "k", nil, func(context.Context) (int, error) {
		cancel()
		return 5, nil
	}, nil)
	if err != nil || v != 5 {
		t.Fatalf("first: %d, %v", v, err)
	}
	v, err = idemkv.Do(context.Background(), s, "k", nil, func(context.Context) (int, error) { return 6, nil }, nil)
	if err != nil || v != 5 {
		t.Fatalf("replay: %d, %v; want the stored 5", v, err)
	}
}
