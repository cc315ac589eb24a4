package embedded

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/idemkv/idemkv/kv"
)

// model is the oracle for read-your-writes: a plain map that every write
// updates eagerly.
type model map[string][]byte

func (m model) apply(op kv.MutationType, key string, param []byte) {
	old, ok := m[key]
	v, present := kv.ApplyAtomic(op, old, ok, param)
	if present {
		m[key] = v
	} else {
		delete(m, key)
	}
}

func (m model) rangeRead(r kv.Range, o kv.RangeOptions) []kv.KeyValue {
	var keys []string
	for k := range m {
		if r.Contains([]byte(k)) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if o.Reverse {
		for i, j := 0, len(keys)-1; i < j; i, j = i+1, j-1 {
			keys[i], keys[j] = keys[j], keys[i]
		}
	}
	if o.Limit > 0 && len(keys) > o.Limit {
		keys = keys[:o.Limit]
	}
	out := make([]kv.KeyValue, 0, len(keys))
	for _, k := range keys {
		out = append(out, kv.KeyValue{Key: []byte(k), Value: m[k]})
	}
	return out
}

var atomicOps = []kv.MutationType{kv.Add, kv.BitAnd, kv.BitOr, kv.BitXor, kv.AppendIfFits, kv.Max, kv.Min, kv.ByteMin, kv.ByteMax, kv.CompareAndClear}

func TestReadYourWritesAgainstModel(t *testing.T) {
	// 12 keys keep a transaction's writes in entryIndex's slice; 80 keys
	// and 300 steps take many transactions past smallEntries to its tree.
	t.Run("small", func(t *testing.T) { readYourWritesAgainstModel(t, 12, 40) })
	t.Run("tree", func(t *testing.T) { readYourWritesAgainstModel(t, 80, 300) })
}

func readYourWritesAgainstModel(t *testing.T, keys, steps int) {
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 0x5157))
	db := openMem(t, nil)
	key := func() string { return string([]byte{'a' + byte(rng.IntN(keys))}) }
	val := func() []byte {
		b := make([]byte, rng.IntN(3))
		for i := range b {
			b[i] = byte(rng.IntN(4))
		}
		return b
	}
	rangeOf := func() kv.Range {
		a, b := key(), key()
		if a > b {
			a, b = b, a
		}
		return kv.Range{Begin: []byte(a), End: []byte(b + "\x00")}
	}
	for round := range 60 {
		// The committed state: what the last round left.
		m := model{}
		kvs := newTr(t, db).GetRange(kv.Range{Begin: nil, End: []byte{0xff}}, kv.RangeOptions{}).MustGet()
		for _, p := range kvs {
			m[string(p.Key)] = p.Value
		}
		tr := newTr(t, db)
		for step := range steps {
			where := fmt.Sprintf("round %d step %d", round, step)
			switch rng.IntN(9) {
			case 0, 1:
				k, v := key(), val()
				tr.Set([]byte(k), v)
				m[k] = v
			case 2:
				k := key()
				tr.Clear([]byte(k))
				delete(m, k)
			case 3:
				r := rangeOf()
				tr.ClearRange(r)
				for k := range m {
					if r.Contains([]byte(k)) {
						delete(m, k)
					}
				}
			case 4, 5:
				op, k, p := atomicOps[rng.IntN(len(atomicOps))], key(), val()
				tr.Atomic(op, []byte(k), p)
				m.apply(op, k, p)
			case 6:
				k := key()
				var got []byte
				if rng.IntN(2) == 0 {
					got = tr.Get([]byte(k)).MustGet()
				} else {
					got = tr.Snapshot().Get([]byte(k)).MustGet()
				}
				want, ok := m[k]
				if !bytes.Equal(got, want) || (got == nil) != !ok {
					t.Fatalf("%s: Get(%q) = %q, want %q (present %v)", where, k, got, want, ok)
				}
			default:
				r := rangeOf()
				o := kv.RangeOptions{Limit: rng.IntN(4), Reverse: rng.IntN(2) == 0}
				var rt kv.ReadTransaction = tr
				if rng.IntN(2) == 0 {
					rt = tr.Snapshot()
				}
				got := rt.GetRange(r, o).MustGet()
				want := m.rangeRead(r, o)
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("%s: GetRange(%v, %+v) =\n%q\nwant\n%q", where, r, o, got, want)
				}
			}
		}
		if err := tr.Commit().Err(); err != nil {
			t.Fatalf("round %d: commit: %v", round, err)
		}
		got := newTr(t, db).GetRange(kv.Range{Begin: nil, End: []byte{0xff}}, kv.RangeOptions{}).MustGet()
		if want := m.rangeRead(kv.Range{Begin: nil, End: []byte{0xff}}, kv.RangeOptions{}); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("round %d: committed state\n%q\nwant\n%q", round, got, want)
		}
	}
}

func TestRangeReadConflictCoversOnlyWhatWasRead(t *testing.T) {
	db := openMem(t, nil)
	for _, k := range []string{"a", "b", "c", "d"} {
		commitSet(t, db, k, "0")
	}
	for _, reverse := range []bool{false, true} {
		// Read two keys of four; a write beyond them must not conflict, a
		// write among them must.
		for _, c := range []struct {
			write    string
			conflict bool
		}{{"d", false}, {"b", true}} {
			w := c.write
			if reverse { // mirror: read d, c; "a" outside, "c" inside
				w = map[string]string{"d": "a", "b": "c"}[w]
			}
			tr := newTr(t, db)
			kvs := tr.GetRange(kv.Range{Begin: []byte("a"), End: []byte("z")}, kv.RangeOptions{Limit: 2, Reverse: reverse}).MustGet()
			if len(kvs) != 2 {
				t.Fatalf("read %d keys", len(kvs))
			}
			tr.Set([]byte("zz"), []byte("1")) // outside the range read
			commitSet(t, db, w, "1")
			err := tr.Commit().Err()
			if c.conflict {
				wantCode(t, fmt.Sprintf("reverse=%v write %s", reverse, w), err, kv.CodeNotCommitted)
			} else if err != nil {
				t.Fatalf("reverse=%v write %s outside the read part: %v", reverse, w, err)
			}
		}
	}
}

func TestOwnWritesAddNoReadConflict(t *testing.T) {
	db := openMem(t, nil)
	tr := newTr(t, db)
	tr.Set([]byte("k"), []byte("mine"))
	tr.ClearRange(kv.Range{Begin: []byte("m"), End: []byte("n")})
	tr.Get([]byte("k")).MustGet()
	tr.Get([]byte("m1")).MustGet()
	tr.GetRange(kv.Range{Begin: []byte("m"), End: []byte("n")}, kv.RangeOptions{}).MustGet()
	commitSet(t, db, "k", "theirs")
	commitSet(t, db, "m1", "theirs")
	if err := tr.Commit().Err(); err != nil {
		t.Fatalf("reads answered by own writes conflicted: %v", err)
	}
	// An atomic op's base comes from the database: that read conflicts.
	tr = newTr(t, db)
	tr.Atomic(kv.Add, []byte("n"), []byte{1})
	tr.Get([]byte("n")).MustGet()
	commitSet(t, db, "n", "\x05")
	wantCode(t, "read of an atomic op's result", tr.Commit().Err(), kv.CodeNotCommitted)
}

func TestClearRangeLargeAndSmall(t *testing.T) {
	// Both ways a ClearRange is applied (point deletes up to pointClearLimit
	// present keys, a range tombstone beyond) clear exactly the range, and a
	// Set after the clear in the same transaction survives.
	for _, n := range []int{10, pointClearLimit + 50} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			db := openMem(t, nil)
			tr := newTr(t, db)
			for i := range n {
				tr.Set([]byte(fmt.Sprintf("k%05d", i)), []byte("v"))
			}
			tr.Set([]byte("z"), []byte("outside"))
			if err := tr.Commit().Err(); err != nil {
				t.Fatal(err)
			}
			tr = newTr(t, db)
			tr.ClearRange(kv.Range{Begin: []byte("k"), End: []byte("l")})
			tr.Set([]byte("k00003"), []byte("again"))
			if err := tr.Commit().Err(); err != nil {
				t.Fatal(err)
			}
			got := newTr(t, db).GetRange(kv.Range{Begin: nil, End: []byte{0xff}}, kv.RangeOptions{}).MustGet()
			if fmt.Sprintf("%q", got) != `[{"k00003" "again"} {"z" "outside"}]` {
				t.Fatalf("after ClearRange: %q", got)
			}
		})
	}
}

func TestRewritesSupersedeEarlierPointWrites(t *testing.T) {
	// A Set or Clear drops the earlier point writes of its key from what
	// the commit sends (FoundationDB's write map coalesces them); atomic
	// operations stack on what came before until then.
	db := openMem(t, nil)
	tr := newTr(t, db).(*transaction)
	one := []byte{1}
	tr.Set([]byte("a"), []byte("1"))
	tr.Atomic(kv.Add, []byte("b"), one)
	tr.Set([]byte("c"), []byte("c"))
	live := func() (out []string) {
		for _, m := range tr.a.muts {
			if m.kind != mutSuperseded {
				out = append(out, fmt.Sprintf("%d:%s", m.kind, m.key))
			}
		}
		return out
	}
	if got := fmt.Sprint(live()); got != "[0:a 3:b 0:c]" {
		t.Fatalf("distinct keys: live mutations %s", got)
	}
	tr.Set([]byte("a"), []byte("\x02"))
	tr.Atomic(kv.Add, []byte("a"), one)
	if got := fmt.Sprint(live()); got != "[3:b 0:c 0:a 3:a]" {
		t.Fatalf("after a rewrite and an add: live mutations %s", got)
	}
	tr.Clear([]byte("c"))
	tr.Set([]byte("a"), []byte("\x05"))
	tr.Atomic(kv.Add, []byte("b"), one)
	if got := fmt.Sprint(live()); got != "[3:b 1:c 0:a 3:b]" {
		t.Fatalf("after Clear and Set: live mutations %s", got)
	}
	if err := tr.Commit().Err(); err != nil {
		t.Fatal(err)
	}
	r := newTr(t, db)
	for k, want := range map[string]string{"a": "\x05", "b": "\x02"} {
		if v := r.Get([]byte(k)).MustGet(); string(v) != want {
			t.Errorf("%s = %q, want %q", k, v, want)
		}
	}
	if v := r.Get([]byte("c")).MustGet(); v != nil {
		t.Errorf("c = %q after Clear", v)
	}
}
