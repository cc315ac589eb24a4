package kv

import "time"

// Backoff is FoundationDB's OnError delay policy, for backends that
// implement OnError themselves: the first retry waits up to
// InitialRetryDelay, each later one up to twice the last, never more than
// the max retry delay, and the actual wait is that bound times a uniform
// random factor in [0, 1) (FoundationDB's jitter). The zero value is ready
// for use; Reset starts over.
type Backoff struct {
	bound time.Duration
}

// Next returns the next delay given the max retry delay and a uniform random
// number u in [0, 1).
func (b *Backoff) Next(maxDelay time.Duration, u float64) time.Duration {
	if b.bound == 0 {
		b.bound = InitialRetryDelay
	}
	bound := min(b.bound, maxDelay)
	b.bound = min(b.bound*2, maxDelay)
	if b.bound <= 0 {
		b.bound = InitialRetryDelay
	}
	return time.Duration(float64(bound) * u)
}

// Reset makes the next delay the first again.
func (b *Backoff) Reset() { b.bound = 0 }
