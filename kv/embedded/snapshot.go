package embedded

import (
	"errors"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/idemkv/idemkv/kv"
)

// snapshot is the database state at one version. On Pebble it is a Pebble
// snapshot taken right after that version's batch was applied and before
// it was published. It may be released (when it has aged out of the
// five-second window, or on Close) while a transaction still refers to it:
// reads then fail with transaction_too_old, as FoundationDB's do once the
// storage servers have dropped the version. In memory it is the store read
// at version (a read version: the store holds every version of the window),
// and reads fail the same way once the store has aged version out.
type snapshot struct {
	version int64
	// mu is held shared by each read for its whole duration and exclusively
	// by release, so a read never touches a closed Pebble snapshot.
	mu sync.RWMutex
	ps *pebble.Snapshot // nil once released
	// mem is the in-memory store (OpenMem), where ps is nil.
	mem *memStore
}

// release closes the Pebble snapshot, waiting for reads in progress.
func (s *snapshot) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ps != nil {
		s.ps.Close()
		s.ps = nil
	}
}

// tryRelease is release without waiting; it reports whether it released.
func (s *snapshot) tryRelease() bool {
	if !s.mu.TryLock() {
		return false
	}
	defer s.mu.Unlock()
	if s.ps != nil {
		s.ps.Close()
		s.ps = nil
	}
	return true
}

func (s *snapshot) releasedErr() error {
	return kv.Errorf(kv.CodeTransactionTooOld, "the state at version %d has been released", s.version)
}

// get reads one user key.
func (s *snapshot) get(key []byte) (value []byte, present bool, err error) {
	if s.mem != nil {
		// The store's values are never modified: callers copy what they
		// hand out.
		return s.mem.get(key, s.version)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.ps == nil {
		return nil, false, s.releasedErr()
	}
	v, closer, err := s.ps.Get(userKey(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, &kv.Error{Code: kv.CodeInternalError, Cause: err}
	}
	out := append([]byte{}, v...)
	closer.Close()
	return out, true, nil
}

// scan calls fn for the user keys in [begin, end), in order or reversed,
// until fn returns false. A non-nil seek from fn skips ahead: forward to the
// first key >= seek, reversed to the last key < seek. The key and value
// passed to fn are valid only during the call.
func (s *snapshot) scan(begin, end []byte, reverse bool, fn func(k, v []byte) (more bool, seek []byte)) error {
	if s.mem != nil {
		return s.mem.scan(s.version, begin, end, reverse, fn)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.ps == nil {
		return s.releasedErr()
	}
	it, err := s.ps.NewIter(&pebble.IterOptions{LowerBound: userKey(begin), UpperBound: userKey(end)})
	if err != nil {
		return &kv.Error{Code: kv.CodeInternalError, Cause: err}
	}
	var ok bool
	if reverse {
		ok = it.Last()
	} else {
		ok = it.First()
	}
	for ok {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return &kv.Error{Code: kv.CodeInternalError, Cause: err}
		}
		more, seek := fn(it.Key()[1:], v)
		switch {
		case !more:
			ok = false
		case seek != nil && reverse:
			ok = it.SeekLT(userKey(seek))
		case seek != nil:
			ok = it.SeekGE(userKey(seek))
		case reverse:
			ok = it.Prev()
		default:
			ok = it.Next()
		}
	}
	if err := it.Close(); err != nil {
		return &kv.Error{Code: kv.CodeInternalError, Cause: err}
	}
	return nil
}

// userKey returns key under the user prefix.
func userKey(key []byte) []byte {
	k := make([]byte, 1+len(key))
	k[0] = userPrefix
	copy(k[1:], key)
	return k
}
