package kvtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/idemkv/idemkv/kv"
)

// testCase is one conformance case: a FoundationDB behaviour, named for it.
type testCase struct {
	name string
	fn   func(e *env)
}

// cases returns every conformance case, in the order Run runs them.
func cases() []testCase {
	var all []testCase
	for _, group := range [][]testCase{
		rangeCases(), rywCases(), conflictCases(), atomicCases(),
		versionCases(), limitCases(), optionCases(),
		lifecycleCases(), fdbKeyCases(),
	} {
		all = append(all, group...)
	}
	return all
}

// Run runs the conformance suite against the backend that open returns, one
// subtest per FoundationDB behaviour ("RangeRead/LimitReverse",
// "Conflict/PhantomInsertIntoReadRange", ...).
//
// open is called once per subtest and must return a usable database; it owns
// closing it (register a t.Cleanup). It may return the same database every
// time: each subtest works under its own random key prefix, clears that
// prefix when it ends, and assumes nothing about keys outside it, so the
// suite runs unchanged against a shared, non-empty FoundationDB cluster.
//
// Every subtest calls t.Parallel, so cases overlap (the transaction_too_old
// case sleeps for five and a half seconds); run with -parallel=1 to
// serialize them.
func Run(t *testing.T, open func(t *testing.T) kv.Database) {
	t.Helper()
	if open == nil {
		t.Fatal("kvtest: Run needs an open function that returns the database to test")
	}
	seen := map[string]bool{}
	for _, c := range cases() {
		if seen[c.name] {
			t.Fatalf("kvtest: duplicate case name %q", c.name)
		}
		seen[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			db := open(t)
			if db == nil {
				t.Fatal("kvtest: open returned a nil database")
			}
			c.fn(newEnv(t, db))
		})
	}
}

// env is one case's view of the database: a private key prefix and helpers
// that fail the test on unexpected errors.
type env struct {
	t      *testing.T
	db     kv.Database
	prefix []byte
}

// newEnv picks a random prefix and registers a cleanup that clears it.
func newEnv(t *testing.T, db kv.Database) *env {
	t.Helper()
	e := &env{t: t, db: db, prefix: randomPrefix()}
	t.Cleanup(func() {
		r, err := kv.PrefixRange(e.prefix)
		if err != nil {
			t.Errorf("kvtest: cleanup: %v", err)
			return
		}
		tr, err := db.CreateTransaction(context.Background())
		if err != nil {
			t.Errorf("kvtest: cleanup of %q: %v", e.prefix, err)
			return
		}
		tr.ClearRange(r)
		if err := tr.Commit().Err(); err != nil {
			t.Errorf("kvtest: cleanup of %q: %v", e.prefix, err)
		}
	})
	return e
}

// randomPrefix returns "kvtest/<16 hex digits>/". The randomness only keeps
// concurrent cases (and concurrent runs against one cluster) apart; no
// outcome depends on it, so it need not be seeded.
func randomPrefix() []byte {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return []byte("kvtest/" + hex.EncodeToString(b[:]) + "/")
}

// k returns the key s under the case's prefix.
func (e *env) k(s string) []byte {
	out := make([]byte, 0, len(e.prefix)+len(s))
	return append(append(out, e.prefix...), s...)
}

// rng returns the range [k(begin), k(end)).
func (e *env) rng(begin, end string) kv.Range {
	return kv.Range{Begin: e.k(begin), End: e.k(end)}
}

// all is the case's whole prefix.
func (e *env) all() kv.Range {
	r, err := kv.PrefixRange(e.prefix)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// tx creates a transaction bound to context.Background.
func (e *env) tx() kv.Transaction {
	e.t.Helper()
	return e.txCtx(context.Background())
}

func (e *env) txCtx(ctx context.Context) kv.Transaction {
	e.t.Helper()
	tr, err := e.db.CreateTransaction(ctx)
	if err != nil {
		e.t.Fatalf("CreateTransaction: %v", err)
	}
	return tr
}

// commit commits tr and fails the test on any error.
func (e *env) commit(tr kv.Transaction) {
	e.t.Helper()
	if err := tr.Commit().Err(); err != nil {
		e.t.Fatalf("Commit: %v", err)
	}
}

// write commits key/value pairs (keys relative to the prefix) in one
// transaction.
func (e *env) write(pairs ...string) {
	e.t.Helper()
	if len(pairs)%2 != 0 {
		e.t.Fatalf("kvtest: write needs key/value pairs, got %d strings", len(pairs))
	}
	tr := e.tx()
	for i := 0; i < len(pairs); i += 2 {
		tr.Set(e.k(pairs[i]), []byte(pairs[i+1]))
	}
	e.commit(tr)
}

// writeBytes commits one key with a binary value.
func (e *env) writeBytes(key string, value []byte) {
	e.t.Helper()
	tr := e.tx()
	tr.Set(e.k(key), value)
	e.commit(tr)
}

// get reads key in tr and fails the test on error.
func (e *env) get(tr kv.ReadTransaction, key string) []byte {
	e.t.Helper()
	v, err := tr.Get(e.k(key)).Get()
	if err != nil {
		e.t.Fatalf("Get(%q): %v", key, err)
	}
	return v
}

// read reads key in a fresh transaction.
func (e *env) read(key string) []byte {
	e.t.Helper()
	return e.get(e.tx(), key)
}

// scan reads r in tr and returns the pairs with the prefix stripped from the
// keys, formatted "key=value", for comparison with literal expectations.
func (e *env) scan(tr kv.ReadTransaction, r kv.Range, opts kv.RangeOptions) []string {
	e.t.Helper()
	kvs, err := tr.GetRange(r, opts).Get()
	if err != nil {
		e.t.Fatalf("GetRange(%v, %+v): %v", r, opts, err)
	}
	return e.pairs(kvs)
}

// pairs formats kvs as "key=value" with the prefix stripped.
func (e *env) pairs(kvs []kv.KeyValue) []string {
	e.t.Helper()
	out := []string{}
	for _, p := range kvs {
		if !bytes.HasPrefix(p.Key, e.prefix) {
			e.t.Fatalf("range read returned %q, outside the case's prefix %q", p.Key, e.prefix)
		}
		out = append(out, string(p.Key[len(e.prefix):])+"="+string(p.Value))
	}
	return out
}

// dump reads the whole prefix in a fresh transaction.
func (e *env) dump() []string {
	e.t.Helper()
	return e.scan(e.tx(), e.all(), kv.RangeOptions{})
}

// wantStrings fails unless got equals want.
func wantStrings(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s = %q, want %q", what, got, want)
	}
}

// wantValue fails unless got is want; nil want means absent.
func wantValue(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if (got == nil) != (want == nil) || !bytes.Equal(got, want) {
		t.Fatalf("%s = %s, want %s", what, show(got), show(want))
	}
}

// show formats a value, distinguishing absent from empty.
func show(v []byte) string {
	if v == nil {
		return "<absent>"
	}
	if len(v) == 0 {
		return "<empty>"
	}
	return fmt.Sprintf("%#x", v)
}

// wantCode fails unless err is a *kv.Error matching sentinel under
// errors.Is.
func wantCode(t *testing.T, what string, err error, sentinel *kv.Error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want %v", what, sentinel)
	}
	var ke *kv.Error
	if !errors.As(err, &ke) {
		t.Fatalf("%s: error %v (%T) is not a *kv.Error, want %v", what, err, err, sentinel)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("%s: error %v, want %v", what, err, sentinel)
	}
}

// wantNoErr fails on err.
func wantNoErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}
