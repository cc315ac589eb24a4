package idemkv

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/idemkv/idemkv/kv"
)

// DoOptions adjusts one Do call. A nil *DoOptions means the store's
// defaults.
type DoOptions struct {
	// Wait makes a call that finds the key in progress poll (with
	// FoundationDB's backoff, capped by Options.MaxRetryDelay) until the
	// holder completes, releases or loses the key, or ctx ends, instead of
	// failing with ErrInProgress.
	Wait bool
	// Lease overrides Options.Lease for this call's claim. fn should finish
	// well within it: once it expires, another caller may take the key
	// over and this call's result is refused with ErrLeaseLost.
	Lease time.Duration
	// Retention overrides Options.Retention for this call's record.
	Retention time.Duration
}

type leaseKey struct{}

// LeaseToken returns, inside a Do function, the fencing token of the
// caller's claim on the key. Tokens of one key only grow: a caller that
// took over an expired lease has a larger token than the one it displaced.
// Pass it to downstream systems that can reject writes with a smaller
// token than one they have seen (the fencing-token pattern), so that a
// late original cannot overwrite the newcomer's work there either.
func LeaseToken(ctx context.Context) (uint64, bool) {
	t, ok := ctx.Value(leaseKey{}).(uint64)
	return t, ok
}

// Do runs fn once per key: the HTTP Idempotency-Key model on a
// transactional store.
//
// The first call claims the key (an in-progress record with a lease, a
// fencing token and the payload's SHA-256), runs fn outside any
// transaction, then stores fn's encoded result — only if it still holds
// the lease's token. Later calls with the same key, from any process and
// after restarts, return the stored result without running fn, until the
// record's retention passes and the janitor removes it. Every claim,
// completion and release is itself a txn.Transact call, so none is applied
// twice.
//
// Errors:
//   - the key used with another payload: ErrPayloadMismatch;
//   - another caller holds the key: ErrInProgress, or with opts.Wait, a
//     wait for its outcome (bounded by ctx);
//   - the holder's lease expired: this call takes over with a new token;
//   - fn's error releases the key (nothing stored) and is returned, unless
//     marked with Final: then it is stored and replayed (see Final);
//   - fn finished after another caller took over: ErrLeaseLost, and
//     nothing is stored;
//   - an encoded result over MaxResultSize: ErrResultTooLarge, the key is
//     released.
//
// Once fn returns, its outcome is recorded on a context detached from ctx
// (bounded by settleTimeout, 10 s), so a caller that gives up then does
// not lose work already done. The first caller gets the value fn returned; repeats get it decoded from
// its stored encoding (with JSON, unexported fields are lost). If fn
// panics, the key is released and the panic continues. If a claim's own
// commit times out (*txn.UnknownResultError), Do returns that error
// without running fn; the key may then stay in progress, with no holder,
// until its lease expires and a later call takes it over.
func Do[T any](ctx context.Context, s *Store, key string, payload []byte, fn func(ctx context.Context) (T, error), opts *DoOptions) (_ T, err error) {
	var zero T
	d, err := s.newDo(key, payload, fn == nil, opts)
	if err != nil {
		return zero, err
	}
	var ran, replayed bool // for the store's logs and metrics
	defer func() { s.cfg.obs.keyed(key, ran, replayed, err) }()
	var bo kv.Backoff
	for {
		c, err := d.claim(ctx)
		if err != nil {
			return zero, err
		}
		if c.previous != 0 {
			s.cfg.obs.takeover(key, c.previous, c.token)
		}
		switch c.state {
		case claimCompleted:
			replayed = true
			return replay[T](d, c.rec)
		case claimInProgress:
			if !d.wait {
				return zero, fmt.Errorf("%w: key %q is held for about %v more", ErrInProgress, key, c.remaining.Round(time.Millisecond))
			}
			if err := d.sleep(ctx, &bo, c.remaining); err != nil {
				return zero, err
			}
			continue
		}
		ran = true
		return run(ctx, d, c.token, fn)
	}
}

// settleTimeout bounds the completion or release that follows fn, which
// runs on a context detached from the caller's: once fn's work is done,
// recording it is what keeps it from being done again, so a caller that
// gives up at that moment must not stop it.
const settleTimeout = 10 * time.Second

// run runs fn under the claim with token and completes or releases it.
func run[T any](ctx context.Context, d *doCall, token uint64, fn func(ctx context.Context) (T, error)) (v T, err error) {
	var zero T
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	finished := false
	defer func() {
		if !finished {
			// fn panicked: release the key for a retry, then let the panic
			// continue; it is fn's, not ours.
			d.release(sctx, token)
		}
	}()
	v, fnErr := fn(context.WithValue(ctx, leaseKey{}, token))
	finished = true
	if fnErr != nil {
		var f *finalError
		if !errors.As(fnErr, &f) {
			if rerr := d.release(sctx, token); rerr != nil {
				return zero, fmt.Errorf("%w (and releasing key %q failed: %v; it frees when its lease expires)", fnErr, d.key, rerr)
			}
			return zero, fnErr
		}
		b, err := json.Marshal(storedError(f.err))
		if err != nil {
			return zero, errors.Join(fnErr, d.release(sctx, token))
		}
		if err := d.complete(sctx, token, resultError, b); err != nil {
			return zero, err
		}
		return zero, f.err
	}
	b, err := d.s.cfg.codec.Marshal(v)
	if err != nil {
		return zero, errors.Join(fmt.Errorf("idemkv: encoding the result of key %q: %w", d.key, err), d.release(sctx, token))
	}
	if err := d.complete(sctx, token, resultValue, b); err != nil {
		return zero, err
	}
	return v, nil
}

// replay returns a completed record's stored result.
func replay[T any](d *doCall, rec record) (T, error) {
	var v T
	switch rec.kind {
	case resultError:
		se := &StoredError{}
		if err := json.Unmarshal(rec.result, se); err != nil {
			return v, fmt.Errorf("idemkv: decoding the stored error of key %q: %w", d.key, err)
		}
		return v, se
	case resultValue:
		if err := d.s.cfg.codec.Unmarshal(rec.result, &v); err != nil {
			return v, fmt.Errorf("idemkv: decoding the stored result of key %q (was the result type or Codec changed?): %w", d.key, err)
		}
		return v, nil
	}
	return v, fmt.Errorf("idemkv: corrupt keyed record for key %q (result kind %d)", d.key, rec.kind)
}

// doCall is one Do call's fixed inputs.
type doCall struct {
	s           *Store
	key         string
	recordKey   []byte
	fingerprint [sha256.Size]byte
	lease       int64 // versions
	retention   int64 // versions
	wait        bool
}

func (s *Store) newDo(key string, payload []byte, nilFn bool, opts *DoOptions) (*doCall, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if err := keyError("key", key); err != nil {
		return nil, err
	}
	if nilFn {
		return nil, ErrNilFunc
	}
	if len(payload) > MaxPayloadSize {
		return nil, fmt.Errorf("%w: it is %d bytes", ErrPayloadTooLarge, len(payload))
	}
	var o DoOptions
	if opts != nil {
		o = *opts
	}
	switch {
	case o.Lease < 0:
		return nil, fmt.Errorf("%w: DoOptions.Lease is %v; it must be positive (0 means the store's %v)", ErrInvalidOptions, o.Lease, s.cfg.lease)
	case o.Retention < 0:
		return nil, fmt.Errorf("%w: DoOptions.Retention is %v; it must be positive (0 means the store's %v)", ErrInvalidOptions, o.Retention, s.cfg.retention)
	}
	if o.Lease == 0 {
		o.Lease = s.cfg.lease
	}
	if o.Retention == 0 {
		o.Retention = s.cfg.retention
	}
	return &doCall{
		s:           s,
		key:         key,
		recordKey:   s.keyed.recordKey(key),
		fingerprint: sha256.Sum256(payload),
		lease:       versions(o.Lease),
		retention:   versions(o.Retention),
		wait:        o.Wait,
	}, nil
}

type claimState int

const (
	claimed claimState = iota + 1
	claimCompleted
	claimInProgress
)

type claimResult struct {
	state     claimState
	token     uint64        // claimed
	rec       record        // completed
	remaining time.Duration // in progress: the holder's lease left
	previous  uint64        // claimed by taking over: the expired holder's token
}

// claim reads the key's record and, if it is absent or its lease expired,
// writes an in-progress record for this call.
func (d *doCall) claim(ctx context.Context) (claimResult, error) {
	return Transact(ctx, d.s, func(tr kv.Transaction) (claimResult, error) {
		rv, err := tr.GetReadVersion().Get()
		if err != nil {
			return claimResult{}, err
		}
		val, err := tr.Get(d.recordKey).Get()
		if err != nil {
			return claimResult{}, err
		}
		var previous uint64
		if val != nil {
			rec, err := decodeRecord(val)
			if err != nil {
				return claimResult{}, err
			}
			if rec.fingerprint != d.fingerprint {
				return claimResult{}, fmt.Errorf("%w: key %q", ErrPayloadMismatch, d.key)
			}
			if rec.status == statusCompleted {
				return claimResult{state: claimCompleted, rec: rec}, nil
			}
			if rv < rec.leaseUntil {
				left := time.Duration(rec.leaseUntil-rv) * time.Second / kv.VersionsPerSecond
				return claimResult{state: claimInProgress, remaining: left}, nil
			}
			// The holder's lease expired: take over. Its index entry goes;
			// this claim writes its own.
			tr.Clear(d.s.keyed.indexKey(rec.due, d.key))
			previous = rec.token
		}
		rec := record{
			status:      statusInProgress,
			token:       uint64(rv),
			leaseUntil:  rv + d.lease,
			due:         rv + max(d.retention, d.lease),
			fingerprint: d.fingerprint,
		}
		d.put(tr, &rec)
		return claimResult{state: claimed, token: rec.token, previous: previous}, nil
	})
}

// complete stores fn's outcome if the claim with token still holds the key.
func (d *doCall) complete(ctx context.Context, token uint64, kind byte, result []byte) error {
	if len(result) > MaxResultSize {
		err := fmt.Errorf("%w: key %q's is %d bytes", ErrResultTooLarge, d.key, len(result))
		return errors.Join(err, d.release(ctx, token))
	}
	_, err := Transact(ctx, d.s, func(tr kv.Transaction) (struct{}, error) {
		rv, err := tr.GetReadVersion().Get()
		if err != nil {
			return struct{}{}, err
		}
		rec, err := d.held(tr, token)
		if err != nil {
			return struct{}{}, err
		}
		tr.Clear(d.s.keyed.indexKey(rec.due, d.key))
		rec.status, rec.leaseUntil, rec.due = statusCompleted, 0, rv+d.retention
		rec.kind, rec.result = kind, result
		d.put(tr, &rec)
		return struct{}{}, nil
	})
	return err
}

// release clears the record if the claim with token still holds the key.
// Losing it meanwhile is not an error: there is nothing to release.
func (d *doCall) release(ctx context.Context, token uint64) error {
	_, err := Transact(ctx, d.s, func(tr kv.Transaction) (struct{}, error) {
		rec, err := d.held(tr, token)
		if errors.Is(err, ErrLeaseLost) {
			return struct{}{}, nil
		}
		if err != nil {
			return struct{}{}, err
		}
		tr.Clear(d.s.keyed.indexKey(rec.due, d.key))
		tr.Clear(d.recordKey)
		return struct{}{}, nil
	})
	return err
}

// held reads the record and checks that the claim with token still holds
// it: in progress with that token. An expired lease not yet taken over
// still holds.
func (d *doCall) held(tr kv.Transaction, token uint64) (record, error) {
	val, err := tr.Get(d.recordKey).Get()
	if err != nil {
		return record{}, err
	}
	if val == nil {
		return record{}, fmt.Errorf("%w: key %q's record is gone (its retention passed)", ErrLeaseLost, d.key)
	}
	rec, err := decodeRecord(val)
	if err != nil {
		return record{}, err
	}
	if rec.token != token || rec.status != statusInProgress {
		return record{}, fmt.Errorf("%w: key %q is now held by token %d (this call's was %d)", ErrLeaseLost, d.key, rec.token, token)
	}
	return rec, nil
}

// put writes rec and its age-index entry.
func (d *doCall) put(tr kv.Transaction, rec *record) {
	tr.Set(d.recordKey, rec.encode())
	tr.Set(d.s.keyed.indexKey(rec.due, d.key), binary.BigEndian.AppendUint64(nil, rec.token))
}

// sleep waits before polling an in-progress key again: FoundationDB's
// backoff, capped by the store's MaxRetryDelay and by the holder's lease.
func (d *doCall) sleep(ctx context.Context, bo *kv.Backoff, remaining time.Duration) error {
	maxDelay := d.s.cfg.txnOpts.MaxRetryDelay
	if maxDelay == 0 {
		maxDelay = kv.DefaultMaxRetryDelay
	}
	delay := max(bo.Next(min(maxDelay, max(remaining, time.Millisecond)), rand.Float64()), time.Millisecond)
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("%w: gave up waiting for key %q: %w", ErrInProgress, d.key, ctx.Err())
	case <-t.C:
		return nil
	}
}
