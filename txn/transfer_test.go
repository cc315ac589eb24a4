package txn_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/faulty"
	"github.com/idemkv/idemkv/txn"
)

const (
	accounts       = 5
	initialBalance = 1000
)

func accountKey(i int) []byte { return fmt.Appendf(nil, "acct/%d", i) }

var (
	ledgerPrefix    = []byte("ledger/")
	errInsufficient = errors.New("insufficient funds")
)

// transfer moves amount from one account to another, read-modify-write,
// and appends a ledger entry under a versionstamped key whose value names
// the transfer: an append that a duplicate commit would repeat.
func transfer(id uint32, from, to int, amount uint64) func(kv.Transaction) (struct{}, error) {
	return func(tr kv.Transaction) (struct{}, error) {
		fb, tb := tr.Get(accountKey(from)), tr.Get(accountKey(to))
		fv, tv := binary.BigEndian.Uint64(fb.MustGet()), binary.BigEndian.Uint64(tb.MustGet())
		if fv < amount {
			return struct{}{}, errInsufficient
		}
		tr.Set(accountKey(from), binary.BigEndian.AppendUint64(nil, fv-amount))
		tr.Set(accountKey(to), binary.BigEndian.AppendUint64(nil, tv+amount))
		key := append(append([]byte{}, ledgerPrefix...), make([]byte, 10)...)
		key = binary.LittleEndian.AppendUint32(key, uint32(len(ledgerPrefix)))
		entry := binary.BigEndian.AppendUint32(nil, id)
		entry = append(entry, byte(from), byte(to))
		entry = binary.BigEndian.AppendUint64(entry, amount)
		tr.Atomic(kv.SetVersionstampedKey, key, entry)
		return struct{}{}, nil
	}
}

// TestTortureTransfers: money is conserved, balances are exactly what the
// ledger says, and every committed transfer has exactly one ledger entry,
// under every fault kind.
func TestTortureTransfers(t *testing.T) {
	t.Run("seeds", func(t *testing.T) {
		for _, seed := range seeds() {
			t.Run(fmt.Sprint(seed), func(t *testing.T) {
				t.Parallel()
				tortureTransfers(t, openMem(t), everyFault(seed))
				if t.Failed() {
					t.Log(replay("TestTortureTransfers", seed))
				}
			})
		}
	})
}

// tortureTransfers runs the transfer torture on inner (a fresh, empty
// database) through faults injected by cfg, whose Seed also seeds the
// transfers.
func tortureTransfers(t *testing.T, inner kv.Database, cfg faulty.Config) {
	seed := cfg.Seed
	ctx := context.Background()
	_, err := txn.StockTransact(ctx, inner, func(tr kv.Transaction) (struct{}, error) {
		for i := range accounts {
			tr.Set(accountKey(i), binary.BigEndian.AppendUint64(nil, initialBalance))
		}
		return struct{}{}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db := faulty.Wrap(inner, cfg)

	var mu sync.Mutex
	committed := map[uint32]bool{}
	var wg sync.WaitGroup
	for w := range tortureWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for i := range tortureCalls {
				id := uint32(w*tortureCalls + i + 1)
				from := rng.IntN(accounts)
				to := (from + 1 + rng.IntN(accounts-1)) % accounts
				_, err := txn.Transact(ctx, db, transfer(id, from, to, uint64(1+rng.IntN(300))), fastRetries)
				if errors.Is(err, errInsufficient) {
					continue
				}
				ok := settle(t, db, err)
				mu.Lock()
				committed[id] = ok
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	db.Wait()

	// Replay the ledger over the initial balances: it must reproduce the
	// balances, name each committed transfer once and no other.
	type state struct {
		balances [accounts]uint64
		entries  []kv.KeyValue
	}
	r, _ := kv.PrefixRange(ledgerPrefix)
	got, err := txn.StockTransact(ctx, inner, func(tr kv.Transaction) (state, error) {
		var s state
		for i := range accounts {
			s.balances[i] = binary.BigEndian.Uint64(tr.Get(accountKey(i)).MustGet())
		}
		s.entries = tr.GetRange(r, kv.RangeOptions{}).MustGet()
		return s, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var want [accounts]uint64
	for i := range want {
		want[i] = initialBalance
	}
	seen := map[uint32]bool{}
	for _, e := range got.entries {
		id := binary.BigEndian.Uint32(e.Value)
		from, to, amount := int(e.Value[4]), int(e.Value[5]), binary.BigEndian.Uint64(e.Value[6:])
		if seen[id] {
			t.Errorf("transfer %d has two ledger entries: applied twice", id)
		}
		seen[id] = true
		if !committed[id] {
			t.Errorf("transfer %d is in the ledger but its call reported not committed", id)
		}
		want[from] -= amount
		want[to] += amount
	}
	for id, ok := range committed {
		if ok && !seen[id] {
			t.Errorf("transfer %d committed but has no ledger entry", id)
		}
	}
	var total uint64
	for i, b := range got.balances {
		total += b
		if b != want[i] {
			t.Errorf("account %d = %d, the ledger says %d", i, b, want[i])
		}
	}
	if total != accounts*initialBalance {
		t.Errorf("money not conserved: total %d, want %d", total, accounts*initialBalance)
	}
}
