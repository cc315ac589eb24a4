package kvtest

import (
	"bytes"
	"encoding/json"

	"github.com/idemkv/idemkv/kv"
)

// metadataVersionKey is FoundationDB's \xff/metadataVersion, and
// metadataVersionRequiredValue the only parameter SetVersionstampedValue
// may write to it: ten bytes for the stamp and the offset 0.
var (
	metadataVersionKey           = []byte("\xff/metadataVersion")
	metadataVersionRequiredValue = make([]byte, 14)
)

// stampedKey returns head + ten placeholder bytes + tail with the offset
// of the stamp appended, for SetVersionstampedKey.
func stampedKey(head, tail []byte) []byte {
	k := append(append(append([]byte{}, head...), make([]byte, 10)...), tail...)
	return withOffset(k, len(head))
}

// fdbKeyCases check the versionstamped-key rules, what the size limit
// counts, clears of oversized keys, system key sizes and the keys with a
// special meaning (fdbclient/ReadYourWrites.cpp, Atomic.h, NativeAPI).
func fdbKeyCases() []testCase {
	return []testCase{
		{"Versionstamp/KeyRangeUnreadable", func(e *env) {
			// RYW atomicOp: the range where a versionstamped key can land
			// (getVersionstampKeyRange) is unreadable until commit.
			e.write("a", "1", "z", "26")
			tr := e.tx()
			tr.Atomic(kv.SetVersionstampedKey, stampedKey(e.k("q/"), []byte("/tail")), []byte("v"))
			_, err := tr.GetRange(e.all(), kv.RangeOptions{}).Get()
			wantCode(e.t, "GetRange over the stamped key's range", err, kv.ErrAccessedUnreadable)
			_, err = tr.Get(append(e.k("q/"), bytes.Repeat([]byte{0xfe}, 10)...)).Get()
			wantCode(e.t, "Get inside the stamped key's range", err, kv.ErrAccessedUnreadable)
			wantValue(e.t, "Get outside it", e.get(tr, "a"), []byte("1"))
			wantStrings(e.t, "GetRange below it", e.scan(tr, e.rng("a", "q/"), kv.RangeOptions{}), "a=1")
			wantStrings(e.t, "GetRange above it", e.scan(tr, e.rng("q0", "zz"), kv.RangeOptions{}), "z=26")
		}},
		{"Versionstamp/KeyConflictIsTheRealKey", func(e *env) {
			// The commit proxy adds the stamped key itself as the write
			// conflict range, not every key it could have been: a consumer
			// that read the queue's head does not conflict with a producer
			// appending behind it.
			head := append(e.k("q/"), make([]byte, 10)...)
			tr := e.tx()
			tr.Set(head, []byte("first"))
			e.commit(tr)
			consumer := e.tx()
			got, err := consumer.GetRange(kv.Range{Begin: e.k("q/"), End: e.k("q0")}, kv.RangeOptions{Limit: 1}).Get()
			if err != nil || len(got) != 1 || !bytes.Equal(got[0].Key, head) {
				e.t.Fatalf("consumer's head read: %q, %v", got, err)
			}
			producer := e.tx()
			producer.Atomic(kv.SetVersionstampedKey, stampedKey(e.k("q/"), nil), []byte("second"))
			e.commit(producer)
			consumer.Clear(head)
			wantNoErr(e.t, "consumer's commit after a producer appended behind the head", consumer.Commit().Err())
			wantStrings(e.t, "values", values(e, e.all()), "second")
		}},
		{"Versionstamp/KeyOffsetZeroAccepted", func(e *env) {
			// An offset of 0 is legal (pos >= 0). Committing would write
			// outside the case's prefix, so the case only checks that the
			// operation is accepted — a read below the range the key may
			// land in reports no deferred error; one inside is unreadable —
			// then resets.
			tr := e.tx()
			tr.Atomic(kv.SetVersionstampedKey, withOffset(append(make([]byte, 10), e.k("x")...), 0), []byte("v"))
			_, err := tr.Get([]byte{0}).Get()
			wantNoErr(e.t, "Get below the range after SetVersionstampedKey at offset 0", err)
			_, err = tr.Get(e.k("a")).Get()
			wantCode(e.t, "Get inside it", err, kv.ErrAccessedUnreadable)
			tr.Reset()
		}},
		{"Versionstamp/OffsetBytesCountAgainstLimits", func(e *env) {
			// RYW atomicOp checks key.size() and operand.size() as given,
			// the four offset bytes included.
			pad := func(n int) []byte { // n bytes with the offset, stamp at the prefix
				return stampedKey(e.k("vs/"), bytes.Repeat([]byte{'k'}, n-4-10-len(e.k("vs/"))))
			}
			tr := e.tx()
			tr.Atomic(kv.SetVersionstampedKey, pad(kv.MaxKeySize), []byte("v"))
			e.commit(tr)
			tr = e.tx()
			tr.Atomic(kv.SetVersionstampedKey, pad(kv.MaxKeySize+1), []byte("v"))
			wantCode(e.t, "Commit of a stamped key one byte over with its offset", tr.Commit().Err(), kv.ErrKeyTooLarge)
			tr = e.tx()
			tr.Atomic(kv.SetVersionstampedValue, e.k("v"), withOffset(make([]byte, kv.MaxValueSize-3), 0))
			wantCode(e.t, "Commit of a stamped value one byte over with its offset", tr.Commit().Err(), kv.ErrValueTooLarge)
		}},
		{"Limits/SizeCountsCoalescedMutations", func(e *env) {
			// NativeAPI checks the size of the commit request: the RYW
			// write map sends one mutation per key however often it was
			// set, and merged conflict ranges.
			tr := e.tx()
			val := bytes.Repeat([]byte{'v'}, 60_000)
			for range 200 { // 12 MB of calls, one 60 kB mutation sent
				tr.Set(e.k("k"), val)
			}
			e.commit(tr)
			tr = e.tx()
			wantNoErr(e.t, "SetSizeLimit(1000)", tr.Options().SetSizeLimit(1000))
			for range 100 { // 100 reads of one key: one conflict range
				e.get(tr, "r")
			}
			tr.Set(e.k("w"), []byte("x"))
			e.commit(tr)
		}},
		{"Limits/ReadOnlyNotChecked", func(e *env) {
			// A read-only transaction sends no commit, so no size check.
			tr := e.tx()
			wantNoErr(e.t, "SetSizeLimit(1000)", tr.Options().SetSizeLimit(1000))
			for i := range 100 {
				e.get(tr, string(rune('A'+i%26))+string(rune('a'+i/26)))
			}
			e.commit(tr)
		}},
		{"Limits/ClearOfOversizedKeyIgnored", func(e *env) {
			// RYW clear: no key is longer than the limit, so clearing one
			// is accepted and does nothing; a range clear's ends are cut.
			e.write("a", "1")
			tr := e.tx()
			tr.Clear(e.padKey(kv.MaxKeySize + 100))
			tr.ClearRange(kv.Range{Begin: e.padKey(kv.MaxKeySize + 100), End: e.padKey(kv.MaxKeySize + 200)})
			e.commit(tr)
			wantStrings(e.t, "keys", e.dump(), "a=1")
		}},
		{"SystemKeys/KeysUpTo30000Bytes", func(e *env) {
			// getMaxWriteKeySize: SYSTEM_KEY_SIZE_LIMIT (30,000) for keys
			// in \xff. Nothing is committed.
			sys := func(n int) []byte {
				k := append([]byte{kv.SystemPrefix}, e.k("sys")...)
				return append(k, bytes.Repeat([]byte{'k'}, n-len(k))...)
			}
			tr := e.tx()
			wantNoErr(e.t, "SetAccessSystemKeys", tr.Options().SetAccessSystemKeys())
			tr.Set(sys(20_000), []byte("v"))
			v, err := tr.Get(sys(20_000)).Get()
			wantNoErr(e.t, "Get of a 20,000-byte system key set in the transaction", err)
			wantValue(e.t, "its value", v, []byte("v"))
			tr.Set(sys(30_001), []byte("v"))
			_, err = tr.Get(e.k("a")).Get()
			wantCode(e.t, "Get after setting a 30,001-byte system key", err, kv.ErrKeyTooLarge)
			tr.Reset()
		}},
		{"SystemKeys/MetadataVersion", func(e *env) {
			// \xff/metadataVersion is readable without options, and
			// writable only by SetVersionstampedValue with the required
			// value; a set is client_invalid_operation (2000). Nothing is
			// committed.
			_, err := e.tx().Get(metadataVersionKey).Get()
			wantNoErr(e.t, "Get(\\xff/metadataVersion) without options", err)
			tr := e.tx()
			tr.Atomic(kv.SetVersionstampedValue, metadataVersionKey, metadataVersionRequiredValue)
			_, err = tr.Get(e.k("a")).Get()
			wantNoErr(e.t, "Get after bumping the metadata version", err)
			_, err = tr.Get(metadataVersionKey).Get()
			wantCode(e.t, "Get of the bumped metadata version", err, kv.ErrAccessedUnreadable)
			tr.Reset()
			tr.Set(metadataVersionKey, []byte("x"))
			_, err = tr.Get(e.k("a")).Get()
			wantCode(e.t, "Get after Set(\\xff/metadataVersion)", err, kv.NewError(kv.CodeClientInvalidOperation))
			tr.Reset()
			tr.Atomic(kv.SetVersionstampedValue, metadataVersionKey, withOffset(make([]byte, 11), 0))
			_, err = tr.Get(e.k("a")).Get()
			wantCode(e.t, "Get after a stamped value other than the required one", err, kv.NewError(kv.CodeClientInvalidOperation))
		}},
		{"SpecialKeys/StatusJSON", func(e *env) {
			// \xff\xff/status/json is readable without options and holds
			// the status document: a JSON object with "client" and
			// "cluster".
			v, err := e.tx().Get([]byte("\xff\xff/status/json")).Get()
			wantNoErr(e.t, "Get(\\xff\\xff/status/json)", err)
			var doc map[string]json.RawMessage
			if err := json.Unmarshal(v, &doc); err != nil {
				e.t.Fatalf("status/json is not a JSON object: %v: %.200s", err, v)
			}
			if doc["client"] == nil || doc["cluster"] == nil {
				e.t.Fatalf("status/json lacks client or cluster: %.300s", v)
			}
		}},
	}
}
