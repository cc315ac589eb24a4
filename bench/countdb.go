package main

import (
	"context"
	"sync/atomic"

	"github.com/idemkv/idemkv/kv"
)

// countingDB wraps a kv.Database and counts what its transactions send:
// commits (attempts) and the keys and bytes of every Set, Clear, ClearRange
// and Atomic, key plus value or parameter. Every attempt counts, the failed
// ones too, because a retried attempt costs the cluster what it sent.
type countingDB struct {
	kv.Database
	commits, keys, bytes atomic.Int64
}

var _ kv.Database = (*countingDB)(nil)

func (db *countingDB) CreateTransaction(ctx context.Context) (kv.Transaction, error) {
	tr, err := db.Database.CreateTransaction(ctx)
	if err != nil {
		return nil, err
	}
	return &countingTxn{Transaction: tr, db: db}, nil
}

type countingTxn struct {
	kv.Transaction
	db *countingDB
}

func (t *countingTxn) wrote(n int) {
	t.db.keys.Add(1)
	t.db.bytes.Add(int64(n))
}

func (t *countingTxn) Set(key, value []byte) {
	t.wrote(len(key) + len(value))
	t.Transaction.Set(key, value)
}

func (t *countingTxn) Clear(key []byte) {
	t.wrote(len(key))
	t.Transaction.Clear(key)
}

func (t *countingTxn) ClearRange(r kv.Range) {
	t.wrote(len(r.Begin) + len(r.End))
	t.Transaction.ClearRange(r)
}

func (t *countingTxn) Atomic(op kv.MutationType, key, param []byte) {
	t.wrote(len(key) + len(param))
	t.Transaction.Atomic(op, key, param)
}

func (t *countingTxn) Commit() *kv.Future[struct{}] {
	t.db.commits.Add(1)
	return t.Transaction.Commit()
}
