package txn_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/embedded"
	"github.com/idemkv/idemkv/txn"
)

// fastRetries keeps backoff short so that fault-heavy tests run quickly.
var fastRetries = &txn.Options{MaxRetryDelay: time.Millisecond}

func openMem(t testing.TB) *embedded.DB {
	t.Helper()
	db, err := embedded.OpenMem(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

var one = binary.LittleEndian.AppendUint64(nil, 1)

// incr is a non-idempotent transaction: a blind atomic add of one. It
// returns how many times it has run, so tests can tell which run's result
// came back.
func incr(key []byte, runs *int) func(kv.Transaction) (int, error) {
	return func(tr kv.Transaction) (int, error) {
		*runs++
		tr.Atomic(kv.Add, key, one)
		return *runs, nil
	}
}

func readCount(t testing.TB, db kv.Database, key []byte) int64 {
	t.Helper()
	v, err := txn.StockTransact(context.Background(), db, func(tr kv.Transaction) (int64, error) {
		b, err := tr.Get(key).Get()
		if err != nil || b == nil {
			return 0, err
		}
		return int64(binary.LittleEndian.Uint64(b)), nil
	})
	if err != nil {
		t.Fatalf("reading %q: %v", key, err)
	}
	return v
}

func TestTransactCommitsOnce(t *testing.T) {
	db := openMem(t)
	runs := 0
	var stats txn.Stats
	got, err := txn.Transact(context.Background(), db, incr([]byte("c"), &runs), &txn.Options{Observe: func(s txn.Stats) { stats = s }})
	if err != nil || got != 1 || runs != 1 {
		t.Fatalf("Transact = %d, %v after %d runs; want 1, nil after 1", got, err, runs)
	}
	if n := readCount(t, db, []byte("c")); n != 1 {
		t.Fatalf("counter = %d, want 1", n)
	}
	if stats.Attempts != 1 || stats.Ambiguous != 0 || stats.MarkerFound || stats.ID.IsZero() || stats.Err != nil {
		t.Fatalf("stats = %+v, want one clean attempt with an ID", stats)
	}
}

// The heart of the protocol: an attempt applied but reported unknown is
// found by its marker, its result is returned, and the function is not run
// again.
func TestTransactAmbiguousAppliedReturnsCommittingResult(t *testing.T) {
	for _, act := range []action{applied1021, applied1039} {
		t.Run(fmt.Sprint(act), func(t *testing.T) {
			inner := openMem(t)
			db := &scriptDB{Database: inner, plan: firstCommit(act)}
			runs := 0
			var stats txn.Stats
			got, err := txn.Transact(context.Background(), db, incr([]byte("c"), &runs), &txn.Options{MaxRetryDelay: time.Millisecond, Observe: func(s txn.Stats) { stats = s }})
			if err != nil || got != 1 || runs != 1 {
				t.Fatalf("Transact = %d, %v after %d runs; want the first run's 1, nil after 1 run", got, err, runs)
			}
			if n := readCount(t, inner, []byte("c")); n != 1 {
				t.Fatalf("counter = %d, want 1", n)
			}
			if !stats.MarkerFound || stats.Ambiguous != 1 || stats.Attempts != 2 {
				t.Fatalf("stats = %+v, want 2 attempts, 1 ambiguous, marker found", stats)
			}
			for _, c := range db.codesSeen() {
				if c == kv.CodeClusterVersionChanged || c == kv.CodeTransactionTimedOut {
					t.Fatalf("OnError was asked about %v; Transact must intercept it", c)
				}
			}
		})
	}
}

func TestTransactAmbiguousNotAppliedRunsAgain(t *testing.T) {
	inner := openMem(t)
	db := &scriptDB{Database: inner, plan: firstCommit(notApplied1021)}
	runs := 0
	got, err := txn.Transact(context.Background(), db, incr([]byte("c"), &runs), fastRetries)
	if err != nil || got != 2 || runs != 2 {
		t.Fatalf("Transact = %d, %v after %d runs; want the second run's 2, nil", got, err, runs)
	}
	if n := readCount(t, inner, []byte("c")); n != 1 {
		t.Fatalf("counter = %d, want 1", n)
	}
}

// An earlier attempt still in flight lands while the next one runs: the
// next one conflicts on the marker, and the one after finds it.
func TestTransactLateCommitWins(t *testing.T) {
	inner := openMem(t)
	db := &scriptDB{Database: inner, plan: func(n int) action {
		return map[int]action{1: held1021, 2: releaseThenPass}[n]
	}}
	runs := 0
	got, err := txn.Transact(context.Background(), db, incr([]byte("c"), &runs), fastRetries)
	if err != nil || got != 1 {
		t.Fatalf("Transact = %d, %v; want the late attempt's result 1", got, err)
	}
	if len(db.landed) != 1 || db.landed[0] != nil {
		t.Fatalf("held commit results = %v, want it to land", db.landed)
	}
	if n := readCount(t, inner, []byte("c")); n != 1 {
		t.Fatalf("counter = %d after %d runs, want 1", n, runs)
	}
}

// The converse: the retry commits first, and the late attempt must then
// fail on the marker conflict.
func TestTransactRetryBeatsLateCommit(t *testing.T) {
	inner := openMem(t)
	db := &scriptDB{Database: inner, plan: firstCommit(held1021)}
	runs := 0
	got, err := txn.Transact(context.Background(), db, incr([]byte("c"), &runs), fastRetries)
	if err != nil || got != 2 {
		t.Fatalf("Transact = %d, %v; want the retry's result 2", got, err)
	}
	db.release()
	if len(db.landed) != 1 || !errors.Is(db.landed[0], kv.ErrNotCommitted) {
		t.Fatalf("late commit result = %v, want not_committed", db.landed)
	}
	if n := readCount(t, inner, []byte("c")); n != 1 {
		t.Fatalf("counter = %d, want 1", n)
	}
}

// fn fails after an ambiguous attempt that then lands: the call succeeded
// after all, with the landed attempt's result.
func TestTransactFunctionErrorAfterAmbiguitySettles(t *testing.T) {
	boom := errors.New("boom")
	for _, land := range []bool{true, false} {
		t.Run(fmt.Sprintf("land=%v", land), func(t *testing.T) {
			inner := openMem(t)
			db := &scriptDB{Database: inner, plan: func(n int) action {
				if n == 1 {
					return held1021
				}
				if n == 2 && land {
					return releaseThenPass // the fence's commit
				}
				return pass
			}}
			runs := 0
			fn := func(tr kv.Transaction) (int, error) {
				runs++
				if runs > 1 {
					return 0, boom
				}
				tr.Atomic(kv.Add, []byte("c"), one)
				return runs, nil
			}
			got, err := txn.Transact(context.Background(), db, fn, fastRetries)
			db.release() // a commit still held lands now, or is fenced out
			want := int64(0)
			if land {
				want = 1
				if err != nil || got != 1 {
					t.Fatalf("Transact = %d, %v; want the landed attempt's 1, nil", got, err)
				}
			} else if !errors.Is(err, boom) {
				t.Fatalf("Transact error = %v, want fn's error", err)
			}
			if n := readCount(t, inner, []byte("c")); n != want {
				t.Fatalf("counter = %d, want %d (held commits: %v)", n, want, db.landed)
			}
		})
	}
}

// The janitor removes the call's slot between an ambiguous attempt and the
// retry (as its sweep does to a slot older than its minimum age, here
// forced): the retry cannot tell whether the first attempt committed, and
// must say so rather than run fn again.
func TestTransactOutcomeLost(t *testing.T) {
	inner := openMem(t)
	opts := &txn.Options{MaxRetryDelay: time.Millisecond}
	var db *scriptDB
	db = &scriptDB{Database: inner,
		plan: firstCommit(notApplied1021),
		before: func(n int) {
			if n != 1 {
				return
			}
			id, err := db.lastMarker()
			if err != nil {
				panic(err)
			}
			// The janitor's sweep: a read conflict on the slot and its clear.
			_, err = txn.StockTransact(context.Background(), inner, func(tr kv.Transaction) (struct{}, error) {
				tr.Clear(txn.SlotKey(txn.DefaultPrefix, id.Owner, id.Slot))
				return struct{}{}, nil
			})
			if err != nil {
				panic(err)
			}
		}}
	runs := 0
	_, err := txn.Transact(context.Background(), db, incr([]byte("c"), &runs), opts)
	var lost *txn.OutcomeLostError
	if !errors.As(err, &lost) || !errors.Is(err, txn.ErrOutcomeLost) || !lost.Cleared || runs != 1 {
		t.Fatalf("Transact error = %v after %d runs; want *OutcomeLostError (Cleared) after 1 run", err, runs)
	}
	if n := readCount(t, inner, []byte("c")); n != 0 {
		t.Fatalf("counter = %d, want 0", n)
	}
}

func TestTransactTimeoutIsNotRetriedAndResolves(t *testing.T) {
	inner := openMem(t)
	db := &scriptDB{Database: inner, plan: firstCommit(applied1031)}
	runs := 0
	_, err := txn.Transact(context.Background(), db, incr([]byte("c"), &runs), fastRetries)
	var unknown *txn.UnknownResultError
	if !errors.As(err, &unknown) || !errors.Is(err, kv.ErrTransactionTimedOut) || runs != 1 {
		t.Fatalf("Transact error = %v after %d runs; want *UnknownResultError wrapping 1031 after 1 run", err, runs)
	}
	if slices.Contains(db.codesSeen(), kv.CodeTransactionTimedOut) {
		t.Fatal("OnError was asked about transaction_timed_out")
	}
	for range 2 { // Resolve is idempotent
		o, err := txn.Resolve(context.Background(), inner, unknown.ID, nil)
		if err != nil || o != txn.Committed {
			t.Fatalf("Resolve = %v, %v; want committed", o, err)
		}
	}
}

func TestResolveFencesAnInFlightAttempt(t *testing.T) {
	inner := openMem(t)
	db := &scriptDB{Database: inner, plan: func(n int) action { return held1021 }}
	runs := 0
	opts := &txn.Options{RetryLimit: 2, MaxRetryDelay: time.Millisecond}
	_, err := txn.Transact(context.Background(), db, incr([]byte("c"), &runs), opts)
	var unknown *txn.UnknownResultError
	if !errors.As(err, &unknown) {
		t.Fatalf("Transact error = %v, want *UnknownResultError once retries run out", err)
	}
	o, err := txn.Resolve(context.Background(), inner, unknown.ID, opts)
	if err != nil || o != txn.NotCommitted {
		t.Fatalf("Resolve = %v, %v; want not committed", o, err)
	}
	db.release() // every held attempt now tries to land, and must not
	for i, e := range db.landed {
		if !errors.Is(e, kv.ErrNotCommitted) {
			t.Fatalf("held attempt %d: %v, want not_committed after the fence", i, e)
		}
	}
	if n := readCount(t, inner, []byte("c")); n != 0 {
		t.Fatalf("counter = %d, want 0", n)
	}
	if o, err := txn.Resolve(context.Background(), inner, unknown.ID, opts); o != txn.NotCommitted || err != nil {
		t.Fatalf("second Resolve = %v, %v; want the same answer", o, err)
	}
}

func TestTransactFunctionErrorCommitsNothing(t *testing.T) {
	db := openMem(t)
	boom := errors.New("boom")
	_, err := txn.Transact(context.Background(), db, func(tr kv.Transaction) (int, error) {
		tr.Set([]byte("k"), []byte("v"))
		return 0, boom
	}, nil)
	if !errors.Is(err, boom) {
		t.Fatalf("error = %v, want fn's", err)
	}
	_, err = txn.Transact(context.Background(), db, func(tr kv.Transaction) (int, error) {
		tr.Set([]byte("k"), []byte("v"))
		panic("kaboom")
	}, nil)
	var pe *txn.PanicError
	if !errors.As(err, &pe) || pe.Value != "kaboom" || len(pe.Stack) == 0 {
		t.Fatalf("error = %v, want *PanicError with the value and a stack", err)
	}
	got, err := txn.Transact(context.Background(), db, func(tr kv.Transaction) ([]byte, error) {
		return tr.Get([]byte("k")).MustGet(), nil
	}, nil)
	if err != nil || got != nil {
		t.Fatalf("k = %q, %v; want absent: neither failed call may commit", got, err)
	}
}

func TestTransactMustGetPanicIsRetried(t *testing.T) {
	db := openMem(t)
	runs := 0
	got, err := txn.Transact(context.Background(), db, func(tr kv.Transaction) (int, error) {
		runs++
		if runs == 1 {
			panic(kv.NewError(kv.CodeNotCommitted)) // as MustGet would
		}
		return runs, nil
	}, fastRetries)
	if err != nil || got != 2 {
		t.Fatalf("Transact = %d, %v; want a retry after the retryable panic", got, err)
	}
}

func TestTransactContext(t *testing.T) {
	db := openMem(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	runs := 0
	_, err := txn.Transact(ctx, db, incr([]byte("c"), &runs), nil)
	if !errors.Is(err, context.Canceled) || runs != 0 {
		t.Fatalf("error = %v after %d runs; want context.Canceled before any run", err, runs)
	}

	// A context that ends while the call waits to retry ends the call.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	db2 := &scriptDB{Database: db, plan: func(n int) action { cancel(); return notApplied1021 }}
	_, err = txn.Transact(ctx, db2, incr([]byte("c"), &runs), nil)
	var unknown *txn.UnknownResultError
	if !errors.Is(err, context.Canceled) || !errors.As(err, &unknown) {
		t.Fatalf("error = %v; want *UnknownResultError wrapping context.Canceled", err)
	}
}

func TestTransactBadInput(t *testing.T) {
	db := openMem(t)
	fn := func(kv.Transaction) (int, error) { return 0, nil }
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		opts *txn.Options
		want string
	}{
		{"empty prefix", &txn.Options{Prefix: []byte{}}, "Prefix is empty"},
		{"system prefix", &txn.Options{Prefix: []byte("\xffx")}, "system keyspace"},
		{"long prefix", &txn.Options{Prefix: make([]byte, kv.MaxKeySize)}, "key limit"},
		{"shards", &txn.Options{Shards: 256}, "1 to 255"},
		{"negative shards", &txn.Options{Shards: -1}, "1 to 255"},
		{"timeout", &txn.Options{Timeout: -time.Second}, "Timeout"},
	} {
		_, err := txn.Transact(ctx, db, fn, tc.opts)
		if !errors.Is(err, txn.ErrInvalidOptions) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error = %v, want ErrInvalidOptions mentioning %q", tc.name, err, tc.want)
		}
	}
	if _, err := txn.Transact[int](ctx, db, nil, nil); !errors.Is(err, txn.ErrNilFunc) {
		t.Errorf("nil fn: %v", err)
	}
	if _, err := txn.Transact(ctx, nil, fn, nil); !errors.Is(err, txn.ErrNilDatabase) {
		t.Errorf("nil db: %v", err)
	}
	closed := openMem(t)
	closed.Close()
	if _, err := txn.Transact(ctx, closed, fn, nil); !errors.Is(err, kv.ErrClosed) {
		t.Errorf("closed db: %v, want kv.ErrClosed", err)
	}
}

func TestResolveBadInput(t *testing.T) {
	db := openMem(t)
	ctx := context.Background()
	var id txn.ID
	if _, err := txn.Resolve(ctx, db, id, nil); !errors.Is(err, txn.ErrInvalidID) {
		t.Errorf("zero ID: %v", err)
	}
	id, _ = txn.ParseID("03-0000000000000010-6f1c6a3e-1d2b-4c3a-9e8f-0123456789ab")
	// A fresh database may still be below version 16 (16 µs of versions
	// after it opened), and an ID from the future is invalid: date the ID
	// at a version the database has handed out.
	tr, err := db.CreateTransaction(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id.Version, err = tr.GetReadVersion().Get(); err != nil {
		t.Fatal(err)
	}
	tr.Cancel()
	// The shard is the ID's own (issue 11): an ID from a call with more
	// shards than these options is valid; only 0xff, the metadata's, is not.
	if _, err := txn.Resolve(ctx, db, id, &txn.Options{Shards: 2}); errors.Is(err, txn.ErrInvalidID) {
		t.Errorf("shard beyond Options.Shards: %v, want it accepted", err)
	}
	bad := id
	bad.Shard = 0xff
	if _, err := txn.Resolve(ctx, db, bad, nil); !errors.Is(err, txn.ErrInvalidID) {
		t.Errorf("shard 0xff: %v", err)
	}
	id.Version = 1 << 60
	if _, err := txn.Resolve(ctx, db, id, nil); !errors.Is(err, txn.ErrInvalidID) {
		t.Errorf("future version: %v", err)
	}
	if _, err := txn.ParseID("not-an-id"); !errors.Is(err, txn.ErrInvalidID) {
		t.Errorf("ParseID: %v", err)
	}
}
