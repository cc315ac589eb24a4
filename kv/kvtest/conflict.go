package kvtest

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/idemkv/idemkv/kv"
)

// race runs the canonical optimistic-concurrency interleaving: tr1 does its
// reads (first), then tr2 does its writes and commits, then tr1 writes a key
// of its own and commits. It checks tr1's outcome: not_committed (1020) when
// wantConflict, success otherwise.
func (e *env) race(first func(tr kv.Transaction), second func(tr kv.Transaction), wantConflict bool) {
	e.t.Helper()
	tr1 := e.tx()
	// Fix tr1's read version before tr2 commits, whatever first does.
	if _, err := tr1.GetReadVersion().Get(); err != nil {
		e.t.Fatalf("GetReadVersion: %v", err)
	}
	first(tr1)
	tr2 := e.tx()
	second(tr2)
	e.commit(tr2)
	tr1.Set(e.k("tr1-own"), []byte("x"))
	err := tr1.Commit().Err()
	if wantConflict {
		wantCode(e.t, "tr1 Commit", err, kv.ErrNotCommitted)
		if v := e.read("tr1-own"); v != nil {
			e.t.Fatalf("tr1's write is visible after not_committed: %s", show(v))
		}
		return
	}
	wantNoErr(e.t, "tr1 Commit (no conflict expected)", err)
}

// conflictCases check optimistic concurrency: which interleavings make a
// commit fail with not_committed and which must not.
func conflictCases() []testCase {
	return []testCase{
		{"Conflict/PointReadThenConcurrentWrite", func(e *env) {
			e.write("k", "1")
			e.race(func(tr kv.Transaction) { e.get(tr, "k") },
				func(tr kv.Transaction) { tr.Set(e.k("k"), []byte("2")) }, true)
		}},
		{"Conflict/DisjointKeysDoNotConflict", func(e *env) {
			e.write("k", "1")
			e.race(func(tr kv.Transaction) { e.get(tr, "k") },
				func(tr kv.Transaction) { tr.Set(e.k("k2"), []byte("2")) }, false)
		}},
		{"Conflict/WriteBeforeReadVersionDoesNotConflict", func(e *env) {
			e.write("k", "1")
			tr2 := e.tx()
			tr2.Set(e.k("k"), []byte("2"))
			e.commit(tr2)
			// tr1 gets its read version after tr2's commit was acknowledged.
			tr1 := e.tx()
			wantValue(e.t, "Get(k)", e.get(tr1, "k"), []byte("2"))
			tr1.Set(e.k("k"), []byte("3"))
			e.commit(tr1)
		}},
		{"Conflict/RangeReadThenWriteInside", func(e *env) {
			e.write("a", "1", "m", "2", "y", "3")
			e.race(func(tr kv.Transaction) { e.scan(tr, e.rng("a", "z"), kv.RangeOptions{}) },
				func(tr kv.Transaction) { tr.Set(e.k("m"), []byte("changed")) }, true)
		}},
		{"Conflict/PhantomInsertIntoReadRange", func(e *env) {
			e.write("a", "1", "z", "2")
			e.race(func(tr kv.Transaction) {
				wantStrings(e.t, "GetRange[b,y)", e.scan(tr, e.rng("b", "y"), kv.RangeOptions{}))
			}, func(tr kv.Transaction) { tr.Set(e.k("m"), []byte("phantom")) }, true)
		}},
		{"Conflict/PhantomInsertOfAbsentKey", func(e *env) {
			e.race(func(tr kv.Transaction) {
				wantValue(e.t, "Get(absent)", e.get(tr, "absent"), nil)
			}, func(tr kv.Transaction) { tr.Set(e.k("absent"), []byte("now")) }, true)
		}},
		{"Conflict/WriteOutsideReadRangeDoesNotConflict", func(e *env) {
			// End is exclusive for conflicts as for reads: a write at the end
			// key of a read range does not conflict.
			e.write("b", "1")
			e.race(func(tr kv.Transaction) { e.scan(tr, e.rng("b", "m"), kv.RangeOptions{}) },
				func(tr kv.Transaction) {
					tr.Set(e.k("m"), []byte("at end"))
					tr.Set(e.k("a"), []byte("before"))
				}, false)
		}},
		{"Conflict/ClearRangeConflictsWithReader", func(e *env) {
			e.write("k", "1")
			e.race(func(tr kv.Transaction) { e.get(tr, "k") },
				func(tr kv.Transaction) { tr.ClearRange(e.rng("a", "z")) }, true)
		}},
		{"Conflict/AtomicOpConflictsWithReader", func(e *env) {
			e.writeBytes("n", []byte{1})
			e.race(func(tr kv.Transaction) { e.get(tr, "n") },
				func(tr kv.Transaction) { tr.Atomic(kv.Add, e.k("n"), []byte{1}) }, true)
		}},
		{"Conflict/WriteOnlyNeverConflicts", func(e *env) {
			e.write("k", "1")
			e.race(func(tr kv.Transaction) { tr.Set(e.k("k"), []byte("tr1")) },
				func(tr kv.Transaction) { tr.Set(e.k("k"), []byte("tr2")) }, false)
			// tr1 committed last, so its blind write wins.
			wantValue(e.t, "Get(k)", e.read("k"), []byte("tr1"))
		}},
		{"Conflict/AtomicOpAddsNoReadConflict", func(e *env) {
			e.writeBytes("n", []byte{1, 0})
			e.race(func(tr kv.Transaction) { tr.Atomic(kv.Add, e.k("n"), []byte{1, 0}) },
				func(tr kv.Transaction) { tr.Set(e.k("n"), []byte{10, 0}) }, false)
			wantValue(e.t, "Get(n)", e.read("n"), []byte{11, 0})
		}},
		{"Conflict/SnapshotReadsAddNoConflict", func(e *env) {
			e.write("k", "1", "r", "2")
			e.race(func(tr kv.Transaction) {
				e.get(tr.Snapshot(), "k")
				e.scan(tr.Snapshot(), e.rng("q", "s"), kv.RangeOptions{})
			}, func(tr kv.Transaction) {
				tr.Set(e.k("k"), []byte("changed"))
				tr.Set(e.k("r"), []byte("changed"))
				tr.Set(e.k("r2"), []byte("phantom"))
			}, false)
		}},
		{"Conflict/ExplicitReadConflictRange", func(e *env) {
			e.race(func(tr kv.Transaction) {
				wantNoErr(e.t, "AddReadConflictRange", tr.AddReadConflictRange(e.rng("c", "f")))
			}, func(tr kv.Transaction) { tr.Set(e.k("d"), []byte("x")) }, true)
		}},
		{"Conflict/ExplicitReadConflictRangeEndExclusive", func(e *env) {
			e.race(func(tr kv.Transaction) {
				wantNoErr(e.t, "AddReadConflictRange", tr.AddReadConflictRange(e.rng("c", "f")))
			}, func(tr kv.Transaction) { tr.Set(e.k("f"), []byte("x")) }, false)
		}},
		{"Conflict/ExplicitWriteConflictRange", func(e *env) {
			e.write("k", "1")
			e.race(func(tr kv.Transaction) { e.get(tr, "k") },
				func(tr kv.Transaction) {
					// tr2 never writes k; its write conflict range alone
					// must make tr1's read of k conflict.
					wantNoErr(e.t, "AddWriteConflictRange", tr.AddWriteConflictRange(e.rng("j", "l")))
					tr.Set(e.k("unrelated"), []byte("x"))
				}, true)
			wantValue(e.t, "Get(k)", e.read("k"), []byte("1"))
		}},
		{"Conflict/ReadOfOwnSetAddsNoConflict", func(e *env) {
			// RYW answers the read from the transaction's own set, and
			// FoundationDB adds a read conflict only for unmodified keys and
			// dependent (atomic) writes (ReadYourWrites.actor.cpp,
			// updateConflictMap).
			e.write("k", "1")
			e.race(func(tr kv.Transaction) {
				tr.Set(e.k("k"), []byte("mine"))
				wantValue(e.t, "Get(k) after own Set", e.get(tr, "k"), []byte("mine"))
			}, func(tr kv.Transaction) { tr.Set(e.k("k"), []byte("theirs")) }, false)
			wantValue(e.t, "Get(k)", e.read("k"), []byte("mine"))
		}},
		{"Conflict/RangeReadOverOwnClearAddsNoConflict", func(e *env) {
			e.write("b", "1")
			e.race(func(tr kv.Transaction) {
				tr.ClearRange(e.rng("a", "t"))
				wantStrings(e.t, "GetRange after own ClearRange", e.scan(tr, e.rng("a", "t"), kv.RangeOptions{}))
			}, func(tr kv.Transaction) { tr.Set(e.k("m"), []byte("x")) }, false)
		}},
		{"Conflict/ReadOfOwnAtomicOpConflicts", func(e *env) {
			// An atomic op's result depends on the stored value, so reading
			// it back reads that value and takes a read conflict.
			e.writeBytes("n", []byte{1})
			e.race(func(tr kv.Transaction) {
				tr.Atomic(kv.Add, e.k("n"), []byte{1})
				wantValue(e.t, "Get(n) after own Add", e.get(tr, "n"), []byte{2})
			}, func(tr kv.Transaction) { tr.Set(e.k("n"), []byte{5}) }, true)
		}},
		{"Conflict/LimitedRangeReadConflictsOnlyOnWhatItRead", func(e *env) {
			// A read of [a, z) limited to two pairs returns a and b; its read
			// conflict range ends just after b, so writes beyond it (bb, c,
			// y) do not conflict.
			e.write("a", "1", "b", "2", "c", "3", "d", "4")
			e.race(func(tr kv.Transaction) {
				wantStrings(e.t, "GetRange limit 2", e.scan(tr, e.rng("a", "z"), kv.RangeOptions{Limit: 2}), "a=1", "b=2")
			}, func(tr kv.Transaction) {
				tr.Set(e.k("bb"), []byte("x"))
				tr.Set(e.k("c"), []byte("x"))
				tr.Set(e.k("y"), []byte("x"))
			}, false)
		}},
		{"Conflict/LimitedRangeReadConflictsOnReadPart", func(e *env) {
			e.write("a", "1", "b", "2", "c", "3", "d", "4")
			e.race(func(tr kv.Transaction) {
				e.scan(tr, e.rng("a", "z"), kv.RangeOptions{Limit: 2})
			}, func(tr kv.Transaction) { tr.Set(e.k("a\x00"), []byte("phantom")) }, true)
		}},
		{"Conflict/LimitedReverseRangeReadConflictsOnlyOnWhatItRead", func(e *env) {
			// Reverse, limit 2: returns d and c; the conflict range is [c, z).
			e.write("a", "1", "b", "2", "c", "3", "d", "4")
			e.race(func(tr kv.Transaction) {
				wantStrings(e.t, "GetRange limit 2 reverse",
					e.scan(tr, e.rng("a", "z"), kv.RangeOptions{Limit: 2, Reverse: true}), "d=4", "c=3")
			}, func(tr kv.Transaction) {
				tr.Set(e.k("b\xff"), []byte("x"))
				tr.Set(e.k("a"), []byte("x"))
			}, false)
		}},
		{"Conflict/ReadModifyWriteRetryLoopLosesNothing", func(e *env) {
			// Concurrent read-increment-write loops retried with OnError:
			// conflicts make losers retry, so no increment is lost.
			const workers, each = 4, 10
			errs := make(chan error, workers)
			var wg sync.WaitGroup
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- e.incrementLoop(each)
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					e.t.Fatal(err)
				}
			}
			wantValue(e.t, "Get(counter)", e.read("counter"), []byte(strconv.Itoa(workers*each)))
		}},
		{"Conflict/OldReadVersionConflictsWithLaterWrite", func(e *env) {
			// Conflicts are checked from the read version, however it was
			// chosen: reading at an older version what was overwritten
			// since cannot commit.
			e.write("k", "old")
			probe := e.tx()
			old, err := probe.GetReadVersion().Get()
			wantNoErr(e.t, "GetReadVersion", err)
			e.write("k", "new")
			tr := e.tx()
			tr.SetReadVersion(old)
			wantValue(e.t, "Get(k) at the old version", e.get(tr, "k"), []byte("old"))
			tr.Set(e.k("derived"), []byte("from old"))
			wantCode(e.t, "Commit", tr.Commit().Err(), kv.ErrNotCommitted)
		}},
		{"Conflict/RetryAfterConflictSeesNewValue", func(e *env) {
			e.write("k", "1")
			tr1 := e.tx()
			wantValue(e.t, "Get(k)", e.get(tr1, "k"), []byte("1"))
			e.write("k", "2")
			tr1.Set(e.k("k"), []byte("from tr1"))
			err := tr1.Commit().Err()
			wantCode(e.t, "Commit", err, kv.ErrNotCommitted)
			wantNoErr(e.t, "OnError(not_committed)", tr1.OnError(err))
			wantValue(e.t, "Get(k) after OnError", e.get(tr1, "k"), []byte("2"))
			tr1.Set(e.k("k"), []byte("retried"))
			e.commit(tr1)
			wantValue(e.t, "Get(k) after retry", e.read("k"), []byte("retried"))
		}},
	}
}

// incrementLoop adds one to the decimal counter n times, each in the
// standard retry loop. It reports errors instead of failing the test
// because it runs off the test's goroutine.
func (e *env) incrementLoop(n int) error {
	for range n {
		tr, err := e.db.CreateTransaction(e.t.Context())
		if err != nil {
			return err
		}
		if err := tr.Options().SetMaxRetryDelay(10 * time.Millisecond); err != nil {
			return err
		}
		for {
			err := func() error {
				v, err := tr.Get(e.k("counter")).Get()
				if err != nil {
					return err
				}
				c := 0
				if v != nil {
					if c, err = strconv.Atoi(string(v)); err != nil {
						return err
					}
				}
				tr.Set(e.k("counter"), []byte(strconv.Itoa(c+1)))
				return tr.Commit().Err()
			}()
			if err == nil {
				break
			}
			if kv.MaybeCommitted(err) {
				// Retrying could count twice; the count would prove nothing.
				return fmt.Errorf("increment ended maybe-committed, the count is unknowable: %w", err)
			}
			if err := tr.OnError(err); err != nil {
				return err
			}
		}
	}
	return nil
}
