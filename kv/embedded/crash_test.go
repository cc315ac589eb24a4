package embedded

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/idemkv/idemkv/kv"
)

var crashKills = flag.Int("crash.kills", 20, "how many times TestCrashRecovery kills its child")

const (
	crashEnvDir     = "IDEMKV_EMBEDDED_CRASH_DIR"
	crashEnvOverlap = "IDEMKV_EMBEDDED_CRASH_OVERLAP" // "1": the child commits with Options.OverlapSyncs
	crashWriters    = 4
	crashChildReady = "ready"
)

// crashKey is writer w's key for sequence number n under prefix p ("a" or
// "b"): every transaction writes both, with the same n.
func crashKey(p string, w int, n uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(fmt.Sprintf("%s/%d/", p, w)), n)
}

// TestCrashRecovery re-executes the test binary as a child that commits
// durably in a loop (crashWriters concurrent writers, so group commit is
// exercised) and prints "ack W N" after each acknowledged commit. The parent
// SIGKILLs it at seeded random moments, reopens the directory and checks
// that every acknowledged commit is present and no transaction is partly
// visible (a/W/N present exactly when b/W/N is), then lets a new child
// continue.
func TestCrashRecovery(t *testing.T) {
	if dir := os.Getenv(crashEnvDir); dir != "" {
		crashChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("crash test re-executes the binary; skipped in -short")
	}
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 0xc4a5))
	dir := t.TempDir()
	acked := make([]uint64, crashWriters) // highest acknowledged N per writer
	total := 0
	for kill := range *crashKills {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashRecovery$", "-test.count=1")
		// Odd kills run the child with overlapped syncs, even ones with a
		// synced write per group: both must keep every acknowledged commit.
		cmd.Env = append(os.Environ(), crashEnvDir+"="+dir, fmt.Sprintf("%s=%d", crashEnvOverlap, kill%2))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		if l, ok := <-lines; !ok || l != crashChildReady {
			cmd.Wait()
			t.Fatalf("kill %d: child did not start (%q): %s", kill, l, stderr.String())
		}
		if kill == 0 {
			// While the child holds the directory, this process must be
			// refused, not allowed to open it a second time.
			if db, err := Open(dir, nil); !errors.Is(err, ErrLocked) {
				if err == nil {
					db.Close()
				}
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("Open of a directory another process holds: %v, want ErrLocked", err)
			}
		}
		delay := time.Duration(rng.IntN(60)+5) * time.Millisecond
		timer := time.AfterFunc(delay, func() { cmd.Process.Signal(syscall.SIGKILL) })
		for l := range lines {
			var w int
			var n uint64
			if _, err := fmt.Sscanf(l, "ack %d %d", &w, &n); err != nil || w < 0 || w >= crashWriters {
				t.Fatalf("kill %d: bad child line %q", kill, l)
			}
			if n > acked[w] {
				acked[w] = n
			}
			total++
		}
		timer.Stop()
		werr := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("kill %d: child exited on its own (%v): %s", kill, werr, stderr.String())
		}
		crashCheck(t, dir, acked, kill)
	}
	t.Logf("%d kills (every other one with overlapped syncs), %d acknowledged commits, all present and atomic", *crashKills, total)
}

// crashCheck opens dir and verifies the invariants.
func crashCheck(t *testing.T, dir string, acked []uint64, kill int) {
	t.Helper()
	db, err := Open(dir, nil)
	if err != nil {
		t.Fatalf("kill %d: reopen: %v", kill, err)
	}
	defer db.Close()
	tr := newTr(t, db)
	for w := range crashWriters {
		seqs := func(p string) map[uint64]bool {
			pr, _ := kv.PrefixRange([]byte(fmt.Sprintf("%s/%d/", p, w)))
			kvs := tr.GetRange(pr, kv.RangeOptions{}).MustGet()
			m := make(map[uint64]bool, len(kvs))
			for _, p := range kvs {
				m[binary.BigEndian.Uint64(p.Key[len(p.Key)-8:])] = true
			}
			return m
		}
		a, b := seqs("a"), seqs("b")
		for n := range a {
			if !b[n] {
				t.Fatalf("kill %d: writer %d: transaction %d partly visible (a without b)", kill, w, n)
			}
		}
		for n := range b {
			if !a[n] {
				t.Fatalf("kill %d: writer %d: transaction %d partly visible (b without a)", kill, w, n)
			}
		}
		for n := uint64(1); n <= acked[w]; n++ {
			if !a[n] {
				t.Fatalf("kill %d: writer %d: acknowledged commit %d lost", kill, w, n)
			}
		}
	}
}

// crashChild commits forever; the parent kills it.
func crashChild(dir string) {
	db, err := Open(dir, &Options{OverlapSyncs: os.Getenv(crashEnvOverlap) == "1"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex // keeps ack lines whole
	fmt.Println(crashChildReady)
	for w := range crashWriters {
		go func() {
			ctx := context.Background()
			// Continue above what earlier children committed.
			tr, _ := db.CreateTransaction(ctx)
			pr, _ := kv.PrefixRange([]byte(fmt.Sprintf("a/%d/", w)))
			last := tr.GetRange(pr, kv.RangeOptions{Limit: 1, Reverse: true}).MustGet()
			n := uint64(0)
			if len(last) == 1 {
				n = binary.BigEndian.Uint64(last[0].Key[len(last[0].Key)-8:])
			}
			for {
				n++
				tr.Reset()
				v := binary.BigEndian.AppendUint64(nil, n)
				tr.Set(crashKey("a", w, n), v)
				tr.Set(crashKey("b", w, n), v)
				if err := tr.Commit().Err(); err != nil {
					fmt.Fprintln(os.Stderr, "child commit:", err)
					os.Exit(3)
				}
				mu.Lock()
				fmt.Printf("ack %d %d\n", w, n)
				mu.Unlock()
			}
		}()
	}
	select {}
}
