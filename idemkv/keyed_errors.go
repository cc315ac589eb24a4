package idemkv

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/txn"
)

// InProgressError is returned when another call holds the key: a Do
// without DoOptions.Wait (or a TransactKey) found it in progress under a
// live lease. RetryAfter is the holder's lease left (the later of its
// version and wall-clock deadlines, by this process's clock) — the moment a
// retry can do better than this one, the value for an HTTP Retry-After. It
// matches ErrInProgress.
type InProgressError struct {
	Scope, Key string
	RetryAfter time.Duration
}

func (e *InProgressError) Error() string {
	return fmt.Sprintf("idemkv: request with key %s is in progress; retry in about %v (or set DoOptions.Wait to wait for it)", scoped(e.Scope, e.Key), e.RetryAfter.Round(time.Millisecond))
}

// Is matches ErrInProgress.
func (e *InProgressError) Is(target error) bool { return target == ErrInProgress }

// OutcomeUnknownError reports a keyed call whose effect may or may not
// have happened. It matches ErrOutcomeUnknown, and unwraps to its cause
// (so errors.Is(err, txn.ErrUnknownResult) still holds where that was the
// cause). What settles it depends on the call; the message says which:
//
//   - Retry: the call's own transaction ended without an answer (a timeout
//     or a canceled context). Calling again with the same key and payload
//     settles it: the stored result is replayed if the call committed, and
//     fn runs if it did not. TransactKey always ends this way, since the
//     record and the effect commit together.
//   - Kept: a Do whose fn failed with an error that may mean committed
//     (txn.ErrUnknownResult, txn.ErrOutcomeLost, a raw commit_unknown_result,
//     a nested ErrOutcomeUnknown), or whose completion could not be made to
//     land. The key is kept in an "outcome unknown" state until its
//     retention passes; every later call gets this error (Err is then the
//     stored cause) and fn is not run again. Find out whether the effect
//     happened, then Store.ForgetKey frees the key for a new call.
//   - neither: as Kept, but the state could not be recorded either (the
//     database kept failing). The key stays in progress until its lease
//     expires; after that a new call may run fn again.
type OutcomeUnknownError struct {
	Scope, Key string
	Retry      bool
	Kept       bool
	Err        error
	// LeaseLeft is, when neither Retry nor Kept, the time until the key's
	// lease expires.
	LeaseLeft time.Duration
}

func (e *OutcomeUnknownError) Error() string {
	k := scoped(e.Scope, e.Key)
	switch {
	case e.Retry:
		return fmt.Sprintf("idemkv: outcome of key %s unknown (%v); call again with the same key and payload: the stored result is replayed if this call committed, and the function runs if it did not", k, cause(e.Err))
	case e.Kept:
		return fmt.Sprintf("idemkv: key %s: the effect of its first call may or may not have happened (%v); the key is kept as outcome unknown and calls with it get this error; find out whether the effect happened, then Store.ForgetKey(ctx, scope, key) frees the key for a new call", k, cause(e.Err))
	}
	return fmt.Sprintf("idemkv: key %s: the effect of this call may or may not have happened (%v), and recording that failed too; the key stays in progress for about %v, after which a new call may run the function again", k, cause(e.Err), e.LeaseLeft.Round(time.Millisecond))
}

// Unwrap returns the cause.
func (e *OutcomeUnknownError) Unwrap() error { return e.Err }

// Is matches ErrOutcomeUnknown.
func (e *OutcomeUnknownError) Is(target error) bool { return target == ErrOutcomeUnknown }

// cause is err's message for an idemkv error's text: a
// *txn.UnknownResultError at the top is shown by what it ended with, since
// its advice (txn.Resolve with its ID) is not the keyed caller's to follow.
func cause(err error) string {
	var ur *txn.UnknownResultError
	if errors.As(err, &ur) && err == error(ur) && ur.Err != nil {
		return ur.Err.Error()
	}
	if err == nil {
		return "no cause recorded"
	}
	return err.Error()
}

func scoped(scope, key string) string {
	if scope == "" {
		return fmt.Sprintf("%q", key)
	}
	return fmt.Sprintf("%q (scope %q)", key, scope)
}

// StoredError is a failure stored with a key — a Final error, or the
// cause of an unknown outcome — as replayed to the callers after the
// first. It keeps the error's structure:
//
//   - Messages, the Error() strings of the chain (following Unwrap),
//     outermost first; errors.Is(e, target) holds when target's message
//     is one of them, so sentinel errors survive the round trip;
//   - Status and Code, from the first error in the chain with a
//     StatusCode() int or an ErrorCode() string method (an HTTP status, an
//     API error code);
//   - Type and Body: the first error in the chain of a type outside the
//     standard library's errors and fmt (the caller's own type), encoded
//     with the store's Codec. errors.As(e, &target) decodes Body into
//     target when target's type is that type, so a replayed error is
//     matched the way the original was: errors.As(err, &declined) works
//     on the first call and on every replay. With the JSON codec, only
//     exported fields survive.
type StoredError struct {
	Messages []string `json:"messages"`
	Status   int      `json:"status,omitempty"`
	Code     string   `json:"code,omitempty"`
	Type     string   `json:"type,omitempty"`
	Body     []byte   `json:"body,omitempty"`

	codec Codec // decodes Body; set when the error is read back
}

func (e *StoredError) Error() string {
	if len(e.Messages) == 0 {
		return "idemkv: stored error"
	}
	return e.Messages[0]
}

// Is reports whether target's message is one of the stored chain's.
func (e *StoredError) Is(target error) bool {
	if target == nil {
		return false
	}
	msg := target.Error()
	for _, m := range e.Messages {
		if m == msg {
			return true
		}
	}
	return false
}

// As decodes the stored Body into target when target points to a value
// of the stored Type.
func (e *StoredError) As(target any) bool {
	if e.Body == nil || e.Type == "" || e.codec == nil {
		return false
	}
	tv := reflect.ValueOf(target)
	if tv.Kind() != reflect.Pointer || tv.IsNil() {
		return false
	}
	t := tv.Type().Elem()
	if typeName(t) != e.Type {
		return false
	}
	nv := reflect.New(t)
	if err := e.codec.Unmarshal(e.Body, nv.Interface()); err != nil {
		return false
	}
	tv.Elem().Set(nv.Elem())
	return true
}

// typeName names t across processes: its package path and name, with a
// "*" per pointer.
func typeName(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		return "*" + typeName(t.Elem())
	}
	if t.Name() == "" {
		return ""
	}
	return t.PkgPath() + "." + t.Name()
}

// maxStoredMessages bounds the chain StoredError keeps.
const maxStoredMessages = 32

// storeError records err (see StoredError), encoding the caller's own
// error with codec. Errors that fail to encode keep their messages,
// status and code.
func storeError(err error, codec Codec) *StoredError {
	se := &StoredError{}
	seen := map[string]bool{}
	var walk func(error)
	walk = func(e error) {
		if e == nil || len(se.Messages) >= maxStoredMessages {
			return
		}
		if m := e.Error(); !seen[m] {
			seen[m] = true
			se.Messages = append(se.Messages, m)
		}
		if s, ok := e.(interface{ StatusCode() int }); ok && se.Status == 0 {
			se.Status = s.StatusCode()
		}
		if c, ok := e.(interface{ ErrorCode() string }); ok && se.Code == "" {
			se.Code = c.ErrorCode()
		}
		if se.Type == "" && ownType(e) {
			if b, err := codec.Marshal(e); err == nil {
				se.Type, se.Body = typeName(reflect.TypeOf(e)), b
			}
		}
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		}
	}
	walk(err)
	return se
}

// ownType reports whether e's type is worth encoding: a named type outside
// the packages whose errors are only messages and wrappers.
func ownType(e error) bool {
	t := reflect.TypeOf(e)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.PkgPath() {
	case "", "errors", "fmt", "github.com/idemkv/idemkv/idemkv":
		return false
	}
	return t.Name() != ""
}

// encodeStoredError is the record bytes of err: a JSON envelope around
// the codec's encoding of the caller's error. It fits MaxResultSize:
// messages are dropped from the end (and the body last) until it does.
func encodeStoredError(err error, codec Codec) ([]byte, error) {
	se := storeError(err, codec)
	for {
		b, merr := json.Marshal(se)
		if merr != nil {
			return nil, fmt.Errorf("idemkv: encoding a stored error: %w", merr)
		}
		if len(b) <= MaxResultSize {
			return b, nil
		}
		switch {
		case len(se.Messages) > 1:
			se.Messages = se.Messages[:len(se.Messages)-1]
		case se.Body != nil:
			se.Type, se.Body = "", nil
		default:
			m := se.Messages[0]
			se.Messages[0] = m[:min(len(m), MaxResultSize/2)]
			if len(m) <= MaxResultSize/2 {
				return nil, fmt.Errorf("%w: the stored error is %d bytes", ErrResultTooLarge, len(b))
			}
		}
	}
}

func decodeStoredError(b []byte, codec Codec) (*StoredError, error) {
	se := &StoredError{codec: codec}
	if err := json.Unmarshal(b, se); err != nil {
		return nil, err
	}
	return se, nil
}

// finalError marks fn's failure as a result to store and replay.
type finalError struct{ err error }

func (f *finalError) Error() string { return f.err.Error() }
func (f *finalError) Unwrap() error { return f.err }

// Final marks fn's failure as its final result: Do and TransactKey store
// it and replay it to every later caller with the same key, instead of
// leaving the key free for a retry. Use it for failures that retrying
// cannot fix (a declined card, a validation error). The first caller gets
// err itself; later ones a *StoredError that matches err's chain with
// errors.Is (by message) and errors.As (by type, decoded with the store's
// Codec; see StoredError). In TransactKey, fn's writes commit with the
// stored error: Final is an outcome, not a rollback. Final(nil) is nil.
func Final(err error) error {
	if err == nil {
		return nil
	}
	var f *finalError
	if errors.As(err, &f) {
		return err
	}
	return &finalError{err: err}
}

// maybeCommitted reports whether err may mean that an effect happened:
// txn's unknown and lost outcomes, a nested keyed call's unknown outcome,
// or a raw FoundationDB error that may have committed (a stock retry
// loop's commit_unknown_result).
func maybeCommitted(err error) bool {
	return errors.Is(err, txn.ErrUnknownResult) || errors.Is(err, txn.ErrOutcomeLost) ||
		errors.Is(err, ErrOutcomeUnknown) || kv.MaybeCommitted(err)
}
