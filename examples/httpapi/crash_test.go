package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idemkv/idemkv/idemkv"
)

var crashKills = flag.Int("crash.kills", 20, "SIGKILLs of the payments service in TestCrashPayments (make stress raises it)")

// childEnv makes the test binary the payments service: TestMain serves
// instead of testing (see startChild).
const childEnv = "IDEMKV_HTTPAPI_CRASH_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		seed, _ := strconv.ParseUint(os.Getenv(childEnv+"_SEED"), 10, 64)
		if err := serveOnly(context.Background(), os.Stdout, dir, seed, 0.1); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// child is one run of the service in its own process.
type child struct {
	cmd    *exec.Cmd
	url    string
	stderr bytes.Buffer
}

// startChild runs the service on dir, with commit faults from seed, and
// waits for its address.
func startChild(t *testing.T, dir string, seed uint64) *child {
	t.Helper()
	c := &child{cmd: exec.Command(os.Args[0], "-test.run=^$")}
	c.cmd.Env = append(os.Environ(), childEnv+"="+dir, childEnv+"_SEED="+strconv.FormatUint(seed, 10))
	c.cmd.Stderr = &c.stderr
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "listening ") {
		c.cmd.Process.Kill()
		c.cmd.Wait()
		t.Fatalf("child did not start: %q, %v\nstderr:\n%s", line, err, c.stderr.String())
	}
	c.url = strings.TrimSpace(strings.TrimPrefix(line, "listening "))
	return c
}

// kill SIGKILLs the child (Process.Kill is SIGKILL on Unix) and reaps it.
func (c *child) kill() {
	c.cmd.Process.Kill()
	c.cmd.Wait()
}

// TestCrashPayments is the payments service's crash test: the service
// runs as a child process on a durable file: store with commit faults
// injected, and is SIGKILLed at seeded random moments, -crash.kills times,
// and restarted. A client retries every payment with its key until it gets
// a final answer (a 2xx, or a replayed response), across the kills; the
// payments are released a batch per run of the service, so that kills land
// while requests are in flight.
// Afterwards every key that got a 2xx has exactly one ledger entry, with the
// id its client was given, and no key has two.
func TestCrashPayments(t *testing.T) {
	sd := *seedFlag
	if sd == 0 {
		sd = uint64(time.Now().UnixNano())
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d; replay: go test ./examples/httpapi -count=1 -run TestCrashPayments -seed %d -crash.kills %d", sd, sd, *crashKills)
		}
	})
	rng := rand.New(rand.NewPCG(sd, 0xc7a5))
	dir := t.TempDir()
	kills := *crashKills
	payments := make([]planned, 12*max(kills, 1))
	for i := range payments {
		key := fmt.Sprintf("crash-%d-%d", sd, i)
		payments[i] = planned{key: key, p: payment{To: fmt.Sprintf("acct-%d", rng.IntN(10)), Amount: int64(1 + rng.IntN(10_000)), Ref: key}}
	}

	var url atomic.Pointer[string]
	none := "http://127.0.0.1:1" // no service yet: refused, retried
	url.Store(&none)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var (
		mu       sync.Mutex
		finals   = map[string]response{}
		requests int
		replays  int
	)
	var pending sync.WaitGroup
	var inflight atomic.Int64 // requests sent and not yet answered
	next := make(chan int)
	// quota releases payments to the clients a batch per run of the
	// service, so that every run (and every kill) has payments in flight.
	const perRun = 12
	quota := make(chan struct{}, len(payments))
	const clients = 4
	var wg sync.WaitGroup
	for g := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			crng := rand.New(rand.NewPCG(sd, uint64(g)+1))
			hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
			for i := range next {
				pl := payments[i]
				body, _ := json.Marshal(pl.p)
				delay := time.Millisecond
				for ctx.Err() == nil {
					inflight.Add(1)
					r, err := postTo(ctx, hc, *url.Load()+"/payments", strconv.Quote(pl.key), body)
					inflight.Add(-1)
					mu.Lock()
					requests++
					final := err == nil && (r.status/100 == 2 || r.replayed)
					if final {
						finals[pl.key] = r
						if r.replayed {
							replays++
						}
					}
					mu.Unlock()
					if final {
						break
					}
					if err == nil && r.status/100 == 4 && r.status != http.StatusConflict {
						t.Errorf("payment %s: %d %s", pl.key, r.status, r.body)
						break
					}
					time.Sleep(time.Duration(crng.Float64() * float64(delay)))
					delay = min(2*delay, 50*time.Millisecond)
				}
				pending.Done()
				time.Sleep(time.Duration(crng.IntN(10)) * time.Millisecond)
			}
		}()
	}
	pending.Add(len(payments))
	go func() {
		for i := range payments {
			select {
			case <-quota:
			case <-ctx.Done():
			}
			select {
			case next <- i:
			case <-ctx.Done():
				pending.Done()
			}
		}
		close(next)
	}()
	allDone := make(chan struct{})
	go func() { pending.Wait(); close(allDone) }()

	killed, killedInFlight, released := 0, 0, 0
	release := func(n int) {
		for ; n > 0 && released < len(payments); n-- {
			quota <- struct{}{}
			released++
		}
	}
	for run := 0; ; run++ {
		c := startChild(t, dir, sd+uint64(run))
		url.Store(&c.url)
		if killed < kills {
			release(perRun)
			select {
			case <-time.After(time.Duration(1+rng.IntN(25)) * time.Millisecond):
			case <-allDone:
			}
			if inflight.Load() > 0 {
				killedInFlight++
			}
			c.kill()
			killed++
			continue
		}
		release(len(payments))
		select {
		case <-allDone:
		case <-ctx.Done():
		}
		c.kill()
		break
	}
	cancel()
	wg.Wait()

	store, err := idemkv.Open(context.Background(), "file:"+dir, &idemkv.Options{NoJanitor: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	entries, err := readLedger(context.Background(), store, ledgerPrefix)
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string][]ledgerEntry{}
	for _, e := range entries {
		byKey[e.Key] = append(byKey[e.Key], e)
	}
	ok2xx := 0
	for _, pl := range payments {
		es := byKey[pl.key]
		if len(es) > 1 {
			t.Errorf("payment %s has %d ledger entries: %+v", pl.key, len(es), es)
		}
		r, answered := finals[pl.key]
		if !answered {
			t.Errorf("payment %s never got a final answer", pl.key)
			continue
		}
		if r.status/100 != 2 {
			continue
		}
		ok2xx++
		var got struct {
			ID string `json:"id"`
		}
		json.Unmarshal(r.body, &got)
		if len(es) != 1 || es[0].ID != got.ID || es[0].Amount != pl.p.Amount || es[0].To != pl.p.To {
			t.Errorf("payment %s: answered %d %s, ledger %+v; want exactly its entry", pl.key, r.status, r.body, es)
		}
	}
	t.Logf("%d kills (%d with requests in flight), %d payments (%d answered 2xx), %d requests, %d answered by a replay, %d ledger entries",
		killed, killedInFlight, len(payments), ok2xx, requests, replays, len(entries))
	if killed < kills || (kills > 0 && killedInFlight == 0) {
		t.Fatalf("%d kills, %d of them with requests in flight; want %d, some in flight", killed, killedInFlight, kills)
	}
}

// postTo sends one payment request.
func postTo(ctx context.Context, hc *http.Client, url, key string, body []byte) (response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := hc.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, body: bytes.TrimSpace(b), replayed: resp.Header.Get("Idempotent-Replayed") == "true"}, nil
}
