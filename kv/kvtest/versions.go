package kvtest

import (
	"bytes"
	"encoding/binary"
	"time"

	"github.com/idemkv/idemkv/kv"
)

// withOffset appends the little-endian 4-byte versionstamp offset that
// SetVersionstampedKey and SetVersionstampedValue expect.
func withOffset(b []byte, off int) []byte {
	return binary.LittleEndian.AppendUint32(append([]byte{}, b...), uint32(off))
}

// committedVersion returns tr's committed version, failing the test on error.
func (e *env) committedVersion(tr kv.Transaction) int64 {
	e.t.Helper()
	v, err := tr.GetCommittedVersion()
	if err != nil {
		e.t.Fatalf("GetCommittedVersion: %v", err)
	}
	return v
}

// stampKey commits one versionstamped key under "vs/" and returns the stamp
// and the committed version.
func (e *env) stampKey(value string) (kv.Versionstamp, int64) {
	e.t.Helper()
	head := e.k("vs/")
	key := withOffset(append(append([]byte{}, head...), make([]byte, 10)...), len(head))
	tr := e.tx()
	tr.Atomic(kv.SetVersionstampedKey, key, []byte(value))
	vsf := tr.GetVersionstamp()
	e.commit(tr)
	vs, err := vsf.Get()
	if err != nil {
		e.t.Fatalf("GetVersionstamp after commit: %v", err)
	}
	return vs, e.committedVersion(tr)
}

// versionCases check versions, MVCC reads and versionstamps.
func versionCases() []testCase {
	return []testCase{
		{"Versionstamp/KeyPlacementMatchesCommittedVersion", func(e *env) {
			vs, cv := e.stampKey("payload")
			if vs.Version() != cv {
				e.t.Fatalf("versionstamp version %d != GetCommittedVersion %d", vs.Version(), cv)
			}
			want := append(e.k("vs/"), vs[:]...)
			kvs, err := e.tx().GetRange(e.all(), kv.RangeOptions{}).Get()
			wantNoErr(e.t, "GetRange", err)
			if len(kvs) != 1 || !bytes.Equal(kvs[0].Key, want) || string(kvs[0].Value) != "payload" {
				e.t.Fatalf("after SetVersionstampedKey: %q, want one pair %q=payload", kvs, want)
			}
		}},
		{"Versionstamp/ValuePlacementMatchesCommittedVersion", func(e *env) {
			param := withOffset([]byte("v:0123456789:end"), 2)
			tr := e.tx()
			tr.Atomic(kv.SetVersionstampedValue, e.k("k"), param)
			vsf := tr.GetVersionstamp()
			e.commit(tr)
			vs, err := vsf.Get()
			wantNoErr(e.t, "GetVersionstamp", err)
			if vs.Version() != e.committedVersion(tr) {
				e.t.Fatalf("versionstamp version %d != committed version %d", vs.Version(), e.committedVersion(tr))
			}
			want := append(append([]byte("v:"), vs[:]...), ":end"...)
			wantValue(e.t, "Get(k)", e.read("k"), want)
		}},
		{"Versionstamp/TwoTransactionsOrdered", func(e *env) {
			vs1, cv1 := e.stampKey("first")
			vs2, cv2 := e.stampKey("second")
			if bytes.Compare(vs1[:], vs2[:]) >= 0 || cv1 >= cv2 {
				e.t.Fatalf("later commit's versionstamp %x (version %d) is not after %x (version %d)", vs2, cv2, vs1, cv1)
			}
			// The keys sort as the commits did.
			wantStrings(e.t, "values in key order", values(e, e.all()), "first", "second")
		}},
		{"Versionstamp/SameStampWithinTransaction", func(e *env) {
			// All versionstamped operations of one commit get its one stamp.
			tr := e.tx()
			for _, name := range []string{"x/", "y/"} {
				head := e.k(name)
				tr.Atomic(kv.SetVersionstampedKey, withOffset(append(head, make([]byte, 10)...), len(head)), nil)
			}
			tr.Atomic(kv.SetVersionstampedValue, e.k("v"), withOffset(make([]byte, 10), 0))
			vsf := tr.GetVersionstamp()
			e.commit(tr)
			vs, err := vsf.Get()
			wantNoErr(e.t, "GetVersionstamp", err)
			want := []string{"v=" + string(vs[:]), "x/" + string(vs[:]) + "=", "y/" + string(vs[:]) + "="}
			wantStrings(e.t, "keys after commit", e.dump(), want...)
		}},
		{"Versionstamp/BadKeyOffsetRefused", func(e *env) {
			// The offset must leave ten bytes for the stamp inside the key
			// (fdbclient/Atomic.h getVersionstampKeyRange):
			// client_invalid_operation (2000), and nothing is written.
			tr := e.tx()
			head := e.k("vs/")
			tr.Atomic(kv.SetVersionstampedKey, withOffset(append(head, make([]byte, 10)...), len(head)+1), []byte("v"))
			e.wantRefused(tr, kv.NewError(kv.CodeClientInvalidOperation))
		}},
		{"Versionstamp/ShortValueRefused", func(e *env) {
			// A versionstamped value needs at least its 4-byte offset.
			tr := e.tx()
			tr.Atomic(kv.SetVersionstampedValue, e.k("k"), []byte{0, 0})
			e.wantRefused(tr, kv.NewError(kv.CodeClientInvalidOperation))
		}},
		{"Versionstamp/UnreadableBeforeCommit", func(e *env) {
			// The value is not known until commit: FoundationDB's RYW refuses
			// to read it with accessed_unreadable (1036).
			tr := e.tx()
			tr.Atomic(kv.SetVersionstampedValue, e.k("k"), withOffset(make([]byte, 10), 0))
			_, err := tr.Get(e.k("k")).Get()
			wantCode(e.t, "Get of a versionstamped value before commit", err, kv.ErrAccessedUnreadable)
		}},
		{"Versionstamp/ReadOnlyCommitHasNone", func(e *env) {
			tr := e.tx()
			e.get(tr, "k")
			vsf := tr.GetVersionstamp()
			e.commit(tr)
			if vs, err := vsf.Get(); err == nil {
				e.t.Fatalf("GetVersionstamp of a read-only commit = %x, want an error", vs)
			}
		}},
		{"Versions/CommitVersionsIncrease", func(e *env) {
			var last int64 = -1
			for i := range 5 {
				tr := e.tx()
				tr.Set(e.k("k"), []byte{byte(i)})
				e.commit(tr)
				cv := e.committedVersion(tr)
				if cv <= last {
					e.t.Fatalf("commit %d at version %d, not after the previous %d", i, cv, last)
				}
				last = cv
			}
		}},
		{"Versions/NewReadVersionSeesEarlierCommits", func(e *env) {
			for i := range 5 {
				tr := e.tx()
				tr.Set(e.k("k"), []byte{byte(i)})
				e.commit(tr)
				cv := e.committedVersion(tr)
				rd := e.tx()
				rv, err := rd.GetReadVersion().Get()
				wantNoErr(e.t, "GetReadVersion", err)
				if rv < cv {
					e.t.Fatalf("read version %d after an acknowledged commit at %d", rv, cv)
				}
				wantValue(e.t, "Get(k)", e.get(rd, "k"), []byte{byte(i)})
			}
		}},
		{"Versions/SetReadVersionReadsOlderValue", func(e *env) {
			e.write("k", "old")
			tr := e.tx()
			oldRV, err := tr.GetReadVersion().Get()
			wantNoErr(e.t, "GetReadVersion", err)
			e.write("k", "new", "added", "x")
			wantValue(e.t, "Get(k) now", e.read("k"), []byte("new"))
			past := e.tx()
			past.SetReadVersion(oldRV)
			if rv, err := past.GetReadVersion().Get(); err != nil || rv != oldRV {
				e.t.Fatalf("GetReadVersion after SetReadVersion(%d) = %d, %v", oldRV, rv, err)
			}
			wantValue(e.t, "Get(k) at the older version", e.get(past, "k"), []byte("old"))
			wantStrings(e.t, "GetRange at the older version", e.scan(past, e.all(), kv.RangeOptions{}), "k=old")
		}},
		{"Versions/ReadsRepeatableWithinTransaction", func(e *env) {
			// Every read of a transaction is at its one read version: a
			// commit landing between two reads is invisible to both.
			e.write("k", "1")
			tr := e.tx()
			rv1, err := tr.GetReadVersion().Get()
			wantNoErr(e.t, "GetReadVersion", err)
			wantValue(e.t, "first Get(k)", e.get(tr, "k"), []byte("1"))
			e.write("k", "2", "new", "x")
			wantValue(e.t, "second Get(k)", e.get(tr, "k"), []byte("1"))
			wantValue(e.t, "snapshot Get(k)", e.get(tr.Snapshot(), "k"), []byte("1"))
			wantStrings(e.t, "GetRange", e.scan(tr, e.all(), kv.RangeOptions{}), "k=1")
			rv2, err := tr.GetReadVersion().Get()
			wantNoErr(e.t, "GetReadVersion", err)
			if rv1 != rv2 {
				e.t.Fatalf("read version changed within a transaction: %d then %d", rv1, rv2)
			}
		}},
		{"Versions/ReadOnlyCommitVersionIsMinusOne", func(e *env) {
			e.write("k", "v")
			tr := e.tx()
			e.get(tr, "k")
			e.commit(tr)
			if cv := e.committedVersion(tr); cv != -1 {
				e.t.Fatalf("committed version of a read-only transaction = %d, want -1", cv)
			}
		}},
		{"Versions/TransactionTooOldAfterFiveSeconds", func(e *env) {
			// Versions advance about VersionsPerSecond; a read version more
			// than MaxTransactionLifeVersions old is refused with
			// transaction_too_old (1007), which is retryable.
			e.write("k", "v")
			tr := e.tx()
			if _, err := tr.GetReadVersion().Get(); err != nil {
				e.t.Fatal(err)
			}
			time.Sleep(5500 * time.Millisecond)
			// Commits keep versions moving on engines that advance them
			// with commits as well as time.
			e.write("other", "x")
			_, err := tr.Get(e.k("k")).Get()
			wantCode(e.t, "Get after 5.5 s", err, kv.ErrTransactionTooOld)
			if !kv.IsRetryableNotCommitted(err) {
				e.t.Fatalf("transaction_too_old is not IsRetryableNotCommitted: %v", err)
			}
		}},
	}
}

// values returns the values in r, in key order, in a fresh transaction.
func values(e *env, r kv.Range) []string {
	e.t.Helper()
	kvs, err := e.tx().GetRange(r, kv.RangeOptions{}).Get()
	if err != nil {
		e.t.Fatalf("GetRange: %v", err)
	}
	out := []string{}
	for _, p := range kvs {
		out = append(out, string(p.Value))
	}
	return out
}
