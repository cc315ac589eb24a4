package cleanup

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/txn"
)

// Errors for errors.Is.
var (
	// ErrInvalidOptions is wrapped by every Options validation error.
	ErrInvalidOptions = errors.New("cleanup: invalid options")
	// ErrForeignPrefix is returned when the prefix holds keys that are not
	// markers: it is almost certainly not the prefix the transactions use,
	// and sweeping it would delete someone's data.
	ErrForeignPrefix = errors.New("cleanup: the prefix holds keys that are not markers")
	// ErrClosed is returned by Step, Run and Start after Close.
	ErrClosed = errors.New("cleanup: janitor is closed")
)

// ForeignKeyError names the key that made a janitor refuse its prefix. It
// matches ErrForeignPrefix.
type ForeignKeyError struct {
	Prefix, Key, Value []byte
}

func (e *ForeignKeyError) Error() string {
	return fmt.Sprintf("%v: found %q = %q under %q; is this the prefix your transactions use (txn.Options.Prefix)? Nothing is swept until that key is gone", ErrForeignPrefix, e.Key, e.Value, e.Prefix)
}

// Is matches ErrForeignPrefix.
func (e *ForeignKeyError) Is(target error) bool { return target == ErrForeignPrefix }

// Janitor removes markers older than a minimum age, and keyed markers whose
// age-index entries are due. Any number of janitors, in any number of
// processes, may sweep the same prefix at once: automatic sweeps never
// conflict, and keyed sweeps that conflict retry and find less to do.
type Janitor struct {
	db  kv.Database
	cfg config

	// mu guards the fields below it.
	mu struct {
		sync.Mutex
		stats   Stats
		checked bool // the prefix was found to hold only markers
		closed  bool
		cancel  context.CancelFunc // stops the loop Start began
		done    chan struct{}      // closed when that loop returns
	}
}

// Stats is what a Janitor has done so far.
type Stats struct {
	Sweeps int64 // Steps that completed
	Errors int64 // Steps that failed
	// KeyedRemoved counts keyed markers removed. Legacy markers are
	// removed by range clears without being read, so they are not counted;
	// Watermark says how far they are gone.
	KeyedRemoved int64
	// SlotsRemoved counts marker slots removed: slots not written for the
	// minimum age (their owner's process or database handle is gone, or
	// it no longer needs that many).
	SlotsRemoved int64
	// Watermark is the version below which this janitor has removed every
	// legacy marker and marker slot (other janitors may have gone further).
	Watermark int64
	LastSweep time.Duration // the last Step's duration
	LastError error         // the last Step's error, nil once one succeeds
	// Failures is the number of Steps that failed since the last one that
	// succeeded; Run backs off while it is above zero.
	Failures int64
	// LastSuccess is when the last successful Step ended (zero if none).
	LastSuccess time.Time
	// Running reports that the loop Start began is running; NextSweep is
	// when it sweeps next (zero when it is not running).
	Running   bool
	NextSweep time.Time
}

// StepResult is what one sweep did.
type StepResult struct {
	// ReadVersion is the version the sweep read at. Cutoff is the version
	// below which every legacy marker and marker slot was removed: the lower of
	// VersionCutoff, ReadVersion minus the minimum age in versions, and
	// ClockCutoff, the newest version that a clock sample shows was current
	// at least the minimum age ago by the janitor's wall clock (-1 when no
	// sample is that old; then nothing is removed, unless the database has
	// no samples at all, see the package doc).
	ReadVersion, Cutoff        int64
	VersionCutoff, ClockCutoff int64
	// KeyedRemoved is the number of keyed markers removed; KeyedMore reports
	// that due entries remain for the next sweep.
	KeyedRemoved int
	KeyedMore    bool
	// SlotsRemoved is the number of marker slots removed (those written
	// below Cutoff); SlotsMore reports that the sweep stopped at its bound
	// (maxBatchesPerStep pages of slotPage slots) before the end of the
	// slots.
	SlotsRemoved int
	SlotsMore    bool
	Duration     time.Duration
}

// New returns a janitor for db's markers. It does not sweep until Step, Run
// or Start.
func New(db kv.Database, opts *Options) (*Janitor, error) {
	if db == nil {
		return nil, errors.New("cleanup: the database is nil")
	}
	cfg, err := opts.config()
	if err != nil {
		return nil, err
	}
	return &Janitor{db: db, cfg: cfg}, nil
}

// Step does one sweep, now: a deterministic function of the database's
// state and version, for tests to step and for Run to repeat.
//
// Marker slots cost a transaction per page of slotPage slots (those alive
// are the calls' in flight, pinned ones and those of owners gone or idle
// within the minimum age): slots written below the cut-off are cleared,
// each with a read conflict (see the package doc).
//
// Legacy markers cost one transaction whatever their number: for each of
// the txn.MaxShards shards that has markers below the cut-off version (a
// snapshot read of its first two keys tells), a range clear of them, and an
// atomic max of the watermark to the cut-off. The reads are snapshots, so
// concurrent sweeps never conflict; a marker written below the cut-off after
// the sweep's read version is removed by the next sweep. Keyed markers
// cost a batch transaction per BatchSize due entries.
//
// Its time is flat in the number of markers too, given an engine that, as
// FoundationDB's storage servers and kv/embedded do, drops cleared keys in
// the background, so that the next sweep's reads of the shards' first keys
// seek past them (BenchmarkSweep).
func (j *Janitor) Step(ctx context.Context) (StepResult, error) {
	start := time.Now()
	res, err := j.step(ctx)
	res.Duration = time.Since(start)
	if errors.Is(err, ErrClosed) || (err != nil && ctx.Err() != nil) {
		// Not a failed sweep but a stopped one: Run's loop can reach here
		// just after Close, or be canceled by it mid-sweep, and must not
		// leave a failure behind in Stats; nor does a caller's own
		// cancellation say anything about the janitor's health.
		return res, err
	}
	j.mu.Lock()
	j.mu.stats.LastSweep = res.Duration
	j.mu.stats.LastError = err
	if err != nil {
		j.mu.stats.Errors++
		j.mu.stats.Failures++
	} else {
		j.mu.stats.Sweeps++
		j.mu.stats.Failures = 0
		j.mu.stats.LastSuccess = time.Now()
		j.mu.stats.KeyedRemoved += int64(res.KeyedRemoved)
		j.mu.stats.SlotsRemoved += int64(res.SlotsRemoved)
		j.mu.stats.Watermark = max(j.mu.stats.Watermark, res.Cutoff)
	}
	j.mu.Unlock()
	if j.cfg.onStep != nil {
		j.cfg.onStep(res, err)
	}
	return res, err
}

func (j *Janitor) step(ctx context.Context) (StepResult, error) {
	var res StepResult
	j.mu.Lock()
	closed, checked := j.mu.closed, j.mu.checked
	j.mu.Unlock()
	if closed {
		return res, ErrClosed
	}
	if !checked {
		if err := j.checkPrefix(ctx); err != nil {
			return res, err
		}
		j.mu.Lock()
		j.mu.checked = true
		j.mu.Unlock()
	}
	err := retry(ctx, j.db, func(tr kv.Transaction) error {
		rv, err := tr.GetReadVersion().Get()
		if err != nil {
			return err
		}
		now := j.cfg.clock()
		if err := j.cutoff(tr, rv, now, &res); err != nil {
			return err
		}
		if res.Cutoff == 0 {
			return tr.Commit().Err() // nothing old enough; the sample, if any
		}
		// Every shard, whatever Shards the transactions use: the shard is
		// part of each ID, and callers may change Shards at any time. A
		// snapshot read of each shard's first keys (its sentinel and its
		// oldest marker) finds the shards with something to remove, so
		// that unused shards cost a read rather than a range clear.
		firsts := make([]*kv.Future[[]kv.KeyValue], txn.MaxShards)
		snap := tr.Snapshot()
		for s := range txn.MaxShards {
			firsts[s] = snap.GetRange(txn.ShardRange(j.cfg.prefix, uint8(s)), kv.RangeOptions{Limit: 2})
		}
		for s, f := range firsts {
			kvs, err := f.Get()
			if err != nil {
				return err
			}
			for _, e := range kvs {
				if id, err := txn.ParseMarkerKey(j.cfg.prefix, e.Key); err == nil && id.Version < res.Cutoff {
					tr.ClearRange(txn.MarkerRange(j.cfg.prefix, uint8(s), res.Cutoff))
					break
				}
			}
		}
		tr.Atomic(kv.Max, txn.WatermarkKey(j.cfg.prefix), txn.EncodeWatermark(res.Cutoff))
		return tr.Commit().Err()
	})
	if err != nil {
		return res, fmt.Errorf("cleanup: sweeping markers under %q: %w", j.cfg.prefix, err)
	}
	if res.Cutoff > 0 {
		n, more, err := j.sweepSlots(ctx, res.Cutoff)
		res.SlotsRemoved, res.SlotsMore = n, more
		if err != nil {
			return res, fmt.Errorf("cleanup: sweeping marker slots under %q: %w", j.cfg.prefix, err)
		}
	}
	for _, k := range j.cfg.keyed {
		n, more, err := j.sweepKeyed(ctx, k)
		res.KeyedRemoved += n
		res.KeyedMore = res.KeyedMore || more
		if err != nil {
			return res, fmt.Errorf("cleanup: sweeping keyed index %q: %w", k.Name, err)
		}
	}
	return res, nil
}

// cutoff computes res's cut-offs at read version rv and wall time now,
// from the clock samples (snapshot reads, so janitors never conflict), and
// records a sample (rv, now). Samples below the one that sets the clock
// cut-off are pruned: it stays, to set the next sweep's. So a marker lives
// at most MinAge plus the time between two sweeps by the wall clock, and
// the samples alive are about MinAge / Interval per janitor.
func (j *Janitor) cutoff(tr kv.Transaction, rv int64, now time.Time, res *StepResult) error {
	samples, err := tr.Snapshot().GetRange(txn.ClockSampleRange(j.cfg.prefix, math.MaxInt64), kv.RangeOptions{}).Get()
	if err != nil {
		return err
	}
	res.ReadVersion = rv
	res.VersionCutoff = max(rv-j.cfg.minAge, 0)
	res.ClockCutoff = -1
	old := now.Add(-j.cfg.minAgeDur).UnixNano()
	for _, e := range samples {
		if len(e.Key) < 8 || len(e.Value) != 8 {
			return fmt.Errorf("clock sample %q = %x is not 8-byte version and time", e.Key, e.Value)
		}
		v := int64(binary.BigEndian.Uint64(e.Key[len(e.Key)-8:]))
		t := int64(binary.BigEndian.Uint64(e.Value))
		if t <= old && v > res.ClockCutoff {
			res.ClockCutoff = v
		}
	}
	switch {
	case len(samples) == 0:
		// A database without samples (new, or its marker prefix cleared):
		// versions alone, as before samples existed. This first sweep
		// writes one, and from MinAge on, the clock bound holds.
		res.Cutoff = res.VersionCutoff
	case res.ClockCutoff < 0:
		res.Cutoff = 0
	default:
		res.Cutoff = min(res.VersionCutoff, res.ClockCutoff)
		tr.ClearRange(txn.ClockSampleRange(j.cfg.prefix, res.ClockCutoff))
	}
	tr.Set(txn.ClockSampleKey(j.cfg.prefix, rv), binary.BigEndian.AppendUint64(nil, uint64(now.UnixNano())))
	return nil
}

// slotPage is how many marker slots one slot-sweep transaction reads.
const slotPage = 1_000

// sweepSlots removes the marker slots written below cutoff, slotPage slots
// read per transaction, for at most maxBatchesPerStep pages. The slots are
// read as a snapshot — a read conflict on them all would make every sweep
// conflict with every call in flight — and each slot removed gets a read
// conflict of its own, so that a write of it after the sweep's read
// version (its owner refreshing it, a call's attempt, a Resolve) makes the
// sweep's commit fail rather than remove it; the retry reads it again and
// finds it recent. See "Marker slots" in the package doc.
func (j *Janitor) sweepSlots(ctx context.Context, cutoff int64) (removed int, more bool, err error) {
	r := txn.SlotRange(j.cfg.prefix)
	for range maxBatchesPerStep {
		var n int
		var next []byte // where the next page begins; nil after the last
		err := retry(ctx, j.db, func(tr kv.Transaction) error {
			n, next = 0, nil
			kvs, err := tr.Snapshot().GetRange(r, kv.RangeOptions{Limit: slotPage}).Get()
			if err != nil {
				return err
			}
			if len(kvs) == slotPage {
				next = kv.KeyAfter(kvs[len(kvs)-1].Key)
			}
			for _, e := range kvs {
				st, err := txn.DecodeSlot(e.Value)
				if err != nil || st.Stamp.Version() >= cutoff {
					continue // recent, or not a slot: never removed
				}
				if err := tr.AddReadConflictRange(kv.SingleKeyRange(e.Key)); err != nil {
					return err
				}
				tr.Clear(e.Key)
				n++
			}
			if n == 0 {
				return nil
			}
			return tr.Commit().Err()
		})
		removed += n
		if err != nil || next == nil {
			return removed, false, err
		}
		r.Begin = next
	}
	return removed, true, nil
}

// sweepKeyed removes due entries of one age index, a batch per transaction,
// for at most maxBatchesPerStep batches.
func (j *Janitor) sweepKeyed(ctx context.Context, k KeyedIndex) (removed int, more bool, err error) {
	for range maxBatchesPerStep {
		var n int
		err := retry(ctx, j.db, func(tr kv.Transaction) error {
			n = 0
			rv, err := tr.GetReadVersion().Get()
			if err != nil {
				return err
			}
			due := kv.Range{Begin: k.Prefix, End: k.IndexKey(rv+1, nil)}
			entries, err := tr.GetRange(due, kv.RangeOptions{Limit: j.cfg.batchSize}).Get()
			if err != nil {
				return err
			}
			for _, e := range entries {
				if len(e.Key) < len(k.Prefix)+8 {
					return fmt.Errorf("index entry %q is shorter than its prefix and due version", e.Key)
				}
				if err := k.Remove(tr, e.Key[len(k.Prefix)+8:], e.Value); err != nil {
					return err
				}
				tr.Clear(e.Key)
			}
			n = len(entries)
			if n == 0 {
				return nil
			}
			return tr.Commit().Err()
		})
		removed += n
		if err != nil || n < j.cfg.batchSize {
			return removed, false, err
		}
	}
	return removed, true, nil
}

// checkPrefix refuses a prefix that holds keys other than markers and the
// watermark, looking at the first and last keys under it. It runs once per
// janitor, before its first sweep.
func (j *Janitor) checkPrefix(ctx context.Context) error {
	r, err := kv.PrefixRange(j.cfg.prefix)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidOptions, err)
	}
	return retry(ctx, j.db, func(tr kv.Transaction) error {
		snap := tr.Snapshot()
		first := snap.GetRange(r, kv.RangeOptions{Limit: 100})
		last := snap.GetRange(r, kv.RangeOptions{Limit: 100, Reverse: true})
		for _, f := range []*kv.Future[[]kv.KeyValue]{first, last} {
			kvs, err := f.Get()
			if err != nil {
				return err
			}
			for _, e := range kvs {
				if !txn.IsProtocolKey(j.cfg.prefix, e.Key, e.Value) {
					return &ForeignKeyError{Prefix: bytes.Clone(j.cfg.prefix), Key: bytes.Clone(e.Key), Value: bytes.Clone(e.Value)}
				}
			}
		}
		return nil
	})
}

// Run sweeps every Interval (with jitter) until ctx ends or Close is called,
// and returns nil on Close, ctx.Err() when ctx ends. A failed sweep is
// counted in Stats and retried with backoff: Interval after the first
// failure, doubling with every further one up to MaxBackoff (or Interval,
// if longer). That includes a foreign prefix (ErrForeignPrefix): the
// janitor keeps looking, so removing the foreign key lets it resume, and
// Stats.LastError names the key meanwhile.
func (j *Janitor) Run(ctx context.Context) error {
	t := time.NewTimer(0)
	defer t.Stop()
	defer j.setNext(time.Time{})
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if _, err := j.Step(ctx); errors.Is(err, ErrClosed) {
			return nil
		}
		d := j.nextDelay(j.Stats().Failures)
		// ±10% jitter spreads janitors that started together.
		d += time.Duration((rand.Float64() - 0.5) * 0.2 * float64(d))
		j.setNext(time.Now().Add(d))
		t.Reset(d)
	}
}

// nextDelay is the time to the next sweep after failures consecutive failed
// ones.
func (j *Janitor) nextDelay(failures int64) time.Duration {
	d := j.cfg.interval
	limit := max(d, MaxBackoff)
	for i := int64(1); i < failures && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

func (j *Janitor) setNext(t time.Time) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.mu.stats.NextSweep = t
}

// Start runs Run in a goroutine until Close. It returns ErrClosed after
// Close and is a no-op if already started.
func (j *Janitor) Start() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.mu.closed {
		return ErrClosed
	}
	if j.mu.done != nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	j.mu.cancel, j.mu.done = cancel, make(chan struct{})
	j.mu.stats.Running = true
	go func(done chan struct{}) {
		defer close(done)
		j.Run(ctx)
		j.mu.Lock()
		j.mu.stats.Running = false
		j.mu.Unlock()
	}(j.mu.done)
	return nil
}

// Close stops the loop Start began, waits for it, and makes later Steps
// fail with ErrClosed. It does not close the database. It may be called
// more than once.
func (j *Janitor) Close() error {
	j.mu.Lock()
	j.mu.closed = true
	cancel, done := j.mu.cancel, j.mu.done
	j.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	return nil
}

// Stats returns what the janitor has done so far.
func (j *Janitor) Stats() Stats {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.mu.stats
}

// retry runs fn in FoundationDB's retry loop. Every janitor transaction is
// idempotent — range clears, an atomic max, conditional removals — so
// retrying maybe-committed errors through OnError is safe here.
func retry(ctx context.Context, db kv.Database, fn func(kv.Transaction) error) error {
	tr, err := db.CreateTransaction(ctx)
	if err != nil {
		return err
	}
	for {
		err := fn(tr)
		if err == nil {
			return nil
		}
		if _, ok := kv.ErrorCode(err); !ok {
			return err
		}
		if err := tr.OnError(err); err != nil {
			return err
		}
	}
}
