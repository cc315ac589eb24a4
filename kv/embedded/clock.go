package embedded

import (
	"sync"
	"time"
)

// ManualClock is a clock for Options.Clock that moves only when told to, so
// that a test can age versions — transaction lifetimes, leases, retention,
// a janitor's minimum age — without sleeping. Versions still advance by one
// per commit while it stands still. It is safe for concurrent use; the zero
// value starts at the zero time.
type ManualClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewManualClock returns a clock that reads start until advanced.
func NewManualClock(start time.Time) *ManualClock { return &ManualClock{now: start} }

// Now returns the clock's time; pass the method value as Options.Clock.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock by d, which may be negative (versions never go
// back even if the clock does).
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
