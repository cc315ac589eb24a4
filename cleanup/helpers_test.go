package cleanup_test

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/embedded"
	"github.com/idemkv/idemkv/txn"
)

var (
	seedFlag  = flag.Uint64("seed", 0, "replay one seed (0: run -cleanup.seeds seeds)")
	seedsFlag = flag.Int("cleanup.seeds", 40, "how many seeds the randomized janitor tests run")
	soakFlag  = flag.Duration("cleanup.soak", 2*time.Minute, "simulated duration of the bounded-space soak")
)

func seeds() []uint64 {
	if *seedFlag != 0 {
		return []uint64{*seedFlag}
	}
	s := make([]uint64, *seedsFlag)
	for i := range s {
		s[i] = uint64(i + 1)
	}
	return s
}

func replay(name string, seed uint64) string {
	return fmt.Sprintf("seed %d; replay with: go test ./cleanup -run '%s' -seed=%d -v", seed, name, seed)
}

// openClocked opens an in-memory engine whose versions follow a clock that
// moves only when the test advances it, to age markers without waiting.
func openClocked(t testing.TB) (*embedded.DB, *embedded.ManualClock) {
	t.Helper()
	c := embedded.NewManualClock(time.Unix(1_700_000_000, 0))
	db, err := embedded.OpenMem(&embedded.Options{Clock: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, c
}

var one = binary.LittleEndian.AppendUint64(nil, 1)

func incr(key []byte) func(kv.Transaction) (struct{}, error) {
	return func(tr kv.Transaction) (struct{}, error) {
		tr.Atomic(kv.Add, key, one)
		return struct{}{}, nil
	}
}

// do runs fn in a plain retry loop, for test setup and inspection.
func do[T any](t testing.TB, db kv.Database, fn func(kv.Transaction) (T, error)) T {
	t.Helper()
	v, err := txn.StockTransact(context.Background(), db, fn)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func readCount(t testing.TB, db kv.Database, key []byte) int64 {
	return do(t, db, func(tr kv.Transaction) (int64, error) {
		b := tr.Get(key).MustGet()
		if b == nil {
			return 0, nil
		}
		return int64(binary.LittleEndian.Uint64(b)), nil
	})
}

// markers returns the IDs whose marker is alive under txn's default
// prefix: a legacy marker's, or the call's whose sequence its slot holds
// (committed or fenced; a refresh holds no call's answer).
func markers(t testing.TB, db kv.Database) map[txn.ID]bool {
	out := map[txn.ID]bool{}
	for _, e := range prefixKeys(t, db) {
		if id, err := txn.ParseMarkerKey(txn.DefaultPrefix, e.Key); err == nil {
			out[id] = true
		}
	}
	for k, st := range slots(t, db) {
		if st.Attempt != txn.SlotRefreshed {
			out[txn.ID{Owner: k.owner, Slot: k.index, Seq: st.Seq}] = true
		}
	}
	return out
}

func prefixKeys(t testing.TB, db kv.Database) []kv.KeyValue {
	r, _ := kv.PrefixRange(txn.DefaultPrefix)
	return do(t, db, func(tr kv.Transaction) ([]kv.KeyValue, error) {
		return tr.Snapshot().GetRange(r, kv.RangeOptions{}).Get()
	})
}

// slotRef names a marker slot.
type slotRef struct {
	owner uuid.UUID
	index uint32
}

// slots returns the marker slots alive under txn's default prefix.
func slots(t testing.TB, db kv.Database) map[slotRef]txn.SlotState {
	kvs := do(t, db, func(tr kv.Transaction) ([]kv.KeyValue, error) {
		return tr.Snapshot().GetRange(txn.SlotRange(txn.DefaultPrefix), kv.RangeOptions{}).Get()
	})
	out := map[slotRef]txn.SlotState{}
	for _, e := range kvs {
		owner, index, err := txn.ParseSlotKey(txn.DefaultPrefix, e.Key)
		if err != nil {
			t.Fatalf("slot range holds %q: %v", e.Key, err)
		}
		st, err := txn.DecodeSlot(e.Value)
		if err != nil {
			t.Fatalf("slot %q: %v", e.Key, err)
		}
		out[slotRef{owner, index}] = st
	}
	return out
}

// handle is a database handle of its own on an engine: txn keeps a slot
// pool, with an owner of its own, per handle, as it would per process.
type handle struct{ kv.Database }

// hookDB runs before(n) ahead of the n-th commit (from 1) and, if it
// returns an error, reports that error instead of committing.
type hookDB struct {
	kv.Database
	mu     sync.Mutex
	n      int
	before func(n int) error
}

func (db *hookDB) CreateTransaction(ctx context.Context) (kv.Transaction, error) {
	tr, err := db.Database.CreateTransaction(ctx)
	if err != nil {
		return nil, err
	}
	return &hookTx{Transaction: tr, db: db}, nil
}

type hookTx struct {
	kv.Transaction
	db *hookDB
	// refresh reports that the transaction refreshes (or creates) a call's
	// marker slot (txn does so in a transaction of its own on a new slot):
	// such commits pass through unnumbered, so that n counts the calls'
	// commits.
	refresh bool
}

func (t *hookTx) Atomic(op kv.MutationType, key, param []byte) {
	if _, _, err := txn.ParseSlotKey(txn.DefaultPrefix, key); err == nil && len(param) == 1+8+4+10+4 && binary.BigEndian.Uint32(param[9:13]) == txn.SlotRefreshed {
		t.refresh = true
	}
	t.Transaction.Atomic(op, key, param)
}

func (t *hookTx) Reset() { t.refresh = false; t.Transaction.Reset() }

func (t *hookTx) OnError(err error) error {
	t.refresh = false
	return t.Transaction.OnError(err)
}

func (t *hookTx) Commit() *kv.Future[struct{}] {
	if t.refresh {
		t.refresh = false
		return t.Transaction.Commit()
	}
	t.db.mu.Lock()
	t.db.n++
	n := t.db.n
	t.db.mu.Unlock()
	if err := t.db.before(n); err != nil {
		return kv.Failed[struct{}](err)
	}
	return t.Transaction.Commit()
}
