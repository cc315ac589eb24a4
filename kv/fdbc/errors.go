//go:build cgo

package fdbc

// #include <stdlib.h>
import "C"

import (
	"errors"
	"sync"
	"unsafe"

	"github.com/idemkv/idemkv/kv"
)

// FoundationDB error codes the shim returns itself (flow's
// error_definitions.h).
const (
	errSuccess               = 0
	errOperationCancelled    = 1101 // operation_cancelled
	errFutureReleased        = 1102 // future_released
	errTooManyWatches        = 1032 // too_many_watches
	errTransactionCancelled  = 1025 // transaction_cancelled
	errClientInvalidOp       = 2000 // client_invalid_operation
	errInvertedRange         = 2005 // inverted_range
	errInvalidOptionValue    = 2006 // invalid_option_value
	errInvalidOption         = 2007 // invalid_option
	errNetworkNotSetup       = 2008 // network_not_setup
	errNetworkAlreadySetup   = 2009 // network_already_setup
	errRangeLimitsInvalid    = 2012 // range_limits_invalid
	errFutureNotSet          = 2015 // future_not_set
	errUsedDuringCommit      = 2017 // used_during_commit
	errNetworkCannotRestart  = 2025 // network_cannot_be_restarted
	errUnsupportedOperation  = 2108 // unsupported_operation
	errConnectionStringBad   = 2104 // connection_string_invalid
	errTenantsDisabled       = 2136 // tenants_disabled
	errAPIVersionUnset       = 2200 // api_version_unset
	errAPIVersionAlreadySet  = 2201 // api_version_already_set
	errAPIVersionInvalid     = 2202 // api_version_invalid
	errAPIVersionUnsupported = 2203 // api_version_not_supported
	errExactModeNoLimits     = 2210 // exact_mode_without_limits
	errInternal              = 4100 // internal_error
	errFileNotFound          = 1511 // file_not_found
	errNoClusterFile         = 1515 // no_cluster_file_found
	errIO                    = 1510 // io_error
)

// errorTexts is fdb_get_error's answer per code: FoundationDB's own
// descriptions, for the codes a client can meet.
var errorTexts = map[int]string{
	0:    "Success",
	1000: "Operation failed",
	1004: "Operation timed out",
	1007: "Transaction is too old to perform reads or be committed",
	1009: "Request for future version",
	1020: "Transaction not committed due to conflict with another transaction",
	1021: "Transaction may or may not have committed",
	1022: "Idempotency id for transaction may have expired, so the commit status of the transaction cannot be determined",
	1025: "Operation aborted because the transaction was cancelled",
	1026: "Network connection failed",
	1029: "Watch cancelled because storage server watch limit exceeded",
	1031: "Operation aborted because the transaction timed out",
	1032: "Too many watches currently set",
	1034: "Watches cannot be set if read your writes is disabled",
	1036: "Read or wrote an unreadable key",
	1037: "Storage process does not have recent mutations",
	1038: "Database is locked",
	1039: "The protocol version of the cluster has changed",
	1042: "CommitProxy commit memory limit exceeded",
	1051: "Batch GRV request rate limit exceeded",
	1078: "GetReadVersion proxy memory limit exceeded",
	1100: "Broken promise",
	1101: "Asynchronous operation cancelled",
	1102: "Future has been released",
	1213: "Transaction tag is being throttled",
	1223: "Exceeded maximum proxy tag throttling duration",
	1510: "Disk i/o operation failed",
	1511: "File not found",
	1513: "File could not be read",
	1515: "No cluster file found in current directory or default location",
	2000: "Invalid API call",
	2004: "Key outside legal range",
	2005: "Range begin key larger than end key",
	2006: "Option set with an invalid value",
	2007: "Option not valid in this context",
	2008: "Action not possible before the network is configured",
	2009: "Network can be configured only once",
	2010: "Transaction already has a read version set",
	2011: "Version not valid",
	2012: "Range limits not valid",
	2013: "Database name must be 'DB'",
	2015: "Future not ready",
	2016: "Future not an error",
	2017: "Operation issued while a commit was outstanding",
	2018: "Unrecognized atomic mutation type",
	2020: "Transaction does not have a valid commit version",
	2021: "Transaction is read-only and therefore does not have a commit version",
	2023: "Attempted to commit a transaction specified as read-only",
	2025: "Network can only be started once",
	2100: "Incompatible protocol version",
	2101: "Transaction exceeds byte limit",
	2102: "Key length exceeds limit",
	2103: "Value length exceeds limit",
	2104: "Connection string invalid",
	2108: "Operation is not supported",
	2109: "Too many tags set on transaction",
	2110: "Tag set on transaction is too long",
	2130: "Tenant name must be specified to access data in the cluster",
	2131: "Tenant does not exist",
	2134: "Tenant name cannot begin with \\xff",
	2136: "Tenants have been disabled in the cluster",
	2200: "API version is not set",
	2201: "API version may be set only once",
	2202: "API version not valid",
	2203: "API version not supported",
	2210: "EXACT streaming mode requires limits, but none were given",
	4000: "An unknown error occurred",
	4100: "An internal error occurred",
	4200: "Not implemented yet",
}

// errorStrings caches one C string per code: fdb_get_error's result is
// never freed by its caller.
var errorStrings struct {
	sync.Mutex
	m map[int]*C.char
}

// errorText returns the C string for code; a code FoundationDB does not
// define reads as unknown_error's text, as libfdb_c's does.
func errorText(code int) *C.char {
	errorStrings.Lock()
	defer errorStrings.Unlock()
	if s, ok := errorStrings.m[code]; ok {
		return s
	}
	text, ok := errorTexts[code]
	if !ok {
		text = errorTexts[4000]
	}
	if errorStrings.m == nil {
		errorStrings.m = make(map[int]*C.char)
	}
	s := C.CString(text)
	errorStrings.m[code] = s
	return s
}

// fdb_get_error returns FoundationDB's description of code. The string is
// owned by the library and lives for the process.
//
//export fdb_get_error
func fdb_get_error(code int32) *byte { return (*byte)(unsafe.Pointer(errorText(int(code)))) }

// FDB_ERROR_PREDICATE_* tests.
const (
	predicateRetryable             = 50000
	predicateMaybeCommitted        = 50001
	predicateRetryableNotCommitted = 50002
)

// fdb_error_predicate answers FoundationDB's three error predicates with
// kv's classification, which is FoundationDB 7.3's. An unknown test is
// false.
//
//export fdb_error_predicate
func fdb_error_predicate(test int32, code int32) int32 {
	err := kv.NewError(kv.Code(code))
	var ok bool
	switch test {
	case predicateRetryable:
		ok = kv.IsRetryable(err)
	case predicateMaybeCommitted:
		ok = kv.MaybeCommitted(err)
	case predicateRetryableNotCommitted:
		ok = kv.IsRetryableNotCommitted(err)
	}
	return boolC(ok)
}

func boolC(b bool) int32 {
	if b {
		return 1
	}
	return 0
}

// codeOf returns the FoundationDB code a kv/embedded error carries: its
// own code for a *kv.Error; client_invalid_operation for a closed database
// (which a handle can only reach by misuse, since transactions keep their
// store open); internal_error for anything else.
func codeOf(err error) int {
	if err == nil {
		return errSuccess
	}
	if c, ok := kv.ErrorCode(err); ok {
		return int(c)
	}
	if errors.Is(err, kv.ErrClosed) {
		return errClientInvalidOp
	}
	return errInternal
}

// freeC releases C memory from C.malloc; nil is allowed.
func freeC(p unsafe.Pointer) {
	if p != nil {
		C.free(p)
	}
}
