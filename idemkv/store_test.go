package idemkv_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/txn"
)

func TestOpenURIs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rel, err := filepath.Rel(mustGetwd(t), filepath.Join(dir, "rel"))
	if err != nil {
		t.Fatal(err)
	}
	for _, uri := range []string{
		"mem:",
		"file:" + filepath.Join(dir, "abs"),
		"file://" + filepath.Join(dir, "slashes"),
		"file:" + rel,
		filepath.Join(dir, "plain"),
	} {
		s, err := idemkv.Open(ctx, uri, &idemkv.Options{NoJanitor: true})
		if err != nil {
			t.Fatalf("Open(%q): %v", uri, err)
		}
		if err := s.Counter("c").Add(ctx, 2); err != nil {
			t.Fatalf("%q: Add: %v", uri, err)
		}
		if v, err := s.Counter("c").Get(ctx); err != nil || v != 2 {
			t.Fatalf("%q: Get: %d, %v", uri, v, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for _, sub := range []string{"abs", "slashes", "rel", "plain"} {
		if _, err := os.Stat(filepath.Join(dir, sub)); err != nil {
			t.Errorf("file URI did not create %s: %v", sub, err)
		}
	}
	// Durable: reopening finds the counter.
	s, err := idemkv.Open(ctx, filepath.Join(dir, "plain"), &idemkv.Options{NoJanitor: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.Counter("c").Get(ctx); err != nil || v != 2 {
		t.Fatalf("after reopen: %d, %v", v, err)
	}
}

func mustGetwd(t *testing.T) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	s := openUnstepped(t, nil)
	ok := func(context.Context) (int, error) { return 1, nil }
	big := func(context.Context) (string, error) { return strings.Repeat("x", idemkv.MaxResultSize), nil }
	long := strings.Repeat("k", idemkv.MaxKeyLen+1)

	open := func(uri string, o *idemkv.Options) error {
		s, err := idemkv.Open(ctx, uri, o)
		if err == nil {
			s.Close()
		}
		return err
	}
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"unknown scheme", open("redis://localhost", nil), idemkv.ErrUnknownScheme},
		{"empty URI", open("", nil), idemkv.ErrUnknownScheme},
		{"empty prefix", open("mem:", &idemkv.Options{Prefix: []byte{}}), idemkv.ErrInvalidOptions},
		{"system prefix", open("mem:", &idemkv.Options{Prefix: []byte("\xffx")}), idemkv.ErrInvalidOptions},
		{"shards", open("mem:", &idemkv.Options{Shards: 256}), idemkv.ErrInvalidOptions},
		{"min age", open("mem:", &idemkv.Options{MinAge: time.Second}), idemkv.ErrInvalidOptions},
		{"lease", open("mem:", &idemkv.Options{Lease: -1}), idemkv.ErrInvalidOptions},
		{"wrap nil", open("mem:", &idemkv.Options{WrapDatabase: func(kv.Database) kv.Database { return nil }}), idemkv.ErrInvalidOptions},
		{"empty key", do(ctx, s, "", ok), idemkv.ErrEmptyKey},
		{"256-byte key", do(ctx, s, long, ok), idemkv.ErrKeyTooLong},
		{"nil fn", doNil(ctx, s), idemkv.ErrNilFunc},
		{"result too large", doBig(ctx, s, big), idemkv.ErrResultTooLarge},
		{"payload too large", doPayload(ctx, s, make([]byte, idemkv.MaxPayloadSize+1)), idemkv.ErrPayloadTooLarge},
		{"negative lease", doOpts(ctx, s, &idemkv.DoOptions{Lease: -time.Second}), idemkv.ErrInvalidOptions},
		{"empty counter", s.Counter("").Add(ctx, 1), idemkv.ErrEmptyKey},
		{"long counter", s.Counter(long).Add(ctx, 1), idemkv.ErrKeyTooLong},
		{"zero shards", s.ShardedCounter("c", 0).Add(ctx, 1), idemkv.ErrInvalidOptions},
		{"nil Transact fn", transactNil(ctx, s), idemkv.ErrNilFunc},
		{"nil ReadTransact fn", readNil(ctx, s), idemkv.ErrNilFunc},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	// Nothing was stored by any of them; the too-large result released
	// its key.
	for _, fam := range []string{"k/", "a/", "c/", "s/"} {
		if kvs := dump(t, s, fam); len(kvs) != 0 {
			t.Errorf("bad input left %d keys under %q: %q", len(kvs), fam, kvs)
		}
	}
	// AddTx of a bad counter fails the caller's transaction, writing nothing.
	_, err := idemkv.Transact(ctx, s, func(tr kv.Transaction) (int, error) {
		tr.Set([]byte("user/k"), []byte("v"))
		s.Counter("").AddTx(tr, 1)
		return 0, nil
	})
	if !errors.Is(err, kv.ErrKeyTooLarge) {
		t.Errorf("AddTx of a bad counter: %v, want key_too_large", err)
	}
	if v, _ := idemkv.ReadTransact(ctx, s, func(tr kv.ReadTransaction) ([]byte, error) { return tr.Get([]byte("user/k")).Get() }); v != nil {
		t.Errorf("the failed transaction wrote %q", v)
	}
}

func do(ctx context.Context, s *idemkv.Store, key string, fn func(context.Context) (int, error)) error {
	_, err := idemkv.Do(ctx, s, key, nil, fn, nil)
	return err
}

func doNil(ctx context.Context, s *idemkv.Store) error {
	_, err := idemkv.Do[int](ctx, s, "k", nil, nil, nil)
	return err
}

func doBig(ctx context.Context, s *idemkv.Store, fn func(context.Context) (string, error)) error {
	_, err := idemkv.Do(ctx, s, "big", nil, fn, nil)
	return err
}

func doPayload(ctx context.Context, s *idemkv.Store, p []byte) error {
	_, err := idemkv.Do(ctx, s, "k", p, func(context.Context) (int, error) { return 1, nil }, nil)
	return err
}

func doOpts(ctx context.Context, s *idemkv.Store, o *idemkv.DoOptions) error {
	_, err := idemkv.Do(ctx, s, "k", nil, func(context.Context) (int, error) { return 1, nil }, o)
	return err
}

func transactNil(ctx context.Context, s *idemkv.Store) error {
	_, err := idemkv.Transact[int](ctx, s, nil)
	return err
}

func readNil(ctx context.Context, s *idemkv.Store) error {
	_, err := idemkv.ReadTransact[int](ctx, s, nil)
	return err
}

func TestUseAfterClose(t *testing.T) {
	ctx := context.Background()
	s := openMem(t, nil) // with its janitor running
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_, terr := idemkv.Transact(ctx, s, func(tr kv.Transaction) (int, error) { tr.Set([]byte("k"), nil); return 0, nil })
	_, rerr := idemkv.ReadTransact(ctx, s, func(tr kv.ReadTransaction) (int, error) { return 0, nil })
	_, derr := idemkv.Do(ctx, s, "k", nil, func(context.Context) (int, error) { return 1, nil }, nil)
	_, gerr := s.Counter("c").Get(ctx)
	_, serr := s.Sweep(ctx)
	_, oerr := s.Resolve(ctx, txn.ID{})
	for i, err := range []error{terr, rerr, derr, s.Counter("c").Add(ctx, 1), gerr, serr, oerr} {
		if !errors.Is(err, idemkv.ErrClosed) {
			t.Errorf("call %d after Close: %v, want ErrClosed", i, err)
		}
	}
}

func TestTransactAndResolve(t *testing.T) {
	ctx := context.Background()
	s := openUnstepped(t, nil)
	v, err := idemkv.Transact(ctx, s, func(tr kv.Transaction) (string, error) {
		tr.Set([]byte("user/a"), []byte("1"))
		return "done", nil
	})
	if err != nil || v != "done" {
		t.Fatalf("Transact: %q, %v", v, err)
	}
	got, err := idemkv.ReadTransact(ctx, s, func(tr kv.ReadTransaction) (string, error) {
		b, err := tr.Get([]byte("user/a")).Get()
		return string(b), err
	})
	if err != nil || got != "1" {
		t.Fatalf("ReadTransact: %q, %v", got, err)
	}
	// ReadTransact hides the write half.
	idemkv.ReadTransact(ctx, s, func(tr kv.ReadTransaction) (int, error) {
		if _, ok := tr.(kv.Transaction); ok {
			t.Error("ReadTransact's transaction can be asserted to kv.Transaction")
		}
		return 0, nil
	})
	// A function error commits nothing.
	boom := errors.New("boom")
	if _, err := idemkv.Transact(ctx, s, func(tr kv.Transaction) (int, error) {
		tr.Set([]byte("user/b"), []byte("1"))
		return 0, boom
	}); !errors.Is(err, boom) {
		t.Fatalf("fn error: %v", err)
	}
	// Resolve of a committed call's ID (read back from its slot; the
	// fault tests resolve IDs from timed-out calls).
	kvs := dump(t, s, "tx/")
	if len(kvs) == 0 {
		t.Fatal("no transaction markers written")
	}
	var committed txn.ID
	for _, e := range kvs { // the store's marker slot: its last call's sequence
		owner, slot, err := txn.ParseSlotKey(append([]byte(string(idemkv.DefaultPrefix)), "tx/"...), e.Key)
		if err != nil {
			continue
		}
		st, err := txn.DecodeSlot(e.Value)
		if err != nil || !st.Committed() {
			t.Fatalf("slot %q = %+v, %v; want a committed call's", e.Key, st, err)
		}
		committed = txn.ID{Owner: owner, Slot: slot, Seq: st.Seq}
	}
	if committed.IsZero() {
		t.Fatalf("no marker slot among %q", kvs)
	}
	if o, err := s.Resolve(ctx, committed); err != nil || o != txn.Committed {
		t.Fatalf("Resolve of a committed call: %v, %v", o, err)
	}
}

// Open starts the janitor and Close stops it: sweeps happen without being
// asked, and none after Close.
func TestJanitorLifecycle(t *testing.T) {
	s := openMem(t, &idemkv.Options{JanitorInterval: time.Millisecond})
	for i := 0; s.JanitorStats().Sweeps < 2; i++ {
		if i == 10_000 {
			t.Fatalf("the janitor did not sweep: %+v", s.JanitorStats())
		}
		time.Sleep(time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	after := s.JanitorStats().Sweeps
	time.Sleep(5 * time.Millisecond)
	if got := s.JanitorStats().Sweeps; got != after {
		t.Fatalf("the janitor swept %d times after Close", got-after)
	}
	if st := s.JanitorStats(); st.Errors != 0 {
		t.Fatalf("janitor errors: %+v", st)
	}
}
