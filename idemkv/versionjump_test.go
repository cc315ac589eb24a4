package idemkv_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/embedded"
)

// What holds for keyed leases across a FoundationDB recovery (issue 11,
// item 9). Leases are measured in versions, and a recovery advances them by
// about 100 seconds' worth at once, so it expires every lease shorter than
// that (the default is 30 s): another caller takes the key over while the
// first is still running. What still holds, and is checked here: the
// store keeps exactly one result (the newcomer's), the displaced caller is
// told ErrLeaseLost rather than succeeding, and the newcomer's fencing
// token is larger — so an outside effect runs twice unless the system it
// lands in checks LeaseToken, exactly as after a lease that ran out.
func TestLeaseAcrossVersionJump(t *testing.T) {
	needsEngine(t, "its version jump (AdvanceVersion)")
	ctx := context.Background()
	s, err := idemkv.Open(ctx, "mem:", &idemkv.Options{NoJanitor: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	eng, ok := s.Database().(*embedded.DB)
	if !ok {
		t.Fatalf("store database is %T, want *embedded.DB", s.Database())
	}
	started, release := make(chan uint64), make(chan struct{})
	type result struct {
		v   string
		err error
	}
	first := make(chan result, 1)
	go func() {
		v, err := idemkv.Do(ctx, s, "k", []byte("p"), func(ctx context.Context) (string, error) {
			tok, _ := idemkv.LeaseToken(ctx)
			started <- tok
			<-release
			return "first", nil
		}, nil)
		first <- result{v, err}
	}()
	tok1 := <-started
	// A recovery: 100 s of versions at once, no wall time.
	if err := eng.AdvanceVersion(100 * kv.VersionsPerSecond); err != nil {
		t.Fatal(err)
	}
	var tok2 uint64
	v, err := idemkv.Do(ctx, s, "k", []byte("p"), func(ctx context.Context) (string, error) {
		tok2, _ = idemkv.LeaseToken(ctx)
		return "second", nil
	}, nil)
	if err != nil || v != "second" {
		t.Fatalf("Do after the jump = %q, %v; want the takeover to run and succeed (leases are in versions)", v, err)
	}
	if tok2 <= tok1 {
		t.Fatalf("fencing tokens %d then %d; want the takeover's larger", tok1, tok2)
	}
	close(release)
	select {
	case r := <-first:
		if !errors.Is(r.err, idemkv.ErrLeaseLost) {
			t.Fatalf("displaced caller: %q, %v; want ErrLeaseLost", r.v, r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("displaced caller did not return")
	}
	v, err = idemkv.Do(ctx, s, "k", []byte("p"), func(context.Context) (string, error) {
		return "third", nil
	}, nil)
	if err != nil || v != "second" {
		t.Fatalf("replay = %q, %v; want the one stored result, %q", v, err, "second")
	}
}
