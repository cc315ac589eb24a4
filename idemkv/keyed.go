package idemkv

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/idemkv/idemkv/kv"
)

// KeyInfo reports how a keyed call (Do, TransactKey) was served. Give a
// pointer in the options; the call fills it in before it returns.
type KeyInfo struct {
	// Replayed reports that the call returned the key's stored result (or
	// stored error) and did not run fn.
	Replayed bool
}

// keyCall is the fixed inputs of one keyed call, Do's or TransactKey's.
type keyCall struct {
	s           *Store
	scope, key  string
	ref         []byte // keyRef(scope, key)
	recordKey   []byte
	fingerprint [sha256.Size]byte
	retention   int64 // versions
	info        *KeyInfo
	ownInfo     KeyInfo // info when the caller gave none
}

func (s *Store) newKeyCall(scope, key string, payload []byte, nilFn bool, retention time.Duration, info *KeyInfo) (*keyCall, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if err := keyError("key", key); err != nil {
		return nil, err
	}
	if len(scope) > MaxScopeLen {
		return nil, fmt.Errorf("%w: scope %q… is %d bytes", ErrScopeTooLong, scope[:32], len(scope))
	}
	if nilFn {
		return nil, ErrNilFunc
	}
	if len(payload) > MaxPayloadSize {
		return nil, fmt.Errorf("%w: it is %d bytes", ErrPayloadTooLarge, len(payload))
	}
	if retention < 0 {
		return nil, fmt.Errorf("%w: Retention is %v; it must be positive (0 means the store's %v)", ErrInvalidOptions, retention, s.cfg.retention)
	}
	if retention == 0 {
		retention = s.cfg.retention
	}
	// The record key is the records prefix and the reference: one
	// allocation holds both.
	rk := s.keyed.recordKey(keyRef(scope, key))
	k := &keyCall{
		s:           s,
		scope:       scope,
		key:         key,
		ref:         rk[len(s.keyed.records):],
		recordKey:   rk,
		fingerprint: sha256.Sum256(payload),
		retention:   versions(retention),
		info:        info,
	}
	if k.info == nil {
		k.info = &k.ownInfo
	}
	*k.info = KeyInfo{}
	return k, nil
}

// read reads the key's record: ok is false when there is none. A record
// with another fingerprint is ErrPayloadMismatch.
func (k *keyCall) read(tr kv.Transaction) (rec record, ok bool, err error) {
	val, err := tr.Get(k.recordKey).Get()
	if err != nil || val == nil {
		return record{}, false, err
	}
	if rec, err = decodeRecord(val); err != nil {
		return record{}, false, fmt.Errorf("%w (key %s)", err, scoped(k.scope, k.key))
	}
	if rec.fingerprint != k.fingerprint {
		return record{}, false, fmt.Errorf("%w: key %s; use a fresh key for a new request", ErrPayloadMismatch, scoped(k.scope, k.key))
	}
	return rec, true, nil
}

// put writes rec and its age-index entry, whose value is the record's
// token.
func (k *keyCall) put(tr kv.Transaction, rec *record) {
	// One allocation for both values.
	b := rec.appendTo(make([]byte, 0, rec.encodedLen()+8))
	n := len(b)
	b = binary.BigEndian.AppendUint64(b, rec.token)
	tr.Set(k.recordKey, b[:n:n])
	tr.Set(k.s.keyed.indexKey(rec.due, k.ref), b[n:])
}

// drop clears rec and its age-index entry.
func (k *keyCall) drop(tr kv.Transaction, rec *record) {
	tr.Clear(k.s.keyed.indexKey(rec.due, k.ref))
	tr.Clear(k.recordKey)
}

// stored is what a record found by a call that does not run fn means for
// that call: the stored result to replay, or the error a key in progress
// or of unknown outcome is reported with.
func stored[T any](k *keyCall, rec record, rv int64) (T, error) {
	var v T
	switch rec.status {
	case statusInProgress:
		// The wall clock is read after the transaction: RetryAfter may be
		// short by the time since its read, never long.
		left := rec.leaseLeft(rv, k.s.now())
		return v, &InProgressError{Scope: k.scope, Key: k.key, RetryAfter: max(left, 0)}
	case statusUnknown:
		se, err := decodeStoredError(rec.result, k.s.cfg.codec)
		if err != nil {
			return v, fmt.Errorf("idemkv: decoding the stored cause of key %s's unknown outcome: %w", scoped(k.scope, k.key), err)
		}
		return v, &OutcomeUnknownError{Scope: k.scope, Key: k.key, Kept: true, Err: se}
	}
	k.info.Replayed = true
	switch rec.kind {
	case resultError:
		se, err := decodeStoredError(rec.result, k.s.cfg.codec)
		if err != nil {
			return v, fmt.Errorf("idemkv: decoding the stored error of key %s: %w", scoped(k.scope, k.key), err)
		}
		return v, se
	case resultValue:
		if err := k.s.cfg.codec.Unmarshal(rec.result, &v); err != nil {
			return v, fmt.Errorf("idemkv: decoding the stored result of key %s (was the result type or Codec changed?): %w", scoped(k.scope, k.key), err)
		}
		return v, nil
	}
	return v, fmt.Errorf("idemkv: corrupt keyed record for key %s (result kind %d)", scoped(k.scope, k.key), rec.kind)
}

// found carries a record out of a transaction function that must not
// commit: a replay, a key in progress. It is not a *kv.Error, so txn ends
// the call without committing (after settling an earlier ambiguous
// attempt, whose own result it then returns instead).
type found struct {
	rec record
	rv  int64
}

func (*found) Error() string { return "idemkv: internal: record found" }

// ForgetKey removes the record of key in scope, whatever its state, so
// that the next Do or TransactKey with it runs fn again. It is the way out
// of an unknown outcome (*OutcomeUnknownError with Kept): once you know
// the first call's effect did not happen, forget the key and retry; if it
// did happen, do not. Forgetting a key in progress lets a duplicate run
// while the holder still works, and its completion then fails with
// ErrLeaseLost. Forgetting a key that has no record is not an error.
func (s *Store) ForgetKey(ctx context.Context, scope, key string) error {
	k, err := s.newKeyCall(scope, key, nil, false, 0, nil)
	if err != nil {
		return err
	}
	_, err = Transact(ctx, s, func(tr kv.Transaction) (struct{}, error) {
		val, err := tr.Get(k.recordKey).Get()
		if err != nil || val == nil {
			return struct{}{}, err
		}
		rec, err := decodeRecord(val)
		if err != nil {
			// A corrupt record goes too; its index entry, if any, finds
			// nothing to remove.
			tr.Clear(k.recordKey)
			return struct{}{}, nil
		}
		k.drop(tr, &rec)
		return struct{}{}, nil
	})
	return err
}
