package main

import (
	"bytes"
	"context"
	"flag"
	"strings"
	"testing"
)

var seedFlag = flag.Uint64("seed", 0, "replay one seed of TestTransferExample (0: the fixed list)")

// The example's own checks are the claim: run fails if money is not
// conserved, if a committed transfer's ledger entry is missing or doubled,
// or if a ledger entry belongs to a transfer reported not committed. The
// test runs it in memory and on disk, twice on one directory (the second
// run starts from fresh books).
func TestTransferExample(t *testing.T) {
	seeds := []uint64{3, 4, 5}
	if *seedFlag != 0 {
		seeds = []uint64{*seedFlag, *seedFlag, *seedFlag}
	}
	dir := t.TempDir()
	for i, c := range []config{
		{accounts: 5, workers: 3, transfers: 40, faults: 0.3, seed: seeds[0], mem: true},
		{accounts: 5, workers: 3, transfers: 40, faults: 0.3, seed: seeds[1], dir: dir},
		{accounts: 5, workers: 3, transfers: 40, faults: 0.3, seed: seeds[2], dir: dir},
	} {
		var out bytes.Buffer
		if err := run(context.Background(), &out, c); err != nil {
			t.Fatalf("run %d: %v\n%s\nreplay: go test ./examples/transfer -run TestTransferExample -seed %d", i, err, out.String(), c.seed)
		}
		for _, want := range []string{"idemkv: money conserved", "every committed transfer in the ledger exactly once", "stock:"} {
			if !strings.Contains(out.String(), want) {
				t.Fatalf("run %d: output lacks %q:\n%s", i, want, out.String())
			}
		}
	}
}

// TestCheckCatchesViolations feeds the checker books that break each
// invariant: a checker that passes everything would pass the example too.
func TestCheckCatchesViolations(t *testing.T) {
	c := config{accounts: 4}
	good := outcome{acked: 10, resolvedCommitted: 2, entries: 12, total: 4 * initialBalance}
	if errs := good.check(c); len(errs) != 0 {
		t.Fatalf("consistent books rejected: %v", errs)
	}
	for name, mutate := range map[string]func(*outcome){
		"money created":      func(o *outcome) { o.total++ },
		"duplicate entry":    func(o *outcome) { o.duplicates, o.entries = 1, 13 },
		"phantom entry":      func(o *outcome) { o.phantoms, o.entries = 1, 13 },
		"missing entry":      func(o *outcome) { o.missing, o.entries = 1, 11 },
		"unresolved":         func(o *outcome) { o.unknown = 1 },
		"ledger mismatch":    func(o *outcome) { o.ledgerMismatch = 1 },
		"count disagreement": func(o *outcome) { o.entries = 11 },
	} {
		o := good
		mutate(&o)
		if errs := o.check(c); len(errs) == 0 {
			t.Errorf("%s: not detected", name)
		}
	}
}

func TestTransferBadFlags(t *testing.T) {
	for _, bad := range []config{
		{accounts: 1, workers: 1, transfers: 1},
		{accounts: 256, workers: 1, transfers: 1},
		{accounts: 2, workers: 0, transfers: 1},
		{accounts: 2, workers: 1, transfers: 0},
		{accounts: 2, workers: 1, transfers: 1, faults: 1.5},
	} {
		err := run(context.Background(), &bytes.Buffer{}, bad)
		if err == nil || !strings.Contains(err.Error(), "must") {
			t.Errorf("%+v: got %v, want an error naming the flag's range", bad, err)
		}
	}
}
