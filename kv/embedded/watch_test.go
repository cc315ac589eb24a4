package embedded

import (
	"testing"
	"time"

	"github.com/idemkv/idemkv/kv"
)

// commitOne runs fn in a transaction and commits it.
func commitOne(t *testing.T, db *DB, fn func(tr kv.Transaction)) {
	t.Helper()
	tr := newTr(t, db)
	fn(tr)
	if err := tr.Commit().Err(); err != nil {
		t.Fatal(err)
	}
}

// fired waits up to a few seconds for ch; the bound only keeps a broken
// watch from hanging the test.
func fired(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-time.After(5 * time.Second):
		return false
	}
}

// watchDone reports whether the watch on key has triggered (fire was
// called or is about to be): trigger marks it before returning to the
// committer, so a Commit that returned has already decided.
func watchDone(db *DB, key string) bool {
	db.watches.mu.Lock()
	defer db.watches.mu.Unlock()
	for _, w := range db.watches.byKey[key] {
		if w.done.Load() {
			return true
		}
	}
	return false
}

func TestWatchFiresOnCommittedChange(t *testing.T) {
	db := openMem(t, nil)
	commitOne(t, db, func(tr kv.Transaction) { tr.Set([]byte("k"), []byte("v1")) })
	ch := make(chan struct{})
	stop := db.Watch([]byte("k"), []byte("v1"), true, func() { close(ch) })
	defer stop()

	// The same value again, and a write to another key: no change.
	commitOne(t, db, func(tr kv.Transaction) {
		tr.Set([]byte("k"), []byte("v1"))
		tr.Set([]byte("other"), []byte("x"))
	})
	if watchDone(db, "k") {
		t.Fatal("watch fired although the value did not change")
	}
	commitOne(t, db, func(tr kv.Transaction) { tr.Atomic(kv.Add, []byte("k"), []byte{1}) })
	if !fired(ch) {
		t.Fatal("watch did not fire after the value changed")
	}
}

func TestWatchFiresAtOnceWhenAlreadyChanged(t *testing.T) {
	db := openMem(t, nil)
	commitOne(t, db, func(tr kv.Transaction) { tr.Set([]byte("k"), []byte("new")) })
	ch := make(chan struct{})
	stop := db.Watch([]byte("k"), nil, false, func() { close(ch) })
	defer stop()
	if !fired(ch) {
		t.Fatal("watch set with a stale (absent) value did not fire")
	}
}

func TestWatchFiresOnClearRangeAndNotAfterStop(t *testing.T) {
	db := openMem(t, nil)
	commitOne(t, db, func(tr kv.Transaction) {
		tr.Set([]byte("a/1"), []byte("x"))
		tr.Set([]byte("b/1"), []byte("y"))
	})
	ch := make(chan struct{})
	stop := db.Watch([]byte("a/1"), []byte("x"), true, func() { close(ch) })
	defer stop()
	calledB := make(chan struct{}, 1)
	stopB := db.Watch([]byte("b/1"), []byte("y"), true, func() { calledB <- struct{}{} })
	stopB()
	commitOne(t, db, func(tr kv.Transaction) { tr.ClearRange(kv.Range{Begin: []byte("a"), End: []byte("c")}) })
	if !fired(ch) {
		t.Fatal("watch did not fire when a range clear removed its key")
	}
	select {
	case <-calledB:
		t.Fatal("a stopped watch fired")
	default:
	}
	if n := db.watches.count.Load(); n != 1 {
		t.Fatalf("%d watches registered, want 1 (the stopped one removed)", n)
	}
}
