package kv

import "sync"

// Future is the result of an operation that may not have finished. Get
// blocks until it has. Get may be called any number of times, from any
// goroutine, and returns the same result every time.
type Future[T any] struct {
	once sync.Once
	wait func() (T, error)
	v    T
	err  error
}

// NewFuture returns a future whose result is wait's, computed on the first
// Get. Backends that talk to a server issue the request before returning the
// future and let wait block on its answer.
func NewFuture[T any](wait func() (T, error)) *Future[T] {
	return &Future[T]{wait: wait}
}

// Ready returns a future that is already resolved.
func Ready[T any](v T, err error) *Future[T] {
	f := &Future[T]{v: v, err: err}
	f.once.Do(func() {})
	return f
}

// Failed returns a future that is resolved with err.
func Failed[T any](err error) *Future[T] {
	var zero T
	return Ready(zero, err)
}

// Get waits for the result.
func (f *Future[T]) Get() (T, error) {
	f.once.Do(func() {
		f.v, f.err = f.wait()
		f.wait = nil
	})
	return f.v, f.err
}

// Err waits for the result and returns only its error; it is how a commit
// is awaited: tr.Commit().Err().
func (f *Future[T]) Err() error {
	_, err := f.Get()
	return err
}

// MustGet returns the result or panics with its error, as the FoundationDB
// bindings' MustGet does. Retry loops that accept MustGet (txn.Transact does)
// recover the panic and treat it as the function's error.
func (f *Future[T]) MustGet() T {
	v, err := f.Get()
	if err != nil {
		panic(err)
	}
	return v
}
