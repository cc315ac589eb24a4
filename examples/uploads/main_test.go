package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"strings"
	"testing"
	"time"
)

var seedFlag = flag.Uint64("seed", 0, "replay one seed of TestUploadsExample (0: the fixed list)")

// The example's checks are the claim: run fails unless every file has one
// output from the holder Do recorded, a second pass replays every key
// without processing, the killed worker's file was taken over and the
// stalled worker's late write was refused. The test runs it in memory and
// twice on one directory.
func TestUploadsExample(t *testing.T) {
	seeds := []uint64{21, 22, 23}
	if *seedFlag != 0 {
		seeds = []uint64{*seedFlag, *seedFlag, *seedFlag}
	}
	dir := t.TempDir()
	for i, c := range []config{
		{files: 10, workers: 3, lease: 150 * time.Millisecond, seed: seeds[0], mem: true},
		{files: 8, workers: 4, lease: 150 * time.Millisecond, seed: seeds[1], dir: dir},
		{files: 8, workers: 4, lease: 150 * time.Millisecond, seed: seeds[2], dir: dir},
	} {
		var out bytes.Buffer
		if err := run(context.Background(), &out, c); err != nil {
			t.Fatalf("run %d: %v\n%s\nreplay: go test ./examples/uploads -run TestUploadsExample -seed %d", i, err, out.String(), c.seed)
		}
		for _, want := range []string{"was killed before writing", "refused: the output holds token", "exactly once:"} {
			if !strings.Contains(out.String(), want) {
				t.Fatalf("run %d: output lacks %q:\n%s", i, want, out.String())
			}
		}
	}
}

// TestCheckOutputsCatchesViolations: the verification must reject each
// kind of bad books, or the example's check would be hollow.
func TestCheckOutputsCatchesViolations(t *testing.T) {
	content := [][]byte{[]byte("a\n"), []byte("bb\n"), []byte("ccc\n")}
	var files []file
	outs := map[string]output{}
	writes := map[string]int{}
	results := map[string]uploadResult{}
	for i, b := range content {
		f := file{name: "f" + string(rune('0'+i)), sum: sha256.Sum256(b), size: len(b)}
		files = append(files, f)
		sum := hex.EncodeToString(f.sum[:])
		outs[f.name] = output{Token: uint64(100 + i), Worker: 2, Sum: sum, Size: f.size}
		writes[f.name] = 1
		results[f.name] = uploadResult{Token: uint64(100 + i), Worker: 2, Sum: sum}
	}
	killed := victim{file: "f0", token: 5, ok: true}
	stalled := victim{file: "f1", token: 6, ok: true}
	good := func() (map[string]output, map[string]uploadResult, map[string]uploadResult, victim, victim) {
		o, r, rp := map[string]output{}, map[string]uploadResult{}, map[string]uploadResult{}
		for k, v := range outs {
			o[k] = v
		}
		for k, v := range results {
			r[k], rp[k] = v, v
		}
		return o, r, rp, killed, stalled
	}
	o, r, rp, k, s := good()
	if rep := checkOutputs(files, o, writes, r, rp, k, s); len(rep.problems) != 0 || rep.outputs != 3 {
		t.Fatalf("good books rejected: %+v", rep)
	}
	for name, mutate := range map[string]func(o map[string]output, r, rp map[string]uploadResult, k, s *victim){
		"missing output": func(o map[string]output, _, _ map[string]uploadResult, _, _ *victim) { delete(o, "f2") },
		"wrong digest": func(o map[string]output, _, _ map[string]uploadResult, _, _ *victim) {
			x := o["f2"]
			x.Sum = "00"
			o["f2"] = x
		},
		"stray output": func(o map[string]output, _, _ map[string]uploadResult, _, _ *victim) { o["zz"] = output{} },
		"token disagrees": func(_ map[string]output, r, _ map[string]uploadResult, _, _ *victim) {
			x := r["f2"]
			x.Token++
			r["f2"] = x
		},
		"no result": func(_ map[string]output, r, _ map[string]uploadResult, _, _ *victim) { delete(r, "f2") },
		"replay differs": func(_ map[string]output, _, rp map[string]uploadResult, _, _ *victim) {
			x := rp["f2"]
			x.Worker = 9
			rp["f2"] = x
		},
		"never killed":      func(_ map[string]output, _, _ map[string]uploadResult, k, _ *victim) { k.ok = false },
		"not taken over":    func(_ map[string]output, _, _ map[string]uploadResult, k, _ *victim) { k.token = 1000 },
		"late write landed": func(_ map[string]output, _, _ map[string]uploadResult, _, s *victim) { s.ok = false },
		"stale output": func(o map[string]output, _, _ map[string]uploadResult, _, _ *victim) {
			x := o["f1"]
			x.Worker = stalledWorker
			o["f1"] = x
		},
	} {
		o, r, rp, k, s := good()
		mutate(o, r, rp, &k, &s)
		if rep := checkOutputs(files, o, writes, r, rp, k, s); len(rep.problems) == 0 {
			t.Errorf("%s: not detected", name)
		}
	}
}

func TestUploadsBadFlags(t *testing.T) {
	for _, bad := range []config{
		{files: 1, workers: 3, lease: time.Second},
		{files: 4, workers: 2, lease: time.Second},
		{files: 4, workers: 3, lease: time.Millisecond},
		{files: 4, workers: 3, lease: time.Hour},
	} {
		err := run(context.Background(), &bytes.Buffer{}, bad)
		if err == nil || !strings.Contains(err.Error(), "must") {
			t.Errorf("%+v: got %v, want an error naming the flag's range", bad, err)
		}
	}
}
