package idemkv

import (
	"context"
	"fmt"

	"github.com/idemkv/idemkv/kv"
)

// New returns a store over a database the caller opened and keeps: an
// fdb.Database already open in the process, adapted with fdbkv.Wrap, or
// any other kv.Database. It is Open without the URI: the same options,
// the same janitor (unless NoJanitor). The store does not own db: Close
// stops the janitor and closes the WrapDatabase wrapper, if any, but
// leaves db open for its owner to close, after the store.
func New(ctx context.Context, db kv.Database, opts *Options) (*Store, error) {
	cfg, err := opts.config()
	if err != nil {
		return nil, err
	}
	if db == nil {
		return nil, fmt.Errorf("%w: the database is nil", ErrInvalidOptions)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("idemkv: new store: %w", err)
	}
	return newStore(cfg, borrowed{db})
}

// borrowed is a database the store uses but does not own: closing it is
// its owner's business.
type borrowed struct{ kv.Database }

func (borrowed) Close() error { return nil }
