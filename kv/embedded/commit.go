package embedded

import (
	"errors"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/idemkv/idemkv/kv"
)

// mutKind is the kind of a recorded write.
type mutKind uint8

const (
	mutSet mutKind = iota
	mutClear
	mutClearRange
	mutAtomic
	// mutSuperseded is a point write a later Set or Clear of the same key
	// replaced: skipped at commit, as FoundationDB's write map coalesces.
	mutSuperseded
)

// mutation is one write, replayed in order at commit.
type mutation struct {
	kind  mutKind
	op    kv.MutationType // mutAtomic only
	key   []byte
	end   []byte // mutClearRange only
	value []byte // value or atomic parameter
}

// commitReq is one transaction handed to the committer. The committer owns
// it from the send until it sends on done (which has room for that one
// answer, so a committer that gave up waiting never blocks the committer);
// then version, stamp and err are the outcome. Answered requests are
// reused (reqPool).
type commitReq struct {
	muts   []mutation
	reads  []kv.Range
	writes []kv.Range
	rv     int64 // read version; meaningful when len(reads) > 0
	size   int64 // approximate size, to bound a group's batch

	done    chan struct{}
	version int64
	stamp   kv.Versionstamp
	err     error

	// inline is where muts, reads and writes start, and the attempt's
	// write map's first entries and index (see transaction.request): a
	// small transaction's commit is one allocation, reused, where the
	// request, its three slices and the write map's were seven.
	inline struct {
		muts    [2]mutation
		reads   [2]kv.Range
		writes  [2]kv.Range
		entries [2]entry
		index   [4]*entry
		arena   [160]byte // read conflict ranges' bytes (readCopy)
	}
}

// maxGroupBytes stops a group from growing past about this many bytes of
// transactions (each may be up to kv.DefaultSizeLimit), bounding the batch
// held in memory.
const maxGroupBytes = 64 << 20

// maxUnsyncedGroups bounds how many groups may be applied to Pebble and
// waiting for their WAL sync at once (see committer).
const maxUnsyncedGroups = 64

// committer is the single writer to Pebble. It runs one group at a time:
// everything queued when it wakes, up to MaxBatchTransactions or
// maxGroupBytes. It resolves the group's conflicts, assigns its version and
// applies its batch; what happens next depends on the durability.
//
// Durable, by default: the batch is applied with a synced write, and the
// committer publishes the group and answers its committers before taking
// the next; the commits that arrive during the fsync form the next group.
//
// Durable with Options.OverlapSyncs: the batch is applied with
// pebble.DB.ApplyNoSyncWait, which returns once it is in the memtable and
// queued for the WAL's next sync, and the group goes to the publisher
// goroutine, which waits for that sync (Batch.SyncWait), then publishes the
// group and answers its committers, in group order. Meanwhile the committer
// builds and applies the next groups, so Pebble's log writer always has the
// next groups' records ready when an fsync ends, and one fsync covers every
// group applied during the previous one, as Pebble's own commit pipeline
// does for concurrent synced batches. Before, the committer applied each
// group with a synced Apply and only then took the next one: the log sat
// idle between fsyncs while the committer published, woke the committers
// and built the next batch (BenchmarkCommit, 16 committers: see the
// package doc's figures). An earlier pipelined variant that synced each
// group on its own was dropped: groups shrank to one transaction and each
// paid its own fsync.
//
// In memory (or NoSync): there is nothing to wait for, and the committer
// publishes each group itself.
func (db *DB) committer() {
	defer close(db.stopped)
	if db.unsynced != nil {
		published := make(chan struct{})
		go db.publisher(published)
		defer func() {
			close(db.unsynced)
			<-published
		}()
	}
	group := make([]*commitReq, 0, db.opts.MaxBatchTransactions)
	for {
		if db.closed.Load() {
			return // Close fails what is still queued
		}
		group = db.queue.take(group[:0], db.opts.MaxBatchTransactions)
		if len(group) == 0 {
			select {
			case <-db.queue.wake:
				continue
			case <-db.closing:
				return
			}
		}
		db.commitGroup(group)
		if db.unsynced != nil {
			// The requests now belong to the publisher.
			group = make([]*commitReq, 0, db.opts.MaxBatchTransactions)
		}
	}
}

// commitQueue holds the commits sent to the committer, in arrival order.
// It replaced an unbuffered channel, on which each commit's send was a
// select over the channel, Close's channel, its cancel channel and its
// context and timer: locking channels every committer shares took ~13% of
// an in-memory commit's CPU (txn's BenchmarkOverheadBreakdown, stock), and
// the committer's own select on each wake-up ~9%. A commit now queues under
// a mutex, wakes the committer if it may be idle, and waits for its
// answer; a commit canceled or timed out while queued may still land, as
// one canceled in flight always could (see Differences from FoundationDB).
type commitQueue struct {
	mu     sync.Mutex
	reqs   []*commitReq
	closed bool // Close failed what was queued; nothing more is taken
	// wake has room for one signal: a send that finds the queue empty
	// leaves one for the committer, which looks at the queue after each
	// wake-up and before it waits, so a commit is never left waiting.
	wake chan struct{}
}

// send queues r, or reports false if the database has closed.
func (q *commitQueue) send(r *commitReq) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	q.reqs = append(q.reqs, r)
	first := len(q.reqs) == 1
	q.mu.Unlock()
	if first {
		select {
		case q.wake <- struct{}{}:
		default: // a signal is already waiting
		}
	}
	return true
}

// take appends to group the queued commits, in order, up to max of them
// and maxGroupBytes (at least one), and returns it.
func (q *commitQueue) take(group []*commitReq, max int) []*commitReq {
	q.mu.Lock()
	defer q.mu.Unlock()
	var bytes int64
	n := 0
	for n < len(q.reqs) && n < max && (n == 0 || bytes < maxGroupBytes) {
		group = append(group, q.reqs[n])
		bytes += q.reqs[n].size
		n++
	}
	if n == len(q.reqs) {
		clear(q.reqs)
		q.reqs = q.reqs[:0]
	} else {
		rest := copy(q.reqs, q.reqs[n:])
		clear(q.reqs[rest:])
		q.reqs = q.reqs[:rest]
	}
	return group
}

// close refuses further sends and returns what was queued, for Close to
// fail once the committer has stopped.
func (q *commitQueue) close() []*commitReq {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	reqs := q.reqs
	q.reqs = nil
	return reqs
}

// appliedGroup is a group whose batch is in Pebble (with its sync perhaps
// still pending), on its way to be published.
type appliedGroup struct {
	group    []*commitReq
	accepted []*commitReq
	cv       int64
	b        *pebble.Batch
	snap     *snapshot
	cleared  bool // a range clear wrote a Pebble range tombstone
}

// commitGroup resolves conflicts in arrival order, applies every accepted
// transaction in one Pebble batch (plus the version record), snapshots the
// result and publishes it — at once in memory, after the WAL sync on a
// durable DB (see committer) — and only then answers the waiters. A read
// version is never handed out at or above the group's version until it is
// published, so no reader can see a partial, unsynced or unpublished
// state.
func (db *DB) commitGroup(group []*commitReq) {
	if ferr := db.fail.get(); ferr != nil {
		for _, r := range group {
			r.err = failedCommitError(ferr)
		}
		db.finish(group)
		return
	}
	db.mu.Lock()
	cv := db.nowVersionLocked()
	if cv <= db.lastVersion {
		cv = db.lastVersion + 1
	}
	if pub := db.mu.snaps[len(db.mu.snaps)-1].version; cv <= pub {
		cv = pub + 1
	}
	if cv <= db.mu.maxRead {
		cv = db.mu.maxRead + 1
	}
	db.pushInflightLocked(cv)
	db.mu.Unlock()

	db.window.prune(cv - kv.MaxTransactionLifeVersions)
	var w groupWriter
	var b *pebble.Batch
	if db.store != nil {
		db.store.begin(cv)
		w = memWriter{db.store}
	} else {
		b = db.pdb.NewIndexedBatch()
		w = pebbleWriter{b}
	}
	var accepted []*commitReq
	if db.unsynced == nil {
		// Published before the next group starts: the list is reused.
		accepted = db.accepted[:0]
		defer func() {
			clear(accepted)
			db.accepted = accepted[:0]
		}()
	}
	cleared := false
	for i, r := range group {
		if len(r.reads) > 0 {
			if r.rv < cv-kv.MaxTransactionLifeVersions {
				r.err = kv.Errorf(kv.CodeTransactionTooOld, "read version %d is more than five seconds before commit version %d", r.rv, cv)
				continue
			}
			if db.window.conflicts(r.rv, r.reads) {
				r.err = kv.NewError(kv.CodeNotCommitted)
				continue
			}
		}
		// The batch order is the transaction's position in the group,
		// failed ones included, as a commit proxy numbers its batch.
		stamp := kv.NewVersionstamp(cv, uint16(i))
		stamped, rc, err := applyMutations(w, r.muts, stamp)
		if err != nil {
			// Cannot happen for validated mutations; fail this one alone
			// would leave a half-applied batch, so fail the group.
			if b != nil {
				b.Close()
			}
			db.failGroup(group, &kv.Error{Code: kv.CodeInternalError, Cause: err}, cv)
			return
		}
		cleared = cleared || rc
		r.version, r.stamp = cv, stamp
		db.window.add(cv, r.writes)
		// A versionstamped key conflicts as the key it became, as the
		// commit proxy adds it, not as every key it could have been.
		db.window.add(cv, stamped)
		accepted = append(accepted, r)
	}

	if len(accepted) == 0 {
		if b != nil {
			b.Close()
		} else {
			db.store.commit() // nothing written
		}
		db.mu.Lock()
		db.popLastInflightLocked()
		db.mu.Unlock()
		db.finish(group)
		return
	}
	if db.store != nil {
		// In memory the group is already in the store, at cv.
		if db.testHookBeforeApply != nil {
			db.testHookBeforeApply()
		}
		db.store.commit()
		db.lastVersion = cv
		// Aged before the committers are answered, as Pebble's snapshots
		// are released in publish: a commit that returns has dropped what
		// aged out of the window (TestSnapshotReleaseIsTooOld read the
		// floor while the committer was still raising it, now and then).
		db.store.age(cv - kv.MaxTransactionLifeVersions)
		g := appliedGroup{group: group, accepted: accepted, cv: cv, snap: &snapshot{version: cv, mem: db.store}}
		db.publish(&g)
		return
	}
	b.Set(metaVersion, encodeVersion(cv, db.opts.Clock()), nil)
	if db.testHookBeforeApply != nil {
		db.testHookBeforeApply()
	}
	var err error
	if db.unsynced != nil {
		err = db.pdb.ApplyNoSyncWait(b, db.sync)
	} else {
		err = db.pdb.Apply(b, db.sync)
	}
	if err == nil {
		// Pebble reports a failed log write or sync through its logger's
		// Fatalf and then returns nil: trust the failed state, not the nil.
		err = db.fail.get()
	}
	if err != nil {
		// The batch may or may not be in the WAL, and Pebble's commit
		// pipeline is unusable: fail the DB (it may be already) and the
		// group with commit_unknown_result. Nothing is published, so
		// readers keep the last acknowledged state. (A batch whose apply
		// failed is not closed: Pebble may still hold it.)
		db.fail.set(err)
		db.failGroup(group, &kv.Error{Code: kv.CodeCommitUnknownResult, Cause: db.fail.get()}, cv)
		return
	}
	db.lastVersion = cv
	// The snapshot is taken now, while the memtable holds exactly the
	// groups up to this one (the committer is the only writer).
	g := &appliedGroup{group: group, accepted: accepted, cv: cv, b: b, snap: &snapshot{version: cv, ps: db.pdb.NewSnapshot()}, cleared: cleared}
	if db.unsynced != nil {
		db.unsynced <- g
		return
	}
	db.publish(g)
}

// publisher publishes the groups the committer applied, in order, each
// once its WAL sync is done, until the committer closes db.unsynced.
func (db *DB) publisher(done chan<- struct{}) {
	defer close(done)
	for g := range db.unsynced {
		err := g.b.SyncWait()
		if err == nil {
			err = db.fail.get()
		}
		if err != nil {
			// The group's batch, and every later one, may or may not be
			// in the log: fail the DB and them with commit_unknown_result.
			// (The conflict window, which only the committer touches,
			// keeps their writes; no commit can pass a failed DB.)
			db.fail.set(err)
			g.snap.release()
			db.mu.Lock()
			db.popInflightLocked()
			db.mu.Unlock()
			for _, r := range g.group {
				if r.err == nil {
					r.err = &kv.Error{Code: kv.CodeCommitUnknownResult, Cause: db.fail.get()}
				}
			}
			db.finish(g.group)
			continue
		}
		db.publish(g)
	}
}

// publish makes an applied (and, when durable, synced) group visible and
// answers its committers.
func (db *DB) publish(g *appliedGroup) {
	if g.b != nil {
		g.b.Close()
	}
	db.stats.batches.Add(1)
	db.stats.commits.Add(int64(len(g.accepted)))
	db.mu.Lock()
	if db.store != nil {
		// The store reads every version of the window: only the published
		// one is kept here (see trySnapshotAt).
		db.mu.snaps[0] = g.snap
	} else {
		db.mu.snaps = append(db.mu.snaps, g.snap)
	}
	db.popInflightLocked()
	db.releaseOldLocked(g.cv)
	if g.cleared && db.mu.flushAfter == 0 {
		db.mu.flushAfter = g.cv
	}
	flush := db.mu.flushAfter != 0 && db.mu.snaps[0].version >= db.mu.flushAfter && len(db.mu.dying) == 0
	if flush {
		db.mu.flushAfter = 0
	}
	db.mu.Unlock()
	db.notifyWatches(g.accepted)
	db.finish(g.group)
	if flush {
		db.flushAfterClear()
	}
}

// flushAfterClear starts a flush of the memtable once a group wrote a
// range tombstone and no retained snapshot predates that group. Keys the
// tombstone covers that are still in the memtable stay there beside it,
// and Pebble's iterators step over such covered keys of the tombstone's
// own level one by one instead of seeking past them (Pebble issue 1070):
// every later read that starts inside the cleared range — the janitor's
// next look at each shard, the count in clearRange — costs time in the
// number of keys cleared (cleanup's BenchmarkSweep on Pebble in memory,
// as OpenMem was then: a sweep of 500,000 markers took 80-410 ms when it
// read through the previous sweep's 500,000, against ~1.4 ms with no
// markers; on disk 44-92 ms against ~12). The flush drops the covered
// keys, which no snapshot can see any more, so later reads seek past the
// range: what FoundationDB's storage servers do in the background after a
// clear whose commit was O(1). Whether the covered keys were in the memtable cannot be told
// cheaply (an earlier clear's flushed tombstone makes clearRange's count
// read an sstable block either way), so every group with a range
// tombstone asks for one flush; groups that clear within the same five
// seconds share it, and what a flush could not drop (a later clear's keys
// still under a snapshot) is left to Pebble's compactions. It runs on the
// goroutine that publishes, after the committers are answered; Pebble
// flushes in the background. A flush that cannot start is left to
// Pebble's own when the memtable fills; Pebble reports a log it could not
// rotate through the failure hooks (see Disk failures).
func (db *DB) flushAfterClear() {
	_, _ = db.pdb.AsyncFlush()
}

// pushInflightLocked records cv as the version of a group being applied:
// read versions stay below the oldest such group until it is published.
func (db *DB) pushInflightLocked(cv int64) {
	if db.mu.inflight == 0 {
		db.mu.inflight = cv
		return
	}
	db.mu.inflightNext = append(db.mu.inflightNext, cv)
}

// popInflightLocked forgets the oldest group being applied, which has just
// been published or failed.
func (db *DB) popInflightLocked() {
	if len(db.mu.inflightNext) == 0 {
		db.mu.inflight = 0
		return
	}
	db.mu.inflight = db.mu.inflightNext[0]
	db.mu.inflightNext = db.mu.inflightNext[1:]
}

// popLastInflightLocked forgets the newest group being applied, the
// committer's own, which will not be published (nothing in it was
// accepted, or it failed before reaching Pebble).
func (db *DB) popLastInflightLocked() {
	if n := len(db.mu.inflightNext); n > 0 {
		db.mu.inflightNext = db.mu.inflightNext[:n-1]
		return
	}
	db.mu.inflight = 0
}

// failGroup fails every transaction of the committer's group not already
// failed and forgets the group's write conflict ranges.
func (db *DB) failGroup(group []*commitReq, err error, cv int64) {
	db.window.dropFrom(cv)
	if db.store != nil {
		db.store.abort()
	}
	db.mu.Lock()
	db.popLastInflightLocked()
	db.mu.Unlock()
	for _, r := range group {
		if r.err == nil {
			r.err = err
		}
	}
	db.finish(group)
}

func (db *DB) finish(group []*commitReq) {
	for _, r := range group {
		r.done <- struct{}{} // room for one: never blocks
	}
}

// releaseOldLocked drops snapshots that no usable read version maps to:
// snapshot i serves read versions [v_i, v_{i+1}), so it is dead once
// v_{i+1} is more than five seconds of versions old (snapshotAt refuses
// such read versions before looking one up, so a dead snapshot is never
// handed out again). A dead snapshot being read right now cannot be closed
// under its reader; it moves to the dying list, retried after each commit
// and closed for good by Close, so one slow reader never holds back the
// release of the others.
func (db *DB) releaseOldLocked(now int64) {
	dying := db.mu.dying[:0]
	for _, s := range db.mu.dying {
		if !s.tryRelease() {
			dying = append(dying, s)
		}
	}
	clear(db.mu.dying[len(dying):])
	snaps := db.mu.snaps
	floor := now - kv.MaxTransactionLifeVersions
	n := 0
	for n+1 < len(snaps) && snaps[n+1].version <= floor {
		n++
	}
	// Newest first: Pebble looks for compactions each time its earliest
	// snapshot closes, so closing the oldest first made every one of them
	// do that (the first commit after a five-second pause, or after a
	// test's clock jump, closes five seconds' worth at once: ~80 ms for
	// 150,000, measured on Pebble in memory as OpenMem was then); newest
	// first, only the last close does.
	for i := n - 1; i >= 0; i-- {
		if !snaps[i].tryRelease() {
			dying = append(dying, snaps[i])
		}
	}
	db.mu.dying = dying
	if n > 0 {
		// Reslice rather than shift: append reallocates (copying only the
		// live tail) once the capacity behind the head runs out, so this is
		// amortized O(1) where a copy was O(retained snapshots) per commit.
		clear(snaps[:n])
		db.mu.snaps = snaps[n:]
	}
}

// groupWriter takes a group's mutations: a Pebble indexed batch
// (pebbleWriter) or the in-memory store at the group's commit version
// (memWriter). Keys are user keys.
type groupWriter interface {
	set(key, value []byte) error
	del(key []byte) error
	// clearRange reports whether it wrote a Pebble range tombstone
	// (see flushAfterClear).
	clearRange(begin, end []byte) (tombstone bool, err error)
	// get reads key as of everything written so far, earlier
	// transactions of the group included.
	get(key []byte) (value []byte, present bool, err error)
}

// applyMutations replays one transaction's writes, in order, into w, and
// returns the keys its versionstamped keys became, as write conflict
// ranges, and whether one of its range clears wrote a range tombstone
// (see flushAfterClear). Atomic operations read the value then current:
// the DB plus everything earlier in w, including earlier transactions of
// the group.
func applyMutations(w groupWriter, muts []mutation, stamp kv.Versionstamp) (stamped []kv.Range, cleared bool, err error) {
	for _, m := range muts {
		switch m.kind {
		case mutSet:
			err = w.set(m.key, m.value)
		case mutClear:
			err = w.del(m.key)
		case mutClearRange:
			var tomb bool
			tomb, err = w.clearRange(m.key, m.end)
			cleared = cleared || tomb
		case mutAtomic:
			if m.op == kv.SetVersionstampedKey {
				var k []byte
				if k, err = kv.PlaceVersionstamp(m.key, stamp); err == nil {
					err = w.set(k, m.value)
					stamped = append(stamped, kv.SingleKeyRange(k))
				}
				break
			}
			err = applyAtomic(w, m, stamp)
		}
		if err != nil {
			return nil, false, err
		}
	}
	return stamped, cleared, nil
}

func applyAtomic(w groupWriter, m mutation, stamp kv.Versionstamp) error {
	if m.op == kv.SetVersionstampedValue {
		// The stamp goes into the parameter itself, which becomes the
		// value: it is the transaction's own copy (Atomic made it), and
		// nothing reads it again once applied (reads of the key fail
		// until commit, and a failed attempt's mutations are never
		// replayed), so a copy per stamped value (kv.PlaceVersionstamp)
		// bought nothing.
		off, err := kv.VersionstampOffset(m.value)
		if err != nil {
			return err
		}
		v := m.value[:len(m.value)-4]
		copy(v[off:], stamp[:])
		return w.set(m.key, v)
	}
	cur, present, err := w.get(m.key)
	if err != nil {
		return err
	}
	nv, ok := kv.ApplyAtomic(m.op, cur, present, m.value)
	if !ok {
		return w.del(m.key)
	}
	return w.set(m.key, nv)
}

// pebbleWriter is a groupWriter on a Pebble indexed batch, keys under
// userPrefix.
type pebbleWriter struct{ b *pebble.Batch }

func (p pebbleWriter) set(key, value []byte) error { return p.b.Set(userKey(key), value, nil) }
func (p pebbleWriter) del(key []byte) error        { return p.b.Delete(userKey(key), nil) }

func (p pebbleWriter) get(key []byte) ([]byte, bool, error) {
	v, closer, err := p.b.Get(userKey(key))
	switch {
	case err == nil:
		cur := append([]byte{}, v...)
		closer.Close()
		return cur, true, nil
	case errors.Is(err, pebble.ErrNotFound):
		return nil, false, nil
	}
	return nil, false, err
}

// pointClearLimit is how many present keys a ClearRange deletes one by one
// before it writes a Pebble range tombstone instead. Range tombstones in
// the memtable are re-fragmented by every read after each new one (a
// profile of the conformance suite showed that taking 45% of its time), so
// small clears are cheaper as point deletes.
const pointClearLimit = 256

// clearRange clears the user keys in [begin, end) as of everything earlier
// in the batch, and reports whether it wrote a range tombstone.
func (p pebbleWriter) clearRange(begin, end []byte) (tombstone bool, err error) {
	b := p.b
	lo, hi := userKey(begin), userKey(end)
	it, err := b.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return false, err
	}
	var keys [][]byte
	for ok := it.First(); ok && len(keys) <= pointClearLimit; ok = it.Next() {
		keys = append(keys, append([]byte{}, it.Key()...))
	}
	if err := it.Close(); err != nil {
		return false, err
	}
	if len(keys) > pointClearLimit {
		return true, b.DeleteRange(lo, hi, nil)
	}
	for _, k := range keys {
		if err := b.Delete(k, nil); err != nil {
			return false, err
		}
	}
	return false, nil
}

// memWriter is a groupWriter on the in-memory store at the group's commit
// version. It keeps the keys and values it is given: mutations are the
// committer's from the send on, and never modified.
type memWriter struct{ s *memStore }

func (m memWriter) set(key, value []byte) error { m.s.set(key, value); return nil }
func (m memWriter) del(key []byte) error        { m.s.del(key); return nil }

func (m memWriter) clearRange(begin, end []byte) (bool, error) {
	m.s.clearRange(begin, end)
	return false, nil
}

func (m memWriter) get(key []byte) ([]byte, bool, error) {
	if _, mv := m.s.current(key); mv != nil && mv.present {
		return mv.value, true, nil
	}
	return nil, false, nil
}
