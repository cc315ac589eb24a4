package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// The example's own check is exactly-once's claim: run errors if the
// exactly-once counter differs from the acknowledged increments. The test
// runs it in memory and on disk, twice on the same directory (the second
// run must count only its own increments).
func TestCounterExample(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []config{
		{workers: 4, calls: 50, faults: 0.2, seed: 7, mem: true},
		{workers: 4, calls: 50, faults: 0.2, seed: 8, dir: dir},
		{workers: 4, calls: 50, faults: 0.2, seed: 9, dir: dir},
	} {
		var out bytes.Buffer
		if err := run(context.Background(), &out, c); err != nil {
			t.Fatalf("%+v: %v\n%s", c, err, out.String())
		}
		if !strings.Contains(out.String(), "idemkv exactly-once") || !strings.Contains(out.String(), "counter == acknowledged") {
			t.Fatalf("unexpected output:\n%s", out.String())
		}
	}
	for _, bad := range []config{{workers: 0, calls: 1}, {workers: 1, calls: 1, faults: 2}} {
		if err := run(context.Background(), &bytes.Buffer{}, bad); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}
