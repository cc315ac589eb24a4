package kvtest

import (
	"github.com/idemkv/idemkv/kv"
)

// rywCases check read-your-writes: a transaction's reads see its own
// uncommitted sets, clears, range clears and atomic operations, merged with
// the database's values; other transactions do not.
func rywCases() []testCase {
	return []testCase{
		{"RYW/OwnSet", func(e *env) {
			e.write("k", "old")
			tr := e.tx()
			tr.Set(e.k("k"), []byte("new"))
			tr.Set(e.k("fresh"), []byte("v"))
			wantValue(e.t, "Get(k) after Set", e.get(tr, "k"), []byte("new"))
			wantValue(e.t, "Get(fresh) after Set", e.get(tr, "fresh"), []byte("v"))
		}},
		{"RYW/OwnClear", func(e *env) {
			e.write("k", "old")
			tr := e.tx()
			tr.Clear(e.k("k"))
			wantValue(e.t, "Get(k) after Clear", e.get(tr, "k"), nil)
			tr.Set(e.k("k"), []byte("again"))
			wantValue(e.t, "Get(k) after Clear, Set", e.get(tr, "k"), []byte("again"))
		}},
		{"RYW/ClearRangeHidesDatabaseValues", func(e *env) {
			e.write("a", "1", "b", "2", "c", "3")
			tr := e.tx()
			tr.ClearRange(e.rng("a", "c"))
			wantValue(e.t, "Get(a) after ClearRange[a,c)", e.get(tr, "a"), nil)
			wantValue(e.t, "Get(b) after ClearRange[a,c)", e.get(tr, "b"), nil)
			wantValue(e.t, "Get(c) after ClearRange[a,c)", e.get(tr, "c"), []byte("3"))
			wantStrings(e.t, "GetRange after ClearRange[a,c)", e.scan(tr, e.all(), kv.RangeOptions{}), "c=3")
		}},
		{"RYW/ClearRangeThenSet", func(e *env) {
			e.write("a", "1", "b", "2", "c", "3")
			tr := e.tx()
			tr.ClearRange(e.rng("a", "z"))
			tr.Set(e.k("b"), []byte("new"))
			wantValue(e.t, "Get(b)", e.get(tr, "b"), []byte("new"))
			wantStrings(e.t, "GetRange in transaction", e.scan(tr, e.all(), kv.RangeOptions{}), "b=new")
			e.commit(tr)
			wantStrings(e.t, "GetRange after commit", e.dump(), "b=new")
		}},
		{"RYW/SetThenClearRange", func(e *env) {
			e.write("a", "1")
			tr := e.tx()
			tr.Set(e.k("b"), []byte("2"))
			tr.ClearRange(e.rng("a", "c"))
			wantStrings(e.t, "GetRange in transaction", e.scan(tr, e.all(), kv.RangeOptions{}))
			e.commit(tr)
			wantStrings(e.t, "GetRange after commit", e.dump())
		}},
		{"RYW/AtomicReadBack", func(e *env) {
			e.writeBytes("n", []byte{5, 0})
			tr := e.tx()
			tr.Atomic(kv.Add, e.k("n"), []byte{3, 0})
			tr.Atomic(kv.Add, e.k("n"), []byte{2, 0})
			tr.Atomic(kv.Add, e.k("absent"), []byte{7})
			wantValue(e.t, "Get(n) after two adds", e.get(tr, "n"), []byte{10, 0})
			wantValue(e.t, "Get(absent) after add", e.get(tr, "absent"), []byte{7})
			e.commit(tr)
			wantValue(e.t, "Get(n) after commit", e.read("n"), []byte{10, 0})
		}},
		{"RYW/AtomicAfterSetAndClear", func(e *env) {
			tr := e.tx()
			tr.Set(e.k("s"), []byte{0xff, 0x00})
			tr.Atomic(kv.Add, e.k("s"), []byte{0x01, 0x00})
			tr.Set(e.k("c"), []byte{9})
			tr.Clear(e.k("c"))
			tr.Atomic(kv.BitOr, e.k("c"), []byte{0x30})
			wantValue(e.t, "Get(s) after Set, Add", e.get(tr, "s"), []byte{0x00, 0x01})
			wantValue(e.t, "Get(c) after Clear, Or", e.get(tr, "c"), []byte{0x30})
			e.commit(tr)
			wantValue(e.t, "Get(s) after commit", e.read("s"), []byte{0x00, 0x01})
			wantValue(e.t, "Get(c) after commit", e.read("c"), []byte{0x30})
		}},
		{"RYW/RangeMergesOwnWrites", func(e *env) {
			e.write("a", "1", "c", "3", "e", "5", "g", "7")
			tr := e.tx()
			tr.Set(e.k("b"), []byte("2"))
			tr.Clear(e.k("c"))
			tr.Set(e.k("e"), []byte("five"))
			tr.ClearRange(e.rng("f", "h"))
			tr.Set(e.k("f"), []byte("6"))
			wantStrings(e.t, "GetRange", e.scan(tr, e.all(), kv.RangeOptions{}),
				"a=1", "b=2", "e=five", "f=6")
		}},
		{"RYW/RangeMergesOwnWritesLimitReverse", func(e *env) {
			e.write("a", "1", "c", "3", "e", "5")
			tr := e.tx()
			tr.Set(e.k("d"), []byte("4"))
			tr.Clear(e.k("e"))
			tr.Set(e.k("f"), []byte("6"))
			wantStrings(e.t, "GetRange limit 3 reverse", e.scan(tr, e.all(), kv.RangeOptions{Limit: 3, Reverse: true}),
				"f=6", "d=4", "c=3")
			wantStrings(e.t, "GetRange limit 2", e.scan(tr, e.all(), kv.RangeOptions{Limit: 2}),
				"a=1", "c=3")
		}},
		{"RYW/SnapshotSeesOwnWrites", func(e *env) {
			e.write("a", "1", "b", "2")
			tr := e.tx()
			tr.Set(e.k("a"), []byte("one"))
			tr.Clear(e.k("b"))
			tr.Set(e.k("c"), []byte("3"))
			snap := tr.Snapshot()
			wantValue(e.t, "Snapshot Get(a)", e.get(snap, "a"), []byte("one"))
			wantValue(e.t, "Snapshot Get(b)", e.get(snap, "b"), nil)
			wantStrings(e.t, "Snapshot GetRange", e.scan(snap, e.all(), kv.RangeOptions{}), "a=one", "c=3")
		}},
		{"RYW/UncommittedInvisibleToOthers", func(e *env) {
			e.write("k", "old")
			tr := e.tx()
			tr.Set(e.k("k"), []byte("new"))
			tr.Set(e.k("other"), []byte("x"))
			wantValue(e.t, "Get(k) in another transaction", e.read("k"), []byte("old"))
			wantStrings(e.t, "GetRange in another transaction", e.dump(), "k=old")
			e.commit(tr)
			wantStrings(e.t, "GetRange after commit", e.dump(), "k=new", "other=x")
		}},
		{"RYW/ResetClearsWrites", func(e *env) {
			tr := e.tx()
			tr.Set(e.k("k"), []byte("v"))
			tr.Reset()
			wantValue(e.t, "Get(k) after Reset", e.get(tr, "k"), nil)
			tr.Set(e.k("j"), []byte("w"))
			e.commit(tr)
			wantStrings(e.t, "GetRange after commit", e.dump(), "j=w")
		}},
	}
}
