//go:build fdb && fdbc

package idemkv_test

// idemkv on an "fdb:" store: kv/fdbkv over FoundationDB's real Go bindings,
// linked against kv/fdbc, the in-process fdb_c shim. Build tags fdb and
// fdbc; `make test` runs these with the shim's include path in CGO_CFLAGS.

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	_ "github.com/idemkv/idemkv/kv/fdbc"

	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/kv"
)

// openFDBShim opens an "fdb:" store whose cluster file names a fresh
// in-memory store of the shim.
func openFDBShim(t *testing.T) *idemkv.Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fdb.cluster")
	if err := os.WriteFile(path, []byte("idemkv:"+filepath.Base(filepath.Dir(path))+"@127.0.0.1:4500\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := idemkv.Open(context.Background(), "fdb:"+path, &idemkv.Options{NoJanitor: true})
	if err != nil {
		t.Fatalf("Open(fdb:%s): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStoreOnShim(t *testing.T) {
	ctx := context.Background()
	s := openFDBShim(t)

	got, err := idemkv.Transact(ctx, s, func(tr kv.Transaction) (string, error) {
		tr.Set([]byte("app/greeting"), []byte("hello"))
		return "done", nil
	})
	if err != nil || got != "done" {
		t.Fatalf("Transact = %q, %v", got, err)
	}
	v, err := idemkv.ReadTransact(ctx, s, func(tr kv.ReadTransaction) ([]byte, error) {
		return tr.Get([]byte("app/greeting")).Get()
	})
	if err != nil || string(v) != "hello" {
		t.Fatalf("ReadTransact = %q, %v; want hello", v, err)
	}

	// Concurrent exactly-once counter adds through the bindings.
	c := s.Counter("visits")
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				if err := c.Add(ctx, 1); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if n, err := c.Get(ctx); err != nil || n != 80 {
		t.Fatalf("counter = %d, %v; want 80", n, err)
	}

	// A keyed request runs once; the repeat replays its stored result,
	// and a different payload under the same key is refused.
	runs := 0
	charge := func(ctx context.Context) (string, error) { runs++; return "receipt-1", nil }
	for range 2 {
		r, err := idemkv.Do(ctx, s, "order-42", []byte("100 EUR"), charge, nil)
		if err != nil || r != "receipt-1" {
			t.Fatalf("Do = %q, %v", r, err)
		}
	}
	if runs != 1 {
		t.Fatalf("keyed request ran %d times, want 1", runs)
	}
	if _, err := idemkv.Do(ctx, s, "order-42", []byte("999 EUR"), charge, nil); err == nil {
		t.Fatal("Do with a reused key and a different payload succeeded")
	}

	// Sweeping works through the bindings' range reads and clears.
	if _, err := s.Sweep(ctx); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Sweep: %v", err)
	}
}
