package kvtest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/idemkv/idemkv/kv"
)

// ErrNotStrictlySerializable is matched (errors.Is) by the error
// VerifyStrictSerializable returns when porcupine finds no sequential order
// of the committed transactions consistent with their reads and with real
// time.
var ErrNotStrictlySerializable = errors.New("kvtest: history is not strictly serializable")

// HistoryOptions shapes the random workload of CheckStrictSerializable. The
// zero value (or nil) means the defaults.
type HistoryOptions struct {
	// Clients is the number of concurrent clients; default 4, at most 16.
	Clients int
	// TxnsPerClient is how many transactions each client commits (or gives
	// up on after MaxAttempts); default 30, at most 1,000.
	TxnsPerClient int
	// Keys is the size of the key space; default 5, from 1 to 8. Small on
	// purpose: contention is what finds isolation bugs.
	Keys int
	// MaxOps is the most operations in one transaction; default 4, at most
	// 32.
	MaxOps int
	// MaxAttempts bounds the retries of one transaction after
	// retryable-not-committed errors; default 100.
	MaxAttempts int
	// CheckTimeout bounds porcupine's search; default 30 s. A search that
	// times out is reported as a failure, not a pass.
	CheckTimeout time.Duration
}

func (o *HistoryOptions) withDefaults() (HistoryOptions, error) {
	var h HistoryOptions
	if o != nil {
		h = *o
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&h.Clients, 4)
	def(&h.TxnsPerClient, 30)
	def(&h.Keys, 5)
	def(&h.MaxOps, 4)
	def(&h.MaxAttempts, 100)
	if h.CheckTimeout == 0 {
		h.CheckTimeout = 30 * time.Second
	}
	for _, c := range []struct {
		name     string
		v, lo, h int
	}{
		{"Clients", h.Clients, 1, 16},
		{"TxnsPerClient", h.TxnsPerClient, 1, 1000},
		{"Keys", h.Keys, 1, maxModelKeys},
		{"MaxOps", h.MaxOps, 1, 32},
		{"MaxAttempts", h.MaxAttempts, 1, 1 << 20},
	} {
		if c.v < c.lo || c.v > c.h {
			return h, fmt.Errorf("kvtest: HistoryOptions.%s = %d, want %d to %d", c.name, c.v, c.lo, c.h)
		}
	}
	if h.CheckTimeout < 0 {
		return h, fmt.Errorf("kvtest: HistoryOptions.CheckTimeout = %v, want > 0", h.CheckTimeout)
	}
	return h, nil
}

// Report describes one run of VerifyStrictSerializable.
type Report struct {
	Seed      uint64
	Committed int // transactions in the checked history
	Dropped   int // attempts that failed retryable-not-committed
	GaveUp    int // transactions abandoned after MaxAttempts
}

// CheckStrictSerializable runs a random concurrent workload from seed
// against db and fails t unless porcupine finds the history strictly
// serializable: some serial order of the committed transactions, consistent
// with real time (a transaction that returned before another began comes
// first), explains every value each one read. On failure it prints the seed
// and replay, a command line that reruns it (for example "go test
// ./kv/embedded -run TestStrictSerializable -seed=%d"; "%d" is replaced by
// the seed) and, for a rejected history, the path of porcupine's HTML
// rendering of it.
//
// Goroutine scheduling is not seeded, so a replay reruns the same
// transactions, not necessarily the same interleaving.
func CheckStrictSerializable(t TB, db kv.Database, seed uint64, opts *HistoryOptions, replay string) Report {
	t.Helper()
	rep, err := VerifyStrictSerializable(db, seed, opts)
	if err != nil {
		how := ""
		if replay != "" {
			how = "; replay: " + strings.ReplaceAll(replay, "%d", fmt.Sprint(seed))
		}
		if path := visualize(err); path != "" {
			how += "; visualization: " + path
		}
		t.Fatalf("seed %d: %v%s", seed, err, how)
	}
	return rep
}

// TB is the part of testing.TB that CheckStrictSerializable uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// VerifyStrictSerializable is CheckStrictSerializable without a test: it
// returns an error wrapping ErrNotStrictlySerializable if porcupine rejects
// the history, and other errors for failures of the run itself (a
// maybe-committed error, which cannot happen without fault injection, or an
// error that is not retryable).
func VerifyStrictSerializable(db kv.Database, seed uint64, opts *HistoryOptions) (Report, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return Report{Seed: seed}, err
	}
	if db == nil {
		return Report{Seed: seed}, errors.New("kvtest: VerifyStrictSerializable was given a nil kv.Database")
	}
	rec := &recorder{db: db, opts: o, seed: seed, prefix: randomPrefix(), start: time.Now()}
	defer rec.cleanup()
	ops, rep, err := rec.run()
	if err != nil {
		return rep, err
	}
	model := historyModel(o.Keys)
	res, info := porcupine.CheckOperationsVerbose(model, ops, o.CheckTimeout)
	switch res {
	case porcupine.Ok:
		return rep, nil
	case porcupine.Unknown:
		return rep, fmt.Errorf("kvtest: porcupine found no answer within %v for %d transactions; lower the workload",
			o.CheckTimeout, len(ops))
	}
	return rep, &HistoryError{Seed: seed, Committed: len(ops), Clients: o.Clients, model: model, info: info}
}

// HistoryError is the error VerifyStrictSerializable returns for a history
// porcupine rejects; it matches ErrNotStrictlySerializable under errors.Is.
type HistoryError struct {
	Seed               uint64
	Committed, Clients int

	model porcupine.Model
	info  porcupine.LinearizationInfo
}

func (e *HistoryError) Error() string {
	return fmt.Sprintf("%v: %d committed transactions from %d clients (seed %d)",
		ErrNotStrictlySerializable, e.Committed, e.Clients, e.Seed)
}

// Is makes errors.Is(err, ErrNotStrictlySerializable) hold.
func (e *HistoryError) Is(target error) bool { return target == ErrNotStrictlySerializable }

// Visualize writes porcupine's HTML rendering of the history: each
// client's transactions on a timeline and the longest serial prefix found.
func (e *HistoryError) Visualize(w io.Writer) error { return porcupine.Visualize(e.model, e.info, w) }

// visualize writes err's rendering to a temporary file and returns its
// path, or "" if err is not a *HistoryError or the file cannot be written.
func visualize(err error) string {
	var he *HistoryError
	if !errors.As(err, &he) {
		return ""
	}
	f, ferr := os.CreateTemp("", "kvtest-history-*.html")
	if ferr != nil {
		return ""
	}
	defer f.Close()
	if he.Visualize(f) != nil {
		return ""
	}
	return f.Name()
}

// recorder runs the workload and records the history.
type recorder struct {
	db     kv.Database
	opts   HistoryOptions
	seed   uint64
	prefix []byte
	start  time.Time

	mu struct {
		sync.Mutex // covers everything below
		ops        []porcupine.Operation
		dropped    int
		gaveUp     int
		err        error
	}
}

func (r *recorder) now() int64 { return time.Since(r.start).Nanoseconds() }

func (r *recorder) key(i int) []byte { return append(append([]byte{}, r.prefix...), byte('a'+i)) }

// run starts the clients and waits for them.
func (r *recorder) run() ([]porcupine.Operation, Report, error) {
	var wg sync.WaitGroup
	for c := range r.opts.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.client(c); err != nil {
				r.mu.Lock()
				if r.mu.err == nil {
					r.mu.err = err
				}
				r.mu.Unlock()
			}
		}()
	}
	wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := Report{Seed: r.seed, Committed: len(r.mu.ops), Dropped: r.mu.dropped, GaveUp: r.mu.gaveUp}
	return r.mu.ops, rep, r.mu.err
}

// client runs one client's transactions, each until it commits.
func (r *recorder) client(id int) error {
	rng := rand.New(rand.NewPCG(r.seed, uint64(id)))
	for range r.opts.TxnsPerClient {
		in := genTxn(rng, r.opts)
		committed := false
		for range r.opts.MaxAttempts {
			call := r.now()
			out, err := r.attempt(in)
			ret := r.now()
			if err == nil {
				r.mu.Lock()
				r.mu.ops = append(r.mu.ops, porcupine.Operation{
					ClientId: id, Input: in, Call: call, Output: out, Return: ret,
				})
				r.mu.Unlock()
				committed = true
				break
			}
			switch {
			case kv.MaybeCommitted(err):
				return fmt.Errorf("kvtest: client %d got a maybe-committed error, which the history cannot place (it must not occur without fault injection): %w", id, err)
			case kv.IsRetryableNotCommitted(err):
				r.mu.Lock()
				r.mu.dropped++
				r.mu.Unlock()
			default:
				return fmt.Errorf("kvtest: client %d: transaction %v: %w", id, in, err)
			}
		}
		if !committed {
			r.mu.Lock()
			r.mu.gaveUp++
			r.mu.Unlock()
		}
	}
	return nil
}

// attempt runs one transaction attempt and returns what its reads saw.
func (r *recorder) attempt(in txnInput) (txnOutput, error) {
	tr, err := r.db.CreateTransaction(context.Background())
	if err != nil {
		return nil, err
	}
	out := make(txnOutput, len(in))
	for i, op := range in {
		// Yield between operations so that, even on an engine whose
		// operations never block, other clients' commits land inside this
		// transaction's lifetime: that overlap is what the check is for.
		runtime.Gosched()
		switch op.kind {
		case opGet:
			v, err := tr.Get(r.key(op.key)).Get()
			if err != nil {
				return nil, err
			}
			if v != nil {
				n, err := decodeValue(v)
				if err != nil {
					return nil, err
				}
				out[i] = []cell{{key: op.key, val: n}}
			}
		case opRange:
			kvs, err := tr.GetRange(kv.Range{Begin: r.key(op.key), End: r.key(op.end)},
				kv.RangeOptions{Limit: op.limit, Reverse: op.reverse}).Get()
			if err != nil {
				return nil, err
			}
			for _, p := range kvs {
				if len(p.Key) != len(r.prefix)+1 || !bytes.HasPrefix(p.Key, r.prefix) {
					return nil, fmt.Errorf("kvtest: range read returned %q, outside the key space", p.Key)
				}
				n, err := decodeValue(p.Value)
				if err != nil {
					return nil, err
				}
				out[i] = append(out[i], cell{key: int(p.Key[len(r.prefix)] - 'a'), val: n})
			}
		case opSet:
			tr.Set(r.key(op.key), binary.LittleEndian.AppendUint64(nil, op.val))
		case opAdd:
			tr.Atomic(kv.Add, r.key(op.key), binary.LittleEndian.AppendUint64(nil, op.val))
		case opClear:
			tr.Clear(r.key(op.key))
		case opClearRange:
			tr.ClearRange(kv.Range{Begin: r.key(op.key), End: r.key(op.end)})
		}
	}
	if err := tr.Commit().Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func decodeValue(v []byte) (uint64, error) {
	if len(v) != 8 {
		return 0, fmt.Errorf("kvtest: value %x is not the 8 bytes the workload writes", v)
	}
	return binary.LittleEndian.Uint64(v), nil
}

// cleanup clears the workload's keys; errors are ignored because the
// verdict does not depend on them and the prefix is unique.
func (r *recorder) cleanup() {
	tr, err := r.db.CreateTransaction(context.Background())
	if err != nil {
		return
	}
	if pr, err := kv.PrefixRange(r.prefix); err == nil {
		tr.ClearRange(pr)
		_ = tr.Commit().Err()
	}
}
