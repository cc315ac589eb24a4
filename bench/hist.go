package main

import (
	"math/bits"
	"time"
)

// histogram is an HDR-style latency histogram: exact below 2^subBits
// nanoseconds, then 2^subBits buckets per power of two, so a recorded value
// is known to within 1/2^subBits (1.6%) whatever its magnitude. It is not
// safe for concurrent use: each worker records into its own and the runner
// merges them.
type histogram struct {
	counts [(65 - subBits) << subBits]uint64
	n      uint64
	max    int64
}

const subBits = 6

func bucketOf(v int64) int {
	if v < 1<<subBits {
		return int(max(v, 0))
	}
	l := bits.Len64(uint64(v))
	m := int(uint64(v) >> (l - subBits - 1)) // top subBits+1 bits: [2^s, 2^(s+1))
	return (l-subBits)<<subBits + m - 1<<subBits
}

// bucketValue is the middle of bucket b's range of values.
func bucketValue(b int) int64 {
	if b < 1<<subBits {
		return int64(b)
	}
	oct := b >> subBits
	shift := oct - 1
	low := int64(1<<subBits+b&(1<<subBits-1)) << shift
	return low + (int64(1)<<shift)/2
}

func (h *histogram) record(d time.Duration) {
	h.counts[bucketOf(int64(d))]++
	h.n++
	h.max = max(h.max, int64(d))
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the value at quantile q in [0, 1]: the smallest recorded
// value (to the bucket's precision) with at least q·n values at or below
// it, and never more than the largest value recorded. Zero if empty.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.999999)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for b, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(bucketValue(b), h.max))
		}
	}
	return time.Duration(h.max)
}
