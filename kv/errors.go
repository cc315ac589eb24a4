package kv

import (
	"errors"
	"fmt"
)

// Code is a FoundationDB error code. The values are FoundationDB's own
// (flow/error_definitions.h), so an error from a real cluster and one from
// the embedded engine classify the same way.
type Code int

// FoundationDB error codes the seam produces or classifies.
const (
	CodeOperationFailed                Code = 1000
	CodeTransactionTooOld              Code = 1007 // transaction_too_old
	CodeFutureVersion                  Code = 1009 // future_version
	CodeNotCommitted                   Code = 1020 // not_committed
	CodeCommitUnknownResult            Code = 1021 // commit_unknown_result
	CodeTransactionCancelled           Code = 1025 // transaction_cancelled
	CodeTransactionTimedOut            Code = 1031 // transaction_timed_out
	CodeAccessedUnreadable             Code = 1036 // accessed_unreadable
	CodeProcessBehind                  Code = 1037 // process_behind
	CodeDatabaseLocked                 Code = 1038 // database_locked
	CodeClusterVersionChanged          Code = 1039 // cluster_version_changed
	CodeCommitProxyMemoryLimitExceeded Code = 1042 // commit_proxy_memory_limit_exceeded
	CodeBatchTransactionThrottled      Code = 1051 // batch_transaction_throttled
	CodeGRVProxyMemoryLimitExceeded    Code = 1078 // grv_proxy_memory_limit_exceeded
	CodeOperationCancelled             Code = 1101 // operation_cancelled
	CodeTagThrottled                   Code = 1213 // tag_throttled
	CodeProxyTagThrottled              Code = 1223 // proxy_tag_throttled
	CodeIOError                        Code = 1510 // io_error
	CodeClientInvalidOperation         Code = 2000 // client_invalid_operation
	CodeKeyOutsideLegalRange           Code = 2004 // key_outside_legal_range
	CodeInvertedRange                  Code = 2005 // inverted_range
	CodeInvalidOptionValue             Code = 2006 // invalid_option_value
	CodeUsedDuringCommit               Code = 2017 // used_during_commit
	CodeInvalidMutationType            Code = 2018 // invalid_mutation_type
	CodeNoCommitVersion                Code = 2021 // no_commit_version
	CodeTransactionReadOnly            Code = 2023 // transaction_read_only
	CodeTransactionTooLarge            Code = 2101 // transaction_too_large
	CodeKeyTooLarge                    Code = 2102 // key_too_large
	CodeValueTooLarge                  Code = 2103 // value_too_large
	CodeUnknownError                   Code = 4000 // unknown_error
	CodeInternalError                  Code = 4100 // internal_error
)

var codeNames = map[Code]string{
	CodeOperationFailed:                "operation_failed",
	CodeTransactionTooOld:              "transaction_too_old",
	CodeFutureVersion:                  "future_version",
	CodeNotCommitted:                   "not_committed",
	CodeCommitUnknownResult:            "commit_unknown_result",
	CodeTransactionCancelled:           "transaction_cancelled",
	CodeTransactionTimedOut:            "transaction_timed_out",
	CodeAccessedUnreadable:             "accessed_unreadable",
	CodeProcessBehind:                  "process_behind",
	CodeDatabaseLocked:                 "database_locked",
	CodeClusterVersionChanged:          "cluster_version_changed",
	CodeCommitProxyMemoryLimitExceeded: "commit_proxy_memory_limit_exceeded",
	CodeBatchTransactionThrottled:      "batch_transaction_throttled",
	CodeGRVProxyMemoryLimitExceeded:    "grv_proxy_memory_limit_exceeded",
	CodeOperationCancelled:             "operation_cancelled",
	CodeTagThrottled:                   "tag_throttled",
	CodeProxyTagThrottled:              "proxy_tag_throttled",
	CodeIOError:                        "io_error",
	CodeClientInvalidOperation:         "client_invalid_operation",
	CodeKeyOutsideLegalRange:           "key_outside_legal_range",
	CodeInvertedRange:                  "inverted_range",
	CodeInvalidOptionValue:             "invalid_option_value",
	CodeUsedDuringCommit:               "used_during_commit",
	CodeInvalidMutationType:            "invalid_mutation_type",
	CodeNoCommitVersion:                "no_commit_version",
	CodeTransactionReadOnly:            "transaction_read_only",
	CodeTransactionTooLarge:            "transaction_too_large",
	CodeKeyTooLarge:                    "key_too_large",
	CodeValueTooLarge:                  "value_too_large",
	CodeUnknownError:                   "unknown_error",
	CodeInternalError:                  "internal_error",
}

// String returns FoundationDB's name for the code, e.g. "not_committed".
func (c Code) String() string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return fmt.Sprintf("error_%d", int(c))
}

// Error is a FoundationDB error: a code, and optionally what caused it on
// this side of the seam (a context's error for 1025 and 1031, a storage
// error for 4100). Two Errors match under errors.Is when their codes are
// equal, so errors.Is(err, kv.ErrNotCommitted) works whatever the cause.
//
// The zero Cause is normal; Unwrap returns it, so
// errors.Is(err, context.DeadlineExceeded) holds for a timeout that came
// from a context deadline.
type Error struct {
	Code  Code
	Cause error
	// Detail is an optional human explanation appended to the message, e.g.
	// the limit that was exceeded. It never changes classification.
	Detail string
}

// Error formats the error the way the FoundationDB bindings do, name then
// code, followed by the detail and cause when present.
func (e *Error) Error() string {
	s := fmt.Sprintf("%s (%d)", e.Code, int(e.Code))
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Unwrap returns the cause, if any.
func (e *Error) Unwrap() error { return e.Cause }

// Is reports whether target is an *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// NewError returns an *Error with the given code and no cause.
func NewError(c Code) *Error { return &Error{Code: c} }

// Errorf returns an *Error with the given code and a formatted detail.
func Errorf(c Code, format string, args ...any) *Error {
	return &Error{Code: c, Detail: fmt.Sprintf(format, args...)}
}

// Sentinels for errors.Is. They carry no cause; match them, do not return
// them (return NewError or Errorf so that callers cannot mutate a shared
// value).
var (
	ErrTransactionTooOld     = NewError(CodeTransactionTooOld)
	ErrFutureVersion         = NewError(CodeFutureVersion)
	ErrNotCommitted          = NewError(CodeNotCommitted)
	ErrCommitUnknownResult   = NewError(CodeCommitUnknownResult)
	ErrTransactionCancelled  = NewError(CodeTransactionCancelled)
	ErrTransactionTimedOut   = NewError(CodeTransactionTimedOut)
	ErrAccessedUnreadable    = NewError(CodeAccessedUnreadable)
	ErrClusterVersionChanged = NewError(CodeClusterVersionChanged)
	ErrKeyOutsideLegalRange  = NewError(CodeKeyOutsideLegalRange)
	ErrInvertedRange         = NewError(CodeInvertedRange)
	ErrInvalidOptionValue    = NewError(CodeInvalidOptionValue)
	ErrUsedDuringCommit      = NewError(CodeUsedDuringCommit)
	ErrTransactionTooLarge   = NewError(CodeTransactionTooLarge)
	ErrKeyTooLarge           = NewError(CodeKeyTooLarge)
	ErrValueTooLarge         = NewError(CodeValueTooLarge)
)

// ErrClosed is returned by a Database (and its transactions) after Close.
// It is not a FoundationDB error and no predicate retries it.
var ErrClosed = errors.New("kv: database is closed")

// ErrorCode returns the FoundationDB code in err's chain, and false if there
// is none.
func ErrorCode(err error) (Code, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Code, true
	}
	return 0, false
}

// MaybeCommitted reports whether err leaves the transaction's outcome
// unknown: FoundationDB's FDB_ERROR_PREDICATE_MAYBE_COMMITTED, that is
// commit_unknown_result (1021) and cluster_version_changed (1039).
//
// transaction_timed_out (1031) is not in FoundationDB's predicate, yet a
// timeout that fires while a commit is in flight leaves the outcome just as
// unknown; callers that care (txn does) treat it separately.
func MaybeCommitted(err error) bool {
	c, ok := ErrorCode(err)
	return ok && maybeCommitted(c)
}

func maybeCommitted(c Code) bool {
	return c == CodeCommitUnknownResult || c == CodeClusterVersionChanged
}

// IsRetryableNotCommitted reports whether err is retryable and the
// transaction certainly did not commit: FoundationDB 7.3's
// FDB_ERROR_PREDICATE_RETRYABLE_NOT_COMMITTED (not_committed,
// transaction_too_old, future_version, database_locked, the proxies'
// memory limits, batch and tag throttling, proxy_tag_throttled,
// process_behind).
func IsRetryableNotCommitted(err error) bool {
	c, ok := ErrorCode(err)
	return ok && retryableNotCommitted(c)
}

func retryableNotCommitted(c Code) bool {
	switch c {
	case CodeNotCommitted, CodeTransactionTooOld, CodeFutureVersion,
		CodeDatabaseLocked, CodeGRVProxyMemoryLimitExceeded,
		CodeCommitProxyMemoryLimitExceeded, CodeBatchTransactionThrottled,
		CodeProcessBehind, CodeTagThrottled, CodeProxyTagThrottled:
		return true
	}
	return false
}

// IsRetryable reports whether FoundationDB's retry loop would retry err:
// FDB_ERROR_PREDICATE_RETRYABLE, the union of MaybeCommitted and
// IsRetryableNotCommitted. Note that it includes the maybe-committed codes:
// retrying those blindly is exactly what makes the stock loop unsafe.
func IsRetryable(err error) bool {
	c, ok := ErrorCode(err)
	return ok && (maybeCommitted(c) || retryableNotCommitted(c))
}

// CodeRetryable is IsRetryable for a bare code.
func CodeRetryable(c Code) bool { return maybeCommitted(c) || retryableNotCommitted(c) }
