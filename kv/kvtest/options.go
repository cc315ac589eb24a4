package kvtest

import (
	"context"
	"errors"
	"time"

	"github.com/idemkv/idemkv/kv"
)

// optionCases check timeouts, cancellation, the retry policy and commits of
// transactions with nothing to write.
func optionCases() []testCase {
	return []testCase{
		{"Options/TimeoutFails1031", func(e *env) {
			tr := e.tx()
			wantNoErr(e.t, "SetTimeout", tr.Options().SetTimeout(20*time.Millisecond))
			// Waiting past the timeout is not a timing assertion: the
			// outcome is the same however late the check runs.
			time.Sleep(100 * time.Millisecond)
			_, err := tr.Get(e.k("k")).Get()
			wantCode(e.t, "Get after the timeout", err, kv.ErrTransactionTimedOut)
			tr.Set(e.k("k"), []byte("v"))
			wantCode(e.t, "Commit after the timeout", tr.Commit().Err(), kv.ErrTransactionTimedOut)
			wantValue(e.t, "Get(k) in a new transaction", e.read("k"), nil)
		}},
		{"Options/TimeoutSurvivesOnErrorNotReset", func(e *env) {
			// Since API version 610 the timeout persists across OnError
			// and keeps counting from creation; Reset clears it.
			// The timeout leaves OnError half a second: 50 ms was missed
			// on a loaded 2-core machine (OnError itself timed out).
			tr := e.tx()
			wantNoErr(e.t, "SetTimeout", tr.Options().SetTimeout(500*time.Millisecond))
			wantNoErr(e.t, "SetMaxRetryDelay", tr.Options().SetMaxRetryDelay(time.Millisecond))
			wantNoErr(e.t, "OnError(not_committed)", tr.OnError(kv.NewError(kv.CodeNotCommitted)))
			time.Sleep(600 * time.Millisecond)
			_, err := tr.Get(e.k("k")).Get()
			wantCode(e.t, "Get after the timeout, past an OnError", err, kv.ErrTransactionTimedOut)
			tr.Reset()
			_, err = tr.Get(e.k("k")).Get()
			wantNoErr(e.t, "Get after Reset", err)
		}},
		{"Options/TimeoutOutOfRange", func(e *env) {
			tr := e.tx()
			wantCode(e.t, "SetTimeout(-1ms)", tr.Options().SetTimeout(-time.Millisecond), kv.ErrInvalidOptionValue)
			wantCode(e.t, "SetRetryLimit(-2)", tr.Options().SetRetryLimit(-2), kv.ErrInvalidOptionValue)
			wantCode(e.t, "SetMaxRetryDelay(-1ms)", tr.Options().SetMaxRetryDelay(-time.Millisecond), kv.ErrInvalidOptionValue)
		}},
		{"Options/ContextDeadlineFails1031", func(e *env) {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			tr := e.txCtx(ctx)
			<-ctx.Done()
			_, err := tr.Get(e.k("k")).Get()
			wantCode(e.t, "Get after the context deadline", err, kv.ErrTransactionTimedOut)
			if !errors.Is(err, context.DeadlineExceeded) {
				e.t.Fatalf("Get after the context deadline: %v does not wrap context.DeadlineExceeded", err)
			}
			wantCode(e.t, "Commit after the context deadline", tr.Commit().Err(), kv.ErrTransactionTimedOut)
		}},
		{"Options/ContextCancelFails1025", func(e *env) {
			ctx, cancel := context.WithCancel(context.Background())
			tr := e.txCtx(ctx)
			tr.Set(e.k("k"), []byte("v"))
			cancel()
			_, err := tr.Get(e.k("k")).Get()
			wantCode(e.t, "Get after cancel", err, kv.ErrTransactionCancelled)
			if !errors.Is(err, context.Canceled) {
				e.t.Fatalf("Get after cancel: %v does not wrap context.Canceled", err)
			}
			wantCode(e.t, "Commit after cancel", tr.Commit().Err(), kv.ErrTransactionCancelled)
			wantValue(e.t, "Get(k) in a new transaction", e.read("k"), nil)
		}},
		{"Options/CancelFails1025UntilReset", func(e *env) {
			tr := e.tx()
			tr.Set(e.k("k"), []byte("v"))
			tr.Cancel()
			_, err := tr.Get(e.k("k")).Get()
			wantCode(e.t, "Get after Cancel", err, kv.ErrTransactionCancelled)
			wantCode(e.t, "Commit after Cancel", tr.Commit().Err(), kv.ErrTransactionCancelled)
			wantValue(e.t, "Get(k) in a new transaction", e.read("k"), nil)
			tr.Reset()
			tr.Set(e.k("k"), []byte("after reset"))
			e.commit(tr)
			wantValue(e.t, "Get(k) after Reset and commit", e.read("k"), []byte("after reset"))
		}},
		{"OnError/RetryLimitHonoured", func(e *env) {
			tr := e.tx()
			wantNoErr(e.t, "SetRetryLimit(2)", tr.Options().SetRetryLimit(2))
			wantNoErr(e.t, "SetMaxRetryDelay", tr.Options().SetMaxRetryDelay(time.Millisecond))
			for i := range 2 {
				if err := tr.OnError(kv.NewError(kv.CodeNotCommitted)); err != nil {
					e.t.Fatalf("OnError retry %d of 2: %v", i+1, err)
				}
			}
			err := tr.OnError(kv.NewError(kv.CodeNotCommitted))
			wantCode(e.t, "OnError beyond the retry limit", err, kv.ErrNotCommitted)
		}},
		{"OnError/ResetClearsRetryLimit", func(e *env) {
			// Options persist across OnError but not across Reset.
			tr := e.tx()
			wantNoErr(e.t, "SetRetryLimit(0)", tr.Options().SetRetryLimit(0))
			wantCode(e.t, "OnError with retry limit 0", tr.OnError(kv.NewError(kv.CodeNotCommitted)), kv.ErrNotCommitted)
			tr.Reset()
			wantNoErr(e.t, "SetMaxRetryDelay", tr.Options().SetMaxRetryDelay(time.Millisecond))
			wantNoErr(e.t, "OnError after Reset", tr.OnError(kv.NewError(kv.CodeNotCommitted)))
		}},
		{"OnError/PassesNonRetryableThrough", func(e *env) {
			// One transaction per error: a refused error cancels the
			// transaction (API >= 610), and a cancelled transaction's
			// OnError reports transaction_cancelled whatever it is given.
			for _, in := range []error{
				kv.Errorf(kv.CodeKeyTooLarge, "test"),
				kv.NewError(kv.CodeTransactionTimedOut),
				kv.NewError(kv.CodeTransactionCancelled),
			} {
				tr := e.tx()
				err := tr.OnError(in)
				if err == nil || !errors.Is(err, in) {
					e.t.Fatalf("OnError(%v) = %v, want the error back", in, err)
				}
			}
			plain := errors.New("kvtest: not a FoundationDB error")
			if err := e.tx().OnError(plain); !errors.Is(err, plain) {
				e.t.Fatalf("OnError(%v) = %v, want the error back", plain, err)
			}
		}},
		{"OnError/RetriesRetryableAndResets", func(e *env) {
			tr := e.tx()
			wantNoErr(e.t, "SetMaxRetryDelay", tr.Options().SetMaxRetryDelay(time.Millisecond))
			for _, code := range []kv.Code{kv.CodeNotCommitted, kv.CodeTransactionTooOld,
				kv.CodeFutureVersion, kv.CodeCommitUnknownResult} {
				tr.Set(e.k("k"), []byte("discarded"))
				if err := tr.OnError(kv.NewError(code)); err != nil {
					e.t.Fatalf("OnError(%v) = %v, want nil (retry)", code, err)
				}
				wantValue(e.t, "Get(k) after OnError", e.get(tr, "k"), nil)
			}
			tr.Set(e.k("j"), []byte("kept"))
			e.commit(tr)
			wantStrings(e.t, "keys after commit", e.dump(), "j=kept")
		}},
		{"Commit/ReadOnlySucceedsDespiteConcurrentWrite", func(e *env) {
			// A transaction with no writes has nothing to check at commit.
			e.write("k", "1")
			tr := e.tx()
			e.get(tr, "k")
			e.write("k", "2")
			e.commit(tr)
		}},
		{"Commit/WriteConflictRangeAloneIsAWrite", func(e *env) {
			// A transaction with a write conflict range and no mutation is
			// not read-only: it commits at a version and conflicts with
			// readers (NativeAPI commitMutations checks both lists).
			e.write("k", "1")
			reader := e.tx()
			e.get(reader, "k")
			fence := e.tx()
			wantNoErr(e.t, "AddWriteConflictRange", fence.AddWriteConflictRange(kv.SingleKeyRange(e.k("k"))))
			e.commit(fence)
			if cv := e.committedVersion(fence); cv <= 0 {
				e.t.Fatalf("committed version of a conflict-range-only transaction = %d, want a real version", cv)
			}
			reader.Set(e.k("r"), []byte("x"))
			wantCode(e.t, "reader Commit", reader.Commit().Err(), kv.ErrNotCommitted)
			wantValue(e.t, "Get(k)", e.read("k"), []byte("1"))
		}},
		{"Commit/EmptyTransaction", func(e *env) {
			e.commit(e.tx())
		}},
	}
}
