//go:build fdb

package fdbkv

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apple/foundationdb/bindings/go/src/fdb"

	"github.com/idemkv/idemkv/kv"
)

// DB is a kv.Database over a FoundationDB cluster. It is safe for
// concurrent use.
type DB struct {
	db fdb.Database
	// release is called once by Close; nil for a database given to Wrap,
	// which the caller owns.
	release func()
	closed  atomic.Bool
}

var _ kv.Database = (*DB)(nil)

// opened counts the DBs Open returned per cluster file. The bindings cache
// one fdb.Database per cluster file in an unsynchronised map, and closing it
// destroys the handle every holder shares; so Open and Close go through
// this table, under its lock, and the handle is destroyed when the last DB
// using it closes.
var opened struct {
	sync.Mutex
	refs map[string]int // guarded by the mutex
}

// Open connects to the cluster described by clusterFile ("" means
// $FDB_CLUSTER_FILE, then ./fdb.cluster, then the platform default). The
// first Open in a process selects the API version (Options.APIVersion,
// default 730) and starts the client's network thread; later Opens must ask
// for the same version.
//
// A missing or unreadable cluster file fails at once with an error naming
// the path and FDB_CLUSTER_FILE. An unreachable cluster does not fail Open:
// as with the bindings, transactions then wait (bound them with a context
// deadline or SetTimeout).
func Open(clusterFile string, opts *Options) (*DB, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	path, err := resolveClusterFile(clusterFile, os.Getenv)
	if err != nil {
		return nil, err
	}
	current := func() int {
		if v, err := fdb.GetAPIVersion(); err == nil {
			return v
		}
		return 0
	}
	if err := selectAPIVersion(o.APIVersion, current, func(v int) error {
		return fromFDB(fdb.APIVersion(v), txnState{})
	}); err != nil {
		return nil, err
	}
	opened.Lock()
	defer opened.Unlock()
	db, err := fdb.OpenDatabase(path)
	if err != nil {
		return nil, fromFDB(err, txnState{})
	}
	if opened.refs == nil {
		opened.refs = make(map[string]int)
	}
	opened.refs[path]++
	d := &DB{db: db}
	d.release = func() {
		opened.Lock()
		defer opened.Unlock()
		if opened.refs[path]--; opened.refs[path] == 0 {
			delete(opened.refs, path)
			db.Close()
		}
	}
	return d, nil
}

// Wrap adapts a database opened with the bindings. The caller keeps
// ownership: Close on the result stops its use through this DB but does not
// close db.
func Wrap(db fdb.Database) *DB { return &DB{db: db} }

// CreateTransaction starts a transaction bound to ctx: ctx's deadline
// becomes the transaction's timeout (the smaller of it and any SetTimeout),
// and canceling ctx cancels the transaction. A ctx that is already done
// still yields a transaction, whose operations fail with ctx's error, as
// for one canceled later. See the package documentation on contexts.
func (d *DB) CreateTransaction(ctx context.Context) (kv.Transaction, error) {
	if ctx == nil {
		return nil, errors.New("fdbkv: CreateTransaction: nil context (use context.Background())")
	}
	if d.closed.Load() {
		return nil, kv.ErrClosed
	}
	ftr, err := d.db.CreateTransaction()
	if err != nil {
		return nil, fromFDB(err, txnState{})
	}
	t := &transaction{db: d, tr: ftr, ctx: ctx}
	if err := t.begin(time.Now()); err != nil {
		t.disarm()
		return nil, err
	}
	return t, nil
}

// Close makes the DB unusable: CreateTransaction and the operations of
// transactions still open fail with kv.ErrClosed. For a DB from Open it
// releases the connection once no other DB from Open shares it. Close may
// be called more than once. Transactions must not be in the middle of an
// operation while Close runs.
func (d *DB) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	if d.release != nil {
		d.release()
	}
	return nil
}

// fromFDB maps an error from the bindings to the error callers see:
// fdb.Error becomes *kv.Error with the same code (see mapCode), anything
// else (the bindings' network errors, a too-new API version) is returned
// as is.
func fromFDB(err error, st txnState) error {
	if err == nil {
		return nil
	}
	var fe fdb.Error
	if errors.As(err, &fe) {
		return mapCode(fe.Code, fe.Error(), st)
	}
	return err
}
