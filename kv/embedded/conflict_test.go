package embedded

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/idemkv/idemkv/kv"
)

func TestConflictWindow(t *testing.T) {
	r := func(b, e string) kv.Range { return kv.Range{Begin: []byte(b), End: []byte(e)} }
	pt := func(k string) kv.Range { return kv.SingleKeyRange([]byte(k)) }
	var w conflictWindow
	w.add(10, []kv.Range{r("b", "c"), pt("x")})
	w.add(20, []kv.Range{r("m", "p"), pt("y")})
	w.add(30, []kv.Range{pt("x")}) // x rewritten
	cases := []struct {
		rv    int64
		reads []kv.Range
		want  bool
	}{
		{5, []kv.Range{r("a", "b")}, false},    // touches b's begin, half-open: no
		{5, []kv.Range{r("a", "b\x00")}, true}, // overlaps b
		{10, []kv.Range{r("b", "c")}, false},   // written at 10, read at 10: no
		{15, []kv.Range{r("o", "z")}, true},
		{20, []kv.Range{r("o", "z")}, true},  // x at 30 is inside
		{30, []kv.Range{r("o", "z")}, false}, // nothing after 30
		{5, []kv.Range{r("c", "m")}, false},
		{25, []kv.Range{pt("x")}, true},
		{25, []kv.Range{pt("y")}, false},
		{15, []kv.Range{pt("y")}, true},
		{15, []kv.Range{pt("a"), r("x\x00", "y")}, false},
		{15, []kv.Range{pt("a"), r("x\x00", "y\x00")}, true},
	}
	check := func(when string) {
		t.Helper()
		for _, c := range cases {
			if got := w.conflicts(c.rv, c.reads); got != c.want {
				t.Errorf("%s: conflicts(%d, %v) = %v, want %v", when, c.rv, c.reads, got, c.want)
			}
		}
	}
	check("as added")
	// A failed group at 40 is forgotten entirely.
	w.add(40, []kv.Range{pt("x"), pt("a"), r("c", "m")})
	w.dropFrom(40)
	check("after dropFrom")
	w.prune(15)
	if w.conflicts(5, []kv.Range{r("b", "c")}) {
		t.Error("pruned range still conflicts")
	}
	if !w.conflicts(5, []kv.Range{pt("x")}) {
		t.Error("x rewritten at 30 was pruned with its write at 10")
	}
	w.prune(31)
	if w.conflicts(0, []kv.Range{r("", "\xff")}) || len(w.points) != 0 || w.pointCount() != 0 {
		t.Errorf("window not empty after pruning everything: %d points", len(w.points))
	}
}

func TestConflictWindowAgainstModel(t *testing.T) {
	// The window against the obvious list of (version, range), over seeded
	// random writes, queries, prunes and dropped groups; with the default
	// block size and with blocks of 4 writes, so that queries cross full
	// (binary-searched) blocks, straddling ones and the open last one.
	// Range checks reaching far back cross the sorted runs of full blocks:
	// with 400 keys and narrow ranges ("narrow"), most of them find no
	// conflict in the newest blocks and go on into the runs; in the run
	// straddling the read version, scan=-1 always checks block by block
	// and scan=1<<30 always scans the entries in the read ranges.
	seed := testSeed(t)
	for _, c := range []struct {
		block, scan int
		narrow      bool
	}{{defaultConflictBlock, 0, false}, {4, 0, false}, {4, 0, true}, {4, -1, true}, {4, 1 << 30, true}} {
		t.Run(fmt.Sprintf("block=%d/scan=%d/narrow=%v", c.block, c.scan, c.narrow), func(t *testing.T) {
			testConflictWindowAgainstModel(t, seed, c.block, c.scan, c.narrow)
		})
	}
}

func testConflictWindowAgainstModel(t *testing.T, seed uint64, blockSize, runScan int, narrow bool) {
	rng := rand.New(rand.NewPCG(seed, 0xc0f1))
	type rec struct {
		v int64
		r kv.Range
	}
	w := conflictWindow{blockSize: blockSize, runScan: runScan}
	var model []rec
	floor := int64(0)
	key := func() []byte {
		if narrow {
			return []byte{byte('a' + rng.IntN(20)), byte('a' + rng.IntN(20))}
		}
		return []byte{byte('a' + rng.IntN(20))}
	}
	rnd := func() kv.Range {
		if rng.IntN(3) > 0 {
			return kv.SingleKeyRange(key())
		}
		if narrow {
			a := key()
			b := []byte{a[0], a[1] + byte(rng.IntN(3))}
			return kv.Range{Begin: a, End: append(b, 0)}
		}
		a, b := key(), key()
		if bytes.Compare(a, b) > 0 {
			a, b = b, a
		}
		return kv.Range{Begin: a, End: append(b, 0)}
	}
	for v := int64(1); v <= 3000; v++ {
		var rs []kv.Range
		for range rng.IntN(3) {
			rs = append(rs, rnd())
		}
		w.add(v, rs)
		for _, r := range rs {
			model = append(model, rec{v, r})
		}
		if rng.IntN(50) == 0 { // the group failed
			w.dropFrom(v)
			model = slices.DeleteFunc(model, func(x rec) bool { return x.v >= v })
		}
		if rng.IntN(20) == 0 {
			floor = max(floor, v-int64(rng.IntN(200))) // versions only age
			w.prune(floor)
		}
		for range 3 {
			rv := max(floor, v-int64(rng.IntN(300)))
			var reads []kv.Range
			for range 1 + rng.IntN(3) {
				reads = append(reads, rnd())
			}
			want := false
			for _, x := range model {
				for _, r := range reads {
					if x.v > rv && x.v >= floor && bytes.Compare(x.r.Begin, r.End) < 0 && bytes.Compare(r.Begin, x.r.End) < 0 {
						want = true
					}
				}
			}
			if got := w.conflicts(rv, reads); got != want {
				t.Fatalf("version %d: conflicts(%d, %v) = %v, want %v", v, rv, reads, got, want)
			}
		}
	}
}
