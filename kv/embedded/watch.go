package embedded

import (
	"bytes"
	"sync"
	"sync/atomic"

	"github.com/idemkv/idemkv/kv"
)

// Watches: FoundationDB's watch, as an engine hook. A watch is told the
// value a key had when it was set (as its transaction saw it) and fires once
// a committed state holds a different value. kv.Transaction has no watch
// method (kv/fdbc, the fdb_c shim, exposes it through
// fdb_transaction_watch); the engine's part is only noticing the change.

// watcher is one registered watch.
type watcher struct {
	key     []byte
	value   []byte
	present bool
	fire    func()
	done    atomic.Bool
}

// trigger calls fire once, on its own goroutine, so that neither the
// committer nor a caller holding locks ever runs it.
func (w *watcher) trigger() {
	if w.done.CompareAndSwap(false, true) {
		go w.fire()
	}
}

// watchSet holds the registered watches by key. count is read without the
// lock by the committer, which skips all work while it is zero.
type watchSet struct {
	mu    sync.Mutex
	byKey map[string][]*watcher // guarded by mu
	count atomic.Int64
}

// Watch calls fire, once and on a goroutine of its own, as soon as the
// committed value of key differs from value (present false: absent),
// including at once if it already does. The returned stop unregisters the
// watch; after stop returns, fire is not called unless it already was. The
// engine sets no limit on the number of watches; callers that need
// FoundationDB's (max_watches) count their own.
func (db *DB) Watch(key, value []byte, present bool, fire func()) (stop func()) {
	w := &watcher{key: bytes.Clone(key), value: bytes.Clone(value), present: present, fire: fire}
	ws := &db.watches
	ws.mu.Lock()
	if ws.byKey == nil {
		ws.byKey = make(map[string][]*watcher)
	}
	ws.byKey[string(w.key)] = append(ws.byKey[string(w.key)], w)
	ws.count.Add(1)
	ws.mu.Unlock()
	// Registered first, checked second: a commit published after the check
	// is seen by notifyWatches, one published before it by the check.
	db.checkWatch(w)
	return func() {
		w.done.Store(true)
		ws.mu.Lock()
		defer ws.mu.Unlock()
		list := ws.byKey[string(w.key)]
		for i, x := range list {
			if x == w {
				list = append(list[:i:i], list[i+1:]...)
				ws.count.Add(-1)
				break
			}
		}
		if len(list) == 0 {
			delete(ws.byKey, string(w.key))
		} else {
			ws.byKey[string(w.key)] = list
		}
	}
}

// checkWatch triggers w if the latest published value of its key differs
// from the one it was set with. A closed database triggers it too: the
// watch can no longer be answered, and its owner learns so from its own
// next operation.
func (db *DB) checkWatch(w *watcher) {
	db.mu.Lock()
	if db.mu.snaps == nil {
		db.mu.Unlock()
		w.trigger()
		return
	}
	s := db.mu.snaps[len(db.mu.snaps)-1]
	db.mu.Unlock()
	v, present, err := s.get(w.key)
	if err != nil || present != w.present || !bytes.Equal(v, w.value) {
		w.trigger()
	}
}

// notifyWatches checks the watches on keys the group's accepted
// transactions wrote, against the state just published. It runs in the
// committer after publishing, and costs nothing while no watch is set.
func (db *DB) notifyWatches(accepted []*commitReq) {
	ws := &db.watches
	if ws.count.Load() == 0 {
		return
	}
	var hit []*watcher
	ws.mu.Lock()
	for _, r := range accepted {
		for _, m := range r.muts {
			switch {
			case m.kind == mutClearRange:
				for k, list := range ws.byKey {
					if bytes.Compare([]byte(k), m.key) >= 0 && bytes.Compare([]byte(k), m.end) < 0 {
						hit = append(hit, list...)
					}
				}
			case m.kind == mutAtomic && m.op == kv.SetVersionstampedKey:
				if k, err := kv.PlaceVersionstamp(m.key, r.stamp); err == nil {
					hit = append(hit, ws.byKey[string(k)]...)
				}
			default:
				hit = append(hit, ws.byKey[string(m.key)]...)
			}
		}
	}
	ws.mu.Unlock()
	for _, w := range hit {
		if !w.done.Load() {
			db.checkWatch(w)
		}
	}
}
