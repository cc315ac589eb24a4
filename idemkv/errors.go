package idemkv

import (
	"errors"
	"fmt"
	"strings"

	"github.com/idemkv/idemkv/kv"
)

// Errors for errors.Is. FoundationDB failures come back as *kv.Error with
// their real code, and exactly-once outcomes as txn's errors
// (txn.ErrUnknownResult, txn.ErrOutcomeLost); these are idemkv's own.
var (
	// ErrInProgress is returned by Do when another caller holds the key's
	// lease and DoOptions.Wait is false. Retry later, or set Wait.
	ErrInProgress = errors.New("idemkv: request with this key is in progress")
	// ErrPayloadMismatch is returned by Do when the key was first used with
	// a different payload: a reused key is an error, never a silent replay.
	ErrPayloadMismatch = errors.New("idemkv: key was used with a different payload")
	// ErrEmptyKey is returned for an empty key or counter name.
	ErrEmptyKey = errors.New("idemkv: key is empty")
	// ErrKeyTooLong is returned for a key or counter name over MaxKeyLen
	// bytes.
	ErrKeyTooLong = fmt.Errorf("idemkv: key is longer than %d bytes", MaxKeyLen)
	// ErrResultTooLarge is returned by Do when fn's encoded result (or a
	// Final error) is over MaxResultSize bytes. The key is released and
	// nothing is stored.
	ErrResultTooLarge = fmt.Errorf("idemkv: encoded result is larger than %d bytes", MaxResultSize)
	// ErrPayloadTooLarge is returned by Do for a payload over
	// MaxPayloadSize bytes.
	ErrPayloadTooLarge = fmt.Errorf("idemkv: payload is larger than %d bytes", MaxPayloadSize)
	// ErrClosed is returned by every operation on a closed Store, and
	// wraps the error of a call that was in flight when Close closed the
	// database under it. It matches kv.ErrClosed too (errors.Is), so code
	// written against the kv layer sees a closed database either way.
	ErrClosed error = errClosed{}
	// ErrUnknownScheme is returned by Open for a URI whose scheme is not
	// mem:, file: or fdb:.
	ErrUnknownScheme = errors.New("idemkv: unknown URI scheme")
	// ErrLeaseLost is returned by Do when fn finished after its lease
	// expired and another caller took the key over: fn's result was not
	// stored (the newcomer's stands). fn's outside effects happened; the
	// fencing token (LeaseToken) is how downstream systems reject them.
	ErrLeaseLost = errors.New("idemkv: lease lost: another caller took over the key")
	// ErrNilFunc is returned when a nil function is given.
	ErrNilFunc = errors.New("idemkv: the function is nil")
	// ErrNilStore is returned when a nil *Store is given.
	ErrNilStore = errors.New("idemkv: the store is nil")
	// ErrInvalidOptions is wrapped by every Options and DoOptions
	// validation error.
	ErrInvalidOptions = errors.New("idemkv: invalid options")
)

// errClosed is ErrClosed's type: a store-level sentinel that is also the
// kv layer's.
type errClosed struct{}

func (errClosed) Error() string { return "idemkv: store is closed" }

// Is matches kv.ErrClosed.
func (errClosed) Is(target error) bool { return target == kv.ErrClosed }

// StoredError is a failure that fn marked Final, as replayed to the
// callers after the first: the stored messages of the error's chain, from
// the outermost. errors.Is(e, target) holds when target's message equals
// one of them, so sentinel errors (and kv.Error codes, by message) survive
// the round trip through the database, in any process.
type StoredError struct {
	// Messages are the Error() strings of the original error and of each
	// error it wrapped, outermost first.
	Messages []string `json:"messages"`
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

// storedError records err's chain (following Unwrap() error and
// Unwrap() []error depth first).
func storedError(err error) *StoredError {
	var msgs []string
	seen := map[string]bool{}
	var walk func(error)
	walk = func(e error) {
		if e == nil || len(msgs) >= 32 {
			return
		}
		if m := e.Error(); !seen[m] {
			seen[m] = true
			msgs = append(msgs, m)
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
	return &StoredError{Messages: msgs}
}

// finalError marks fn's failure as a result to store and replay.
type finalError struct{ err error }

func (f *finalError) Error() string { return f.err.Error() }
func (f *finalError) Unwrap() error { return f.err }

// Final marks fn's failure as its final result: Do stores it and replays
// it to every later caller with the same key instead of releasing the key
// for a retry. Use it for failures that retrying cannot fix (a declined
// card, a validation error). The first caller gets err itself; later ones a
// *StoredError that errors.Is err's chain by message. Final(nil) is nil.
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

func keyError(what string, key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: give a %s of 1 to %d bytes", ErrEmptyKey, what, MaxKeyLen)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%w: %s %q… is %d bytes", ErrKeyTooLong, what, strings.ToValidUTF8(key[:32], "?"), len(key))
	}
	return nil
}
