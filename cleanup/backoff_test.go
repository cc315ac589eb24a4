package cleanup

import (
	"testing"
	"time"
)

// Run waits Interval after a success and after the first failure, then
// doubles per failure up to MaxBackoff, or Interval when that is longer.
func TestNextDelay(t *testing.T) {
	for _, tc := range []struct {
		interval time.Duration
		failures int64
		want     time.Duration
	}{
		{10 * time.Second, 0, 10 * time.Second},
		{10 * time.Second, 1, 10 * time.Second},
		{10 * time.Second, 2, 20 * time.Second},
		{10 * time.Second, 4, 80 * time.Second},
		{10 * time.Second, 6, MaxBackoff},
		{10 * time.Second, 1 << 40, MaxBackoff},
		{time.Hour, 5, time.Hour},
		{time.Millisecond, 3, 4 * time.Millisecond},
	} {
		j := &Janitor{cfg: config{interval: tc.interval}}
		if got := j.nextDelay(tc.failures); got != tc.want {
			t.Errorf("interval %v, %d failures: %v, want %v", tc.interval, tc.failures, got, tc.want)
		}
	}
}
