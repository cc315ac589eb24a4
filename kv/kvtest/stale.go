package kvtest

import (
	"context"
	"sync"

	"github.com/idemkv/idemkv/kv"
)

// StaleReads wraps db into a deliberately broken backend: every transaction
// reads at the read version handed out lag transactions earlier instead of a
// current one. Write transactions that read stale data fail their conflict
// check, but read-only ones commit having missed acknowledged commits, which
// breaks strict serializability (not plain serializability). It exists to
// show that CheckStrictSerializable can fail; never use it otherwise.
func StaleReads(db kv.Database, lag int) kv.Database {
	return &staleDB{Database: db, lag: max(lag, 1)}
}

type staleDB struct {
	kv.Database
	lag int

	mu struct {
		sync.Mutex // covers versions
		versions   []int64
	}
}

// CreateTransaction returns a transaction of the wrapped database pinned to
// an old read version, taken from a probe transaction lag calls ago.
func (s *staleDB) CreateTransaction(ctx context.Context) (kv.Transaction, error) {
	probe, err := s.Database.CreateTransaction(ctx)
	if err != nil {
		return nil, err
	}
	v, err := probe.GetReadVersion().Get()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.mu.versions = append(s.mu.versions, v)
	if len(s.mu.versions) > s.lag+1 {
		s.mu.versions = s.mu.versions[1:]
	}
	old := s.mu.versions[0]
	s.mu.Unlock()
	tr, err := s.Database.CreateTransaction(ctx)
	if err != nil {
		return nil, err
	}
	tr.SetReadVersion(old)
	return tr, nil
}
