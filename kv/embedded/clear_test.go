package embedded

import (
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/idemkv/idemkv/kv"
)

// TestLargeClearIsFlushedOnceSnapshotsAllow checks the work the engine does
// after a ClearRange written as a Pebble range tombstone (see
// flushAfterClear): while a retained snapshot predates the clear, nothing
// is flushed, and a read starting inside the range steps over every key it
// cleared; once none does, a flush drops those keys and the same read
// steps over none.
func TestLargeClearIsFlushedOnceSnapshotsAllow(t *testing.T) {
	// On disk: the in-memory store is not Pebble, and drops what a clear
	// hides by itself.
	clk := newStepClock()
	db, err := Open(t.TempDir(), &Options{Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const n = 2000 // well over pointClearLimit: one range tombstone
	commit := func(write func(tr kv.Transaction)) {
		t.Helper()
		tr := newTr(t, db)
		write(tr)
		if err := tr.Commit().Err(); err != nil {
			t.Fatal(err)
		}
	}
	commit(func(tr kv.Transaction) {
		for i := range n {
			tr.Set(fmt.Appendf(nil, "c/%05d", i), []byte("v"))
		}
	})
	commit(func(tr kv.Transaction) {
		tr.ClearRange(kv.Range{Begin: []byte("c/"), End: []byte("c0")})
	})
	tick := func() {
		commit(func(tr kv.Transaction) {
			tr.Set([]byte("tick"), nil)
		})
	}
	// covered reads the cleared range from its start, as the janitor reads
	// a shard, and returns how many covered keys Pebble stepped over.
	covered := func() uint64 {
		t.Helper()
		it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: userKey([]byte("c/")), UpperBound: userKey([]byte("c0"))})
		if err != nil {
			t.Fatal(err)
		}
		defer it.Close()
		if it.First() {
			t.Fatalf("the cleared range still holds %q", it.Key())
		}
		return it.Stats().InternalStats.PointsCoveredByRangeTombstones
	}
	flushes := func() int64 { return db.pdb.Metrics().Flush.Count }

	before := flushes()
	if c := covered(); c < n {
		t.Fatalf("a read through the fresh clear stepped over %d covered keys, want all %d", c, n)
	}
	// Versions move one per commit while the clock stands still: the
	// snapshots from before the clear stay retained, and may read the keys.
	for range 3 {
		tick()
	}
	if f := flushes(); f != before {
		t.Fatalf("%d flushes while a snapshot older than the clear was retained", f-before)
	}
	if c := covered(); c < n {
		t.Fatalf("covered keys dropped (%d left of %d) while a snapshot older than the clear was retained", c, n)
	}
	// Past the five-second window, the next commit releases them.
	clk.Advance(6 * time.Second)
	tick()
	deadline := time.Now().Add(10 * time.Second)
	for flushes() == before || covered() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("ten seconds after the last snapshot older than the clear went: %d flushes, a read still steps over %d covered keys", flushes()-before, covered())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
