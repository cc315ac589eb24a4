package idemkv

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current encoding")

// TestKeyspaceAndRecordGolden pins the byte layout of keys and records:
// stored records outlive the code that wrote them, so a change here must
// be deliberate (go test ./idemkv/ -run Golden -update, then review).
func TestKeyspaceAndRecordGolden(t *testing.T) {
	k := newKeyspace(DefaultPrefix)
	var b strings.Builder
	line := func(name string, v []byte) { fmt.Fprintf(&b, "%-24s %s\n", name, hex.EncodeToString(v)) }
	line("counter(hits)", k.counterKey("hits"))
	line("shard prefix(hits)", k.shardPrefix("hits"))
	line("record(req-1)", k.recordKey(keyRef("", "req-1")))
	line("index(due 7, req-1)", k.indexKey(7, keyRef("", "req-1")))
	line("record(pay/req-1)", k.recordKey(keyRef("pay", "req-1")))
	inProgress := record{status: statusInProgress, token: 0x0102030405060708, leaseUntil: 30_000_000, due: 86_400_000_000,
		fingerprint: sha256.Sum256([]byte("payload"))}
	line("in-progress record", inProgress.encode())
	done := inProgress
	done.status, done.leaseUntil, done.kind, done.result = statusCompleted, 0, resultValue, []byte(`"ok"`)
	line("completed record", done.encode())
	unknown := inProgress
	unknown.status, unknown.leaseUntil, unknown.kind, unknown.result = statusUnknown, 0, resultError, []byte(`{"messages":["x"]}`)
	line("outcome-unknown record", unknown.encode())
	// Format 2: an in-progress record with a wall-clock deadline (Unix
	// nanoseconds), written by claims and renewals since leases have one.
	walled := inProgress
	walled.leaseWall = 1_700_000_030_000_000_000
	line("in-progress record, wall", walled.encode())

	path := filepath.Join("testdata", "keys.golden")
	if *update {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got := b.String(); got != string(want) {
		t.Fatalf("encoding changed:\n got:\n%s\nwant:\n%s", got, want)
	}
	for _, r := range []record{inProgress, done, unknown, walled} {
		back, err := decodeRecord(r.encode())
		if err != nil || back.token != r.token || back.due != r.due || back.status != r.status || back.leaseUntil != r.leaseUntil ||
			back.leaseWall != r.leaseWall || back.fingerprint != r.fingerprint || back.kind != r.kind || string(back.result) != string(r.result) {
			t.Fatalf("round trip: %+v, %v; want %+v", back, err, r)
		}
	}
	// A format 2 record must be in progress with a wall deadline: a
	// completed one, or one with a zero deadline, is corrupt.
	walledDone := walled.encode()
	walledDone[1] = statusCompleted
	zeroWall := walled.encode()
	copy(zeroWall[26:34], make([]byte, 8))
	for _, bad := range [][]byte{nil, {2}, make([]byte, recordHeader), {3}, walled.encode()[:recordHeader2-1], walledDone, zeroWall} {
		if _, err := decodeRecord(bad); err == nil {
			t.Errorf("decodeRecord(%x): no error", bad)
		}
	}
}
