package idemkv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/idemkv/idemkv/cleanup"
	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/embedded"
	"github.com/idemkv/idemkv/kv/fdbkv"
	"github.com/idemkv/idemkv/txn"
)

// DefaultPrefix is the root of every key idemkv writes unless
// Options.Prefix says otherwise. 0xfd keeps it near the end of the user
// keyspace, clear of the tuple layer's common type codes and of the
// directory layer's 0xfe. The transaction markers live under
// DefaultPrefix + "tx/", which is txn.DefaultPrefix.
var DefaultPrefix = []byte("\xfdidemkv/")

// Defaults and limits for Options and DoOptions.
const (
	// DefaultRetention is how long a keyed request's record is kept after
	// its last write: 24 hours, as Stripe keeps idempotency keys.
	DefaultRetention = 24 * time.Hour
	// DefaultLease is how long a keyed request's in-progress claim holds
	// before another caller may take it over.
	DefaultLease = 30 * time.Second
	// MaxPrefixLen bounds Options.Prefix so that every idemkv key fits
	// FoundationDB's key limit with room to spare.
	MaxPrefixLen = 1_000
)

// Options configures a Store. A nil *Options means all defaults; zero
// fields take their defaults too.
type Options struct {
	// Prefix is the root of all idemkv keys: transaction markers, counters,
	// keyed request records and their age index. Default DefaultPrefix. It
	// must not be empty, must not begin with 0xff (the system keyspace) and
	// is at most MaxPrefixLen bytes. Every process sharing a database must
	// use the same Prefix.
	Prefix []byte

	// RetryLimit, Timeout and MaxRetryDelay are passed to txn (see
	// txn.Options): retries per call (default 100, negative for no limit),
	// a bound on a whole call (0: only ctx's), and the backoff cap
	// (default 1 s). Shards no longer shapes anything (txn.Options.Shards
	// is deprecated: calls write marker slots); it is checked, 0 to 255,
	// and CheckID names it when it refuses a legacy ID's shard.
	Shards, RetryLimit     int
	Timeout, MaxRetryDelay time.Duration

	// MinAge and JanitorInterval configure the janitor (package cleanup)
	// that Open starts and Close stops: how old a transaction marker must be
	// before it is removed, in database versions and by the wall clock
	// (default 10 minutes, at least cleanup.MinMinAge; a FoundationDB
	// recovery's version jump does not shorten it), and the time between
	// sweeps (default 10 s). The janitor's wall clock is Clock.
	// NoJanitor leaves the janitor stopped; Store.Sweep still runs a sweep
	// on demand. Run at least one janitor per database somewhere.
	MinAge, JanitorInterval time.Duration
	NoJanitor               bool

	// Retention is how long a keyed request's record is kept after its
	// last write before the janitor removes it; repeats after that run fn
	// again. Default DefaultRetention. DoOptions.Retention overrides it per
	// call.
	Retention time.Duration
	// Lease is how long a keyed request's in-progress claim holds, by
	// database versions and by the wall clock (Clock): it expires only when
	// both have passed, so a FoundationDB recovery's version jump does not
	// cut it short (see the package doc). Default DefaultLease.
	// DoOptions.Lease overrides it per call.
	Lease time.Duration
	// Codec encodes keyed requests' results. Default JSON.
	Codec Codec

	// Clock is the store's wall clock: keyed leases' wall-clock deadlines
	// (a lease expires once its version deadline and its wall deadline
	// have both passed) and the janitor's clock samples. Default
	// Embedded.Clock if set (so that a test stepping the engine's clock
	// ages both together), else time.Now. Tests set it apart from the
	// engine's clock to move wall time without versions, or the reverse.
	Clock func() time.Time

	// WrapDatabase, if set, wraps the database Open opened, and the Store
	// uses what it returns for everything (e.g. a faulty.Wrap for demos and
	// tests). Close closes the wrapper, then the database it wraps.
	WrapDatabase func(kv.Database) kv.Database

	// Embedded configures the embedded engine for "mem:" and "file:" URIs
	// (e.g. its Clock, to age records in tests without sleeping). FDB
	// configures the FoundationDB client for "fdb:" URIs.
	Embedded *embedded.Options
	FDB      *fdbkv.Options

	// Logger receives the store's logs (see observe.go): janitor sweeps at
	// debug, janitor failures at error, unknown and lost outcomes and lease
	// takeovers at warn, with IDs and keys as attributes. Nil: silent.
	// Metrics receives its counts (package idemkv/prom implements it for
	// Prometheus). Observe is txn's per-call hook (txn.Options.Observe),
	// called after Metrics for every exactly-once call the store makes.
	Logger  *slog.Logger
	Metrics Metrics
	Observe func(txn.Stats)
}

// config is Options with defaults applied and checked.
type config struct {
	prefix    []byte
	shards    int // Options.Shards, for CheckID's legacy IDs
	txnOpts   txn.Options
	retention time.Duration
	lease     time.Duration
	codec     Codec
	clock     func() time.Time
	janitor   cleanup.Options
	noJanitor bool
	wrap      func(kv.Database) kv.Database
	embedded  *embedded.Options
	fdb       *fdbkv.Options
	obs       *observer
}

func (o *Options) config() (config, error) {
	var opts Options
	if o != nil {
		opts = *o
	}
	if opts.Prefix == nil {
		opts.Prefix = DefaultPrefix
	}
	if opts.Retention == 0 {
		opts.Retention = DefaultRetention
	}
	if opts.Lease == 0 {
		opts.Lease = DefaultLease
	}
	if opts.Codec == nil {
		opts.Codec = JSON
	}
	if opts.Clock == nil {
		opts.Clock = embeddedClock(opts.Embedded)
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	switch {
	case len(opts.Prefix) == 0:
		return config{}, fmt.Errorf("%w: Prefix is empty; leave it nil for the default %q or give a non-empty prefix", ErrInvalidOptions, DefaultPrefix)
	case opts.Prefix[0] == kv.SystemPrefix:
		return config{}, fmt.Errorf("%w: Prefix %q begins with 0xff, FoundationDB's system keyspace; choose a prefix in the user keyspace", ErrInvalidOptions, opts.Prefix)
	case len(opts.Prefix) > MaxPrefixLen:
		return config{}, fmt.Errorf("%w: Prefix is %d bytes; it must be at most %d", ErrInvalidOptions, len(opts.Prefix), MaxPrefixLen)
	case opts.Shards < 0 || opts.Shards > txn.MaxShards:
		return config{}, fmt.Errorf("%w: Shards is %d; it must be 1 to %d (0 means the default %d)", ErrInvalidOptions, opts.Shards, txn.MaxShards, txn.DefaultShards)
	case opts.Timeout < 0:
		return config{}, fmt.Errorf("%w: Timeout is %v; it must be 0 (none) or positive", ErrInvalidOptions, opts.Timeout)
	case opts.MaxRetryDelay < 0:
		return config{}, fmt.Errorf("%w: MaxRetryDelay is %v; it must be 0 (default %v) or positive", ErrInvalidOptions, opts.MaxRetryDelay, kv.DefaultMaxRetryDelay)
	case opts.Retention < 0:
		return config{}, fmt.Errorf("%w: Retention is %v; it must be positive (0 means the default %v)", ErrInvalidOptions, opts.Retention, DefaultRetention)
	case opts.Lease < 0:
		return config{}, fmt.Errorf("%w: Lease is %v; it must be positive (0 means the default %v)", ErrInvalidOptions, opts.Lease, DefaultLease)
	case opts.JanitorInterval < 0:
		return config{}, fmt.Errorf("%w: JanitorInterval is %v; it must be positive (0 means the default %v)", ErrInvalidOptions, opts.JanitorInterval, cleanup.DefaultInterval)
	}
	prefix := bytes.Clone(opts.Prefix)
	markers := append(bytes.Clone(prefix), "tx/"...)
	obs := newObserver(opts.Logger, opts.Metrics, opts.Observe)
	return config{
		prefix: prefix,
		shards: opts.Shards,
		txnOpts: txn.Options{
			Prefix:        markers,
			RetryLimit:    opts.RetryLimit,
			Timeout:       opts.Timeout,
			MaxRetryDelay: opts.MaxRetryDelay,
			Observe:       obs.call,
		},
		retention: opts.Retention,
		lease:     opts.Lease,
		codec:     opts.Codec,
		clock:     opts.Clock,
		janitor: cleanup.Options{
			Prefix:   markers,
			MinAge:   opts.MinAge,
			Interval: opts.JanitorInterval,
			// The janitor's wall clock is the store's: the engine's when a
			// test or demo steps it, so that its clock samples age with
			// the versions.
			Clock: opts.Clock,
		},
		noJanitor: opts.NoJanitor,
		wrap:      opts.WrapDatabase,
		embedded:  opts.Embedded,
		fdb:       opts.FDB,
		obs:       obs,
	}, nil
}

// embeddedClock returns the embedded engine's clock, if one was given.
func embeddedClock(o *embedded.Options) func() time.Time {
	if o == nil {
		return nil
	}
	return o.Clock
}

// Store is an idemkv store: a database, its exactly-once transactions, its
// counters and keyed requests, and the janitor that keeps their markers
// bounded. It is safe for concurrent use. Close it when done.
type Store struct {
	cfg     config
	base    kv.Database // what Open opened
	db      kv.Database // base, or WrapDatabase(base): what everything uses
	janitor *cleanup.Janitor
	keyed   keyspace

	// mu guards the closing state. Operations check closed on entry; Close
	// sets it before closing the database, so that an operation that starts
	// afterwards fails with ErrClosed rather than with a backend's error,
	// and one in flight has its kv.ErrClosed marked ErrClosed. done is
	// closed, and closeErr set, once the first Close has finished.
	mu struct {
		sync.Mutex
		closed   bool
		done     chan struct{}
		closeErr error
	}
}

// Open opens the store that uri names:
//
//   - "mem:" — the embedded engine in memory, lost on Close;
//   - "file:/abs/dir", "file:///abs/dir", "file://localhost/abs/dir"
//     (RFC 8089), "file:rel/dir" or a plain path — the embedded engine,
//     durable in that directory (created if needed); "file:" alone means
//     DefaultDir();
//   - "fdb:" (the default cluster file) or "fdb:/etc/foundationdb/fdb.cluster"
//     — a FoundationDB cluster via kv/fdbkv; without -tags fdb this fails
//     with fdbkv.ErrNoFoundationDB, which says what to install.
//
// Query parameters set options: "file:/var/lib/app?sync=false&janitor=false".
// The package doc's "Opening a store" lists them all; a parameter overrides
// the Options field it names. Any other scheme fails with ErrUnknownScheme;
// an unknown parameter, a bad value or a file URI naming another host with
// ErrInvalidURI, listing what is accepted. Unless opts.NoJanitor is
// set, Open starts a janitor that sweeps in the background until Close.
func Open(ctx context.Context, uri string, opts *Options) (*Store, error) {
	where, opts, err := parseURI(uri, opts) // uri.go
	if err != nil {
		return nil, err
	}
	cfg, err := opts.config()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("idemkv: open %q: %w", uri, err)
	}
	base, err := where.open(uri, &cfg)
	if err != nil {
		return nil, err
	}
	return newStore(cfg, base)
}

// newStore builds a store over base, which it owns (closes on failure and
// on Close), and starts its janitor.
func newStore(cfg config, base kv.Database) (*Store, error) {
	var err error
	s := &Store{cfg: cfg, base: base, db: base}
	if cfg.wrap != nil {
		if s.db = cfg.wrap(base); s.db == nil {
			base.Close()
			return nil, fmt.Errorf("%w: WrapDatabase returned nil", ErrInvalidOptions)
		}
	}
	s.keyed = newKeyspace(cfg.prefix)
	s.keyed.clock = cfg.clock
	db, txnOpts := s.db, &s.cfg.txnOpts
	cfg.obs.slots = func(since int64) int64 { n, _ := txn.PoolSlots(db, txnOpts, since); return int64(n) }
	jopts := cfg.janitor
	idx := s.keyed.idx
	idx.Remove = s.keyed.remove
	jopts.Keyed = []cleanup.KeyedIndex{idx}
	jopts.OnStep = func(res cleanup.StepResult, err error) { cfg.obs.sweep(res, err, s.janitor.Stats().Failures) }
	if s.janitor, err = cleanup.New(s.db, &jopts); err != nil {
		s.closeDBs()
		return nil, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	if !cfg.noJanitor {
		if err := s.janitor.Start(); err != nil {
			s.closeDBs()
			return nil, err
		}
	}
	return s, nil
}

// now reads the store's wall clock (Options.Clock).
func (s *Store) now() time.Time { return s.cfg.clock() }

// Close stops the janitor and closes the database (the wrapper from
// WrapDatabase first, then the database it wraps), and returns once both
// are closed: a durable store's directory can be opened again as soon as
// it returns. Calls in flight fail with an error matching ErrClosed (and
// kv.ErrClosed); later calls fail with ErrClosed. Close may be called more
// than once, from any goroutine: every call waits for the first to finish
// and returns its result.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.mu.closed {
		done := s.mu.done
		s.mu.Unlock()
		<-done
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.mu.closeErr
	}
	s.mu.closed = true
	done := make(chan struct{})
	s.mu.done = done
	s.mu.Unlock()
	err := errors.Join(s.janitor.Close(), s.closeDBs())
	s.mu.Lock()
	s.mu.closeErr = err
	s.mu.Unlock()
	close(done)
	return err
}

// closing marks err ErrClosed when it is the kv layer's kv.ErrClosed from
// a call that was in flight when Close closed the database under it.
func (s *Store) closing(err error) error {
	if err == nil || !errors.Is(err, kv.ErrClosed) || errors.Is(err, ErrClosed) {
		return err
	}
	s.mu.Lock()
	closed := s.mu.closed
	s.mu.Unlock()
	if !closed {
		return err
	}
	return fmt.Errorf("%w: %w", ErrClosed, err)
}

func (s *Store) closeDBs() error {
	var err error
	if s.db != s.base {
		err = s.db.Close()
	}
	return errors.Join(err, s.base.Close())
}

// Database returns the database the store uses (the WrapDatabase wrapper,
// if any), for work the store does not cover. Transactions run on it
// directly are not exactly-once; use Transact.
func (s *Store) Database() kv.Database { return s.db }

// Sweep runs one janitor sweep now: transaction markers older than MinAge
// and keyed request records past their retention are removed. The
// background janitor does the same every JanitorInterval; Sweep is for
// stores opened with NoJanitor and for tests.
func (s *Store) Sweep(ctx context.Context) (cleanup.StepResult, error) {
	if err := s.check(); err != nil {
		return cleanup.StepResult{}, err
	}
	res, err := s.janitor.Step(ctx)
	return res, s.closing(err)
}

// JanitorStats reports what the store's janitor has done so far.
func (s *Store) JanitorStats() cleanup.Stats { return s.janitor.Stats() }

func (s *Store) check() error {
	if s == nil {
		return ErrNilStore
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return ErrClosed
	}
	return nil
}

// Transact runs fn in a transaction on s, exactly once (see txn.Transact):
// fn may run more than once, but the effects of exactly one run are
// committed if Transact returns nil, and what that run returned is
// returned. fn must have no effects outside the transaction. A call that
// ends without knowing its outcome returns an error matching
// txn.ErrUnknownResult whose *txn.UnknownResultError carries the ID for
// Resolve.
func Transact[T any](ctx context.Context, s *Store, fn func(kv.Transaction) (T, error)) (T, error) {
	var zero T
	if err := s.check(); err != nil {
		return zero, err
	}
	if fn == nil {
		return zero, ErrNilFunc
	}
	v, err := txn.Transact(ctx, s.db, fn, &s.cfg.txnOpts)
	return v, s.closing(err)
}

// TransactCommit is Transact, and also returns the Commit of the attempt
// that committed: its ID, versionstamp and commit version, known after
// every success — also when that attempt's answer was lost and the call
// found its marker, where a tr.GetVersionstamp() future taken inside fn
// fails (see txn.TransactCommit).
func TransactCommit[T any](ctx context.Context, s *Store, fn func(kv.Transaction) (T, error)) (T, txn.Commit, error) {
	var zero T
	if err := s.check(); err != nil {
		return zero, txn.Commit{}, err
	}
	if fn == nil {
		return zero, txn.Commit{}, ErrNilFunc
	}
	v, c, err := txn.TransactCommit(ctx, s.db, fn, &s.cfg.txnOpts)
	return v, c, s.closing(err)
}

// ReadTransact runs fn in a read-only transaction on s, retrying it as
// FoundationDB's retry loop does. Nothing is committed, so retrying is
// always safe and no marker is written. fn may run more than once.
func ReadTransact[T any](ctx context.Context, s *Store, fn func(kv.ReadTransaction) (T, error)) (T, error) {
	var zero T
	if err := s.check(); err != nil {
		return zero, err
	}
	if fn == nil {
		return zero, ErrNilFunc
	}
	tr, err := s.db.CreateTransaction(ctx)
	if err != nil {
		return zero, s.closing(err)
	}
	defer tr.Cancel()
	if err := s.setReadOptions(tr); err != nil {
		return zero, s.closing(err)
	}
	for {
		// readOnly hides the write methods: fn cannot type-assert its way
		// to a Transaction and write outside the exactly-once protocol.
		v, err := callRead(fn, readOnly{tr})
		if err == nil {
			return v, nil
		}
		if _, ok := kv.ErrorCode(err); !ok {
			return zero, s.closing(err)
		}
		if err := tr.OnError(err); err != nil {
			return zero, s.closing(err)
		}
	}
}

func (s *Store) setReadOptions(tr kv.Transaction) error {
	o := tr.Options()
	if s.cfg.txnOpts.Timeout > 0 {
		if err := o.SetTimeout(s.cfg.txnOpts.Timeout); err != nil {
			return err
		}
	}
	limit := s.cfg.txnOpts.RetryLimit
	if limit == 0 {
		limit = txn.DefaultRetryLimit
	}
	if limit < 0 {
		limit = -1
	}
	if err := o.SetRetryLimit(limit); err != nil {
		return err
	}
	if d := s.cfg.txnOpts.MaxRetryDelay; d > 0 {
		return o.SetMaxRetryDelay(d)
	}
	return nil
}

type readOnly struct{ tr kv.ReadTransaction }

func (r readOnly) Get(key []byte) *kv.Future[[]byte] { return r.tr.Get(key) }
func (r readOnly) GetRange(rg kv.Range, opts kv.RangeOptions) *kv.Future[[]kv.KeyValue] {
	return r.tr.GetRange(rg, opts)
}
func (r readOnly) GetReadVersion() *kv.Future[int64] { return r.tr.GetReadVersion() }

// callRead runs fn, turning a *kv.Error panic (MustGet's) into its error
// and any other panic into *txn.PanicError.
func callRead[T any](fn func(kv.ReadTransaction) (T, error), tr kv.ReadTransaction) (v T, err error) {
	defer func() {
		if p := recover(); p != nil {
			if e, ok := p.(error); ok {
				if _, isKV := kv.ErrorCode(e); isKV || errors.Is(e, kv.ErrClosed) {
					err = e
					return
				}
			}
			err = &txn.PanicError{Value: p, Stack: debug.Stack()}
		}
	}()
	return fn(tr)
}

// Resolve settles the outcome of a Transact call that returned
// *txn.UnknownResultError, by its ID: Committed or NotCommitted,
// definitively (see txn.Resolve). Resolve within MinAge of the call.
func (s *Store) Resolve(ctx context.Context, id txn.ID) (txn.Outcome, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	o, err := txn.Resolve(ctx, s.db, id, &s.cfg.txnOpts)
	err = s.closing(err)
	s.cfg.obs.resolved(id, o, err)
	return o, err
}
