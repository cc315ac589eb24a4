package main

import (
	"bytes"
	"context"
	"flag"
	"strings"
	"testing"
)

var seedFlag = flag.Uint64("seed", 0, "replay one seed of TestHTTPAPIExample (0: the fixed list)")

// The example asserts each status of the protocol walk and that the
// ledger holds every payment exactly once despite dropped responses; run
// fails otherwise. The test runs it in memory and twice on one directory
// (the second run must not mistake the first's records for its own).
func TestHTTPAPIExample(t *testing.T) {
	seeds := []uint64{11, 12, 13}
	if *seedFlag != 0 {
		seeds = []uint64{*seedFlag, *seedFlag, *seedFlag}
	}
	dir := t.TempDir()
	for i, c := range []config{
		{payments: 20, clients: 3, attempts: 40, drop: 0.4, seed: seeds[0], mem: true},
		{payments: 15, clients: 2, attempts: 40, drop: 0.4, seed: seeds[1], dir: dir},
		{payments: 15, clients: 2, attempts: 40, drop: 0.4, seed: seeds[2], dir: dir},
	} {
		var out bytes.Buffer
		if err := run(context.Background(), &out, c); err != nil {
			t.Fatalf("run %d: %v\n%s\nreplay: go test ./examples/httpapi -run TestHTTPAPIExample -seed %d", i, err, out.String(), c.seed)
		}
		for _, want := range []string{"while the first is processing", "→ 422", "→ 400", "Idempotent-Replayed: true", "exactly once:"} {
			if !strings.Contains(out.String(), want) {
				t.Fatalf("run %d: output lacks %q:\n%s", i, want, out.String())
			}
		}
	}
}

// TestCheckLedgerCatchesViolations: the audit must reject doubled, missing
// and mismatched payments, or the example's check would be hollow.
func TestCheckLedgerCatchesViolations(t *testing.T) {
	payments := []planned{
		{key: "a", p: payment{To: "x", Amount: 1}},
		{key: "b", p: payment{To: "y", Amount: 2}},
	}
	got := sent{ids: map[string]string{"a": "pay_a", "b": "pay_b"}}
	good := []ledgerEntry{
		{ID: "pay_a", Key: "a", To: "x", Amount: 1},
		{ID: "pay_w", Key: "walk", To: "z", Amount: 9}, // not the load's: ignored
		{ID: "pay_b", Key: "b", To: "y", Amount: 2},
	}
	if rep := checkLedger(good, payments, got); len(rep.problems) != 0 || rep.entries != 2 {
		t.Fatalf("good books: %+v", rep)
	}
	for name, entries := range map[string][]ledgerEntry{
		"doubled":      append(append([]ledgerEntry{}, good...), ledgerEntry{ID: "pay_a2", Key: "a", To: "x", Amount: 1}),
		"missing":      good[:2],
		"other id":     {{ID: "pay_zz", Key: "a", To: "x", Amount: 1}, good[2]},
		"other amount": {{ID: "pay_a", Key: "a", To: "x", Amount: 100}, good[2]},
	} {
		if rep := checkLedger(entries, payments, got); len(rep.problems) == 0 {
			t.Errorf("%s: not detected", name)
		}
	}
}

func TestHTTPAPIBadFlags(t *testing.T) {
	for _, bad := range []config{
		{payments: 0, clients: 1, attempts: 1},
		{payments: 1, clients: 0, attempts: 1},
		{payments: 1, clients: 1, attempts: 0},
		{payments: 1, clients: 1, attempts: 1, drop: 0.95},
	} {
		err := run(context.Background(), &bytes.Buffer{}, bad)
		if err == nil || !strings.Contains(err.Error(), "must") {
			t.Errorf("%+v: got %v, want an error naming the flag's range", bad, err)
		}
	}
}
