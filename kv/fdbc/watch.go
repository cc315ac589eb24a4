//go:build cgo

package fdbc

import "C"

import "sync"

// Watches. fdb_transaction_watch records the key and the value the
// transaction sees for it (its own writes included); the watch is armed
// when the transaction commits, through kv/embedded's DB.Watch, and its
// future becomes ready once a later commit changes the value — at once if
// one already has. A transaction that fails to commit fails its watches
// with the commit's error; reset, OnError, cancel or destroy before the
// commit fail them with transaction_cancelled (1025); fdb_future_cancel
// fails one with operation_cancelled (1101) and unregisters it. At most
// max_watches (database option, default 10,000) are active per database;
// one more fails with too_many_watches (1032).

type pendingWatch struct {
	f       *future
	key     []byte
	value   []byte
	present bool
}

//export fdb_transaction_watch
func fdb_transaction_watch(h uintptr, key *byte, n int32) uintptr {
	t := lookup[transaction](h)
	if t == nil || n < 0 {
		return failed(kindNil, errClientInvalidOp)
	}
	k := goBytes(key, n)
	var w *pendingWatch
	code := t.do(func() int {
		v, err := t.tr.Snapshot().Get(k).Get()
		if err != nil {
			return codeOf(err)
		}
		w = &pendingWatch{f: newFuture(kindNil), key: k, value: v, present: v != nil}
		t.mu.watches = append(t.mu.watches, w)
		return 0
	})
	if code != 0 {
		return failed(kindNil, code)
	}
	return w.f.h
}

// failWatches fails watches that will never be armed.
func failWatches(ws []*pendingWatch, code int) {
	for _, w := range ws {
		w.f.complete(code, nil)
	}
}

// armWatches registers a committed transaction's watches with the engine.
// Each holds a reference on the store until it fires or is cancelled.
func (d *database) armWatches(ws []*pendingWatch) {
	for _, w := range ws {
		if d.watches.Add(1) > d.maxWatches.Load() {
			d.watches.Add(-1)
			w.f.complete(errTooManyWatches, nil)
			continue
		}
		d.s.ref()
		var once sync.Once
		release := func() {
			once.Do(func() {
				d.watches.Add(-1)
				d.s.unref()
			})
		}
		f := w.f
		// mu orders setting stop against the callbacks reading it: the
		// engine may fire before Watch returns.
		var mu sync.Mutex
		var stop func()
		unregister := func() {
			mu.Lock()
			s := stop
			mu.Unlock()
			if s != nil {
				s()
			}
			release()
		}
		mu.Lock()
		f.setOnCancel(unregister)
		stop = d.s.db.Watch(w.key, w.value, w.present, func() {
			unregister()
			f.complete(errSuccess, nil)
		})
		mu.Unlock()
	}
}
