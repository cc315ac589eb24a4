//go:build fdbc

package fdbc

// The unmodified FoundationDB Go bindings on the shim: futures, key
// selectors and range reads against a model, watches, versionstamps,
// concurrent calls on one transaction, and the tuple, subspace and
// directory layers. Build tag fdbc; `make test` runs these with the shim's
// include path in CGO_CFLAGS.

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apple/foundationdb/bindings/go/src/fdb"
	"github.com/apple/foundationdb/bindings/go/src/fdb/directory"
	"github.com/apple/foundationdb/bindings/go/src/fdb/subspace"
	"github.com/apple/foundationdb/bindings/go/src/fdb/tuple"
)

var seedFlag = flag.Uint64("seed", 0, "seed for the randomized tests (0: from the time)")

func testSeed(t *testing.T) uint64 {
	s := *seedFlag
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d; replay: CGO_CFLAGS=\"-O2 -g -I$PWD/kv/fdbc/include\" go test -tags fdbc ./kv/fdbc -run '^%s$' -seed %d", s, t.Name(), s)
		}
	})
	return s
}

var clusters atomic.Int64

// openDB opens a fresh in-memory store under a connection string unique to
// the test.
func openDB(t testing.TB) fdb.Database {
	t.Helper()
	ready(t)
	path := filepath.Join(t.TempDir(), "fdb.cluster")
	cs := fmt.Sprintf("test:c%d@127.0.0.1:4500", clusters.Add(1))
	if err := os.WriteFile(path, []byte(cs+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := fdb.OpenDatabase(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

func fdbCode(err error) int {
	var e fdb.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return -1
}

func TestRoundTrip(t *testing.T) {
	db := openDB(t)
	_, err := db.Transact(func(tr fdb.Transaction) (any, error) {
		tr.Set(fdb.Key("hello"), []byte("world"))
		tr.Set(fdb.Key("empty"), []byte{})
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.ReadTransact(func(tr fdb.ReadTransaction) (any, error) {
		if v := tr.Get(fdb.Key("hello")).MustGet(); string(v) != "world" {
			t.Errorf("Get(hello) = %q", v)
		}
		if v := tr.Get(fdb.Key("empty")).MustGet(); v == nil || len(v) != 0 {
			t.Errorf("Get(empty) = %#v, want a present empty value", v)
		}
		if v := tr.Get(fdb.Key("absent")).MustGet(); v != nil {
			t.Errorf("Get(absent) = %#v, want nil", v)
		}
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// model is the sorted keys of a store, for key selectors and ranges.
type model []string

// resolve is a key selector's definition, spelled out on a sorted list.
func (m model) resolve(key string, orEqual bool, offset int) string {
	i := sort.SearchStrings(m, key) // first >= key
	if orEqual && i < len(m) && m[i] == key {
		i++
	}
	j := i + offset - 1
	switch {
	case j < 0:
		return ""
	case j >= len(m):
		return "\xff"
	}
	return m[j]
}

// fill writes n random keys (and values of their own bytes) and returns
// them sorted.
func fill(t *testing.T, db fdb.Database, rng *rand.Rand, n int) model {
	seen := map[string]bool{}
	for len(seen) < n {
		b := make([]byte, 1+rng.IntN(4))
		for i := range b {
			b[i] = byte('a' + rng.IntN(6))
		}
		seen[string(b)] = true
	}
	var m model
	for k := range seen {
		m = append(m, k)
	}
	sort.Strings(m)
	_, err := db.Transact(func(tr fdb.Transaction) (any, error) {
		for _, k := range m {
			tr.Set(fdb.Key(k), []byte("v:"+k))
		}
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestKeySelectorsAgainstModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(testSeed(t), 1))
	db := openDB(t)
	m := fill(t, db, rng, 40)
	_, err := db.ReadTransact(func(tr fdb.ReadTransaction) (any, error) {
		for range 300 {
			probe := string([]byte{byte('a' + rng.IntN(7))})
			if rng.IntN(2) == 0 && len(m) > 0 {
				probe = m[rng.IntN(len(m))]
			}
			orEqual, offset := rng.IntN(2) == 1, rng.IntN(9)-4
			got, err := tr.GetKey(fdb.KeySelector{Key: fdb.Key(probe), OrEqual: orEqual, Offset: offset}).Get()
			if err != nil {
				return nil, err
			}
			if want := m.resolve(probe, orEqual, offset); string(got) != want {
				t.Errorf("GetKey(%q, orEqual=%v, offset=%d) = %q, want %q", probe, orEqual, offset, got, want)
			}
		}
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRangeReadsAgainstModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(testSeed(t), 2))
	db := openDB(t)
	m := fill(t, db, rng, 120)
	modes := []fdb.StreamingMode{fdb.StreamingModeWantAll, fdb.StreamingModeIterator, fdb.StreamingModeExact,
		fdb.StreamingModeSmall, fdb.StreamingModeMedium, fdb.StreamingModeLarge, fdb.StreamingModeSerial}
	for i := range 200 {
		bsel := fdb.KeySelector{Key: fdb.Key([]byte{byte('a' + rng.IntN(7))}), OrEqual: rng.IntN(2) == 1, Offset: rng.IntN(5) - 1}
		esel := fdb.KeySelector{Key: fdb.Key([]byte{byte('a' + rng.IntN(7))}), OrEqual: rng.IntN(2) == 1, Offset: rng.IntN(5) - 1}
		opts := fdb.RangeOptions{Limit: rng.IntN(3) * rng.IntN(40), Mode: modes[rng.IntN(len(modes))], Reverse: rng.IntN(2) == 1}
		if opts.Mode == fdb.StreamingModeExact && opts.Limit == 0 {
			opts.Limit = 7
		}
		b, e := m.resolve(string(bsel.Key.FDBKey()), bsel.OrEqual, bsel.Offset), m.resolve(string(esel.Key.FDBKey()), esel.OrEqual, esel.Offset)
		var want []string
		for _, k := range m {
			if k >= b && k < e {
				want = append(want, k)
			}
		}
		if opts.Reverse {
			for x, y := 0, len(want)-1; x < y; x, y = x+1, y-1 {
				want[x], want[y] = want[y], want[x]
			}
		}
		if opts.Limit > 0 && len(want) > opts.Limit {
			want = want[:opts.Limit]
		}
		snapshot := rng.IntN(2) == 1
		got, err := db.ReadTransact(func(rt fdb.ReadTransaction) (any, error) {
			tr := rt.(fdb.Transaction)
			var r fdb.RangeResult
			if snapshot {
				r = tr.Snapshot().GetRange(fdb.SelectorRange{Begin: bsel, End: esel}, opts)
			} else {
				r = tr.GetRange(fdb.SelectorRange{Begin: bsel, End: esel}, opts)
			}
			var keys []string
			if i%2 == 0 {
				kvs, err := r.GetSliceWithError()
				if err != nil {
					return nil, err
				}
				for _, p := range kvs {
					keys = append(keys, string(p.Key))
				}
				return keys, nil
			}
			it := r.Iterator()
			for it.Advance() {
				p, err := it.Get()
				if err != nil {
					return nil, err
				}
				if string(p.Value) != "v:"+string(p.Key) {
					t.Errorf("value of %q = %q", p.Key, p.Value)
				}
				keys = append(keys, string(p.Key))
			}
			return keys, nil
		})
		if err != nil {
			t.Fatalf("range %v..%v %+v: %v", bsel, esel, opts, err)
		}
		if g := got.([]string); fmt.Sprint(g) != fmt.Sprint(want) {
			t.Fatalf("range (%v)..(%v) %+v snapshot=%v:\n got %q\nwant %q", bsel, esel, opts, snapshot, g, want)
		}
	}
}

// A range much larger than one batch, read with the iterator in the
// default (ITERATOR) and SMALL modes: many batches, each with more set,
// and every pair once.
func TestLargeRangeInBatches(t *testing.T) {
	db := openDB(t)
	const n = 3000
	value := bytes.Repeat([]byte("x"), 100)
	for lo := 0; lo < n; lo += 1000 {
		_, err := db.Transact(func(tr fdb.Transaction) (any, error) {
			for i := lo; i < lo+1000; i++ {
				tr.Set(fdb.Key(fmt.Sprintf("big/%05d", i)), value)
			}
			return nil, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	pr, err := fdb.PrefixRange([]byte("big/"))
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []fdb.StreamingMode{fdb.StreamingModeIterator, fdb.StreamingModeSmall} {
		_, err := db.ReadTransact(func(tr fdb.ReadTransaction) (any, error) {
			it := tr.GetRange(pr, fdb.RangeOptions{Mode: mode}).Iterator()
			i := 0
			for it.Advance() {
				p := it.MustGet()
				if want := fmt.Sprintf("big/%05d", i); string(p.Key) != want {
					return nil, fmt.Errorf("pair %d is %q, want %q", i, p.Key, want)
				}
				i++
			}
			if i != n {
				return nil, fmt.Errorf("mode %v read %d pairs, want %d", mode, i, n)
			}
			return nil, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestVersionstampsAndUsedDuringCommit(t *testing.T) {
	db := openDB(t)
	tr, err := db.CreateTransaction()
	if err != nil {
		t.Fatal(err)
	}
	key, err := tuple.Tuple{"log", tuple.IncompleteVersionstamp(0)}.PackWithVersionstamp(nil)
	if err != nil {
		t.Fatal(err)
	}
	tr.SetVersionstampedKey(fdb.Key(key), []byte("entry"))
	vsf := tr.GetVersionstamp()
	if err := tr.Commit().Get(); err != nil {
		t.Fatal(err)
	}
	vs, err := vsf.Get()
	if err != nil || len(vs) != 10 {
		t.Fatalf("versionstamp %x, %v", vs, err)
	}
	cv, err := tr.GetCommittedVersion()
	if err != nil || int64(beUint64(vs[:8])) != cv {
		t.Fatalf("versionstamp %x does not hold committed version %d (%v)", vs, cv, err)
	}
	if _, err := tr.Get(fdb.Key("x")).Get(); fdbCode(err) != errUsedDuringCommit {
		t.Fatalf("Get after commit = %v, want used_during_commit", err)
	}
	// The stamped key is readable and unpacks to the same stamp.
	kvs, err := db.ReadTransact(func(rt fdb.ReadTransaction) (any, error) {
		return rt.GetRange(tuple.Tuple{"log"}, fdb.RangeOptions{}).GetSliceWithError()
	})
	if err != nil {
		t.Fatal(err)
	}
	got := kvs.([]fdb.KeyValue)
	if len(got) != 1 {
		t.Fatalf("%d log entries, want 1", len(got))
	}
	tup, err := tuple.Unpack(got[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	if stamp := tup[1].(tuple.Versionstamp); !bytes.Equal(stamp.TransactionVersion[:], vs) {
		t.Fatalf("key's stamp %x, transaction's %x", stamp.TransactionVersion, vs)
	}
}

// storeOpen reports whether the store under key is open.
func storeOpen(key string) bool {
	stores.Lock()
	defer stores.Unlock()
	_, ok := stores.m[key]
	return ok
}

func beUint64(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

func TestWatches(t *testing.T) {
	db := openDB(t)
	key := fdb.Key("watched")
	db.Transact(func(tr fdb.Transaction) (any, error) { tr.Set(key, []byte("1")); return nil, nil })

	// A watch fires on a committed change, from the committer's side.
	w, err := db.Transact(func(tr fdb.Transaction) (any, error) { return tr.Watch(key), nil })
	if err != nil {
		t.Fatal(err)
	}
	watch := w.(fdb.FutureNil)
	if watch.IsReady() {
		t.Fatal("watch ready before any change")
	}
	db.Transact(func(tr fdb.Transaction) (any, error) { tr.Set(key, []byte("2")); return nil, nil })
	if err := watch.Get(); err != nil {
		t.Fatalf("watch: %v", err)
	}

	// Cancel: operation_cancelled (1101).
	w, _ = db.Transact(func(tr fdb.Transaction) (any, error) { return tr.Watch(key), nil })
	watch = w.(fdb.FutureNil)
	watch.Cancel()
	if err := watch.Get(); fdbCode(err) != errOperationCancelled {
		t.Fatalf("cancelled watch = %v, want operation_cancelled", err)
	}

	// A transaction reset before its commit: transaction_cancelled (1025).
	tr, _ := db.CreateTransaction()
	watch = tr.Watch(key)
	tr.Reset()
	if err := watch.Get(); fdbCode(err) != errTransactionCancelled {
		t.Fatalf("watch of a reset transaction = %v, want transaction_cancelled", err)
	}

	// Past max_watches: too_many_watches (1032).
	if err := db.Options().SetMaxWatches(1); err != nil {
		t.Fatal(err)
	}
	first, _ := db.Transact(func(tr fdb.Transaction) (any, error) { return tr.Watch(key), nil })
	second, _ := db.Transact(func(tr fdb.Transaction) (any, error) { return tr.Watch(fdb.Key("other")), nil })
	if err := second.(fdb.FutureNil).Get(); fdbCode(err) != errTooManyWatches {
		t.Fatalf("second watch with max_watches 1 = %v, want too_many_watches", err)
	}
	first.(fdb.FutureNil).Cancel()
}

// The bindings allow concurrent calls on one transaction; the shim
// serializes them.
func TestConcurrentCallsOnOneTransaction(t *testing.T) {
	db := openDB(t)
	tr, err := db.CreateTransaction()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				k := fdb.Key(fmt.Sprintf("c/%d/%d", g, i))
				tr.Set(k, []byte{byte(i)})
				if v, err := tr.Get(k).Get(); err != nil || len(v) != 1 || v[0] != byte(i) {
					t.Errorf("read own write %s: %v, %v", k, v, err)
				}
				tr.GetRange(fdb.KeyRange{Begin: fdb.Key("c/"), End: fdb.Key("c0")}, fdb.RangeOptions{Limit: 5}).GetSliceOrPanic()
			}
		}()
	}
	wg.Wait()
	if err := tr.Commit().Get(); err != nil {
		t.Fatal(err)
	}
	n, err := db.ReadTransact(func(rt fdb.ReadTransaction) (any, error) {
		kvs, err := rt.GetRange(fdb.KeyRange{Begin: fdb.Key("c/"), End: fdb.Key("c0")}, fdb.RangeOptions{}).GetSliceWithError()
		return len(kvs), err
	})
	if err != nil || n.(int) != 8*50 {
		t.Fatalf("%v pairs after commit (%v), want %d", n, err, 8*50)
	}
}

// The bindings' tuple, subspace and directory layers, which need the fdb
// package and so, until now, a cluster.
func TestDirectorySubspaceTuple(t *testing.T) {
	db := openDB(t)
	app, err := directory.CreateOrOpen(db, []string{"app", "users"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	again, err := directory.Open(db, []string{"app", "users"}, nil)
	if err != nil || !bytes.Equal(again.Bytes(), app.Bytes()) {
		t.Fatalf("reopened directory prefix %x, want %x (%v)", again.Bytes(), app.Bytes(), err)
	}
	if _, err := directory.Create(db, []string{"app", "users"}, nil); err == nil {
		t.Fatal("creating an existing directory succeeded")
	}
	byName := app.Sub("by-name")
	_, err = db.Transact(func(tr fdb.Transaction) (any, error) {
		for i, name := range []string{"carol", "alice", "bob"} {
			tr.Set(byName.Pack(tuple.Tuple{name, int64(i)}), []byte(name))
		}
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	names, err := db.ReadTransact(func(rt fdb.ReadTransaction) (any, error) {
		kvs, err := rt.GetRange(byName, fdb.RangeOptions{}).GetSliceWithError()
		var out []string
		for _, p := range kvs {
			tup, err := byName.Unpack(p.Key)
			if err != nil {
				return nil, err
			}
			out = append(out, tup[0].(string))
		}
		return out, err
	})
	if err != nil || fmt.Sprint(names) != "[alice bob carol]" {
		t.Fatalf("names in tuple order = %v, %v", names, err)
	}
	list, err := directory.List(db, []string{"app"})
	if err != nil || fmt.Sprint(list) != "[users]" {
		t.Fatalf("List(app) = %v, %v", list, err)
	}
	if _, err := directory.Move(db, []string{"app", "users"}, []string{"app", "people"}); err != nil {
		t.Fatal(err)
	}
	if ok, err := directory.Exists(db, []string{"app", "people"}); err != nil || !ok {
		t.Fatalf("moved directory exists = %v, %v", ok, err)
	}
	var _ subspace.Subspace = byName
}

// The bindings destroy futures and transactions from finalizers; every
// future the shim handed out is destroyed once they are collected.
func TestFuturesAreReleased(t *testing.T) {
	db := openDB(t)
	before := liveFutures.Load()
	for i := range 200 {
		db.Transact(func(tr fdb.Transaction) (any, error) {
			tr.Set(fdb.Key(fmt.Sprint("gc/", i)), []byte("v"))
			return tr.Get(fdb.Key("gc/0")).Get()
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for liveFutures.Load() > before && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if n := liveFutures.Load(); n > before {
		t.Fatalf("%d futures still live after GC (%d before)", n, before)
	}
}

// The cluster-file convention: a directory is a durable store that
// survives closing; a file's connection string names a shared in-memory
// store; a missing file is no_cluster_file_found.
func TestClusterFileConvention(t *testing.T) {
	ready(t)
	dir := t.TempDir() + "/"
	for round := range 2 {
		db, err := fdb.OpenDatabase(dir)
		if err != nil {
			t.Fatal(err)
		}
		v, err := db.Transact(func(tr fdb.Transaction) (any, error) {
			old := tr.Get(fdb.Key("durable")).MustGet()
			tr.Set(fdb.Key("durable"), []byte("yes"))
			return old, nil
		})
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
		// Transactions hold the store until the bindings' finalizers
		// destroy them: collect until it has closed, so that the second
		// round reopens the directory.
		abs, _ := filepath.Abs(dir)
		for deadline := time.Now().Add(10 * time.Second); storeOpen("dir:" + abs); {
			if time.Now().After(deadline) {
				t.Fatal("the durable store is still open after its database and transactions are gone")
			}
			runtime.GC()
			time.Sleep(10 * time.Millisecond)
		}
		if round == 1 && string(v.([]byte)) != "yes" {
			t.Fatalf("durable store after reopening: %q, want yes", v)
		}
	}
	if _, err := fdb.OpenDatabase(filepath.Join(t.TempDir(), "missing.cluster")); fdbCode(err) != errNoClusterFile {
		t.Fatalf("missing cluster file: %v, want no_cluster_file_found (1515)", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.cluster")
	os.WriteFile(bad, []byte("not a connection string\n"), 0o644)
	if _, err := fdb.OpenDatabase(bad); fdbCode(err) != errConnectionStringBad {
		t.Fatalf("bad cluster file: %v, want connection_string_invalid (2104)", err)
	}
	a, err := fdb.OpenWithConnectionString("shared:x@127.0.0.1:4500")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := fdb.OpenWithConnectionString("shared:x@127.0.0.1:4500")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a.Transact(func(tr fdb.Transaction) (any, error) { tr.Set(fdb.Key("s"), []byte("1")); return nil, nil })
	if v, _ := b.ReadTransact(func(rt fdb.ReadTransaction) (any, error) { return rt.Get(fdb.Key("s")).Get() }); string(v.([]byte)) != "1" {
		t.Fatalf("second handle on one connection string reads %q, want 1", v)
	}
}
