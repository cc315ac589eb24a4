package txn

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/idemkv/idemkv/kv"
)

// Outcome is what Resolve learned about a call.
type Outcome int

const (
	// NotCommitted: no attempt of the call committed, and none ever will.
	NotCommitted Outcome = iota + 1
	// Committed: an attempt of the call committed, exactly once.
	Committed
)

func (o Outcome) String() string {
	switch o {
	case NotCommitted:
		return "not committed"
	case Committed:
		return "committed"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Resolve settles the outcome of the call that id names — the ID of an
// *UnknownResultError from a call that timed out. It fences the ID: it reads
// the call's slot and, in the same transaction, writes a tombstone unless
// an attempt of the call committed, so an attempt still in flight
// conflicts and can never commit afterwards. The answer is therefore final:
// Committed or NotCommitted. If the slot was removed (the janitor's minimum
// age passed, or a range clear over the prefix) or reused by a later call
// (the call's resolve window, Options.ResolveWindow, passed), the outcome
// can no longer be learned and Resolve returns *OutcomeLostError: resolve
// within both, and never clear the marker prefix. A call that returned a
// definite answer gives its slot back at once, so Resolve of its ID may
// find it reused. Legacy IDs (of calls made by earlier versions of this
// package) are resolved against their markers (see the package doc).
//
// Resolve retries its own failures, maybe-committed and timed-out commits
// included (it is idempotent), until it has an answer, the retry limit of
// opts is reached, opts' Timeout passes or ctx ends; then it returns
// *UnknownResultError for the same ID, which says to call it again.
//
// opts must have the Prefix of the call. Resolve may be called any number
// of times for the same ID and gives the same answer until the slot is
// reused or removed. It is meant for calls that have returned: a fence
// stops the attempts it conflicts with — those in flight — but an attempt
// that a still-running call starts after the fence, before that call has
// seen an ambiguous commit, does not read the slot and may commit over the
// tombstone.
func Resolve(ctx context.Context, db kv.Database, id ID, opts *Options) (Outcome, error) {
	o, _, err := ResolveCommit(ctx, db, id, opts)
	return o, err
}

// ResolveCommit is Resolve, and also returns the Commit of the attempt that
// committed, when the outcome is Committed.
func ResolveCommit(ctx context.Context, db kv.Database, id ID, opts *Options) (Outcome, Commit, error) {
	c, err := opts.config()
	if err != nil {
		return 0, Commit{}, err
	}
	if db == nil {
		return 0, Commit{}, ErrNilDatabase
	}
	if err := id.check(); err != nil {
		return 0, Commit{}, err
	}
	if ctx.Err() != nil {
		return 0, Commit{}, ctxError(ctx)
	}
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	tr, err := db.CreateTransaction(ctx)
	if err != nil {
		return 0, Commit{}, err
	}
	defer tr.Cancel()
	if err := tr.Options().SetMaxRetryDelay(c.maxRetryDelay); err != nil {
		return 0, Commit{}, err
	}
	if id.IsSlot() {
		o, st, err := fenceSlot(ctx, tr, &c, id, SlotKey(c.prefix, id.Owner, id.Slot))
		if err != nil || o != Committed {
			return o, Commit{}, err
		}
		return o, Commit{ID: id, Attempt: st.Attempt, Versionstamp: st.Stamp}, nil
	}
	o, m, err := fence(ctx, tr, &c, id, MarkerKey(c.prefix, id))
	if err != nil || o != Committed {
		return o, Commit{}, err
	}
	return o, Commit{ID: id, Attempt: m.attempt, Versionstamp: m.stamp}, nil
}

// retryIdempotent runs fn, an idempotent transaction on tr, until it
// succeeds, fails with an error that is not a *kv.Error, c's retry limit is
// reached or ctx ends. Unlike OnError it also retries
// transaction_timed_out (a timeout of the attempt, not of ctx) and
// cluster_version_changed, which it must not hand to OnError (see
// Transact).
func retryIdempotent(ctx context.Context, tr kv.Transaction, c *config, fn func() error) error {
	var bo kv.Backoff
	for tries := 1; ; tries++ {
		err := fn()
		if err == nil || !isKVError(err) {
			return err
		}
		if ctx.Err() != nil {
			return ctxError(ctx)
		}
		if c.retryLimit >= 0 && tries > c.retryLimit {
			return err
		}
		code, _ := kv.ErrorCode(err)
		switch {
		case code == kv.CodeClusterVersionChanged || code == kv.CodeTransactionTimedOut:
			// Not for OnError (it would switch clusters, or refuse); back
			// off and reset here.
			t := time.NewTimer(bo.Next(c.maxRetryDelay, rand.Float64()))
			select {
			case <-ctx.Done():
				t.Stop()
				return ctxError(ctx)
			case <-t.C:
			}
			tr.Reset()
			if err := tr.Options().SetMaxRetryDelay(c.maxRetryDelay); err != nil {
				return err
			}
		default:
			if err := tr.OnError(err); err != nil {
				return err
			}
		}
	}
}

// fenceSlot is fence for a slot ID: it learns id's outcome from its slot,
// key, and unless an attempt of id committed, makes sure none ever can. It
// returns the committed attempt's slot state with Committed. Like fence it
// is idempotent and retried within c's retry limit and ctx.
func fenceSlot(ctx context.Context, tr kv.Transaction, c *config, id ID, key []byte) (Outcome, SlotState, error) {
	var o Outcome
	var st SlotState
	err := retryIdempotent(ctx, tr, c, func() (err error) {
		o, st, err = fenceSlotOnce(tr, id, key)
		return err
	})
	if err != nil && isKVError(err) && !errors.Is(err, ErrUnknownResult) {
		return 0, st, &UnknownResultError{ID: id, Err: err}
	}
	return o, st, err
}

// fenceSlotOnce reads id's slot (a read conflict range: a write of the slot
// after this read version makes this commit fail) and concludes:
//
//   - id's sequence with an attempt: that attempt committed.
//   - id's sequence as a tombstone: fenced before; fenced again (an attempt
//     in flight may still land after this read version), not committed.
//   - an earlier sequence: none of id's attempts has committed as of this
//     read version; the tombstone written here makes any still in flight
//     conflict, so none ever will.
//   - a later sequence, or id's own as a refresh: the slot was reused by
//     a later call of its pool (after the call's resolve window), so the
//     answer is gone: *OutcomeLostError with Reused.
//   - absent: removed, by the janitor (older than its minimum age) or by a
//     range clear: *OutcomeLostError with Cleared.
func fenceSlotOnce(tr kv.Transaction, id ID, key []byte) (Outcome, SlotState, error) {
	val, err := tr.Get(key).Get()
	if err != nil {
		return 0, SlotState{}, err
	}
	if val == nil {
		return 0, SlotState{}, &OutcomeLostError{ID: id, Cleared: true}
	}
	st, err := DecodeSlot(val)
	if err != nil {
		return 0, st, err
	}
	switch {
	case st.Seq > id.Seq || (st.Seq == id.Seq && st.Attempt == SlotRefreshed):
		return 0, st, &OutcomeLostError{ID: id, Reused: true}
	case st.Seq == id.Seq && st.Attempt != SlotTombstone:
		return Committed, st, nil
	}
	tr.Atomic(kv.SetVersionstampedValue, key, slotParam(id.Seq, SlotTombstone))
	if err := tr.Commit().Err(); err != nil {
		return 0, st, err
	}
	return NotCommitted, st, nil
}
