package kvtest

import (
	"bytes"

	"github.com/idemkv/idemkv/kv"
)

// atomicCheck is one application of an atomic operation: the value before
// (nil: absent), the parameter, and the value FoundationDB leaves (nil:
// absent). Expected bytes are written out literally, from FoundationDB's
// fdbclient/Atomic.h semantics, never computed with kv.ApplyAtomic, so that
// the suite checks that function too.
type atomicCheck struct {
	name                    string
	existing, param, result []byte
}

// checkAtomic stores each check's existing value under its own key, applies
// op with the check's parameter in one transaction, commits, and compares
// what a new transaction reads.
func (e *env) checkAtomic(op kv.MutationType, checks []atomicCheck) {
	e.t.Helper()
	setup := e.tx()
	for _, c := range checks {
		if c.existing != nil {
			setup.Set(e.k(c.name), c.existing)
		}
	}
	e.commit(setup)
	tr := e.tx()
	for _, c := range checks {
		tr.Atomic(op, e.k(c.name), c.param)
	}
	e.commit(tr)
	rd := e.tx()
	for _, c := range checks {
		got := e.get(rd, c.name)
		if (got == nil) != (c.result == nil) || !bytes.Equal(got, c.result) {
			e.t.Errorf("%v on %s with param %s (%s) = %s, want %s",
				op, show(c.existing), show(c.param), c.name, show(got), show(c.result))
		}
	}
}

func b(v ...byte) []byte { return append([]byte{}, v...) }

// atomicCases check the byte semantics of every atomic operation.
func atomicCases() []testCase {
	return []testCase{
		{"Atomic/AddCarryAndLength", func(e *env) {
			e.checkAtomic(kv.Add, []atomicCheck{
				{"carry", b(0xff, 0x01), b(0x01, 0x00), b(0x00, 0x02)},
				{"carry-chain", b(0xff, 0xff, 0x00), b(0x01, 0x00, 0x00), b(0x00, 0x00, 0x01)},
				{"carry-dropped", b(0xff, 0xff), b(0x01, 0x00), b(0x00, 0x00)},
				{"one-byte-wrap", b(0xff), b(0x02), b(0x01)},
				{"little-endian", b(0x00, 0x01), b(0x01, 0x01), b(0x01, 0x02)},
			})
		}},
		{"Atomic/AddShorterExistingIsZeroExtended", func(e *env) {
			e.checkAtomic(kv.Add, []atomicCheck{
				{"shorter", b(0x01), b(0x01, 0x01, 0x00, 0x00), b(0x02, 0x01, 0x00, 0x00)},
				{"shorter-carry", b(0xff), b(0x01, 0x00), b(0x00, 0x01)},
				{"empty", b(), b(0x05, 0x00), b(0x05, 0x00)},
			})
		}},
		{"Atomic/AddLongerExistingIsTruncated", func(e *env) {
			e.checkAtomic(kv.Add, []atomicCheck{
				{"longer", b(0x01, 0x02, 0x03), b(0x01), b(0x02)},
				{"longer-carry-dropped", b(0xff, 0x02, 0x03), b(0x01, 0x00), b(0x00, 0x03)},
			})
		}},
		{"Atomic/AddAbsentIsParam", func(e *env) {
			e.checkAtomic(kv.Add, []atomicCheck{
				{"absent", nil, b(0x05, 0x00, 0x00, 0x00), b(0x05, 0x00, 0x00, 0x00)},
				{"absent-zero", nil, b(0x00), b(0x00)},
			})
		}},
		{"Atomic/BitAnd", func(e *env) {
			e.checkAtomic(kv.BitAnd, []atomicCheck{
				{"same-length", b(0xf0, 0x0f), b(0x3c, 0xff), b(0x30, 0x0f)},
				{"shorter", b(0xff), b(0x0f, 0xff), b(0x0f, 0x00)},
				{"longer", b(0xff, 0xff, 0xff), b(0x0f), b(0x0f)},
				{"absent-is-param", nil, b(0x0f, 0xf0), b(0x0f, 0xf0)},
			})
		}},
		{"Atomic/BitOr", func(e *env) {
			e.checkAtomic(kv.BitOr, []atomicCheck{
				{"same-length", b(0xf0, 0x01), b(0x0f, 0x10), b(0xff, 0x11)},
				{"shorter", b(0x01), b(0x10, 0x10), b(0x11, 0x10)},
				{"longer", b(0x01, 0x02, 0x03), b(0x10), b(0x11)},
				{"absent", nil, b(0x0a, 0x0b), b(0x0a, 0x0b)},
			})
		}},
		{"Atomic/BitXor", func(e *env) {
			e.checkAtomic(kv.BitXor, []atomicCheck{
				{"same-length", b(0xff, 0x0f), b(0x0f, 0x0f), b(0xf0, 0x00)},
				{"shorter", b(0x01), b(0x03, 0x01), b(0x02, 0x01)},
				{"longer", b(0x01, 0x02), b(0x01), b(0x00)},
				{"absent", nil, b(0x0a), b(0x0a)},
			})
		}},
		{"Atomic/MaxLittleEndianUnsigned", func(e *env) {
			e.checkAtomic(kv.Max, []atomicCheck{
				// 0x0100 = 256 beats 0x00ff = 255: the high byte is last.
				{"le-existing-wins", b(0x00, 0x01), b(0xff, 0x00), b(0x00, 0x01)},
				{"le-param-wins", b(0xff, 0x00), b(0x00, 0x01), b(0x00, 0x01)},
				{"unsigned", b(0x80), b(0x7f), b(0x80)},
				{"shorter-extended", b(0x05), b(0x04, 0x00), b(0x05, 0x00)},
				{"longer-truncated", b(0x01, 0x00, 0x09), b(0x02, 0x00), b(0x02, 0x00)},
				{"absent", nil, b(0x03, 0x00), b(0x03, 0x00)},
			})
		}},
		{"Atomic/MinLittleEndianUnsigned", func(e *env) {
			e.checkAtomic(kv.Min, []atomicCheck{
				{"le-param-wins", b(0x00, 0x01), b(0xff, 0x00), b(0xff, 0x00)},
				{"le-existing-wins", b(0xff, 0x00), b(0x00, 0x01), b(0xff, 0x00)},
				{"unsigned", b(0x80), b(0x7f), b(0x7f)},
				{"shorter-extended", b(0x05), b(0x06, 0x00), b(0x05, 0x00)},
				{"longer-truncated", b(0x01, 0x00, 0x09), b(0x02, 0x00), b(0x01, 0x00)},
				{"absent-is-param", nil, b(0x03, 0x00), b(0x03, 0x00)},
			})
		}},
		{"Atomic/ByteMinByteMax", func(e *env) {
			e.checkAtomic(kv.ByteMin, []atomicCheck{
				{"min-param", []byte("b"), []byte("ab"), []byte("ab")},
				{"min-existing", []byte("abc"), []byte("b"), []byte("abc")},
				{"min-prefix", []byte("ab"), []byte("abc"), []byte("ab")},
				{"min-absent", nil, []byte("zz"), []byte("zz")},
			})
			e.checkAtomic(kv.ByteMax, []atomicCheck{
				{"max-existing", []byte("b"), []byte("ab"), []byte("b")},
				{"max-param", []byte("abc"), []byte("b"), []byte("b")},
				{"max-prefix", []byte("ab"), []byte("abc"), []byte("abc")},
				{"max-absent", nil, []byte("aa"), []byte("aa")},
			})
		}},
		{"Atomic/CompareAndClear", func(e *env) {
			e.checkAtomic(kv.CompareAndClear, []atomicCheck{
				{"equal-clears", []byte("v"), []byte("v"), nil},
				{"different-stays", []byte("v"), []byte("w"), []byte("v")},
				{"prefix-stays", []byte("vv"), []byte("v"), []byte("vv")},
				{"absent-stays-absent", nil, []byte("v"), nil},
				{"empty-equal-clears", b(), b(), nil},
			})
		}},
		{"Atomic/AppendIfFits", func(e *env) {
			e.checkAtomic(kv.AppendIfFits, []atomicCheck{
				{"append", []byte("ab"), []byte("cd"), []byte("abcd")},
				{"absent", nil, []byte("cd"), []byte("cd")},
			})
			// A value at the limit is left as it was.
			full := bytes.Repeat([]byte{'x'}, kv.MaxValueSize-1)
			e.checkAtomic(kv.AppendIfFits, []atomicCheck{
				{"fits-exactly", full, []byte("y"), append(bytes.Repeat([]byte{'x'}, kv.MaxValueSize-1), 'y')},
				{"does-not-fit", full, []byte("yz"), full},
			})
		}},
		{"Atomic/ConcurrentAddsAllApply", func(e *env) {
			// Atomic ops take no read conflict, so overlapping adders all
			// commit and none is lost.
			trs := make([]kv.Transaction, 5)
			for i := range trs {
				trs[i] = e.tx()
				if _, err := trs[i].GetReadVersion().Get(); err != nil {
					e.t.Fatal(err)
				}
				trs[i].Atomic(kv.Add, e.k("n"), b(0x01, 0x01))
			}
			for _, tr := range trs {
				e.commit(tr)
			}
			wantValue(e.t, "Get(n)", e.read("n"), b(0x05, 0x05))
		}},
	}
}
