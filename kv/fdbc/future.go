//go:build cgo

package fdbc

// #cgo LDFLAGS: -L${SRCDIR}/lib
// #include <stdint.h>
// #include <stdlib.h>
// void fdbc_fire(uintptr_t callback, uintptr_t future, void* parameter);
import "C"

import (
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/idemkv/idemkv/kv"
)

// kind is what a future yields, and so which fdb_future_get_* reads it.
type kind uint8

const (
	kindNil kind = iota
	kindInt64
	kindKey
	kindValue
	kindKeyValues
	kindKeys
	kindStrings
)

// callback is a C function pointer and its parameter, as given to
// fdb_future_set_callback. param is kept as a pointer so that a Go object
// the caller passed through C (the bindings pass a *sync.Mutex) stays
// reachable until the callback has run.
type callback struct {
	fn    uintptr
	param unsafe.Pointer
}

// future is an FDBFuture. Its result lives in C memory (mem) owned by the
// future until fdb_future_release_memory or fdb_future_destroy. Callbacks
// run outside mu, on whichever goroutine makes the future ready, or nested
// in fdb_future_set_callback if it already is.
type future struct {
	h    uintptr
	kind kind

	mu struct {
		sync.Mutex
		// onCancel, if set, stops the operation behind the future when it
		// is cancelled or destroyed before it is ready (a watch
		// unregisters).
		onCancel  func()
		ready     bool
		destroyed bool
		released  bool
		code      int
		i64       int64
		present   bool
		mem       unsafe.Pointer // C memory: bytes, or an array and its bytes
		n         int            // byte length (key, value) or element count
		more      bool
		cbs       []callback
		wake      chan struct{} // closed when ready, for block_until_ready
	}
}

var liveFutures atomic.Int64

// newFuture registers a pending future.
func newFuture(k kind) *future {
	f := &future{kind: k}
	f.h = newHandle(f)
	liveFutures.Add(1)
	return f
}

// failed returns the handle of a future already failed with code.
func failed(k kind, code int) uintptr {
	f := newFuture(k)
	f.complete(code, nil)
	return f.h
}

// result is what an operation fills a future with.
type result struct {
	i64     int64
	present bool
	mem     unsafe.Pointer
	n       int
	more    bool
}

// complete makes f ready with code (0 for success) and r, then runs its
// callbacks with no lock held. A future already ready, or destroyed, keeps
// its state and r's memory is freed.
func (f *future) complete(code int, r *result) {
	f.mu.Lock()
	if f.mu.ready || f.mu.destroyed {
		f.mu.Unlock()
		if r != nil {
			freeC(r.mem)
		}
		return
	}
	f.mu.ready, f.mu.code = true, code
	if r != nil {
		f.mu.i64, f.mu.present, f.mu.mem, f.mu.n, f.mu.more = r.i64, r.present, r.mem, r.n, r.more
	}
	cbs := f.mu.cbs
	f.mu.cbs = nil
	if f.mu.wake != nil {
		close(f.mu.wake)
	}
	f.mu.Unlock()
	for _, cb := range cbs {
		C.fdbc_fire(C.uintptr_t(cb.fn), C.uintptr_t(f.h), cb.param)
	}
}

// ---- the fdb_future_* API ----

//export fdb_future_is_ready
func fdb_future_is_ready(h uintptr) int32 {
	f := lookup[future](h)
	if f == nil {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return boolC(f.mu.ready)
}

// fdb_future_set_callback arranges for callback(future, param) to be called
// once the future is ready: at once, on this thread, if it already is.
//
//export fdb_future_set_callback
func fdb_future_set_callback(h uintptr, fn uintptr, param unsafe.Pointer) int32 {
	f := lookup[future](h)
	if f == nil {
		return errFutureReleased
	}
	if fn == 0 {
		return errClientInvalidOp
	}
	f.mu.Lock()
	if !f.mu.ready {
		f.mu.cbs = append(f.mu.cbs, callback{fn: fn, param: param})
		f.mu.Unlock()
		return errSuccess
	}
	f.mu.Unlock()
	C.fdbc_fire(C.uintptr_t(fn), C.uintptr_t(h), param)
	return errSuccess
}

// fdb_future_block_until_ready blocks the calling thread until the future
// is ready.
//
//export fdb_future_block_until_ready
func fdb_future_block_until_ready(h uintptr) int32 {
	f := lookup[future](h)
	if f == nil {
		return errFutureReleased
	}
	f.mu.Lock()
	if f.mu.ready {
		f.mu.Unlock()
		return errSuccess
	}
	if f.mu.wake == nil {
		f.mu.wake = make(chan struct{})
	}
	wake := f.mu.wake
	f.mu.Unlock()
	<-wake
	return errSuccess
}

// fdb_future_cancel makes a future that is not ready yet fail with
// operation_cancelled (1101) and stops its operation; a ready future is
// left as it is.
//
//export fdb_future_cancel
func fdb_future_cancel(h uintptr) {
	if f := lookup[future](h); f != nil {
		f.cancel()
	}
}

func (f *future) cancel() {
	f.mu.Lock()
	ready, onCancel := f.mu.ready, f.mu.onCancel
	f.mu.onCancel = nil
	f.mu.Unlock()
	if ready {
		return
	}
	if onCancel != nil {
		onCancel()
	}
	f.complete(errOperationCancelled, nil)
}

// setOnCancel sets what cancel runs before failing the future.
func (f *future) setOnCancel(fn func()) {
	f.mu.Lock()
	f.mu.onCancel = fn
	f.mu.Unlock()
}

// fdb_future_release_memory frees the result's memory; the future stays
// valid, and reading its result afterwards fails with future_released.
//
//export fdb_future_release_memory
func fdb_future_release_memory(h uintptr) {
	f := lookup[future](h)
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mu.ready && !f.mu.released {
		freeC(f.mu.mem)
		f.mu.mem, f.mu.released = nil, true
	}
}

// fdb_future_destroy cancels the future if it is not ready, frees its
// memory and retires its handle: later calls with it fail with
// future_released (1102) or do nothing.
//
//export fdb_future_destroy
func fdb_future_destroy(h uintptr) {
	f := dropHandle[future](h)
	if f == nil {
		return
	}
	f.cancel()
	f.mu.Lock()
	f.mu.destroyed = true
	freeC(f.mu.mem)
	f.mu.mem = nil
	f.mu.Unlock()
	liveFutures.Add(-1)
}

//export fdb_future_get_error
func fdb_future_get_error(h uintptr) int32 {
	f := lookup[future](h)
	if f == nil {
		return errFutureReleased
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.mu.ready {
		return errFutureNotSet
	}
	return int32(f.mu.code)
}

// readable locks f if its result of kind k can be read and returns 0, or
// returns the error the fdb_future_get_* call reports (with f unlocked):
// the future's own error, future_not_set, future_released, or
// client_invalid_operation for a getter of the wrong kind.
func readable(h uintptr, k kind) (*future, int) {
	f := lookup[future](h)
	if f == nil {
		return nil, errFutureReleased
	}
	f.mu.Lock()
	switch {
	case !f.mu.ready:
		f.mu.Unlock()
		return nil, errFutureNotSet
	case f.mu.code != 0:
		c := f.mu.code
		f.mu.Unlock()
		return nil, c
	case f.kind != k:
		f.mu.Unlock()
		return nil, errClientInvalidOp
	case f.mu.released:
		f.mu.Unlock()
		return nil, errFutureReleased
	}
	return f, errSuccess
}

//export fdb_future_get_int64
func fdb_future_get_int64(h uintptr, out *int64) int32 {
	if out == nil {
		return errClientInvalidOp
	}
	f, code := readable(h, kindInt64)
	if code != 0 {
		return int32(code)
	}
	defer f.mu.Unlock()
	*out = f.mu.i64
	return errSuccess
}

//export fdb_future_get_key
func fdb_future_get_key(h uintptr, out *unsafe.Pointer, outLen *int32) int32 {
	if out == nil || outLen == nil {
		return errClientInvalidOp
	}
	f, code := readable(h, kindKey)
	if code != 0 {
		return int32(code)
	}
	defer f.mu.Unlock()
	*out, *outLen = f.mu.mem, int32(f.mu.n)
	return errSuccess
}

//export fdb_future_get_value
func fdb_future_get_value(h uintptr, present *int32, out *unsafe.Pointer, outLen *int32) int32 {
	if present == nil || out == nil || outLen == nil {
		return errClientInvalidOp
	}
	f, code := readable(h, kindValue)
	if code != 0 {
		return int32(code)
	}
	defer f.mu.Unlock()
	*present = boolC(f.mu.present)
	if f.mu.present {
		*out, *outLen = f.mu.mem, int32(f.mu.n)
	}
	return errSuccess
}

//export fdb_future_get_keyvalue_array
func fdb_future_get_keyvalue_array(h uintptr, out *unsafe.Pointer, count *int32, more *int32) int32 {
	if out == nil || count == nil || more == nil {
		return errClientInvalidOp
	}
	f, code := readable(h, kindKeyValues)
	if code != 0 {
		return int32(code)
	}
	defer f.mu.Unlock()
	*out, *count, *more = f.mu.mem, int32(f.mu.n), boolC(f.mu.more)
	return errSuccess
}

//export fdb_future_get_key_array
func fdb_future_get_key_array(h uintptr, out *unsafe.Pointer, count *int32) int32 {
	if out == nil || count == nil {
		return errClientInvalidOp
	}
	f, code := readable(h, kindKeys)
	if code != 0 {
		return int32(code)
	}
	defer f.mu.Unlock()
	*out, *count = f.mu.mem, int32(f.mu.n)
	return errSuccess
}

//export fdb_future_get_string_array
func fdb_future_get_string_array(h uintptr, out *unsafe.Pointer, count *int32) int32 {
	if out == nil || count == nil {
		return errClientInvalidOp
	}
	f, code := readable(h, kindStrings)
	if code != 0 {
		return int32(code)
	}
	defer f.mu.Unlock()
	*out, *count = f.mu.mem, int32(f.mu.n)
	return errSuccess
}

// ---- building results in C memory ----

// cBytes copies b into C memory (at least one byte, so that an empty value
// still has a non-NULL pointer).
func cBytes(b []byte) unsafe.Pointer {
	p := C.malloc(C.size_t(max(len(b), 1)))
	if len(b) > 0 {
		copy(unsafe.Slice((*byte)(p), len(b)), b)
	}
	return p
}

// The packed layouts FoundationDB's C API returns (pragma pack 4).
const (
	keyValueSize = 24 // key ptr @0, key len @8, value ptr @12, value len @20
	keySize      = 12 // key ptr @0, key len @8
)

// putRef writes a pointer and a length at off in the array at base. The
// pointer is written as a uintptr: at offset 12 it is misaligned, and
// checkptr (on under -race) refuses a misaligned *unsafe.Pointer.
func putRef(base unsafe.Pointer, off int, p unsafe.Pointer, n int) {
	*(*uintptr)(unsafe.Add(base, off)) = uintptr(p)
	*(*int32)(unsafe.Add(base, off+8)) = int32(n)
}

// keyValueArray lays kvs out as an FDBKeyValue array followed by their
// bytes, in one C allocation.
func keyValueArray(kvs []kv.KeyValue) unsafe.Pointer {
	size := len(kvs) * keyValueSize
	for _, p := range kvs {
		size += len(p.Key) + len(p.Value)
	}
	base := C.malloc(C.size_t(max(size, 1)))
	data := len(kvs) * keyValueSize
	buf := unsafe.Slice((*byte)(base), max(size, 1))
	for i, p := range kvs {
		copy(buf[data:], p.Key)
		putRef(base, i*keyValueSize, unsafe.Add(base, data), len(p.Key))
		data += len(p.Key)
		copy(buf[data:], p.Value)
		putRef(base, i*keyValueSize+12, unsafe.Add(base, data), len(p.Value))
		data += len(p.Value)
	}
	return base
}

// keyArray lays keys out as an FDBKey array followed by their bytes.
func keyArray(keys [][]byte) unsafe.Pointer {
	size := len(keys) * keySize
	for _, k := range keys {
		size += len(k)
	}
	base := C.malloc(C.size_t(max(size, 1)))
	data := len(keys) * keySize
	buf := unsafe.Slice((*byte)(base), max(size, 1))
	for i, k := range keys {
		copy(buf[data:], k)
		putRef(base, i*keySize, unsafe.Add(base, data), len(k))
		data += len(k)
	}
	return base
}

// stringArray lays strs out as an array of char* followed by the
// NUL-terminated strings.
func stringArray(strs []string) unsafe.Pointer {
	size := len(strs) * 8
	for _, s := range strs {
		size += len(s) + 1
	}
	base := C.malloc(C.size_t(max(size, 1)))
	data := len(strs) * 8
	buf := unsafe.Slice((*byte)(base), max(size, 1))
	for i, s := range strs {
		copy(buf[data:], s)
		buf[data+len(s)] = 0
		*(*uintptr)(unsafe.Add(base, i*8)) = uintptr(unsafe.Add(base, data))
		data += len(s) + 1
	}
	return base
}
