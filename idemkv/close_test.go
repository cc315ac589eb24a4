package idemkv_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/txn"
)

// slowClose is a database wrapper whose Close takes a while and says when
// it began.
type slowClose struct {
	kv.Database
	began chan struct{}
	delay time.Duration
}

func (d *slowClose) Close() error {
	close(d.began)
	time.Sleep(d.delay)
	return nil
}

// Close returns only when the store is closed, also when called again while
// the first call is still closing: the directory can be reopened right
// after either returns (issue 11, item 8).
func TestStoreCloseTwiceWaits(t *testing.T) {
	needsEngine(t, "a directory reopened")
	dir := t.TempDir()
	ctx := context.Background()
	w := &slowClose{began: make(chan struct{}), delay: 200 * time.Millisecond}
	s, err := idemkv.Open(ctx, dir, &idemkv.Options{NoJanitor: true,
		WrapDatabase: func(db kv.Database) kv.Database { w.Database = db; return w }})
	if err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() { first <- s.Close() }()
	<-w.began
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	s2, err := idemkv.Open(ctx, dir, &idemkv.Options{NoJanitor: true})
	if err != nil {
		t.Fatalf("reopening right after the second Close returned: %v", err)
	}
	s2.Close()
	if err := <-first; err != nil {
		t.Fatalf("first Close: %v", err)
	}
}

// Calls in flight while the store closes fail with an error that matches
// both idemkv.ErrClosed and kv.ErrClosed, as calls after Close do.
func TestStoreCallsInFlightDuringClose(t *testing.T) {
	ctx := context.Background()
	s := openMem(t, &idemkv.Options{NoJanitor: true})
	inFn := make(chan struct{})
	closed := make(chan struct{})
	var runs atomic.Int32
	done := make(chan error, 1)
	go func() {
		_, err := idemkv.Transact(ctx, s, func(tr kv.Transaction) (int, error) {
			if runs.Add(1) == 1 {
				close(inFn)
				<-closed
			}
			tr.Set([]byte("k"), []byte("v"))
			return 0, nil
		})
		done <- err
	}()
	<-inFn
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	close(closed)
	err := <-done
	if !errors.Is(err, idemkv.ErrClosed) || !errors.Is(err, kv.ErrClosed) {
		t.Fatalf("call in flight during Close: %v; want an error matching idemkv.ErrClosed and kv.ErrClosed", err)
	}
	t.Logf("in flight: %v (unknown outcome: %v)", err, errors.Is(err, txn.ErrUnknownResult))
	for name, err := range map[string]error{
		"Transact": func() error {
			_, err := idemkv.Transact(ctx, s, func(kv.Transaction) (int, error) { return 0, nil })
			return err
		}(),
		"Resolve": func() error { _, err := s.Resolve(ctx, txn.ID{}); return err }(),
		"Sweep":   func() error { _, err := s.Sweep(ctx); return err }(),
	} {
		if !errors.Is(err, idemkv.ErrClosed) || !errors.Is(err, kv.ErrClosed) {
			t.Errorf("%s after Close: %v; want an error matching idemkv.ErrClosed and kv.ErrClosed", name, err)
		}
	}
}
