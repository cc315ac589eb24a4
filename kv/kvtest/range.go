package kvtest

import (
	"fmt"
	"strconv"

	"github.com/idemkv/idemkv/kv"
)

// rangeCases check GetRange: half-open bounds, limits and direction.
func rangeCases() []testCase {
	return []testCase{
		{"RangeRead/BeginInclusiveEndExclusive", func(e *env) {
			e.write("a", "1", "b", "2", "c", "3", "d", "4")
			got := e.scan(e.tx(), e.rng("b", "d"), kv.RangeOptions{})
			wantStrings(e.t, "GetRange[b,d)", got, "b=2", "c=3")
		}},
		{"RangeRead/KeyAfterIsFirstKeyPast", func(e *env) {
			// KeyAfter(k) = k+"\x00" is the smallest key greater than k, so
			// [k, KeyAfter(k)) holds exactly k and not k+"\x00\x00".
			e.write("k", "1", "k\x00\x00", "2", "k\x01", "3")
			got := e.scan(e.tx(), kv.SingleKeyRange(e.k("k")), kv.RangeOptions{})
			wantStrings(e.t, "GetRange(SingleKeyRange(k))", got, "k=1")
			got = e.scan(e.tx(), kv.Range{Begin: kv.KeyAfter(e.k("k")), End: e.k("k\x02")}, kv.RangeOptions{})
			wantStrings(e.t, "GetRange[KeyAfter(k), k\\x02)", got, "k\x00\x00=2", "k\x01=3")
		}},
		{"RangeRead/EmptyRange", func(e *env) {
			e.write("a", "1", "b", "2")
			got := e.scan(e.tx(), e.rng("b", "b"), kv.RangeOptions{})
			wantStrings(e.t, "GetRange[b,b)", got)
		}},
		{"RangeRead/InvertedRangeReadsNothing", func(e *env) {
			// FoundationDB resolves the selectors and returns nothing when
			// begin is after end; it is not an error for a read.
			e.write("a", "1", "b", "2", "c", "3")
			got := e.scan(e.tx(), e.rng("c", "a"), kv.RangeOptions{})
			wantStrings(e.t, "GetRange[c,a)", got)
		}},
		{"RangeRead/Limit", func(e *env) {
			e.write("a", "1", "b", "2", "c", "3", "d", "4")
			got := e.scan(e.tx(), e.all(), kv.RangeOptions{Limit: 3})
			wantStrings(e.t, "GetRange(limit 3)", got, "a=1", "b=2", "c=3")
			got = e.scan(e.tx(), e.all(), kv.RangeOptions{Limit: 10})
			wantStrings(e.t, "GetRange(limit 10)", got, "a=1", "b=2", "c=3", "d=4")
		}},
		{"RangeRead/Reverse", func(e *env) {
			e.write("a", "1", "b", "2", "c", "3", "d", "4")
			got := e.scan(e.tx(), e.rng("a", "d"), kv.RangeOptions{Reverse: true})
			wantStrings(e.t, "GetRange[a,d) reverse", got, "c=3", "b=2", "a=1")
		}},
		{"RangeRead/LimitReverse", func(e *env) {
			e.write("a", "1", "b", "2", "c", "3", "d", "4")
			got := e.scan(e.tx(), e.rng("a", "d"), kv.RangeOptions{Limit: 2, Reverse: true})
			wantStrings(e.t, "GetRange[a,d) limit 2 reverse", got, "c=3", "b=2")
		}},
		{"RangeRead/PrefixRangeExcludesNeighbours", func(e *env) {
			// Strinc("p") = "q": keys "p\xff\xff" are in, "q" and "o\xff" out.
			e.write("o\xff", "0", "p", "1", "p\x00", "2", "p\xff\xff", "3", "q", "4")
			r, err := kv.PrefixRange(e.k("p"))
			wantNoErr(e.t, "PrefixRange", err)
			got := e.scan(e.tx(), r, kv.RangeOptions{})
			wantStrings(e.t, "GetRange(PrefixRange(p))", got, "p=1", "p\x00=2", "p\xff\xff=3")
		}},
		{"RangeRead/EmptyValueIsPresent", func(e *env) {
			e.write("empty", "")
			v := e.read("empty")
			if v == nil || len(v) != 0 {
				e.t.Fatalf("Get(empty) = %s, want a present empty value", show(v))
			}
			wantValue(e.t, "Get(missing)", e.read("missing"), nil)
			got := e.scan(e.tx(), e.all(), kv.RangeOptions{})
			wantStrings(e.t, "GetRange", got, "empty=")
		}},
		{"RangeRead/UnsignedBytewiseOrder", func(e *env) {
			// Keys sort as unsigned bytes, and a key sorts before its
			// extensions.
			e.write("\xfe", "5", "a\x00", "4", "\x80", "3", "a", "2", "\x7f", "1", "\x00", "0", "", "e")
			got := e.scan(e.tx(), e.all(), kv.RangeOptions{})
			wantStrings(e.t, "GetRange", got, "=e", "\x00=0", "a=2", "a\x00=4", "\x7f=1", "\x80=3", "\xfe=5")
		}},
		{"RangeRead/ManyKeys", func(e *env) {
			// Enough pairs that a backend reading in batches (FoundationDB
			// streams range reads) must stitch several together.
			const n = 2500
			tr := e.tx()
			for i := range n {
				tr.Set(e.k(fmt.Sprintf("%05d", i)), []byte(strconv.Itoa(i)))
			}
			e.commit(tr)
			rd := e.tx()
			all := e.scan(rd, e.all(), kv.RangeOptions{})
			if len(all) != n || all[0] != "00000=0" || all[n-1] != "02499=2499" {
				e.t.Fatalf("GetRange of %d pairs: got %d, first %q", n, len(all), all[:min(len(all), 1)])
			}
			for i := 1; i < len(all); i++ {
				if all[i-1] >= all[i] {
					e.t.Fatalf("GetRange out of order at %d: %q then %q", i, all[i-1], all[i])
				}
			}
			lim := e.scan(rd, e.all(), kv.RangeOptions{Limit: 1001})
			if len(lim) != 1001 || lim[1000] != "01000=1000" {
				e.t.Fatalf("GetRange limit 1001: got %d pairs, last %q", len(lim), lim[len(lim)-1])
			}
			rev := e.scan(rd, e.rng("00100", "02000"), kv.RangeOptions{Limit: 1200, Reverse: true})
			if len(rev) != 1200 || rev[0] != "01999=1999" || rev[1199] != "00800=800" {
				e.t.Fatalf("GetRange[00100,02000) limit 1200 reverse: got %d pairs, %q ... %q", len(rev), rev[0], rev[len(rev)-1])
			}
		}},
		{"RangeRead/ClearRangeBoundaries", func(e *env) {
			e.write("a", "1", "b", "2", "c", "3", "d", "4")
			tr := e.tx()
			tr.ClearRange(e.rng("b", "d"))
			e.commit(tr)
			wantStrings(e.t, "after ClearRange[b,d)", e.dump(), "a=1", "d=4")
		}},
	}
}
