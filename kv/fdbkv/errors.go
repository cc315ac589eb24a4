package fdbkv

import (
	"context"
	"errors"
	"strconv"

	"github.com/idemkv/idemkv/kv"
)

// ErrNoFoundationDB is returned by Open in a build without the fdb tag.
var ErrNoFoundationDB = errors.New("idemkv was built without FoundationDB support: install the FoundationDB client (libfdb_c 7.3) and build with -tags fdb")

// Client error codes outside kv's list that this package produces.
const (
	codeAPIVersionAlreadySet kv.Code = 2201 // api_version_already_set
)

// extraCodeNames is FoundationDB's name (flow/error_definitions.h) for
// client-side codes kv does not name.
var extraCodeNames = map[kv.Code]string{
	1004: "timed_out",
	1510: "io_error",
	1511: "file_not_found",
	1513: "file_not_readable",
	1515: "no_cluster_file_found",
	2007: "invalid_option",
	2008: "network_not_setup",
	2009: "network_already_setup",
	2010: "read_version_already_set",
	2012: "range_limits_invalid",
	2020: "transaction_invalid_version",
	2100: "incompatible_protocol_version",
	2104: "connection_string_invalid",
	2108: "unsupported_operation",
	2200: "api_version_unset",
	2201: "api_version_already_set",
	2202: "api_version_invalid",
	2203: "api_version_not_supported",
	2210: "exact_mode_without_limits",
}

// knownToKV reports whether kv names c itself (its String is not the
// generic "error_N").
func knownToKV(c kv.Code) bool {
	return c.String() != "error_"+strconv.Itoa(int(c))
}

// txnState is what mapCode needs to know about the transaction an error
// came from: its context's error (nil while the context is live) and
// whether the timeout FoundationDB was given came from the context's
// deadline.
type txnState struct {
	ctxErr         error
	timeoutFromCtx bool
}

// mapCode turns a FoundationDB error code into the *kv.Error callers see.
// Codes are FoundationDB's on both sides of the seam, so the code is kept;
// what changes is the cause:
//
//   - transaction_cancelled (1025) or transaction_timed_out (1031) once the
//     context is done become 1025 with cause context.Canceled, or 1031 with
//     cause context.DeadlineExceeded — whichever the context says, since
//     cancelling on ctx.Done and the deadline-derived timeout race.
//   - 1031 from a timeout that came from the context's deadline carries
//     context.DeadlineExceeded even if the context has not noticed yet
//     (the option is rounded up to a millisecond, the context is not).
//   - Any other code is returned with no cause; codes kv does not name get
//     their FoundationDB name, or detail if given, as Detail.
//
// code 0 means success and maps to nil.
func mapCode(code int, detail string, st txnState) error {
	if code == 0 {
		return nil
	}
	c := kv.Code(code)
	switch {
	case (c == kv.CodeTransactionCancelled || c == kv.CodeTransactionTimedOut) && st.ctxErr != nil:
		if errors.Is(st.ctxErr, context.DeadlineExceeded) {
			return &kv.Error{Code: kv.CodeTransactionTimedOut, Cause: st.ctxErr}
		}
		return &kv.Error{Code: kv.CodeTransactionCancelled, Cause: st.ctxErr}
	case c == kv.CodeTransactionTimedOut && st.timeoutFromCtx:
		return &kv.Error{Code: c, Cause: context.DeadlineExceeded}
	}
	e := &kv.Error{Code: c}
	if !knownToKV(c) {
		if n, ok := extraCodeNames[c]; ok {
			e.Detail = n
		} else {
			e.Detail = detail
		}
	}
	return e
}

// ctxError is the error an operation on a transaction whose context is
// already done reports, without asking FoundationDB.
func ctxError(ctxErr error) error {
	return mapCode(int(kv.CodeTransactionCancelled), "", txnState{ctxErr: ctxErr})
}
