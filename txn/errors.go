package txn

import (
	"errors"
	"fmt"
)

// Errors for errors.Is.
var (
	// ErrInvalidOptions is wrapped by every Options validation error.
	ErrInvalidOptions = errors.New("txn: invalid options")
	// ErrNilFunc is returned when Transact is given a nil function.
	ErrNilFunc = errors.New("txn: the transaction function is nil")
	// ErrNilDatabase is returned when Transact or Resolve is given a nil
	// database.
	ErrNilDatabase = errors.New("txn: the database is nil")
	// ErrInvalidID is wrapped when Resolve is given an ID that no call with
	// these options could have made.
	ErrInvalidID = errors.New("txn: not a transaction ID of these options")
	// ErrOutcomeLost matches *OutcomeLostError.
	ErrOutcomeLost = errors.New("txn: transaction outcome lost: its marker may have been removed by the janitor")
	// ErrSlotTaken is returned by a call that found, before its first
	// commit, a sequence in its marker slot that its pool has not issued:
	// another writer wrote the slot (a Resolve of an ID no call has
	// returned, or another process with the same owner). The call has
	// committed nothing; the slot is never used again.
	ErrSlotTaken = errors.New("txn: the call's marker slot holds a sequence its pool has not issued")
	// ErrUnknownResult matches *UnknownResultError.
	ErrUnknownResult = errors.New("txn: transaction outcome unknown")
)

// UnknownResultError reports a call that ended without knowing whether its
// transaction committed: it timed out, or its context ended, or it ran out
// of retries, after a commit had been sent whose outcome was not learned.
// Nothing is retried after a timeout; Resolve(ctx, db, e.ID, opts) fences
// the ID and answers committed or not committed, definitively. Resolve
// itself returns it, for the same ID, when it could not settle the outcome
// in its retry limit, timeout or context: call Resolve again.
type UnknownResultError struct {
	ID  ID
	Err error // the error the call ended with, e.g. transaction_timed_out (1031)
}

func (e *UnknownResultError) Error() string {
	return fmt.Sprintf("txn: outcome of transaction %v unknown (resolve it with txn.Resolve): %v", e.ID, e.Err)
}

// Unwrap returns the error the call ended with.
func (e *UnknownResultError) Unwrap() error { return e.Err }

// Is matches ErrUnknownResult.
func (e *UnknownResultError) Is(target error) bool { return target == ErrUnknownResult }

// OutcomeLostError reports that an earlier attempt's outcome can no longer be
// learned: it may have committed, and what would say so is gone. The
// function is never run again in that case.
//
// For a slot ID (ID.IsSlot), either the call's marker slot is absent
// (Cleared): the janitor removed it, older than its minimum age — a call or
// a Resolve that outlived it — or a range clear over the prefix did; or the
// slot holds a later call's sequence (Reused): its pool reused it after the
// call's resolve window (Options.ResolveWindow), so a Resolve came too late
// — or, during a call, something else wrote the slot (a Resolve of an ID no
// call has issued yet, a second process with the same owner).
//
// For a legacy ID, the marker is absent but the janitor's watermark has
// passed its version, or a range clear removed the markers of the call's
// shard (a clear of the marker prefix, or of a range that begins at or
// before the shard's start): Cleared is then set. The shard's sentinel,
// which every such clear removes too, is how the reader knows.
type OutcomeLostError struct {
	ID        ID
	Watermark int64
	// Cleared reports that the call's slot is absent, or for a legacy ID
	// that the shard's sentinel was missing or newer than the ID: the
	// markers were cleared by someone other than the janitor.
	Cleared bool
	// Reused reports that the call's slot holds a later call's sequence.
	Reused bool
}

func (e *OutcomeLostError) Error() string {
	switch {
	case e.ID.IsSlot() && e.Reused:
		return fmt.Sprintf("txn: outcome of transaction %v lost: its marker slot now belongs to a later call (resolve within the resolve window, Options.ResolveWindow; or another writer wrote the slot)", e.ID)
	case e.ID.IsSlot():
		return fmt.Sprintf("txn: outcome of transaction %v lost: its marker slot is gone, removed by the janitor after its minimum age (resolve sooner, or raise the minimum age above the longest call) or by a range clear over the marker prefix (never clear it)", e.ID)
	}
	if e.Cleared {
		return fmt.Sprintf("txn: outcome of transaction %v lost: its shard's sentinel is missing or newer than the ID, so its markers were cleared after it began (a range clear over the marker prefix; never clear it), or the ID is not from this database", e.ID)
	}
	return fmt.Sprintf("txn: outcome of transaction %v lost: the janitor's watermark %d has passed its version %d; raise the janitor's minimum age above the longest call", e.ID, e.Watermark, e.ID.Version)
}

// Is matches ErrOutcomeLost.
func (e *OutcomeLostError) Is(target error) bool { return target == ErrOutcomeLost }

// PanicError is returned when the transaction function panics with anything
// but a *kv.Error (which MustGet panics with and which is handled as the
// function's error). Nothing is committed by the attempt that panicked.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("txn: transaction function panicked: %v", e.Value)
}
