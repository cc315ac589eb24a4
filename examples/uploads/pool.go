package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/kv"
)

// Worker roles. Every worker but these two is plain.
const (
	killedWorker  = 0 // killed right after its first claim
	stalledWorker = 1 // stalls past its lease before its first write
)

// uploadResult is what Do stores per file: who processed it under which
// token, and the output's digest.
type uploadResult struct {
	Token  uint64 `json:"token"`
	Worker int    `json:"worker"`
	Sum    string `json:"sum"`
}

// output is the output record of a file, kept in the store under the fence.
type output struct {
	Token  uint64 `json:"token"`
	Worker int    `json:"worker"`
	Sum    string `json:"sum"`
	Size   int    `json:"size"`
	Lines  int    `json:"lines"`
}

// fencedError is the fence refusing a write whose token is older than the
// output's.
type fencedError struct {
	file         string
	token, holds uint64
	holder       int
}

func (e *fencedError) Error() string {
	return fmt.Sprintf("write of %s with fencing token %d refused: the output holds token %d (worker %d)", e.file, e.token, e.holds, e.holder)
}

var errKilled = errors.New("worker killed")

// victim records what happened to a misbehaving worker's file.
type victim struct {
	file  string
	token uint64
	ok    bool // the misbehaviour happened
}

// pool is the workers and what they share.
type pool struct {
	store *idemkv.Store
	cfg   config
	ns    string // this run's key namespace
	files []file
	w     io.Writer
	start time.Time

	done      chan struct{} // closed when every file has a result
	reap      chan struct{} // closed to let the killed worker's parked function return
	remaining atomic.Int64
	refused   atomic.Int64 // writes the fence refused

	// mu guards the run's record of results and events.
	mu struct {
		sync.Mutex
		results         map[string]uploadResult
		log             []string
		killed, stalled victim
	}
}

func (p *pool) doKey(name string) string { return "upload/" + p.ns + "/" + name }
func (p *pool) outPrefix() []byte        { return []byte("uploads/" + p.ns + "/out/") }
func (p *pool) logPrefix() []byte        { return []byte("uploads/" + p.ns + "/log/") }
func (p *pool) outKey(name string) []byte {
	return append(p.outPrefix(), name...)
}

func (p *pool) event(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.log = append(p.mu.log, fmt.Sprintf("%+6dms  ", time.Since(p.start).Milliseconds())+fmt.Sprintf(format, args...))
}

func (p *pool) events() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.mu.log...)
}

// run starts the two misbehaving workers, waits until each holds a claim,
// starts the others, and returns when every file has a result.
func (p *pool) run(ctx context.Context) error {
	p.start = time.Now()
	p.done = make(chan struct{})
	p.reap = make(chan struct{})
	p.mu.results = map[string]uploadResult{}
	p.remaining.Store(int64(len(p.files)))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, p.cfg.workers)
	var wg sync.WaitGroup
	start := func(id int, claimed chan struct{}) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.worker(ctx, id, claimed); err != nil {
				errs <- fmt.Errorf("worker %d: %w", id, err)
				cancel()
			}
		}()
	}
	killedClaim, stalledClaim := make(chan struct{}), make(chan struct{})
	start(killedWorker, killedClaim)
	start(stalledWorker, stalledClaim)
	for _, ch := range []chan struct{}{killedClaim, stalledClaim} {
		select {
		case <-ch:
		case err := <-errs:
			close(p.reap)
			wg.Wait()
			return err
		}
	}
	for id := 2; id < p.cfg.workers; id++ {
		start(id, nil)
	}

	var err error
	select {
	case <-p.done:
	case err = <-errs:
	}
	close(p.reap) // the killed worker's corpse is reaped: its function returns
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	return err
}

// worker walks the directory, in an order of its own (starting at a
// different file than its neighbours, to spread the claims), and handles
// every file without a result, until every file has one. A file held by
// someone else is skipped for now: once its holder finishes it will be
// replayed, and once its holder's lease expires it will be taken over —
// that is how a killed worker's file is found again, since nothing hands
// it back. claimed is non-nil for the two misbehaving workers and closed
// when their first claim is held.
func (p *pool) worker(ctx context.Context, id int, claimed chan struct{}) error {
	rng := rand.New(rand.NewPCG(p.cfg.seed, uint64(id)))
	first := claimed != nil
	n := len(p.files)
	offset := id * n / p.cfg.workers
	for {
		progressed := false
		for k := range n {
			select {
			case <-p.done:
				return nil
			case <-ctx.Done():
				return nil
			default:
			}
			f := p.files[(offset+k)%n]
			if p.isFinished(f.name) {
				continue
			}
			var err error
			switch {
			case first && id == killedWorker:
				return p.dieAfterClaim(ctx, f, claimed) // killed: this worker does nothing more
			case first && id == stalledWorker:
				first = false
				err = p.stallThenWrite(ctx, f, claimed)
			default:
				err = p.process(ctx, id, f, rng)
			}
			var fenced *fencedError
			switch {
			case err == nil:
				progressed = true
			case errors.Is(err, idemkv.ErrInProgress), errors.Is(err, idemkv.ErrLeaseLost), errors.As(err, &fenced):
				// Someone holds the file, or took it over from us: later it
				// is free (a takeover) or done (a replay).
			default:
				return fmt.Errorf("%s: %w", f.name, err)
			}
		}
		if !progressed {
			// Everything left is held by others: wait a little rather
			// than spin on their claims.
			select {
			case <-time.After(time.Duration(5+rng.IntN(10)) * time.Millisecond):
			case <-p.done:
				return nil
			case <-ctx.Done():
				return nil
			}
		}
	}
}

func (p *pool) isFinished(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.mu.results[name]
	return ok
}

// process is a plain worker's handling of one file.
func (p *pool) process(ctx context.Context, id int, f file, rng *rand.Rand) error {
	work := time.Duration(rng.IntN(3000)) * time.Microsecond
	res, err := idemkv.Do(ctx, p.store, p.doKey(f.name), f.sum[:], func(ctx context.Context) (uploadResult, error) {
		token, ok := idemkv.LeaseToken(ctx)
		if !ok {
			return uploadResult{}, errors.New("no lease token inside Do")
		}
		takeover := p.isVictimFile(f.name)
		if takeover {
			p.event("worker %d took over %s after its lease expired (token %d)", id, f.name, token)
		}
		out, err := render(f)
		if err != nil {
			return uploadResult{}, err
		}
		time.Sleep(work) // the rest of the processing
		out.Token, out.Worker = token, id
		if err := p.fencedPut(ctx, f.name, out); err != nil {
			return uploadResult{}, err
		}
		if takeover {
			p.event("worker %d wrote the output of %s with token %d", id, f.name, token)
		}
		return uploadResult{Token: token, Worker: id, Sum: out.Sum}, nil
	}, &idemkv.DoOptions{Lease: p.cfg.lease})
	if err != nil {
		return err
	}
	p.finished(f.name, res)
	return nil
}

// dieAfterClaim claims f and is killed at once: its context is canceled and
// its function is parked, never writing nor releasing, as if its process
// were gone. It returns when the run reaps it, after every file is done;
// the error it gets then is ignored, as no one would be there to see it.
func (p *pool) dieAfterClaim(ctx context.Context, f file, claimed chan struct{}) error {
	ctx, kill := context.WithCancel(ctx)
	defer kill()
	ran := false
	_, err := idemkv.Do(ctx, p.store, p.doKey(f.name), f.sum[:], func(ctx context.Context) (uploadResult, error) {
		ran = true
		token, _ := idemkv.LeaseToken(ctx)
		p.mu.Lock()
		p.mu.killed = victim{file: f.name, token: token, ok: true}
		p.mu.Unlock()
		p.event("worker %d claimed %s (token %d) and was killed before writing anything", killedWorker, f.name, token)
		kill()
		close(claimed)
		<-p.reap
		return uploadResult{}, errKilled
	}, &idemkv.DoOptions{Lease: p.cfg.lease})
	if !ran {
		return fmt.Errorf("could not claim %s to be killed holding it: %w", f.name, err)
	}
	return nil
}

// stallThenWrite claims f, processes it, then stalls before its write
// until another worker has taken f over and written a newer output; its
// late write must then be refused by the fence.
func (p *pool) stallThenWrite(ctx context.Context, f file, claimed chan struct{}) error {
	ran := false
	_, err := idemkv.Do(ctx, p.store, p.doKey(f.name), f.sum[:], func(ctx context.Context) (uploadResult, error) {
		ran = true
		token, _ := idemkv.LeaseToken(ctx)
		out, err := render(f)
		if err != nil {
			return uploadResult{}, err
		}
		out.Token, out.Worker = token, stalledWorker
		p.mu.Lock()
		p.mu.stalled = victim{file: f.name, token: token}
		p.mu.Unlock()
		p.event("worker %d claimed %s (token %d), processed it, and stalled before writing its output", stalledWorker, f.name, token)
		close(claimed)
		// The stall: longer than the lease, and ended (for the demo's sake)
		// only once the newcomer's output is in place.
		newer, err := p.waitForNewerOutput(ctx, f.name, token)
		if err != nil {
			return uploadResult{}, err
		}
		p.event("worker %d resumed; %s's output now has token %d from worker %d", stalledWorker, f.name, newer.Token, newer.Worker)
		err = p.fencedPut(ctx, f.name, out)
		var fenced *fencedError
		if errors.As(err, &fenced) {
			p.mu.Lock()
			p.mu.stalled.ok = true
			p.mu.Unlock()
			p.event("worker %d's late %v", stalledWorker, err)
		} else if err == nil {
			p.event("worker %d's late write with token %d was ACCEPTED over the newer output", stalledWorker, token)
		}
		return uploadResult{Token: token, Worker: stalledWorker, Sum: out.Sum}, err
	}, &idemkv.DoOptions{Lease: p.cfg.lease})
	if !ran {
		return fmt.Errorf("could not claim %s to stall holding it: %w", f.name, err)
	}
	var fenced *fencedError
	if errors.As(err, &fenced) {
		p.event("worker %d's Do call returned that refusal; nothing was stored under its token, and it carries on with other files", stalledWorker)
	}
	return err
}

// waitForNewerOutput polls f's output until it carries a token above
// token, for at most a minute.
func (p *pool) waitForNewerOutput(ctx context.Context, name string, token uint64) (output, error) {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		out, ok, err := p.readOutput(ctx, name)
		if err != nil {
			return output{}, err
		}
		if ok && out.Token > token {
			return out, nil
		}
		select {
		case <-ctx.Done():
			return output{}, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return output{}, fmt.Errorf("%w: no worker took %s over within a minute of its lease", errCheck, name)
}

func (p *pool) isVictimFile(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return name == p.mu.killed.file || name == p.mu.stalled.file
}

// finished records a file's result the first time one is seen.
func (p *pool) finished(name string, res uploadResult) {
	p.mu.Lock()
	_, seen := p.mu.results[name]
	if !seen {
		p.mu.results[name] = res
	}
	p.mu.Unlock()
	if !seen && p.remaining.Add(-1) == 0 {
		close(p.done)
	}
}

// render is the processing: the output describes the input.
func render(f file) (output, error) {
	b, err := os.ReadFile(f.path)
	if err != nil {
		return output{}, err
	}
	sum := sha256.Sum256(b)
	return output{Sum: hex.EncodeToString(sum[:]), Size: len(b), Lines: bytes.Count(b, []byte("\n"))}, nil
}

// fencedPut writes f's output unless the output already carries a larger
// fencing token: the check and the write are one transaction, so no
// interleaving lets an older token overwrite a newer one. An equal token is
// the same holder writing again and is allowed. Each accepted write is
// also logged under a versionstamped key, which shows re-processing.
func (p *pool) fencedPut(ctx context.Context, name string, out output) error {
	val, err := json.Marshal(out)
	if err != nil {
		return err
	}
	_, err = idemkv.Transact(ctx, p.store, func(tr kv.Transaction) (struct{}, error) {
		cur, err := tr.Get(p.outKey(name)).Get()
		if err != nil {
			return struct{}{}, err
		}
		if cur != nil {
			var prev output
			if err := json.Unmarshal(cur, &prev); err != nil {
				return struct{}{}, fmt.Errorf("output of %s: %w", name, err)
			}
			if prev.Token > out.Token {
				p.refused.Add(1)
				return struct{}{}, &fencedError{file: name, token: out.Token, holds: prev.Token, holder: prev.Worker}
			}
		}
		tr.Set(p.outKey(name), val)
		prefix := p.logPrefix()
		k := append(append([]byte{}, prefix...), make([]byte, 10)...)
		k = binary.LittleEndian.AppendUint32(k, uint32(len(prefix)))
		tr.Atomic(kv.SetVersionstampedKey, k, []byte(name))
		return struct{}{}, nil
	})
	return err
}

func (p *pool) readOutput(ctx context.Context, name string) (output, bool, error) {
	b, err := idemkv.ReadTransact(ctx, p.store, func(tr kv.ReadTransaction) ([]byte, error) {
		return tr.Get(p.outKey(name)).Get()
	})
	if err != nil || b == nil {
		return output{}, false, err
	}
	var out output
	return out, true, json.Unmarshal(b, &out)
}

// verify checks the outputs against the inputs and against what Do
// stored, and replays every key.
func (p *pool) verify(ctx context.Context) (report, error) {
	type books struct{ outs, log []kv.KeyValue }
	outR, err := kv.PrefixRange(p.outPrefix())
	if err != nil {
		return report{}, err
	}
	logR, err := kv.PrefixRange(p.logPrefix())
	if err != nil {
		return report{}, err
	}
	b, err := idemkv.ReadTransact(ctx, p.store, func(tr kv.ReadTransaction) (books, error) {
		outs, err := tr.GetRange(outR, kv.RangeOptions{}).Get()
		if err != nil {
			return books{}, err
		}
		log, err := tr.GetRange(logR, kv.RangeOptions{}).Get()
		return books{outs, log}, err
	})
	if err != nil {
		return report{}, err
	}
	outs := map[string]output{}
	for _, e := range b.outs {
		var o output
		if err := json.Unmarshal(e.Value, &o); err != nil {
			return report{}, fmt.Errorf("output %q: %w", e.Key, err)
		}
		outs[string(e.Key[len(p.outPrefix()):])] = o
	}
	writes := map[string]int{}
	for _, e := range b.log {
		writes[string(e.Value)]++
	}

	// The second pass: every key must replay its stored result.
	replayed := map[string]uploadResult{}
	var replayProblems []string
	for _, f := range p.files {
		ran := false
		res, err := idemkv.Do(ctx, p.store, p.doKey(f.name), f.sum[:], func(context.Context) (uploadResult, error) {
			ran = true
			return uploadResult{}, errors.New("second pass: processing ran again")
		}, nil)
		switch {
		case ran:
			replayProblems = append(replayProblems, fmt.Sprintf("%s: the second pass ran the processing again (%v)", f.name, err))
		case err != nil:
			replayProblems = append(replayProblems, fmt.Sprintf("%s: the second pass failed: %v", f.name, err))
		default:
			replayed[f.name] = res
		}
	}

	p.mu.Lock()
	results := p.mu.results
	killed, stalled := p.mu.killed, p.mu.stalled
	p.mu.Unlock()
	rep := checkOutputs(p.files, outs, writes, results, replayed, killed, stalled)
	rep.problems = append(replayProblems, rep.problems...)
	return rep, nil
}

// checkOutputs is verify's comparison, apart so that tests can feed it bad
// books.
func checkOutputs(files []file, outs map[string]output, writes map[string]int, results, replayed map[string]uploadResult, killed, stalled victim) report {
	rep := report{byWorker: map[int]int{}}
	bad := func(format string, args ...any) { rep.problems = append(rep.problems, fmt.Sprintf(format, args...)) }
	names := map[string]bool{}
	for _, f := range files {
		names[f.name] = true
		o, ok := outs[f.name]
		if !ok {
			bad("%s has no output", f.name)
			continue
		}
		rep.outputs++
		rep.byWorker[o.Worker]++
		rep.acceptedWrites += writes[f.name]
		if writes[f.name] > 1 {
			rep.reprocessed++
		}
		if want := hex.EncodeToString(f.sum[:]); o.Sum != want || o.Size != f.size {
			bad("%s: output digest %.12s… size %d, the input's is %.12s… size %d", f.name, o.Sum, o.Size, want, f.size)
		}
		r, ok := results[f.name]
		if !ok {
			bad("%s: no worker got a result from Do", f.name)
		} else if r.Token != o.Token || r.Worker != o.Worker {
			bad("%s: Do stored token %d (worker %d) but the output has token %d (worker %d)", f.name, r.Token, r.Worker, o.Token, o.Worker)
		}
		if rp, ok := replayed[f.name]; ok && rp != r {
			bad("%s: the second pass replayed %+v, the first pass got %+v", f.name, rp, r)
		}
	}
	for name := range outs {
		if !names[name] {
			bad("output %s has no input", name)
		}
	}
	switch o := outs[killed.file]; {
	case !killed.ok:
		bad("the killed worker never claimed a file")
	case o.Token <= killed.token:
		bad("%s: the killed worker's file was not taken over (output token %d, worker %d; the killed claim's token %d)", killed.file, o.Token, o.Worker, killed.token)
	}
	switch o := outs[stalled.file]; {
	case stalled.file == "":
		bad("the stalled worker never claimed a file")
	case !stalled.ok:
		bad("%s: the stalled worker's late write was not refused by the fence", stalled.file)
	case o.Token <= stalled.token:
		bad("%s: the stalled worker's stale output survived (token %d, worker %d)", stalled.file, o.Token, o.Worker)
	}
	return rep
}
