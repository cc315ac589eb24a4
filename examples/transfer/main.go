// Command transfer moves money between bank accounts through injected
// FoundationDB faults, once with the stock retry loop and once with idemkv,
// side by side on the embedded engine, and checks the books.
//
// A transfer reads two balances, writes them back moved by the amount, and
// appends a ledger entry under a versionstamped key (an append: a duplicate
// commit appends twice). Commits fail with commit_unknown_result (applied,
// not applied, or applied late while the client retries) and with
// transaction_timed_out (same three forms). The idemkv side retries the
// former exactly once and settles the latter with Store.Resolve, which fences
// the transaction ID and answers committed or not committed for good.
//
// # Checks
//
// On the idemkv side, any of which failing makes the command exit 1:
//
//   - conservation: the balances sum to what the accounts started with;
//   - every transfer the client knows committed (acknowledged, or resolved
//     committed) has exactly one ledger entry, and no other transfer has any;
//   - replaying the ledger over the opening balances gives the balances.
//
// The stock side runs the same transfers under the same fault schedule and
// reports its duplicated ledger entries and the transfers whose fate its
// client never learns (a timeout leaves it guessing).
//
// # Usage
//
//	go run ./examples/transfer [-accounts 8] [-workers 4] [-transfers 100] [-faults 0.2] [-seed 1] [-mem|-dir DIR]
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/embedded"
	"github.com/idemkv/idemkv/kv/faulty"
	"github.com/idemkv/idemkv/txn"
)

type config struct {
	accounts, workers, transfers int
	faults                       float64
	seed                         uint64
	dir                          string
	mem                          bool
}

const initialBalance = 1000

func main() {
	var c config
	flag.IntVar(&c.accounts, "accounts", 8, "number of accounts (2 to 255)")
	flag.IntVar(&c.workers, "workers", 4, "concurrent clients")
	flag.IntVar(&c.transfers, "transfers", 100, "transfers per client")
	flag.Float64Var(&c.faults, "faults", 0.2, "probability that a commit fails ambiguously (0 to 0.5)")
	flag.Uint64Var(&c.seed, "seed", 1, "seed of the fault schedule and of the transfers")
	flag.StringVar(&c.dir, "dir", "", "data directory for the durable engine (default: a temporary directory, removed afterwards)")
	flag.BoolVar(&c.mem, "mem", false, "use the in-memory engine instead of a directory")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, c); err != nil {
		fmt.Fprintln(os.Stderr, "transfer:", err)
		os.Exit(1)
	}
}

func (c config) validate() error {
	switch {
	case c.accounts < 2 || c.accounts > 255:
		return fmt.Errorf("-accounts must be 2 to 255 (got %d): a ledger entry names accounts in one byte", c.accounts)
	case c.workers < 1 || c.transfers < 1:
		return fmt.Errorf("-workers and -transfers must be at least 1 (got %d and %d)", c.workers, c.transfers)
	case c.faults < 0 || c.faults > 0.5:
		return fmt.Errorf("-faults must be a probability from 0 to 0.5 (got %v): above that, retries and Resolve run out of attempts", c.faults)
	}
	return nil
}

// faults splits the fault probability over commit_unknown_result (applied,
// not applied, late) and transaction_timed_out (the same three), so that
// every ambiguous form appears in a short run.
func faults(c config) faulty.Config {
	p := c.faults
	return faulty.Config{
		Seed:                    c.seed,
		UnknownResultApplied:    p * 0.3,
		UnknownResultNotApplied: p * 0.15,
		UnknownResultLate:       p * 0.25,
		TimedOutApplied:         p * 0.1,
		TimedOutNotApplied:      p * 0.1,
		TimedOutLate:            p * 0.1,
		LateDelay:               5 * time.Millisecond,
		CloseInner:              true,
	}
}

// outcome is what one side's clients learned and what its books say.
type outcome struct {
	attempted, acked, resolvedCommitted, resolvedNot, unknown, insufficient int
	entries                                                                 int // ledger entries
	duplicates                                                              int // ledger entries beyond the first for a transfer
	phantoms                                                                int // entries for transfers the client was told failed
	missing                                                                 int // committed transfers with no entry
	total                                                                   uint64
	ledgerMismatch                                                          int // accounts whose balance differs from the ledger replay
	stats                                                                   faulty.Stats
}

func run(ctx context.Context, w io.Writer, c config) error {
	if err := c.validate(); err != nil {
		return err
	}
	dir, where, cleanup, err := dataDir(c)
	if err != nil {
		return err
	}
	defer cleanup()
	fmt.Fprintf(w, "idemkv transfer: %d clients × %d transfers over %d accounts of %d, %.0f%% of commits fail ambiguously (seed %d)\n",
		c.workers, c.transfers, c.accounts, initialBalance, 100*c.faults, c.seed)
	fmt.Fprintf(w, "engine: embedded, %s\n\n", where)

	stock, err := runStock(ctx, c, dir)
	if err != nil {
		return fmt.Errorf("stock side: %w", err)
	}
	exact, err := runIdemkv(ctx, c, dir)
	if err != nil {
		return fmt.Errorf("idemkv side: %w", err)
	}

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "side\ttransfers\tacked\tresolved\tunknown\tledger entries\tduplicates\tphantoms\tmissing\ttotal money\t")
	for _, s := range []struct {
		name string
		o    outcome
	}{{"stock retry loop", stock}, {"idemkv", exact}} {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d/%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", s.name, s.o.attempted-s.o.insufficient, s.o.acked,
			s.o.resolvedCommitted, s.o.resolvedNot, s.o.unknown, s.o.entries, s.o.duplicates, s.o.phantoms, s.o.missing, s.o.total)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n(transfers refused for insufficient funds are not counted; resolved = committed/not committed by Store.Resolve;\n"+
		" phantoms = ledger entries of transfers whose client was told they failed or never learned)\n")
	fmt.Fprintf(w, "faults injected: stock %d (%d applied although reported failed), idemkv %d (%d applied although reported failed)\n\n",
		stock.stats.Total().Injected, stock.stats.AppliedButFailed(), exact.stats.Total().Injected, exact.stats.AppliedButFailed())

	if errs := exact.check(c); len(errs) > 0 {
		for _, e := range errs {
			fmt.Fprintln(w, "FAIL:", e)
		}
		return fmt.Errorf("idemkv side failed %d checks", len(errs))
	}
	fmt.Fprintf(w, "idemkv: money conserved (%d), every committed transfer in the ledger exactly once, balances == ledger replay.\n", exact.total)
	fmt.Fprintf(w, "stock:  %d duplicated ledger entries, %d phantom entries, %d transfers whose outcome its client never learned.\n",
		stock.duplicates, stock.phantoms, stock.unknown)
	return nil
}

// check returns every violated invariant of a side that claims exactly-once.
func (o outcome) check(c config) []error {
	var errs []error
	if want := uint64(c.accounts) * initialBalance; o.total != want {
		errs = append(errs, fmt.Errorf("money not conserved: total %d, want %d", o.total, want))
	}
	if o.duplicates != 0 {
		errs = append(errs, fmt.Errorf("%d transfers have more than one ledger entry", o.duplicates))
	}
	if o.phantoms != 0 {
		errs = append(errs, fmt.Errorf("%d ledger entries belong to transfers reported not committed", o.phantoms))
	}
	if o.missing != 0 {
		errs = append(errs, fmt.Errorf("%d committed transfers have no ledger entry", o.missing))
	}
	if o.unknown != 0 {
		errs = append(errs, fmt.Errorf("%d transfers ended with an outcome nobody resolved", o.unknown))
	}
	if o.ledgerMismatch != 0 {
		errs = append(errs, fmt.Errorf("%d account balances differ from the ledger replay", o.ledgerMismatch))
	}
	if n := o.acked + o.resolvedCommitted; n != o.entries {
		errs = append(errs, fmt.Errorf("%d transfers committed but %d ledger entries", n, o.entries))
	}
	return errs
}

var (
	ledgerPrefix    = []byte("ledger/")
	errInsufficient = errors.New("insufficient funds")
)

func accountKey(i int) []byte { return fmt.Appendf(nil, "acct/%03d", i) }

// transfer moves amount between two accounts and appends a ledger entry
// naming the transfer: ledger/ + versionstamp → id, from, to, amount. It
// may be run several times per call (each attempt runs it afresh); only the
// committing run's writes count.
func transfer(id uint32, from, to int, amount uint64) func(kv.Transaction) (struct{}, error) {
	return func(tr kv.Transaction) (struct{}, error) {
		fb, tb := tr.Get(accountKey(from)), tr.Get(accountKey(to))
		fv, tv := balance(fb.MustGet()), balance(tb.MustGet())
		if fv < amount {
			return struct{}{}, errInsufficient
		}
		tr.Set(accountKey(from), binary.BigEndian.AppendUint64(nil, fv-amount))
		tr.Set(accountKey(to), binary.BigEndian.AppendUint64(nil, tv+amount))
		// The 10 zero bytes are the versionstamp's place; the trailing
		// 4-byte little-endian offset says where it is.
		key := append(append([]byte{}, ledgerPrefix...), make([]byte, 10)...)
		key = binary.LittleEndian.AppendUint32(key, uint32(len(ledgerPrefix)))
		entry := binary.BigEndian.AppendUint32(nil, id)
		entry = append(entry, byte(from), byte(to))
		entry = binary.BigEndian.AppendUint64(entry, amount)
		tr.Atomic(kv.SetVersionstampedKey, key, entry)
		return struct{}{}, nil
	}
}

func balance(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// seedAccounts opens every account with the initial balance and empties the
// ledger, so that a run on a -dir used before starts from fresh books.
func seedAccounts(tr kv.Transaction, n int) (struct{}, error) {
	r, err := kv.PrefixRange(ledgerPrefix)
	if err != nil {
		return struct{}{}, err
	}
	tr.ClearRange(r)
	for i := range n {
		tr.Set(accountKey(i), binary.BigEndian.AppendUint64(nil, initialBalance))
	}
	return struct{}{}, nil
}

// result is how one transfer call ended, as its client knows it.
type result int

const (
	committed         result = iota // acknowledged
	resolvedCommitted               // timed out, then Resolve said committed
	notCommitted
	unknown
	insufficient
)

// drive runs the clients: each makes c.transfers random transfers through
// do and records how each ended. Transfer ids are unique across clients.
func drive(c config, do func(id uint32, fn func(kv.Transaction) (struct{}, error)) (result, error)) (map[uint32]result, error) {
	var mu sync.Mutex
	results := map[uint32]result{}
	var firstErr error
	var wg sync.WaitGroup
	for wk := range c.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(c.seed, uint64(wk)))
			for i := range c.transfers {
				id := uint32(wk*c.transfers + i + 1)
				from := rng.IntN(c.accounts)
				to := (from + 1 + rng.IntN(c.accounts-1)) % c.accounts
				r, err := do(id, transfer(id, from, to, uint64(1+rng.IntN(300))))
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("transfer %d: %w", id, err)
				}
				results[id] = r
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return results, firstErr
}

// runStock: the bindings' retry loop on a plain faulty engine. It cannot
// tell a timed-out transfer's fate, so those count as unknown.
func runStock(ctx context.Context, c config, dir string) (outcome, error) {
	var inner kv.Database
	var err error
	if dir == "" {
		inner, err = embedded.OpenMem(nil)
	} else {
		inner, err = embedded.Open(filepath.Join(dir, "stock"), nil)
	}
	if err != nil {
		return outcome{}, err
	}
	if _, err := txn.StockTransact(ctx, inner, func(tr kv.Transaction) (struct{}, error) { return seedAccounts(tr, c.accounts) }); err != nil {
		inner.Close()
		return outcome{}, err
	}
	db := faulty.Wrap(inner, faults(c))
	defer db.Close() // closes inner too (CloseInner)
	results, err := drive(c, func(_ uint32, fn func(kv.Transaction) (struct{}, error)) (result, error) {
		_, err := txn.StockTransact(ctx, db, fn)
		switch {
		case err == nil:
			return committed, nil
		case errors.Is(err, errInsufficient):
			return insufficient, nil
		case kv.MaybeCommitted(err) || errors.Is(err, kv.ErrTransactionTimedOut):
			return unknown, nil
		case kv.IsRetryableNotCommitted(err):
			return notCommitted, nil
		}
		return unknown, err
	})
	if err != nil {
		return outcome{}, err
	}
	db.Wait() // late commits land (or fail) before the books are read
	o, err := audit(ctx, inner, c, results)
	o.stats = db.Stats()
	return o, err
}

// runIdemkv: the same transfers through idemkv.Transact on a store whose
// database is wrapped in the same fault schedule; timed-out transfers are
// settled with Store.Resolve.
func runIdemkv(ctx context.Context, c config, dir string) (outcome, error) {
	uri := "mem:"
	if dir != "" {
		uri = "file:" + filepath.Join(dir, "idemkv")
	}
	var fdb *faulty.DB
	cfg := faults(c)
	cfg.CloseInner = false // Store.Close closes the wrapper, then the engine
	s, err := idemkv.Open(ctx, uri, &idemkv.Options{
		MaxRetryDelay: 10 * time.Millisecond,
		WrapDatabase: func(inner kv.Database) kv.Database {
			fdb = faulty.Wrap(inner, cfg)
			return fdb
		},
	})
	if err != nil {
		return outcome{}, err
	}
	defer s.Close()
	// Even the setup runs under faults: exactly-once makes it safe.
	if _, err := idemkv.Transact(ctx, s, func(tr kv.Transaction) (struct{}, error) { return seedAccounts(tr, c.accounts) }); err != nil {
		if _, err = settle(ctx, s, err); err != nil {
			return outcome{}, fmt.Errorf("opening the accounts: %w", err)
		}
	}
	results, err := drive(c, func(_ uint32, fn func(kv.Transaction) (struct{}, error)) (result, error) {
		_, err := idemkv.Transact(ctx, s, fn)
		if errors.Is(err, errInsufficient) {
			return insufficient, nil
		}
		return settle(ctx, s, err)
	})
	if err != nil {
		return outcome{}, err
	}
	fdb.Wait()
	o, err := audit(ctx, s.Database(), c, results)
	o.stats = fdb.Stats()
	return o, err
}

// settle turns an idemkv.Transact error into the transfer's definite fate.
// A timeout leaves *txn.UnknownResultError with the call's ID; Resolve
// fences the ID, so the answer is final even if an attempt is still in
// flight. Resolve runs through the faulty database too and may itself time
// out; it is idempotent, so it is simply asked again (a bounded number of
// times).
func settle(ctx context.Context, s *idemkv.Store, err error) (result, error) {
	if err == nil {
		return committed, nil
	}
	var ue *txn.UnknownResultError
	if !errors.As(err, &ue) {
		return unknown, err
	}
	for range 50 {
		o, rerr := s.Resolve(ctx, ue.ID)
		switch {
		case rerr == nil && o == txn.Committed:
			return resolvedCommitted, nil
		case rerr == nil:
			return notCommitted, nil
		case errors.Is(rerr, kv.ErrTransactionTimedOut) || kv.IsRetryable(rerr):
			continue
		default:
			return unknown, fmt.Errorf("resolving %v: %w", ue.ID, rerr)
		}
	}
	return unknown, fmt.Errorf("resolving %v: still timing out after 50 tries", ue.ID)
}

// audit reads the books (directly, not through faults) and compares them
// with what the clients learned.
func audit(ctx context.Context, db kv.Database, c config, results map[uint32]result) (outcome, error) {
	r, err := kv.PrefixRange(ledgerPrefix)
	if err != nil {
		return outcome{}, err
	}
	type books struct {
		balances []uint64
		ledger   []kv.KeyValue
	}
	// A read-only transaction is never faulted, so the stock loop is exact
	// here.
	b, err := txn.StockTransact(ctx, db, func(tr kv.Transaction) (books, error) {
		var b books
		for i := range c.accounts {
			b.balances = append(b.balances, balance(tr.Get(accountKey(i)).MustGet()))
		}
		b.ledger = tr.GetRange(r, kv.RangeOptions{}).MustGet()
		return b, nil
	})
	if err != nil {
		return outcome{}, err
	}
	var o outcome
	o.attempted = len(results)
	for _, res := range results {
		switch res {
		case committed:
			o.acked++
		case resolvedCommitted:
			o.resolvedCommitted++
		case notCommitted:
			o.resolvedNot++
		case unknown:
			o.unknown++
		case insufficient:
			o.insufficient++
		}
	}
	replay := make([]uint64, c.accounts)
	for i := range replay {
		replay[i] = initialBalance
	}
	seen := map[uint32]int{}
	for _, e := range b.ledger {
		if len(e.Value) != 14 {
			return outcome{}, fmt.Errorf("ledger entry %q has a %d-byte value, want 14", e.Key, len(e.Value))
		}
		id := binary.BigEndian.Uint32(e.Value)
		from, to, amount := int(e.Value[4]), int(e.Value[5]), binary.BigEndian.Uint64(e.Value[6:])
		if from >= c.accounts || to >= c.accounts {
			return outcome{}, fmt.Errorf("ledger entry %q names account %d or %d of %d", e.Key, from, to, c.accounts)
		}
		seen[id]++
		if seen[id] > 1 {
			o.duplicates++
		}
		if res := results[id]; res != committed && res != resolvedCommitted {
			o.phantoms++
		}
		replay[from] -= amount
		replay[to] += amount
	}
	o.entries = len(b.ledger)
	for id, res := range results {
		if (res == committed || res == resolvedCommitted) && seen[id] == 0 {
			o.missing++
		}
	}
	for i, bal := range b.balances {
		o.total += bal
		if bal != replay[i] {
			o.ledgerMismatch++
		}
	}
	return o, nil
}

// dataDir returns where the durable engines live: "" for in memory.
func dataDir(c config) (dir, where string, cleanup func(), err error) {
	if c.mem {
		return "", "in memory", func() {}, nil
	}
	if c.dir != "" {
		if err := os.MkdirAll(c.dir, 0o755); err != nil {
			return "", "", nil, err
		}
		return c.dir, "durable in " + c.dir, func() {}, nil
	}
	dir, err = os.MkdirTemp("", "idemkv-transfer-")
	if err != nil {
		return "", "", nil, err
	}
	return dir, "durable in " + dir, func() { os.RemoveAll(dir) }, nil
}
