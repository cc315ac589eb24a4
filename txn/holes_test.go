package txn_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/txn"
)

// These tests pin the holes a protocol review found (issue 11): each failed
// before its fix.

// fn's own range clear over the markers must not erase the marker: the
// marker is the attempt's last word on its key.
func TestTransactFunctionClearsMarkers(t *testing.T) {
	for _, act := range []action{applied1021, applied1039} {
		t.Run(fmt.Sprint(act), func(t *testing.T) {
			inner := openMem(t)
			db := &scriptDB{Database: inner, plan: firstCommit(act)}
			markers, err := kv.PrefixRange(txn.DefaultPrefix)
			if err != nil {
				t.Fatal(err)
			}
			runs := 0
			got, err := txn.Transact(context.Background(), db, func(tr kv.Transaction) (int, error) {
				runs++
				tr.ClearRange(markers) // "delete everything under the prefix"
				tr.Atomic(kv.Add, []byte("c"), one)
				return runs, nil
			}, fastRetries)
			if err != nil || got != 1 || runs != 1 {
				t.Fatalf("Transact = %d, %v after %d runs; want the first run's 1, nil after 1 run", got, err, runs)
			}
			if n := readCount(t, inner, []byte("c")); n != 1 {
				t.Fatalf("counter = %d, want 1: the function ran twice", n)
			}
		})
	}
}

// Another client clears the markers between an ambiguous commit that
// applied and the retry (a test reset, a "delete everything" job): the call
// must report the outcome lost, never run the function again.
func TestTransactForeignClearBetweenAttempts(t *testing.T) {
	for _, name := range []string{"prefix", "keyspace", "from-shard"} {
		t.Run(name, func(t *testing.T) {
			inner := openMem(t)
			var clear kv.Range
			var db *scriptDB
			db = &scriptDB{Database: inner,
				plan: firstCommit(applied1021),
				after: func(n int) {
					if n != 1 {
						return
					}
					id, err := db.lastMarker()
					if err != nil {
						panic(fmt.Sprintf("no marker in the first attempt: %v", err))
					}
					key := txn.MarkerKey(txn.DefaultPrefix, id)
					switch name {
					case "prefix":
						clear, _ = kv.PrefixRange(txn.DefaultPrefix)
					case "keyspace":
						clear = kv.Range{Begin: []byte{}, End: []byte{0xff}}
					case "from-shard": // the marker's shard and all after it
						clear = kv.Range{Begin: key[:len(txn.DefaultPrefix)+1], End: []byte{0xff}}
					}
					_, err = txn.StockTransact(context.Background(), inner, func(tr kv.Transaction) (struct{}, error) {
						tr.ClearRange(clear)
						return struct{}{}, nil
					})
					if err != nil {
						panic(err)
					}
				},
			}
			runs := 0
			_, err := txn.Transact(context.Background(), db, incr([]byte("c"), &runs), fastRetries)
			if !errors.Is(err, txn.ErrOutcomeLost) || runs != 1 {
				t.Fatalf("Transact error = %v after %d runs; want ErrOutcomeLost after 1 run (the first attempt committed, then its marker was cleared)", err, runs)
			}
		})
	}
}

// Resolve fences a call that is still running; an attempt that started
// after the fence is in flight when the next attempt reads the tombstone.
// The call may report "fenced, nothing committed" only if that is certain:
// the in-flight attempt must then never land.
func TestTransactFencedWhileAttemptInFlight(t *testing.T) {
	inner := openMem(t)
	opts := &txn.Options{MaxRetryDelay: time.Millisecond}
	var id txn.ID
	var db *scriptDB
	db = &scriptDB{Database: inner,
		plan: func(n int) action {
			switch n {
			case 1:
				return fail1020 // certainly not applied: no ambiguity yet
			case 2:
				return held1021 // started after the fence; on the wire
			}
			return pass
		},
		before: func(n int) {
			if n != 1 {
				return
			}
			var err error
			if id, err = db.lastMarker(); err != nil {
				panic(err)
			}
			// Someone resolves the running call's ID.
			if o, err := txn.Resolve(context.Background(), inner, id, opts); err != nil || o != txn.NotCommitted {
				panic(fmt.Sprintf("Resolve = %v, %v", o, err))
			}
		},
	}
	runs := 0
	_, err := txn.Transact(context.Background(), db, incr([]byte("c"), &runs), opts)
	db.release() // the held attempt tries to land now
	n := readCount(t, inner, []byte("c"))
	o, rerr := txn.Resolve(context.Background(), inner, id, opts)
	t.Logf("Transact: %v; counter %d; held: %v; Resolve after: %v, %v", err, n, db.landed, o, rerr)
	switch {
	case err == nil:
		if n != 1 || o != txn.Committed {
			t.Fatalf("Transact succeeded but counter = %d, Resolve = %v", n, o)
		}
	case errors.Is(err, txn.ErrFenced):
		if n != 0 || o != txn.NotCommitted {
			t.Fatalf("Transact said fenced (nothing committed), but counter = %d and Resolve now says %v", n, o)
		}
	case errors.Is(err, txn.ErrUnknownResult):
	default:
		t.Fatalf("Transact error = %v", err)
	}
}

// A function that commits, resets or retries its own transaction steps
// outside the protocol: the call must refuse it (nothing committed) or
// report the outcome unknown — never a plain error with an effect applied,
// nor a success with the effect applied twice.
func TestTransactFunctionControlsItsTransaction(t *testing.T) {
	for _, misuse := range []string{"commit", "reset", "onerror"} {
		t.Run(misuse, func(t *testing.T) {
			inner := openMem(t)
			db := &scriptDB{Database: inner, plan: func(n int) action {
				if n == 1 && misuse == "reset" {
					return applied1021
				}
				return pass
			}}
			runs := 0
			_, err := txn.Transact(context.Background(), db, func(tr kv.Transaction) (int, error) {
				runs++
				tr.Atomic(kv.Add, []byte("c"), one)
				switch misuse {
				case "commit":
					if err := tr.Commit().Err(); err != nil {
						return 0, err
					}
				case "reset":
					tr.Reset()
					tr.Atomic(kv.Add, []byte("c"), one)
				case "onerror":
					if err := tr.OnError(kv.NewError(kv.CodeNotCommitted)); err != nil {
						return 0, err
					}
					tr.Atomic(kv.Add, []byte("c"), one)
				}
				return runs, nil
			}, fastRetries)
			n := readCount(t, inner, []byte("c"))
			t.Logf("Transact: %v after %d runs; counter %d", err, runs, n)
			switch {
			case err == nil:
				t.Fatalf("Transact succeeded with counter %d; fn's control of its transaction must be refused", n)
			case errors.Is(err, txn.ErrUnknownResult):
			case n != 0:
				t.Fatalf("Transact error = %v (not unknown) but counter = %d", err, n)
			}
		})
	}
}

// The fence after fn fails is bounded by RetryLimit: under persistent
// commit_unknown_result it ends with *UnknownResultError, not when ctx does.
func TestTransactFenceIsBounded(t *testing.T) {
	inner := openMem(t)
	db := &scriptDB{Database: inner, plan: func(n int) action { return notApplied1021 }}
	boom := errors.New("boom")
	runs := 0
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := txn.Transact(ctx, db, func(tr kv.Transaction) (int, error) {
		runs++
		if runs > 1 {
			return 0, boom
		}
		tr.Atomic(kv.Add, []byte("c"), one)
		return runs, nil
	}, &txn.Options{MaxRetryDelay: time.Millisecond, RetryLimit: 5})
	var unknown *txn.UnknownResultError
	if !errors.As(err, &unknown) || errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		t.Fatalf("Transact error = %v; want *UnknownResultError once the retry limit ran out, before ctx's deadline", err)
	}
	// Resolve under the same persistent fault is bounded too.
	_, err = txn.Resolve(ctx, db, unknown.ID, &txn.Options{MaxRetryDelay: time.Millisecond, RetryLimit: 5})
	if !errors.As(err, &unknown) || ctx.Err() != nil {
		t.Fatalf("Resolve error = %v; want *UnknownResultError once the retry limit ran out, before ctx's deadline", err)
	}
}

// Resolve's own commit timing out is not the caller's problem: Resolve is
// idempotent and settles within the caller's context.
func TestResolveSettlesThroughTimeouts(t *testing.T) {
	inner := openMem(t)
	runs := 0
	var unknown *txn.UnknownResultError
	_, err := txn.Transact(context.Background(), &scriptDB{Database: inner, plan: func(int) action { return notApplied1031 }}, incr([]byte("c"), &runs), fastRetries)
	if !errors.As(err, &unknown) {
		t.Fatalf("Transact error = %v, want *UnknownResultError", err)
	}
	db := &scriptDB{Database: inner, plan: func(n int) action {
		if n <= 2 {
			return notApplied1031
		}
		return pass
	}}
	o, err := txn.Resolve(context.Background(), db, unknown.ID, fastRetries)
	if err != nil || o != txn.NotCommitted {
		t.Fatalf("Resolve = %v, %v; want not committed after its own commits timed out twice", o, err)
	}
}

// The committed attempt's versionstamp and commit version are known after
// every success, the marker-found ones included, where the versionstamp
// future fn took from its transaction can only fail.
func TestTransactCommitVersionstamp(t *testing.T) {
	for _, act := range []action{pass, applied1021, applied1039} {
		t.Run(fmt.Sprint(act), func(t *testing.T) {
			inner := openMem(t)
			db := &scriptDB{Database: inner, plan: firstCommit(act)}
			stampParam := append(make([]byte, 10), 0, 0, 0, 0) // versionstamp at offset 0
			fut, c, err := txn.TransactCommit(context.Background(), db, func(tr kv.Transaction) (*kv.Future[kv.Versionstamp], error) {
				tr.Atomic(kv.SetVersionstampedValue, []byte("stamp"), stampParam)
				return tr.GetVersionstamp(), nil
			}, fastRetries)
			if err != nil {
				t.Fatal(err)
			}
			want, err := txn.StockTransact(context.Background(), inner, func(tr kv.Transaction) ([]byte, error) {
				return tr.Get([]byte("stamp")).Get()
			})
			if err != nil || len(want) != 10 {
				t.Fatalf("stored stamp %x, %v", want, err)
			}
			if !bytes.Equal(c.Versionstamp[:], want) || c.Version() != c.Versionstamp.Version() || c.Version() <= 0 || c.Attempt != 1 || c.ID.IsZero() {
				t.Fatalf("Commit = %+v (version %d); want attempt 1 with the stored versionstamp %x", c, c.Version(), want)
			}
			// The FoundationDB idiom, for the record: fn's own future
			// works only when the call received its attempt's answer.
			vs, ferr := fut.Get()
			t.Logf("fn's versionstamp future: %x, %v", vs, ferr)
			if act == pass && (ferr != nil || vs != c.Versionstamp) {
				t.Fatalf("fn's future = %x, %v on the happy path; want %x", vs, ferr, c.Versionstamp)
			}
			o, rc, err := txn.ResolveCommit(context.Background(), inner, c.ID, nil)
			if err != nil || o != txn.Committed || rc != c {
				t.Fatalf("ResolveCommit = %v, %+v, %v; want committed with %+v", o, rc, err, c)
			}
		})
	}
}

// The guard keeps backends' Unwrap chains working (fdbkv.Unwrap follows
// Unwrap() kv.Transaction to the bindings' transaction).
func TestTransactGuardUnwraps(t *testing.T) {
	db := openMem(t)
	_, err := txn.Transact(context.Background(), db, func(tr kv.Transaction) (struct{}, error) {
		u, ok := tr.(interface{ Unwrap() kv.Transaction })
		if !ok || u.Unwrap() == nil || u.Unwrap() == tr {
			return struct{}{}, errors.New("fn's transaction does not unwrap to the backend's")
		}
		return struct{}{}, nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
}
