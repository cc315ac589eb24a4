//go:build cgo

package fdbc

import (
	"sync"
	"sync/atomic"
)

// Handles: the FDBFuture*, FDBDatabase*, FDBTenant* and FDBTransaction*
// values C callers hold are keys into this table, never addresses of Go
// memory. A handle that is not in the table — never issued, already
// destroyed, or NULL — is refused with an error instead of being
// dereferenced, so a caller's mistake cannot crash the process.
//
// Handles start at handleBase (checkptr refuses pointer values below 4096
// and Go's heap lives far above) and are spaced so that they look like
// aligned pointers to C code that inspects them.
const (
	handleBase = 1 << 20
	handleStep = 16
)

var handles struct {
	next atomic.Uint64
	m    sync.Map // uintptr -> *future, *database, *tenant or *transaction
}

// newHandle registers obj and returns its handle.
func newHandle(obj any) uintptr {
	h := uintptr(handleBase + handles.next.Add(1)*handleStep)
	handles.m.Store(h, obj)
	return h
}

// lookup returns the object of type T under h, or nil.
func lookup[T any](h uintptr) *T {
	v, ok := handles.m.Load(h)
	if !ok {
		return nil
	}
	o, _ := v.(*T)
	return o
}

// dropHandle removes h and returns the object that was under it, if of
// type T; a second drop of the same handle returns nil.
func dropHandle[T any](h uintptr) *T {
	v, ok := handles.m.Load(h)
	if !ok {
		return nil
	}
	o, isT := v.(*T)
	if !isT {
		return nil
	}
	if _, loaded := handles.m.LoadAndDelete(h); !loaded {
		return nil
	}
	return o
}
