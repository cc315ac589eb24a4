package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/idemkv/idemkv/kv"
)

// Pebble keyspace layout. Every user key (system keys included) is stored
// under userPrefix and all engine metadata under metaPrefix, so no user key
// can ever collide with metadata.
const (
	userPrefix = 'u'
	metaPrefix = 'm'
)

var (
	// metaFormat holds formatMarker; a directory without it is not ours.
	metaFormat = []byte("mformat")
	// metaVersion holds the last commit version and its clock time (see
	// encodeVersion), written in every commit batch so that versions
	// continue above it on reopen.
	metaVersion  = []byte("mversion")
	formatMarker = []byte("idemkv-embedded-v1")
)

// ErrNotEmbeddedDir is returned (wrapped) by Open for a directory that holds
// something other than an idemkv embedded database.
var ErrNotEmbeddedDir = errors.New("embedded: directory is not an idemkv embedded database")

// ErrLocked is returned (wrapped) by Open when the directory's database is
// already open, in this process or another: Pebble's LOCK file is held.
var ErrLocked = errors.New("embedded: database is already open (its LOCK file is held); close the other DB first")

// DB is an embedded database with FoundationDB's transaction semantics. It
// is safe for concurrent use.
type DB struct {
	pdb  *pebble.DB
	opts Options
	sync *pebble.WriteOptions

	// queue holds the commits sent and not yet taken by the committer.
	queue   commitQueue
	closing chan struct{} // closed by Close
	stopped chan struct{} // closed when the committer has exited

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	// fail is the failed state (see ErrFailed), set by log when Pebble
	// reports a write it could not make.
	fail *failure
	log  *failLogger
	mem  bool // opened by OpenMem
	// store holds the data of an in-memory database (OpenMem), where pdb
	// is nil; nil for Pebble.
	store *memStore

	// clockStart and clockBase map clock time to versions: clockBase +
	// elapsed microseconds since clockStart.
	clockStart time.Time
	clockBase  int64

	// mu covers the published state that read versions and reads use, and
	// the bookkeeping that keeps commit versions above every read version
	// handed out.
	mu struct {
		sync.Mutex
		// lastClock is the highest clock version seen (versions never go
		// backwards).
		lastClock int64
		// jumped is the sum of AdvanceVersion's jumps, added to the clock.
		jumped int64
		// snaps holds the retained snapshots in ascending version order; the
		// last is the published, current state.
		snaps []*snapshot
		// dying holds aged-out snapshots that were being read when they
		// were dropped from snaps; see releaseOldLocked.
		dying []*snapshot
		// inflight is the version of the oldest group being applied (or,
		// durable, waiting for its WAL sync), 0 if none; inflightNext holds
		// the later ones, in order. No read version >= inflight is handed
		// out until that group is published.
		inflight     int64
		inflightNext []int64
		// maxRead is the highest read version handed out or accepted.
		maxRead int64
		// flushAfter is the version of a group that wrote a range
		// tombstone and has not been flushed since, 0 if none; see
		// flushAfterClear.
		flushAfter int64
	}

	// window holds recent write conflict ranges; only the committer
	// goroutine touches it.
	window conflictWindow
	// lastVersion is the version of the last group applied to Pebble;
	// only the committer touches it.
	lastVersion int64
	// accepted is the committer's list of a group's accepted transactions,
	// reused from group to group when the committer publishes itself
	// (unsynced is nil).
	accepted []*commitReq
	// unsynced carries applied groups from the committer to the publisher
	// (durable DBs only; nil when the committer publishes itself).
	unsynced chan *appliedGroup

	// watches holds the keys watched through Watch (watch.go).
	watches watchSet

	// testHookBeforeApply, set by tests before any commit, runs in the
	// committer before each batch is applied (to hold a group open).
	testHookBeforeApply func()

	stats struct {
		batches atomic.Int64 // Pebble batches applied by the committer
		commits atomic.Int64 // transactions committed through them
	}
}

var _ kv.Database = (*DB)(nil)

// Open opens (creating if needed) a durable database in dir. nil opts means
// the defaults. It decides from what is on disk, before Pebble opens the
// directory, and writes nothing to a directory it refuses: a file, a
// directory holding other files or another application's Pebble store
// (ErrNotEmbeddedDir), one it cannot create or write in (the error wraps
// the errno, e.g. EACCES or EROFS), a database already open here or in
// another process (ErrLocked), and, with Options.MustExist or ReadOnly, a
// directory holding no database (ErrNotExist).
func Open(dir string, opts *Options) (*DB, error) {
	return openDisk(dir, opts, vfs.Default)
}

// openDisk is Open on fs, which tests wrap to inject I/O errors.
func openDisk(dir string, opts *Options, fs vfs.FS) (*DB, error) {
	o := opts.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	store, err := prepareDir(dir, fs, o)
	if err != nil {
		return nil, fmt.Errorf("embedded: open %s: %w", dir, err)
	}
	po := tuned(&pebble.Options{FS: fs, ErrorIfNotExists: store, ReadOnly: o.ReadOnly})
	sync := pebble.Sync
	if o.NoSync {
		sync = pebble.NoSync
	}
	db, err := open(dir, po, o, sync)
	if err != nil {
		return nil, fmt.Errorf("embedded: open %s: %w", dir, err)
	}
	return db, nil
}

// OpenMem opens a database held in memory, lost on Close. It has the same
// semantics as Open's, on a multi-version store of its own rather than
// Pebble (see memStore).
func OpenMem(opts *Options) (*DB, error) {
	o, err := memOptions(opts)
	if err != nil {
		return nil, err
	}
	db := newDB(o, 0, nil)
	db.mem, db.store = true, newMemStore()
	db.mu.snaps = []*snapshot{{version: 0, mem: db.store}}
	go db.committer()
	return db, nil
}

func memOptions(opts *Options) (Options, error) {
	o := opts.withDefaults()
	if err := o.validate(); err != nil {
		return o, err
	}
	if o.MustExist || o.ReadOnly {
		return o, errors.New("embedded: OpenMem: Options.MustExist and Options.ReadOnly apply only to Open (an in-memory database always starts empty)")
	}
	return o, nil
}

// openMemPebbleDB is OpenMem on Pebble with a memory filesystem, as OpenMem
// was before it had a store of its own: for tests of the Pebble engine's
// snapshot handling without a disk.
func openMemPebbleDB(opts *Options) (*DB, error) {
	o, err := memOptions(opts)
	if err != nil {
		return nil, err
	}
	// No WAL: the log of a store lost on Close protects nothing.
	po := tuned(&pebble.Options{FS: vfs.NewMem(), DisableWAL: true})
	db, err := open("", po, o, pebble.NoSync)
	if err != nil {
		return nil, fmt.Errorf("embedded: open in memory: %w", err)
	}
	db.mem = true
	return db, nil
}

func open(dir string, po *pebble.Options, o Options, sync *pebble.WriteOptions) (*DB, error) {
	fail := newFailure()
	logger := newFailLogger(fail)
	po.Logger, po.EventListener = logger, logger.listener()
	pdb, err := openPebble(dir, po, fail)
	if err != nil {
		if isLockErr(err) {
			return nil, fmt.Errorf("%w (%v)", ErrLocked, err)
		}
		return nil, err
	}
	// Pebble reports some failures while opening only through Fatalf (a
	// MANIFEST it could not write on a full disk): check before and after
	// the first write, which proves the disk takes a synced write now
	// rather than at the first commit.
	// Without a WAL (in memory) Pebble refuses synced writes, and there is
	// no disk to probe.
	setup := pebble.Sync
	if po.DisableWAL {
		setup = pebble.NoSync
	}
	last, wall, err := checkFormat(pdb, o.Clock(), setup)
	if err == nil && fail.get() != nil {
		err = fail.openError()
	}
	if err == nil && !po.ReadOnly && !po.DisableWAL {
		err = probeWrite(pdb, fail)
	}
	if err != nil {
		closeQuietly(pdb)
		return nil, err
	}
	// Continue the version timeline from the last commit: its version plus
	// the clock time elapsed since it. Read versions handed out while the
	// database sat idle before a restart were clock-based too, so versions
	// never go back across a restart (unless the clock itself did).
	start := o.Clock()
	base := last
	if el := start.Sub(wall); !wall.IsZero() && el > 0 {
		base += int64(el / (time.Second / kv.VersionsPerSecond))
	}
	db := newDB(o, base, fail)
	db.log, db.pdb, db.sync = logger, pdb, sync
	db.clockStart = start
	if sync.Sync && !po.ReadOnly && o.OverlapSyncs {
		db.unsynced = make(chan *appliedGroup, maxUnsyncedGroups)
	}
	db.mu.snaps = []*snapshot{{version: last, ps: pdb.NewSnapshot()}}
	go db.committer()
	return db, nil
}

// newDB is the state both engines share, with versions continuing above
// base (0 for a new database); fail nil means a fresh failure state.
func newDB(o Options, base int64, fail *failure) *DB {
	if fail == nil {
		fail = newFailure()
	}
	db := &DB{
		fail:       fail,
		opts:       o,
		queue:      commitQueue{wake: make(chan struct{}, 1)},
		closing:    make(chan struct{}),
		stopped:    make(chan struct{}),
		clockStart: o.Clock(),
		clockBase:  base + 1,
	}
	db.mu.lastClock = base
	db.mu.maxRead = base
	return db
}

// checkFormat verifies (or, on an empty store, writes) the format marker and
// returns the last committed version and the clock time it was written at
// (zero if unknown); now stamps a fresh store.
func checkFormat(pdb *pebble.DB, now time.Time, wo *pebble.WriteOptions) (int64, time.Time, error) {
	v, closer, err := pdb.Get(metaFormat)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		// An empty store is a fresh one (including one whose creator died
		// before writing the marker); a store with any key is foreign.
		it, err := pdb.NewIter(nil)
		if err != nil {
			return 0, time.Time{}, err
		}
		any := it.First()
		it.Close()
		if any {
			return 0, time.Time{}, fmt.Errorf("%w: Pebble store without the idemkv format marker", ErrNotEmbeddedDir)
		}
		b := pdb.NewBatch()
		b.Set(metaFormat, formatMarker, nil)
		b.Set(metaVersion, encodeVersion(0, now), nil)
		if err := pdb.Apply(b, wo); err != nil {
			return 0, time.Time{}, err
		}
		return 0, now, nil
	case err != nil:
		return 0, time.Time{}, err
	}
	ok := bytes.Equal(v, formatMarker)
	got := string(v)
	closer.Close()
	if !ok {
		return 0, time.Time{}, fmt.Errorf("%w: unknown format marker %q (want %q)", ErrNotEmbeddedDir, got, formatMarker)
	}
	v, closer, err = pdb.Get(metaVersion)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("%w: missing version record: %v", ErrNotEmbeddedDir, err)
	}
	defer closer.Close()
	switch len(v) {
	case 8: // written before the clock time was recorded
		return int64(binary.BigEndian.Uint64(v)), time.Time{}, nil
	case 16:
		return int64(binary.BigEndian.Uint64(v)), time.Unix(0, int64(binary.BigEndian.Uint64(v[8:]))), nil
	}
	return 0, time.Time{}, fmt.Errorf("%w: corrupt version record of %d bytes", ErrNotEmbeddedDir, len(v))
}

// probeWrite rewrites the version record unchanged, with a sync: an open
// that succeeds has shown that the disk takes a durable write now. On a
// disk that is still full this fails at once, where the first commit would
// have.
func probeWrite(pdb *pebble.DB, fail *failure) error {
	v, closer, err := pdb.Get(metaVersion)
	if err != nil {
		return err
	}
	rec := bytes.Clone(v)
	closer.Close()
	err = pdb.Set(metaVersion, rec, pebble.Sync)
	if err != nil {
		fail.set(err)
	}
	if fail.get() != nil { // Pebble's commit returns nil after a fatal error
		return fail.openError()
	}
	return nil
}

// closeQuietly closes a Pebble DB being abandoned after a failed open; its
// error adds nothing to the one being returned.
func closeQuietly(pdb *pebble.DB) { _ = pdb.Close() }

// encodeVersion is the version record: the last commit version and the
// clock time it was committed at (Unix nanoseconds), both big-endian.
func encodeVersion(v int64, at time.Time) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 16), uint64(v))
	return binary.BigEndian.AppendUint64(b, uint64(at.UnixNano()))
}

// CreateTransaction starts a transaction bound to ctx (see kv.Database).
func (db *DB) CreateTransaction(ctx context.Context) (kv.Transaction, error) {
	if ctx == nil {
		return nil, errors.New("embedded: CreateTransaction: nil context (use context.Background())")
	}
	if db.closed.Load() {
		return nil, fmt.Errorf("embedded: CreateTransaction: %w", kv.ErrClosed)
	}
	return newTransaction(db, ctx), nil
}

// Close waits for the commit in progress, fails queued ones with
// kv.ErrClosed, releases all snapshots and closes Pebble. Afterwards every
// operation fails with kv.ErrClosed. Close may be called more than once.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.closed.Store(true)
		close(db.closing)
		<-db.stopped
		for _, r := range db.queue.close() {
			r.err = errClosed("commit")
			r.done <- struct{}{}
		}
		db.mu.Lock()
		snaps := append(db.mu.snaps, db.mu.dying...)
		db.mu.snaps, db.mu.dying = nil, nil
		db.mu.Unlock()
		for _, s := range snaps {
			s.release()
		}
		if db.pdb != nil {
			db.closeErr = db.pdb.Close()
		}
		if db.fail.get() != nil {
			// Pebble's Close repeats the failure its log already had (the
			// commits that hit it reported it): the close itself worked.
			db.closeErr = nil
		}
	})
	return db.closeErr
}

// errClosed is what operations on a closed DB return.
func errClosed(op string) error { return fmt.Errorf("embedded: %s: %w", op, kv.ErrClosed) }

// AdvanceVersion moves the database's version forward by n versions at
// once, as a FoundationDB recovery does (by MAX_VERSIONS_IN_FLIGHT, about
// 100 seconds' worth; a forced recovery by far more), and keeps advancing
// with the clock from there. Read versions handed out before the jump are
// then more than five seconds old: reads and commits at them fail with
// transaction_too_old (1007). Fault injection (kv/faulty's recovery fault)
// and tests use it; n must be positive.
func (db *DB) AdvanceVersion(n int64) error {
	if n <= 0 {
		return fmt.Errorf("embedded: AdvanceVersion(%d): the jump must be positive", n)
	}
	if db.closed.Load() {
		return errClosed("AdvanceVersion")
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	db.mu.jumped += n
	return nil
}

// nowVersionLocked returns the clock's current version, never less than
// one already seen.
func (db *DB) nowVersionLocked() int64 {
	d := db.opts.Clock().Sub(db.clockStart)
	if d < 0 {
		d = 0
	}
	v := db.clockBase + db.mu.jumped + int64(d/(time.Second/kv.VersionsPerSecond))
	if v < db.mu.lastClock {
		v = db.mu.lastClock
	}
	db.mu.lastClock = v
	return v
}

// readableLocked is the highest version a reader may use now: the clock,
// held below a group in flight, and never below the published state.
func (db *DB) readableLocked() int64 { return db.readableAtLocked(db.nowVersionLocked()) }

// readableAtLocked is readableLocked with the clock's version already read.
func (db *DB) readableAtLocked(now int64) int64 {
	v := now
	if db.mu.inflight != 0 && v >= db.mu.inflight {
		v = db.mu.inflight - 1
	}
	if pub := db.mu.snaps[len(db.mu.snaps)-1].version; v < pub {
		v = pub
	}
	return v
}

// readVersion is GRV: the latest published state, advancing with the clock
// when idle.
func (db *DB) readVersion() (int64, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.mu.snaps == nil {
		return 0, errClosed("get read version")
	}
	v := db.readableLocked()
	if v > db.mu.maxRead {
		db.mu.maxRead = v
	}
	return v, nil
}

// futureVersionWait is how long a read at a version the database has not
// reached waits for it before failing with future_version: FoundationDB's
// storage servers wait FUTURE_VERSION_DELAY (1 s).
const futureVersionWait = time.Second

// snapshotAt returns the snapshot holding the state at read version v,
// waiting up to futureVersionWait for a version not reached yet, or
// transaction_too_old / future_version.
func (db *DB) snapshotAt(v int64) (*snapshot, error) { return db.waitSnapshotAt(v, true) }

// checkReadVersion is snapshotAt for a caller that only needs to know that
// v is readable (a commit with read conflict ranges and no read): in
// memory it allocates no snapshot.
func (db *DB) checkReadVersion(v int64) error {
	_, err := db.waitSnapshotAt(v, false)
	return err
}

// waitSnapshotAt is snapshotAt; without need, it returns a nil snapshot in
// memory.
func (db *DB) waitSnapshotAt(v int64, need bool) (*snapshot, error) {
	var deadline time.Time
	for {
		s, err := db.trySnapshotAt(v, need)
		if !errors.Is(err, kv.ErrFutureVersion) {
			return s, err
		}
		now := time.Now()
		if deadline.IsZero() {
			deadline = now.Add(futureVersionWait)
		} else if now.After(deadline) {
			return nil, err
		}
		time.Sleep(time.Millisecond)
	}
}

// trySnapshotAt is waitSnapshotAt without the wait.
func (db *DB) trySnapshotAt(v int64, need bool) (*snapshot, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.mu.snaps == nil {
		return nil, errClosed("read")
	}
	now := db.nowVersionLocked()
	if v < now-kv.MaxTransactionLifeVersions {
		return nil, kv.Errorf(kv.CodeTransactionTooOld, "read version %d is older than %d (five seconds before %d)", v, now-kv.MaxTransactionLifeVersions, now)
	}
	if lim := db.readableAtLocked(now); v > lim {
		return nil, kv.Errorf(kv.CodeFutureVersion, "read version %d is ahead of the database (%d)", v, lim)
	}
	snaps := db.mu.snaps
	// Last snapshot with version <= v.
	lo, hi := 0, len(snaps)
	for lo < hi {
		m := (lo + hi) / 2
		if snaps[m].version <= v {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if db.store != nil {
		// The store reads any version of the window.
		if v > db.mu.maxRead {
			db.mu.maxRead = v
		}
		if !need {
			return nil, nil
		}
		return &snapshot{version: v, mem: db.store}, nil
	}
	if lo == 0 {
		return nil, kv.Errorf(kv.CodeTransactionTooOld, "read version %d predates the oldest retained state (%d)", v, snaps[0].version)
	}
	if v > db.mu.maxRead {
		db.mu.maxRead = v
	}
	return snaps[lo-1], nil
}

// tuned sets the Pebble options both modes share. Pebble's defaults (4 MiB
// memtables, compaction at 4 L0 files) flush and compact constantly under
// idemkv's load, where every commit writes a fresh marker key: a 64 MiB
// memtable and a later L0 compaction cut that work, measured at +40% calls/s
// for exactly-once blind adds in memory and +30% for the stock loop
// (txn's BenchmarkOverheadBreakdown). Markers die within minutes and are
// range-cleared, so fewer of them ever reach the lower levels.
func tuned(po *pebble.Options) *pebble.Options {
	po.MemTableSize = 64 << 20
	po.L0CompactionThreshold = 8
	po.L0StopWritesThreshold = 32
	return po
}
