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
	// ErrInProgress is matched by *InProgressError: another caller holds
	// the key's lease (Do without DoOptions.Wait, or TransactKey meeting a
	// Do's key). The error carries the time left, for Retry-After.
	ErrInProgress = errors.New("idemkv: request with this key is in progress")
	// ErrOutcomeUnknown is matched by *OutcomeUnknownError: a keyed call
	// whose effect may or may not have happened. Its message says what
	// settles it.
	ErrOutcomeUnknown = errors.New("idemkv: outcome of the keyed request is unknown")
	// ErrScopeTooLong is returned for a scope over MaxScopeLen bytes.
	ErrScopeTooLong = fmt.Errorf("idemkv: scope is longer than %d bytes", MaxScopeLen)
	// ErrNoLease is returned by RenewLease outside a Do function.
	ErrNoLease = errors.New("idemkv: no lease: RenewLease is for the context Do gives its function")
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

func keyError(what string, key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: give a %s of 1 to %d bytes", ErrEmptyKey, what, MaxKeyLen)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%w: %s %q… is %d bytes", ErrKeyTooLong, what, strings.ToValidUTF8(key[:32], "?"), len(key))
	}
	return nil
}
