package kvtest

import (
	"bytes"

	"github.com/idemkv/idemkv/kv"
)

// padKey returns a key under the prefix padded with 'k' to exactly n bytes.
func (e *env) padKey(n int) []byte {
	e.t.Helper()
	if n < len(e.prefix) {
		e.t.Fatalf("kvtest: key of %d bytes is shorter than the prefix", n)
	}
	return append(append([]byte{}, e.prefix...), bytes.Repeat([]byte{'k'}, n-len(e.prefix))...)
}

// wantRefused checks that tr's commit fails with want, that a later read
// reports the same error (an invalid write poisons the transaction), and that
// nothing the transaction wrote is visible.
func (e *env) wantRefused(tr kv.Transaction, want *kv.Error) {
	e.t.Helper()
	tr.Set(e.k("valid"), []byte("must not be written"))
	_, err := tr.Get(e.k("valid")).Get()
	wantCode(e.t, "Get after the invalid write", err, want)
	wantCode(e.t, "Commit", tr.Commit().Err(), want)
	wantStrings(e.t, "keys after the refused commit", e.dump())
}

// limitCases check FoundationDB's size limits, the system keyspace and
// invalid option values.
func limitCases() []testCase {
	return []testCase{
		{"Limits/KeyTooLarge", func(e *env) {
			tr := e.tx()
			tr.Set(e.padKey(kv.MaxKeySize+1), []byte("v"))
			e.wantRefused(tr, kv.ErrKeyTooLarge)
		}},
		{"Limits/KeyAtLimitAccepted", func(e *env) {
			key := e.padKey(kv.MaxKeySize)
			tr := e.tx()
			tr.Set(key, []byte("v"))
			e.commit(tr)
			v, err := e.tx().Get(key).Get()
			wantNoErr(e.t, "Get of a key at the limit", err)
			wantValue(e.t, "Get of a key at the limit", v, []byte("v"))
		}},
		{"Limits/ValueTooLarge", func(e *env) {
			tr := e.tx()
			tr.Set(e.k("big"), make([]byte, kv.MaxValueSize+1))
			e.wantRefused(tr, kv.ErrValueTooLarge)
		}},
		{"Limits/ValueAtLimitAccepted", func(e *env) {
			val := bytes.Repeat([]byte{'v'}, kv.MaxValueSize)
			e.writeBytes("big", val)
			wantValue(e.t, "Get(big)", e.read("big"), val)
		}},
		{"Limits/AtomicParamTooLarge", func(e *env) {
			tr := e.tx()
			tr.Atomic(kv.BitOr, e.k("big"), make([]byte, kv.MaxValueSize+1))
			e.wantRefused(tr, kv.ErrValueTooLarge)
		}},
		{"Limits/TransactionTooLargeWithSizeLimit", func(e *env) {
			tr := e.tx()
			wantNoErr(e.t, "SetSizeLimit(1000)", tr.Options().SetSizeLimit(1000))
			for i := range 10 {
				tr.Set(e.k(string(rune('a'+i))), make([]byte, 200))
			}
			wantCode(e.t, "Commit of ~2,000 bytes under a 1,000-byte limit", tr.Commit().Err(), kv.ErrTransactionTooLarge)
			wantStrings(e.t, "keys after the refused commit", e.dump())
		}},
		{"Limits/ApproximateSizeGrows", func(e *env) {
			tr := e.tx()
			s0, err := tr.GetApproximateSize().Get()
			wantNoErr(e.t, "GetApproximateSize", err)
			tr.Set(e.k("a"), make([]byte, 1000))
			s1, err := tr.GetApproximateSize().Get()
			wantNoErr(e.t, "GetApproximateSize", err)
			if s1 < s0+1000 {
				e.t.Fatalf("approximate size %d after a 1,000-byte set, was %d", s1, s0)
			}
		}},
		{"Limits/SizeLimitOutOfRange", func(e *env) {
			tr := e.tx()
			wantCode(e.t, "SetSizeLimit(31)", tr.Options().SetSizeLimit(31), kv.ErrInvalidOptionValue)
			wantCode(e.t, "SetSizeLimit(DefaultSizeLimit+1)", tr.Options().SetSizeLimit(kv.DefaultSizeLimit+1), kv.ErrInvalidOptionValue)
			wantNoErr(e.t, "SetSizeLimit(32)", tr.Options().SetSizeLimit(32))
		}},
		{"Limits/InvertedClearRangeRefused", func(e *env) {
			// fdb_transaction_clear_range with begin > end records
			// inverted_range (2005) as the transaction's deferred error.
			e.write("a", "1", "c", "3")
			tr := e.tx()
			tr.ClearRange(e.rng("c", "a"))
			wantCode(e.t, "Commit after an inverted ClearRange", tr.Commit().Err(), kv.ErrInvertedRange)
			wantStrings(e.t, "keys after the refused commit", e.dump(), "a=1", "c=3")
		}},
		{"Limits/InvertedConflictRangeRefused", func(e *env) {
			tr := e.tx()
			wantCode(e.t, "AddReadConflictRange[c,a)", tr.AddReadConflictRange(e.rng("c", "a")), kv.ErrInvertedRange)
			wantCode(e.t, "AddWriteConflictRange[c,a)", tr.AddWriteConflictRange(e.rng("c", "a")), kv.ErrInvertedRange)
		}},
		{"SystemKeys/WriteRefusedWithoutOption", func(e *env) {
			tr := e.tx()
			tr.Set(append([]byte{kv.SystemPrefix}, e.k("sys")...), []byte("v"))
			e.wantRefused(tr, kv.ErrKeyOutsideLegalRange)
		}},
		{"SystemKeys/ReadRefusedWithoutOption", func(e *env) {
			tr := e.tx()
			_, err := tr.Get(append([]byte{kv.SystemPrefix}, e.k("sys")...)).Get()
			wantCode(e.t, "Get of a system key", err, kv.ErrKeyOutsideLegalRange)
			_, err = tr.GetRange(kv.Range{Begin: []byte{kv.SystemPrefix}, End: []byte{kv.SystemPrefix, kv.SystemPrefix}}, kv.RangeOptions{Limit: 1}).Get()
			wantCode(e.t, "GetRange of the system keyspace", err, kv.ErrKeyOutsideLegalRange)
		}},
		{"SystemKeys/ReadAllowedWithReadSystemKeys", func(e *env) {
			tr := e.tx()
			wantNoErr(e.t, "SetReadSystemKeys", tr.Options().SetReadSystemKeys())
			_, err := tr.Get(append([]byte{kv.SystemPrefix}, e.k("sys")...)).Get()
			wantNoErr(e.t, "Get of a system key with read_system_keys", err)
		}},
	}
}
