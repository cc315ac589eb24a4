package kvtest

import (
	"bytes"
	"errors"
	"time"

	"github.com/idemkv/idemkv/kv"
)

// FoundationDB codes these cases expect that the kv package does not name.
var (
	errReadVersionAlreadySet   = kv.NewError(2010) // read_version_already_set
	errVersionInvalid          = kv.NewError(2011) // version_invalid
	errRangeLimitsInvalid      = kv.NewError(2012) // range_limits_invalid
	errTransactionInvalidVersn = kv.NewError(2020) // transaction_invalid_version
	errProxyTagThrottled       = kv.NewError(1223) // proxy_tag_throttled (7.3)
)

// lifecycleCases check what a transaction allows between Commit, OnError
// and Reset, SetReadVersion's misuse, and the versionstamp of a failed
// commit (fdbclient/ReadYourWrites.cpp, NativeAPI.actor.cpp).
func lifecycleCases() []testCase {
	return []testCase{
		{"Commit/UsedDuringCommitUntilReset", func(e *env) {
			// RYW's checkUsedDuringCommit: once Commit has been called,
			// every read and a second Commit fail with used_during_commit
			// (2017) until onError or reset — after a successful commit too
			// (API >= 410 does not reset). FoundationDB's getVersionstamp
			// fails the same way; kv's GetVersionstamp is promised after a
			// successful commit (kv/fdbkv asks for it before committing),
			// so the case does not check it.
			tr := e.tx()
			tr.Set(e.k("a"), []byte("1"))
			e.commit(tr)
			_, err := tr.Get(e.k("a")).Get()
			wantCode(e.t, "Get after Commit", err, kv.ErrUsedDuringCommit)
			_, err = tr.GetRange(e.all(), kv.RangeOptions{}).Get()
			wantCode(e.t, "GetRange after Commit", err, kv.ErrUsedDuringCommit)
			tr.Set(e.k("b"), []byte("2"))
			wantCode(e.t, "second Commit", tr.Commit().Err(), kv.ErrUsedDuringCommit)
			wantStrings(e.t, "keys", e.dump(), "a=1")
			tr.Reset()
			wantValue(e.t, "Get after Reset", e.get(tr, "a"), []byte("1"))
		}},
		{"Commit/UsedDuringCommitUntilOnError", func(e *env) {
			// A commit that failed leaves the transaction in the same state
			// until onError resets it for the retry.
			e.write("k", "0")
			tr := e.tx()
			e.get(tr, "k")
			e.write("k", "1")
			tr.Set(e.k("k"), []byte("2"))
			err := tr.Commit().Err()
			wantCode(e.t, "Commit after a conflicting write", err, kv.ErrNotCommitted)
			wantCode(e.t, "second Commit before OnError", tr.Commit().Err(), kv.ErrUsedDuringCommit)
			wantNoErr(e.t, "SetMaxRetryDelay", tr.Options().SetMaxRetryDelay(time.Millisecond))
			wantNoErr(e.t, "OnError(not_committed)", tr.OnError(err))
			wantValue(e.t, "Get after OnError", e.get(tr, "k"), []byte("1"))
		}},
		{"OnError/RefusedCancelsUntilReset", func(e *env) {
			// RYW onError (API >= 610): when it refuses an error, the
			// transaction is cancelled: its writes can no longer commit,
			// every operation fails with transaction_cancelled (1025)
			// until reset.
			tr := e.tx()
			tr.Set(e.k("k"), []byte("v"))
			in := kv.Errorf(kv.CodeKeyTooLarge, "kvtest")
			if err := tr.OnError(in); !errors.Is(err, in) {
				t := e.t
				t.Fatalf("OnError(%v) = %v, want it back", in, err)
			}
			wantCode(e.t, "Commit after a refused OnError", tr.Commit().Err(), kv.ErrTransactionCancelled)
			_, err := tr.Get(e.k("k")).Get()
			wantCode(e.t, "Get after a refused OnError", err, kv.ErrTransactionCancelled)
			wantValue(e.t, "Get(k) in a new transaction", e.read("k"), nil)
			tr.Reset()
			tr.Set(e.k("k"), []byte("after reset"))
			e.commit(tr)
			wantValue(e.t, "Get(k) after Reset", e.read("k"), []byte("after reset"))
		}},
		{"OnError/RetryLimitReachedCancels", func(e *env) {
			tr := e.tx()
			wantNoErr(e.t, "SetRetryLimit(0)", tr.Options().SetRetryLimit(0))
			tr.Set(e.k("k"), []byte("v"))
			wantCode(e.t, "OnError at the retry limit", tr.OnError(kv.NewError(kv.CodeNotCommitted)), kv.ErrNotCommitted)
			wantCode(e.t, "Commit after the retry limit", tr.Commit().Err(), kv.ErrTransactionCancelled)
			wantValue(e.t, "Get(k) in a new transaction", e.read("k"), nil)
		}},
		{"OnError/ProxyTagThrottledRetried", func(e *env) {
			// proxy_tag_throttled (1223) is retryable on 7.3 clusters
			// (flow/error_definitions.h, fdb_error_predicate).
			tr := e.tx()
			wantNoErr(e.t, "SetMaxRetryDelay", tr.Options().SetMaxRetryDelay(time.Millisecond))
			if !kv.IsRetryable(errProxyTagThrottled) || !kv.IsRetryableNotCommitted(errProxyTagThrottled) {
				e.t.Fatalf("%v is not retryable-not-committed", errProxyTagThrottled)
			}
			wantNoErr(e.t, "OnError(proxy_tag_throttled)", tr.OnError(kv.NewError(1223)))
		}},
		{"Versions/SetReadVersionTwiceFails2010", func(e *env) {
			// NativeAPI setVersion: read_version_already_set (2010) once
			// the transaction has a read version, from GetReadVersion or an
			// earlier SetReadVersion; the error surfaces at the next read.
			tr := e.tx()
			rv, err := tr.GetReadVersion().Get()
			wantNoErr(e.t, "GetReadVersion", err)
			tr.SetReadVersion(rv)
			_, err = tr.Get(e.k("k")).Get()
			wantCode(e.t, "Get after SetReadVersion on a transaction with a read version", err, errReadVersionAlreadySet)
			tr2 := e.tx()
			tr2.SetReadVersion(rv)
			tr2.SetReadVersion(rv)
			wantCode(e.t, "Commit after SetReadVersion twice", tr2.Commit().Err(), errReadVersionAlreadySet)
		}},
		{"Versions/SetReadVersionNonPositiveFails2011", func(e *env) {
			for _, v := range []int64{0, -5} {
				tr := e.tx()
				tr.SetReadVersion(v)
				_, err := tr.Get(e.k("k")).Get()
				wantCode(e.t, "Get after SetReadVersion(non-positive)", err, errVersionInvalid)
			}
		}},
		{"Versions/CommittedVersionBeforeCommitIsMinusOne", func(e *env) {
			// NativeAPI's committedVersion starts as invalidVersion (-1).
			tr := e.tx()
			tr.Set(e.k("k"), []byte("v"))
			v, err := tr.GetCommittedVersion()
			if err != nil || v != -1 {
				e.t.Fatalf("GetCommittedVersion before Commit = %d, %v; want -1, nil", v, err)
			}
		}},
		{"Versionstamp/FailedCommitFails2020", func(e *env) {
			// NativeAPI commit: on failure the versionstamp promise gets
			// transaction_invalid_version (2020), not the commit's error.
			e.write("k", "0")
			tr := e.tx()
			e.get(tr, "k")
			e.write("k", "1")
			tr.Set(e.k("k"), []byte("2"))
			vsf := tr.GetVersionstamp()
			wantCode(e.t, "Commit", tr.Commit().Err(), kv.ErrNotCommitted)
			_, err := vsf.Get()
			wantCode(e.t, "versionstamp of the failed commit", err, errTransactionInvalidVersn)
		}},
		{"RangeRead/NegativeLimitFails2012", func(e *env) {
			_, err := e.tx().GetRange(e.all(), kv.RangeOptions{Limit: -1}).Get()
			wantCode(e.t, "GetRange with limit -1", err, errRangeLimitsInvalid)
		}},
		{"Atomic/SystemKeyRefusedBeforeBadType", func(e *env) {
			// RYW atomicOp checks the key's range (2004) before the
			// mutation type (2018).
			tr := e.tx()
			tr.Atomic(kv.MutationType(99), append([]byte{kv.SystemPrefix}, e.k("x")...), []byte{1})
			wantCode(e.t, "Commit", tr.Commit().Err(), kv.ErrKeyOutsideLegalRange)
		}},
		{"Versions/FutureVersionWaits", func(e *env) {
			// A storage server waits up to FUTURE_VERSION_DELAY (1 s) for
			// a read version it has not reached before failing with
			// future_version; a version 0.2 s ahead is read, not refused.
			tr := e.tx()
			rv, err := tr.GetReadVersion().Get()
			wantNoErr(e.t, "GetReadVersion", err)
			ahead := e.tx()
			ahead.SetReadVersion(rv + kv.VersionsPerSecond/5)
			_, err = ahead.Get(e.k("k")).Get()
			wantNoErr(e.t, "Get at a read version 0.2 s ahead", err)
		}},
		{"Options/SizeLimitDroppedByOnError", func(e *env) {
			// size_limit is not a persistent option (fdb.options): onError
			// drops it, as it drops access_system_keys and read_system_keys.
			tr := e.tx()
			wantNoErr(e.t, "SetSizeLimit(1000)", tr.Options().SetSizeLimit(1000))
			wantNoErr(e.t, "SetReadSystemKeys", tr.Options().SetReadSystemKeys())
			wantNoErr(e.t, "SetMaxRetryDelay", tr.Options().SetMaxRetryDelay(time.Millisecond))
			wantNoErr(e.t, "OnError", tr.OnError(kv.NewError(kv.CodeNotCommitted)))
			_, err := tr.Get(append([]byte{kv.SystemPrefix}, e.k("sys")...)).Get()
			wantCode(e.t, "system-key Get after OnError", err, kv.ErrKeyOutsideLegalRange)
			tr.Set(e.k("big"), bytes.Repeat([]byte{'v'}, 2000))
			e.commit(tr)
		}},
	}
}
