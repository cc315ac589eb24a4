//go:build !fdb

package fdbkv

import (
	"context"

	"github.com/idemkv/idemkv/kv"
)

// DB is a FoundationDB database. In this build (without the fdb tag) it
// cannot be opened: Open returns ErrNoFoundationDB.
type DB struct{}

var _ kv.Database = (*DB)(nil)

// Open fails with ErrNoFoundationDB: this build has no FoundationDB
// support. Build with -tags fdb where libfdb_c 7.3 is installed.
func Open(clusterFile string, opts *Options) (*DB, error) {
	return nil, ErrNoFoundationDB
}

// CreateTransaction fails with ErrNoFoundationDB.
func (*DB) CreateTransaction(ctx context.Context) (kv.Transaction, error) {
	return nil, ErrNoFoundationDB
}

// Close does nothing.
func (*DB) Close() error { return nil }
