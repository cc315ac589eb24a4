package txn

import (
	"context"
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

// Resolve settles the outcome of the call that id names — typically the ID
// of an *UnknownResultError from a call that timed out. It fences the ID: if
// no attempt has committed, it writes a tombstone marker in the same
// transaction as its read, so an attempt still in flight conflicts and can
// never commit afterwards. The answer is therefore final: Committed or
// NotCommitted. If the janitor's watermark has passed the ID's version, the
// outcome can no longer be learned and Resolve returns *OutcomeLostError; to
// avoid that, resolve within the janitor's minimum age.
//
// opts must have the Prefix and Shards of the call. Resolve may be called any
// number of times for the same ID and always gives the same answer (until
// the janitor removes the marker). It must not be called for a call that is
// still running: a fence does not stop a call that has not yet seen an
// ambiguous commit.
func Resolve(ctx context.Context, db kv.Database, id ID, opts *Options) (Outcome, error) {
	c, err := opts.config()
	if err != nil {
		return 0, err
	}
	if db == nil {
		return 0, ErrNilDatabase
	}
	if err := id.check(&c); err != nil {
		return 0, err
	}
	if ctx.Err() != nil {
		return 0, ctxError(ctx)
	}
	tr, err := db.CreateTransaction(ctx)
	if err != nil {
		return 0, err
	}
	if err := tr.Options().SetMaxRetryDelay(c.maxRetryDelay); err != nil {
		return 0, err
	}
	o, _, err := fence(ctx, tr, &c, id, MarkerKey(c.prefix, id), c.maxRetryDelay)
	return o, err
}

// fence learns id's outcome in a retry loop and, if no attempt committed,
// commits a tombstone so that none ever can. It returns the committed
// attempt's number with Committed. fence is idempotent, so an ambiguous
// commit of the tombstone is simply retried: the next read finds it or not.
func fence(ctx context.Context, tr kv.Transaction, c *config, id ID, key []byte, maxDelay time.Duration) (Outcome, uint32, error) {
	var bo kv.Backoff
	for {
		o, a, err := fenceOnce(tr, c, id, key)
		if err == nil || !isKVError(err) {
			return o, a, err
		}
		if code, _ := kv.ErrorCode(err); code == kv.CodeClusterVersionChanged {
			// Not for OnError (see Transact); back off and reset here.
			t := time.NewTimer(bo.Next(maxDelay, rand.Float64()))
			select {
			case <-ctx.Done():
				t.Stop()
				return 0, 0, ctxError(ctx)
			case <-t.C:
			}
			tr.Reset()
			if err := tr.Options().SetMaxRetryDelay(maxDelay); err != nil {
				return 0, 0, err
			}
			continue
		}
		if err := tr.OnError(err); err != nil {
			return 0, 0, err
		}
	}
}

func fenceOnce(tr kv.Transaction, c *config, id ID, key []byte) (Outcome, uint32, error) {
	rv, err := tr.GetReadVersion().Get()
	if err != nil {
		return 0, 0, err
	}
	if id.Version > rv {
		return 0, 0, fmt.Errorf("%w: %v has version %d, after the database's current version %d", ErrInvalidID, id, id.Version, rv)
	}
	val, err := tr.Get(key).Get()
	if err != nil {
		return 0, 0, err
	}
	if val != nil {
		a, err := decodeMarker(val)
		if err != nil {
			return 0, 0, err
		}
		if a == tombstoneAttempt {
			return NotCommitted, 0, nil
		}
		return Committed, a, nil
	}
	b, err := tr.Snapshot().Get(c.watermarkKey).Get()
	if err != nil {
		return 0, 0, err
	}
	w, err := DecodeWatermark(b)
	if err != nil {
		return 0, 0, err
	}
	if w > id.Version {
		return 0, 0, &OutcomeLostError{ID: id, Watermark: w}
	}
	// The read of the marker above is a conflict range: an attempt that
	// commits the marker after this read version makes this commit fail,
	// and this commit makes any such attempt fail.
	tr.Set(key, encodeMarker(tombstoneAttempt))
	if err := tr.Commit().Err(); err != nil {
		return 0, 0, err
	}
	return NotCommitted, 0, nil
}
