//go:build cgo

package fdbc

import "C"

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/idemkv/idemkv/kv/embedded"
)

// A store is one kv/embedded database, shared by every FDBDatabase handle
// opened on the same cluster file contents (or directory), as every client
// of one cluster file shares the cluster. Database handles, transactions
// and active watches each hold a reference; the engine closes when the
// last goes, so an in-memory store lives as long as anything uses it.
type store struct {
	key  string
	db   *embedded.DB
	refs int // guarded by stores' lock
}

var stores struct {
	sync.Mutex
	m map[string]*store
	// closing holds, per key, a channel closed once the store its last
	// reference dropped has finished closing: a durable store holds its
	// directory's LOCK until then, so opening it again must wait.
	closing map[string]chan struct{}
}

// storeFor opens (or shares) the store a cluster file path names; see
// clusterStore for the convention.
func storeFor(key string, open func() (*embedded.DB, error)) (*store, error) {
	stores.Lock()
	for {
		done, ok := stores.closing[key]
		if !ok {
			break
		}
		stores.Unlock()
		<-done
		stores.Lock()
	}
	defer stores.Unlock()
	if s, ok := stores.m[key]; ok {
		s.refs++
		return s, nil
	}
	db, err := open()
	if err != nil {
		return nil, err
	}
	if stores.m == nil {
		stores.m = make(map[string]*store)
	}
	s := &store{key: key, db: db, refs: 1}
	stores.m[key] = s
	return s, nil
}

func (s *store) ref() {
	stores.Lock()
	s.refs++
	stores.Unlock()
}

func (s *store) unref() {
	stores.Lock()
	s.refs--
	last := s.refs == 0
	var done chan struct{}
	if last {
		delete(stores.m, s.key)
		done = make(chan struct{})
		if stores.closing == nil {
			stores.closing = make(map[string]chan struct{})
		}
		stores.closing[s.key] = done
	}
	stores.Unlock()
	if last {
		s.db.Close()
		stores.Lock()
		delete(stores.closing, s.key)
		stores.Unlock()
		close(done)
	}
}

// clusterStore maps fdb_create_database's cluster file path to a store:
//
//   - NULL or "": $FDB_CLUSTER_FILE if set, else ./fdb.cluster if it
//     exists, else one in-memory store shared by the process ("the default
//     cluster").
//   - a directory (existing, or a path ending in "/"): a durable store in
//     that directory (kv/embedded's Open).
//   - a file: its connection string (description:ID@addresses, # comments
//     allowed) names an in-memory store; every handle opened with the same
//     string shares it. A file that cannot be read fails with
//     no_cluster_file_found (1515) if missing, io_error (1510) otherwise;
//     one without a connection string with connection_string_invalid (2104).
func clusterStore(path string) (*store, int) {
	if path == "" {
		if env := os.Getenv("FDB_CLUSTER_FILE"); env != "" {
			path = env
		} else if _, err := os.Stat("fdb.cluster"); err == nil {
			path = "fdb.cluster"
		} else {
			return memStore("default")
		}
	}
	fi, err := os.Stat(path)
	if (err == nil && fi.IsDir()) || (err != nil && strings.HasSuffix(path, "/")) {
		abs, aerr := filepath.Abs(path)
		if aerr != nil {
			return nil, errIO
		}
		s, err := storeFor("dir:"+abs, func() (*embedded.DB, error) { return embedded.Open(abs, nil) })
		if err != nil {
			logf("fdbc: opening the durable store in %s: %v", abs, err)
			return nil, errIO
		}
		return s, errSuccess
	}
	b, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, errNoClusterFile
		}
		return nil, errIO
	}
	cs, ok := connectionString(b)
	if !ok {
		return nil, errConnectionStringBad
	}
	return memStore(cs)
}

// connectionString returns the one connection string in a cluster file.
func connectionString(b []byte) (string, bool) {
	var line string
	for _, l := range bytes.Split(b, []byte("\n")) {
		l = bytes.TrimSpace(l)
		if len(l) == 0 || l[0] == '#' {
			continue
		}
		if line != "" {
			return "", false
		}
		line = string(l)
	}
	at := strings.IndexByte(line, '@')
	if at <= 0 || strings.IndexByte(line[:at], ':') <= 0 || at == len(line)-1 {
		return "", false
	}
	return line, true
}

func memStore(name string) (*store, int) {
	s, err := storeFor("mem:"+name, func() (*embedded.DB, error) { return embedded.OpenMem(nil) })
	if err != nil {
		logf("fdbc: opening an in-memory store: %v", err)
		return nil, errInternal
	}
	return s, errSuccess
}

// logf reports what an error code cannot say, on stderr, as libfdb_c's
// trace would in a file.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

// database is an FDBDatabase: a handle on a store, with the database
// options its transactions start from.
type database struct {
	s *store

	mu struct {
		sync.Mutex
		defaults txnDefaults
		closed   bool
	}
	maxWatches atomic.Int64
	watches    atomic.Int64 // active watches
}

// txnDefaults are the database options every new (or reset) transaction
// starts with; -1 or 0 means FoundationDB's own default.
type txnDefaults struct {
	timeout       time.Duration // 0: none
	retryLimit    int64         // -1: none
	maxRetryDelay time.Duration // 0: kv.DefaultMaxRetryDelay
	sizeLimit     int64         // 0: kv.DefaultSizeLimit
}

// defaultMaxWatches is FoundationDB's default for max_watches; the option
// accepts 0 to 1,000,000.
const (
	defaultMaxWatches = 10_000
	maxMaxWatches     = 1_000_000
)

func newDatabase(s *store) *database {
	d := &database{s: s}
	d.mu.defaults = txnDefaults{retryLimit: -1}
	d.maxWatches.Store(defaultMaxWatches)
	return d
}

//export fdb_create_database
func fdb_create_database(path *C.char, out *uintptr) int32 {
	if out == nil {
		return errClientInvalidOp
	}
	if c := networkReady(); c != 0 {
		return int32(c)
	}
	p := ""
	if path != nil {
		p = C.GoString(path)
	}
	s, code := clusterStore(p)
	if code != 0 {
		return int32(code)
	}
	*out = newHandle(newDatabase(s))
	return errSuccess
}

// fdb_create_database_from_connection_string opens the in-memory store the
// connection string names (shared with cluster files holding the same
// string).
//
//export fdb_create_database_from_connection_string
func fdb_create_database_from_connection_string(cs *C.char, out *uintptr) int32 {
	if out == nil || cs == nil {
		return errClientInvalidOp
	}
	if c := networkReady(); c != 0 {
		return int32(c)
	}
	str, ok := connectionString([]byte(C.GoString(cs)))
	if !ok {
		return errConnectionStringBad
	}
	s, code := memStore(str)
	if code != 0 {
		return int32(code)
	}
	*out = newHandle(newDatabase(s))
	return errSuccess
}

//export fdb_database_destroy
func fdb_database_destroy(h uintptr) {
	d := dropHandle[database](h)
	if d == nil {
		return
	}
	d.mu.Lock()
	closed := d.mu.closed
	d.mu.closed = true
	d.mu.Unlock()
	if !closed {
		d.s.unref()
	}
}

//export fdb_database_set_option
func fdb_database_set_option(h uintptr, code int32, value *byte, n int32) int32 {
	d := lookup[database](h)
	if d == nil {
		return errClientInvalidOp
	}
	if c := checkOption(databaseOptions, int(code), value, n); c != 0 {
		return int32(c)
	}
	if databaseOptions[int(code)].effect != takesEffect {
		return errSuccess
	}
	v := intParam(value)
	d.mu.Lock()
	defer d.mu.Unlock()
	switch code {
	case dbOptMaxWatches:
		if v < 0 || v > maxMaxWatches {
			return errInvalidOptionValue
		}
		d.maxWatches.Store(v)
	case optTimeout:
		if v < 0 {
			return errInvalidOptionValue
		}
		d.mu.defaults.timeout = time.Duration(v) * time.Millisecond
	case optRetryLimit:
		if v < -1 {
			return errInvalidOptionValue
		}
		d.mu.defaults.retryLimit = v
	case optMaxRetryDelay:
		if v < 0 {
			return errInvalidOptionValue
		}
		d.mu.defaults.maxRetryDelay = time.Duration(v) * time.Millisecond
	case optSizeLimit:
		if v < 32 || v > 10_000_000 {
			return errInvalidOptionValue
		}
		d.mu.defaults.sizeLimit = v
	}
	return errSuccess
}

func (d *database) defaults() txnDefaults {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.mu.defaults
}

//export fdb_database_create_transaction
func fdb_database_create_transaction(h uintptr, out *uintptr) int32 {
	d := lookup[database](h)
	if d == nil || out == nil {
		return errClientInvalidOp
	}
	t, code := newTransaction(d)
	if code != 0 {
		return int32(code)
	}
	*out = t.h
	return errSuccess
}

// fdb_database_open_tenant refuses: the embedded engine has no tenant
// mode, and FoundationDB answers a cluster without it with
// tenants_disabled (2136).
//
//export fdb_database_open_tenant
func fdb_database_open_tenant(h uintptr, name *byte, n int32, out *uintptr) int32 {
	if lookup[database](h) == nil || out == nil || n < 0 {
		return errClientInvalidOp
	}
	return errTenantsDisabled
}

// tenant exists only so that the tenant functions can tell a handle they
// never issued; fdb_database_open_tenant issues none.
type tenant struct{}

//export fdb_tenant_create_transaction
func fdb_tenant_create_transaction(h uintptr, out *uintptr) int32 {
	if lookup[tenant](h) == nil {
		return errClientInvalidOp
	}
	return errTenantsDisabled
}

//export fdb_tenant_destroy
func fdb_tenant_destroy(h uintptr) { dropHandle[tenant](h) }

// fdb_database_reboot_worker answers 0, FoundationDB's answer when no
// worker has the address: there are no workers in the process.
//
//export fdb_database_reboot_worker
func fdb_database_reboot_worker(h uintptr, addr *byte, n int32, check int32, duration int32) uintptr {
	if lookup[database](h) == nil || n < 0 {
		return failed(kindInt64, errClientInvalidOp)
	}
	f := newFuture(kindInt64)
	f.complete(errSuccess, &result{i64: 0})
	return f.h
}

// clientStatus is the JSON fdb_database_get_client_status reports: a
// healthy client with no connections, since there is no network.
const clientStatus = `{"Healthy":true,"InitializationState":"created","ConnectionRecord":"in-process kv/embedded (idemkv kv/fdbc)","Connections":[]}`

//export fdb_database_get_client_status
func fdb_database_get_client_status(h uintptr) uintptr {
	if lookup[database](h) == nil {
		return failed(kindKey, errClientInvalidOp)
	}
	f := newFuture(kindKey)
	f.complete(errSuccess, &result{mem: cBytes([]byte(clientStatus)), n: len(clientStatus)})
	return f.h
}
