//go:build fdb && fdbc

package idemkv_test

// idemkv on an "fdb:" store: kv/fdbkv over FoundationDB's real Go bindings,
// linked against kv/fdbc, the in-process fdb_c shim. Build tags fdb and
// fdbc; `make test` runs these with the shim's include path in CGO_CFLAGS.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apple/foundationdb/bindings/go/src/fdb"

	_ "github.com/idemkv/idemkv/kv/fdbc"

	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/fdbkv"
	"github.com/idemkv/idemkv/txn"
)

// shimStores numbers the shim's in-memory stores: one fresh store per
// test run.
var shimStores atomic.Int64

// With the tags, the package's store tests open their stores here (see
// shimOpen in helpers_test.go): the same tests, through the bindings.
func init() { shimOpen = openFDBShimWith }

// openFDBShim opens an "fdb:" store whose cluster file names a fresh
// in-memory store of the shim.
func openFDBShim(t *testing.T) *idemkv.Store {
	t.Helper()
	return openFDBShimWith(t, &idemkv.Options{NoJanitor: true})
}

// openFDBShimWith opens an "fdb:" store with opts on a fresh in-memory
// store of the shim.
func openFDBShimWith(t testing.TB, opts *idemkv.Options) *idemkv.Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fdb.cluster")
	if err := os.WriteFile(path, fmt.Appendf(nil, "idemkv:s%d@127.0.0.1:4500\n", shimStores.Add(1)), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := idemkv.Open(context.Background(), "fdb:"+path, opts)
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

// idemkv.New over an fdb.Database the application opened with the
// bindings (wrapped by fdbkv.Wrap): the deployment path for services that
// already use FoundationDB, here on the shim. A call cut off by its
// deadline settles through Resolve, and the janitor sweeps.
func TestNewOverFDBDatabaseOnShim(t *testing.T) {
	ctx := context.Background()
	if err := fdb.APIVersion(fdbkv.DefaultAPIVersion); err != nil {
		t.Fatal(err)
	}
	// A connection string of its own: a fresh in-memory store.
	fdbDB, err := fdb.OpenWithConnectionString(fmt.Sprintf("idemkv:n%d@127.0.0.1:4500", shimStores.Add(1)))
	if err != nil {
		t.Fatal(err)
	}
	defer fdbDB.Close()
	s, err := idemkv.New(ctx, fdbkv.Wrap(fdbDB), &idemkv.Options{NoJanitor: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// The application's own bindings code and idemkv share the database.
	if _, err := fdbDB.Transact(func(tr fdb.Transaction) (any, error) {
		tr.Set(fdb.Key("app/owned-by-bindings"), []byte("x"))
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Counter("orders").Add(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Counter("orders").Get(ctx); err != nil || n != 3 {
		t.Fatalf("counter = %d, %v; want 3", n, err)
	}

	// Deadlines short enough to cut some commits off in flight: each call
	// either succeeds, fails before committing, or reports an unknown
	// result that Resolve settles; the counter matches the outcomes.
	c := s.Counter("cut")
	var committed, unknowns int64
	for i := range 40 {
		cctx, cancel := context.WithTimeout(ctx, time.Duration(i*50)*time.Microsecond)
		err := c.Add(cctx, 1)
		cancel()
		var unknown *txn.UnknownResultError
		switch {
		case err == nil:
			committed++
		case errors.As(err, &unknown):
			unknowns++
			out, rerr := s.Resolve(ctx, unknown.ID)
			if rerr != nil {
				t.Fatalf("Resolve: %v", rerr)
			}
			if out == txn.Committed {
				committed++
			}
		case errors.Is(err, context.DeadlineExceeded):
		default:
			t.Fatalf("Add: %v", err)
		}
	}
	if n, err := c.Get(ctx); err != nil || n != committed {
		t.Fatalf("counter = %d, %v; want %d (acknowledged + resolved committed)", n, err, committed)
	}
	t.Logf("40 calls with short deadlines: %d committed, %d unknown results resolved", committed, unknowns)
	if _, err := s.Sweep(ctx); err != nil {
		t.Fatalf("Sweep: %v", err)
	}
}

// The package's store tests run on the shim in this build: the stores
// openMem, openUnstepped and openScriptedUnstepped open are "fdb:" stores
// over the bindings, not the embedded engine.
func TestStoreTestsOnShim(t *testing.T) {
	s1, s2 := openMem(t, nil), openUnstepped(t, nil)
	s3, sdb := openScriptedUnstepped(t, nil)
	for i, db := range []kv.Database{s1.Database(), s2.Database(), sdb.Database} {
		if _, ok := db.(*fdbkv.DB); !ok {
			t.Errorf("store %d's database is %T, want *fdbkv.DB", i+1, db)
		}
	}
	if s3.Database() != kv.Database(sdb) {
		t.Errorf("scripted store's database is %T, want the scriptDB", s3.Database())
	}
}
