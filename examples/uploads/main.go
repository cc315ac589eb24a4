// Command uploads has several workers process a directory of generated
// files exactly once, with idemkv.Do holding a short lease per file, and
// survives a worker killed mid-way and another that stalls past its lease
// and comes back late.
//
// # The pattern
//
// It is the lock-manager pattern done with a conditional put — a claim
// written only if the key is free or its lease has expired — with leases
// instead of locks held forever, and with fencing tokens. Each worker walks
// the directory (each from a different starting file) and, for every file
// not yet done, calls Do with key "upload/<run>/<name>", the file's SHA-256
// as payload, and DoOptions.Lease. Inside Do's function it reads
// idemkv.LeaseToken, processes the file, and writes the output record
// through a fenced put: a transaction that refuses the write if the output
// already carries a larger token. A file whose key is in progress
// (ErrInProgress) is skipped and met again on the next walk: by then it is
// done (Do replays the stored result) or its holder's lease has expired (Do
// takes it over with a larger token). Nobody hands a dead worker's file
// back; the walk finds it.
//
// Only the store that holds the output can enforce the fence, in the same
// transaction as the write: checking the token first and writing later
// would let a stale holder slip in between. Do also refuses to store a
// result for a claim that was taken over (ErrLeaseLost), but the output
// was written inside fn, before that; hence the fence.
//
// # Failures
//
// Two workers misbehave, on purpose and visibly:
//
//   - worker 0 is killed right after it claims its first file: its context
//     is canceled and its function never runs another line (it is parked,
//     as a dead process would be, and only reaped at the end). It releases
//     nothing; another worker takes the file over once the lease expires.
//   - worker 1 claims its first file, processes it, then stalls (a GC pause,
//     a swapped-out VM) before writing its output, for longer than its
//     lease. Another worker takes over and writes the output with a newer
//     token; when worker 1 resumes, its write carries the old token and the
//     fence refuses it, so the late original cannot overwrite the
//     newcomer's output.
//
// # Checks
//
// The checks, any failure of which exits 1: every file has exactly one
// output record, whose digest is the input's and whose token is the one Do
// stored for the file; a second pass over every key replays the stored
// result without running the function; the killed worker's file was taken
// over by another worker; the stalled worker's late write was refused.
// A file processed twice because a slow worker outlived its lease is
// reported (accepted output writes above the number of files) but is not a
// failure: its output is still the one final holder's.
//
// # Usage
//
//	go run ./examples/uploads [-files 24] [-workers 4] [-lease 300ms] [-seed 1] [-mem|-dir DIR]
package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/idemkv/idemkv/idemkv"
)

type config struct {
	files, workers int
	lease          time.Duration
	seed           uint64
	dir            string
	mem            bool
}

func main() {
	var c config
	flag.IntVar(&c.files, "files", 24, "files to generate and process")
	flag.IntVar(&c.workers, "workers", 4, "workers (at least 3: one is killed, one stalls)")
	flag.DurationVar(&c.lease, "lease", 300*time.Millisecond, "lease per file claim")
	flag.Uint64Var(&c.seed, "seed", 1, "seed of the generated files and of the workers' pacing")
	flag.StringVar(&c.dir, "dir", "", "working directory: input files and the durable engine (default: a temporary directory, removed afterwards)")
	flag.BoolVar(&c.mem, "mem", false, "keep the store in memory (the input files still go to a directory)")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, c); err != nil {
		fmt.Fprintln(os.Stderr, "uploads:", err)
		os.Exit(1)
	}
}

func (c config) validate() error {
	switch {
	case c.files < 2:
		return fmt.Errorf("-files must be at least 2 (got %d): the killed and the stalled worker each take one", c.files)
	case c.workers < 3:
		return fmt.Errorf("-workers must be at least 3 (got %d): one is killed, one stalls, and someone must do the work", c.workers)
	case c.lease < 50*time.Millisecond || c.lease > time.Minute:
		return fmt.Errorf("-lease must be from 50ms to 1m (got %v): shorter leases expire under a normal worker", c.lease)
	}
	return nil
}

func run(ctx context.Context, w io.Writer, c config) error {
	if err := c.validate(); err != nil {
		return err
	}
	dir, cleanup, err := workDir(c)
	if err != nil {
		return err
	}
	defer cleanup()
	// Each run gets its own input directory and key namespace, so that a
	// -dir used before holds no record this run would mistake for its own.
	runID := fmt.Sprintf("run-%d-%d", c.seed, time.Now().UnixNano())
	input := filepath.Join(dir, runID)
	files, err := generate(input, c)
	if err != nil {
		return err
	}
	uri, where := "mem:", "in memory"
	if !c.mem {
		uri, where = "file:"+filepath.Join(dir, "store"), "durable in "+filepath.Join(dir, "store")
	}
	store, err := idemkv.Open(ctx, uri, &idemkv.Options{MaxRetryDelay: 20 * time.Millisecond})
	if err != nil {
		return err
	}
	defer store.Close()

	fmt.Fprintf(w, "idemkv uploads: %d files in %s, %d workers, lease %v per file (seed %d)\n",
		len(files), input, c.workers, c.lease, c.seed)
	fmt.Fprintf(w, "engine: embedded, %s\n", where)

	p := &pool{store: store, cfg: c, ns: runID, files: files, w: w}
	if err := p.run(ctx); err != nil {
		return err
	}
	rep, err := p.verify(ctx)
	if err != nil {
		return err
	}
	rep.print(w, p)
	if len(rep.problems) > 0 {
		for _, pr := range rep.problems {
			fmt.Fprintln(w, "FAIL:", pr)
		}
		return fmt.Errorf("%d exactly-once checks failed", len(rep.problems))
	}
	fmt.Fprintf(w, "\nexactly once: %d files, %d outputs, each from the holder Do recorded; the late write was fenced.\n", len(files), rep.outputs)
	return nil
}

// file is one generated input.
type file struct {
	name, path string
	sum        [sha256.Size]byte
	size       int
}

// generate writes c.files files of seeded random text into dir.
func generate(dir string, c config) ([]file, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(c.seed, 0xf11e))
	files := make([]file, c.files)
	for i := range files {
		b := make([]byte, 512+rng.IntN(4096))
		for j := range b {
			b[j] = "abcdefghijklmnopqrstuvwxyz \n"[rng.IntN(28)]
		}
		name := fmt.Sprintf("file-%03d.txt", i)
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return nil, err
		}
		files[i] = file{name: name, path: path, sum: sha256.Sum256(b), size: len(b)}
	}
	return files, nil
}

// workDir is -dir or a temporary directory removed afterwards.
func workDir(c config) (string, func(), error) {
	if c.dir != "" {
		if err := os.MkdirAll(c.dir, 0o755); err != nil {
			return "", nil, err
		}
		abs, err := filepath.Abs(c.dir)
		return abs, func() {}, err
	}
	dir, err := os.MkdirTemp("", "idemkv-uploads-")
	if err != nil {
		return "", nil, err
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

// report is the verification's outcome.
type report struct {
	outputs, acceptedWrites, reprocessed int
	byWorker                             map[int]int
	problems                             []string
}

func (r report) print(w io.Writer, p *pool) {
	fmt.Fprintln(w)
	for _, e := range p.events() {
		fmt.Fprintln(w, " ", e)
	}
	fmt.Fprintln(w)
	fmt.Fprint(w, "outputs by worker:")
	for id := range p.cfg.workers {
		fmt.Fprintf(w, "  %d: %d", id, r.byWorker[id])
	}
	fmt.Fprintf(w, "\naccepted output writes: %d for %d files (%d re-processed after a lease expired under a slow worker); late writes refused: %d\n",
		r.acceptedWrites, r.outputs, r.reprocessed, p.refused.Load())
}

var errCheck = errors.New("check failed")
