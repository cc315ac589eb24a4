package txn

import (
	"context"
	"errors"
	"fmt"

	"github.com/idemkv/idemkv/kv"
)

// Legacy IDs: the calls of earlier versions of this package wrote one
// marker per call (MarkerKey) and proved a marker's absence with the
// janitor's watermark and the shard's sentinel (see "Legacy IDs" in the
// package doc). Their markers stay in stores until the janitor sweeps
// them, so Resolve still settles their IDs here.

// fence learns a legacy id's outcome from its marker, key, and, unless an
// attempt committed, commits a tombstone so that none ever can. It returns the committed attempt's marker
// with Committed. fence is idempotent, so it retries everything retryable,
// maybe-committed and timed-out commits included, within c's retry limit;
// past it, or once ctx ends, it returns *UnknownResultError.
func fence(ctx context.Context, tr kv.Transaction, c *config, id ID, key []byte) (Outcome, marker, error) {
	var o Outcome
	var m marker
	err := retryIdempotent(ctx, tr, c, func() (err error) {
		o, m, err = fenceOnce(tr, c, id, key)
		return err
	})
	if err != nil && isKVError(err) && !errors.Is(err, ErrUnknownResult) {
		return 0, m, &UnknownResultError{ID: id, Err: err}
	}
	return o, m, err
}

func fenceOnce(tr kv.Transaction, c *config, id ID, key []byte) (Outcome, marker, error) {
	var m marker
	rv, err := tr.GetReadVersion().Get()
	if err != nil {
		return 0, m, err
	}
	if id.Version > rv {
		return 0, m, fmt.Errorf("%w: %v has version %d, after the database's current version %d", ErrInvalidID, id, id.Version, rv)
	}
	val, err := tr.Get(key).Get()
	if err != nil {
		return 0, m, err
	}
	if val != nil {
		if m, err = decodeMarker(val); err != nil {
			return 0, m, err
		}
		if m.attempt != tombstoneAttempt {
			return Committed, m, nil
		}
		// A tombstone, read at rv: an attempt in flight may still land
		// after rv. Writing the tombstone again makes this commit conflict
		// with any that does, and any that has not yet landed conflict with
		// this one.
	} else if err := checkAbsent(tr, c, id); err != nil {
		return 0, m, err
	}
	// The read of the marker above is a conflict range: an attempt that
	// commits the marker after this read version makes this commit fail,
	// and this commit makes any such attempt fail.
	tr.Atomic(kv.SetVersionstampedValue, key, markerParam(tombstoneAttempt))
	if err := tr.Commit().Err(); err != nil {
		return 0, m, err
	}
	return NotCommitted, m, nil
}

// checkAbsent is called with a legacy ID's marker absent at tr's read version.
// It fails with *OutcomeLostError unless the absence proves that no attempt
// has committed: the janitor's watermark has not passed the ID's version,
// and the shard's sentinel is present and older than the ID. Both are read
// as snapshots: a janitor sweep or a range clear that removes the marker
// after this read version also writes the marker key, which this
// transaction has read (a conflict range), so it conflicts.
func checkAbsent(tr kv.Transaction, c *config, id ID) error {
	wf := tr.Snapshot().Get(c.watermarkKey)
	sf := tr.Snapshot().Get(SentinelKey(c.prefix, id.Shard))
	b, err := wf.Get()
	if err != nil {
		return err
	}
	w, err := DecodeWatermark(b)
	if err != nil {
		return err
	}
	if w > id.Version {
		return &OutcomeLostError{ID: id, Watermark: w}
	}
	sv, err := sf.Get()
	if err != nil {
		return err
	}
	if sv == nil {
		return &OutcomeLostError{ID: id, Watermark: w, Cleared: true}
	}
	stamp, err := decodeSentinel(sv)
	if err != nil {
		return err
	}
	if stamp.Version() > id.Version {
		return &OutcomeLostError{ID: id, Watermark: w, Cleared: true}
	}
	return nil
}
