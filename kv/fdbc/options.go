//go:build cgo

package fdbc

import "C"

import (
	"encoding/binary"
	"unsafe"
)

// Options by code. Each table lists every option FoundationDB 7.3 defines
// for its scope (fdb.options), with its parameter type and what the shim
// does with it:
//
//   - effect: the option takes effect (kv/embedded implements it);
//   - noop: accepted and validated, with nothing to do in one process on
//     one engine (tracing, TLS, priorities, tags, caches, durability modes
//     — the engine is always durable or always in memory);
//   - refused: accepted by FoundationDB but changing semantics the engine
//     does not have (read-your-writes off, snapshot reads without RYW,
//     writes without conflict ranges, reading unreadable keys): setting it
//     fails with unsupported_operation (2108) rather than silently
//     behaving differently.
//
// An unknown code fails with invalid_option (2007); an integer parameter
// that is not 8 bytes, or a negative length, with invalid_option_value
// (2006).

type paramType uint8

const (
	paramNone paramType = iota
	paramInt
	paramBytes
)

type effect uint8

const (
	noop effect = iota
	takesEffect
	refused
)

type optionSpec struct {
	param  paramType
	effect effect
}

var networkOptions = map[int]optionSpec{
	10: {paramBytes, noop}, 20: {paramBytes, noop}, 30: {paramBytes, noop}, 31: {paramInt, noop},
	32: {paramInt, noop}, 33: {paramBytes, noop}, 34: {paramBytes, noop}, 35: {paramBytes, noop},
	36: {paramBytes, noop}, 37: {paramNone, noop}, 38: {paramNone, noop}, 39: {paramBytes, noop},
	40: {paramBytes, noop}, 41: {paramBytes, noop}, 42: {paramBytes, noop}, 43: {paramBytes, noop},
	45: {paramBytes, noop}, 46: {paramBytes, noop}, 47: {paramBytes, noop}, 48: {paramNone, noop},
	49: {paramNone, noop}, 50: {paramInt, noop}, 51: {paramInt, noop}, 52: {paramBytes, noop},
	53: {paramBytes, noop}, 54: {paramBytes, noop}, 60: {paramNone, noop}, 61: {paramNone, noop},
	62: {paramBytes, noop}, 63: {paramBytes, noop}, 64: {paramNone, noop}, 65: {paramInt, noop},
	66: {paramBytes, noop}, 67: {paramNone, noop}, 68: {paramNone, noop}, 69: {paramNone, noop},
	70: {paramNone, noop}, 71: {paramNone, noop}, 72: {paramNone, noop}, 80: {paramNone, noop},
	81: {paramNone, noop}, 82: {paramInt, noop}, 83: {paramInt, noop}, 90: {paramBytes, noop},
	91: {paramBytes, noop},
}

// Database option codes with an effect.
const (
	dbOptMaxWatches         = 20
	dbOptSnapshotRYWDisable = 27
	optTimeout              = 500
	optRetryLimit           = 501
	optMaxRetryDelay        = 502
	optSizeLimit            = 503
)

var databaseOptions = map[int]optionSpec{
	10: {paramInt, noop}, 20: {paramInt, takesEffect}, 21: {paramBytes, noop}, 22: {paramBytes, noop},
	26: {paramNone, noop}, 27: {paramNone, refused}, 405: {paramInt, noop},
	500: {paramInt, takesEffect}, 501: {paramInt, takesEffect}, 502: {paramInt, takesEffect},
	503: {paramInt, takesEffect}, 504: {paramNone, noop}, 505: {paramNone, noop}, 506: {paramNone, noop},
	700: {paramNone, refused}, 701: {paramNone, noop}, 702: {paramNone, noop}, 800: {paramNone, refused},
	900: {paramInt, noop},
}

// Transaction option codes with an effect.
const (
	trOptAccessSystemKeys = 301
	trOptReadSystemKeys   = 302
)

var transactionOptions = map[int]optionSpec{
	10: {paramNone, noop}, 20: {paramNone, noop}, 21: {paramNone, noop}, 23: {paramNone, noop},
	30: {paramNone, refused}, 51: {paramNone, refused}, 52: {paramNone, noop},
	110: {paramNone, noop}, 120: {paramNone, noop}, 130: {paramNone, noop},
	200: {paramNone, noop}, 201: {paramNone, noop}, 300: {paramNone, noop},
	301: {paramNone, takesEffect}, 302: {paramNone, takesEffect}, 303: {paramNone, noop}, 304: {paramNone, noop},
	401: {paramBytes, noop}, 402: {paramBytes, noop}, 403: {paramBytes, noop}, 404: {paramNone, noop},
	405: {paramInt, noop}, 406: {paramNone, noop},
	500: {paramInt, takesEffect}, 501: {paramInt, takesEffect}, 502: {paramInt, takesEffect},
	503: {paramInt, takesEffect}, 505: {paramNone, noop},
	507: {paramNone, noop}, 508: {paramNone, noop}, 509: {paramNone, noop}, 510: {paramNone, noop}, 511: {paramNone, noop},
	600: {paramNone, noop}, 601: {paramNone, refused},
	700: {paramNone, noop}, 701: {paramNone, noop}, 702: {paramNone, noop}, 711: {paramNone, noop},
	712: {paramNone, noop}, 713: {paramNone, noop}, 714: {paramNone, noop},
	800: {paramBytes, noop}, 801: {paramBytes, noop}, 900: {paramBytes, noop}, 1000: {paramNone, noop},
	1100: {paramNone, refused}, 1101: {paramNone, noop}, 2000: {paramBytes, noop},
}

// checkOption validates an option against its table and returns 0 if it
// may be applied (or ignored), else FoundationDB's error code.
func checkOption(table map[int]optionSpec, code int, value *byte, n int32) int {
	spec, ok := table[code]
	switch {
	case !ok:
		return errInvalidOption
	case n < 0:
		return errInvalidOptionValue
	case spec.param == paramInt && (n != 8 || value == nil):
		return errInvalidOptionValue
	case spec.effect == refused:
		return errUnsupportedOperation
	}
	return errSuccess
}

// intParam reads an integer option's little-endian 8-byte parameter
// (checked by checkOption).
func intParam(value *byte) int64 {
	return int64(binary.LittleEndian.Uint64(unsafe.Slice(value, 8)))
}
