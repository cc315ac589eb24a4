package embedded

import (
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/idemkv/idemkv/kv"
)

// ErrFailed is wrapped by every commit error of a DB that has failed: a
// write or sync of its log failed (a full disk, an I/O error), so the
// database accepts no more commits. Reads of what was committed before keep
// working and Close works; reopen the database once the cause is fixed
// (space freed, disk replaced) and it recovers every acknowledged commit.
// The error wraps the storage error too, so errors.Is(err, syscall.ENOSPC)
// tells a full disk apart.
var ErrFailed = errors.New("embedded: the database failed a disk write and accepts no more commits (reads still work); fix the cause, then Close and reopen it")

// failure is a DB's failed state: set once, by the first fatal error Pebble
// reports (through failLogger.Fatalf, where Pebble would otherwise exit the
// process) or by a background I/O error, and never cleared.
type failure struct {
	once  sync.Once
	err   atomic.Pointer[error] // wraps ErrFailed and cause
	cause error                 // written before done is closed
	done  chan struct{}         // closed once err is set
}

func newFailure() *failure { return &failure{done: make(chan struct{})} }

// set records err as the cause of failure unless one is already recorded.
func (f *failure) set(err error) {
	f.once.Do(func() {
		e := fmt.Errorf("%w: %w", ErrFailed, err)
		f.cause = err
		f.err.Store(&e)
		close(f.done)
	})
}

// openError is the error an Open that met a failure returns: the storage
// error, with what to do about it.
func (f *failure) openError() error {
	<-f.done
	return fmt.Errorf("the disk refused a write (free space or fix the disk, then open again): %w", f.cause)
}

// get returns the recorded failure (wrapping ErrFailed), or nil.
func (f *failure) get() error {
	if p := f.err.Load(); p != nil {
		return *p
	}
	return nil
}

// failLogger is the logger Pebble gets. Pebble calls Fatalf where it cannot
// continue (a commit whose log write or sync failed, a MANIFEST it could
// not write) and expects it to exit the process; a library must never exit
// its host, so Fatalf records the failure, logs it once, and returns. Pebble
// returns normally after Fatalf in those paths (its commit returns nil), so
// the committer checks the failure after every apply instead of trusting
// that nil: see commitGroup. Errorf is rate-limited, since Pebble retries a
// failed flush in a tight loop and reports each attempt.
type failLogger struct {
	fail *failure
	out  *log.Logger

	mu struct {
		sync.Mutex
		// last is when each message format was last printed; suppressed
		// counts what was dropped since.
		last       map[string]time.Time
		suppressed map[string]int
	}
}

func newFailLogger(f *failure) *failLogger {
	l := &failLogger{fail: f, out: log.New(os.Stderr, "", log.LstdFlags)}
	l.mu.last = make(map[string]time.Time)
	l.mu.suppressed = make(map[string]int)
	return l
}

// errorInterval is how often one kind of Pebble error is printed.
const errorInterval = 10 * time.Second

func (l *failLogger) Infof(string, ...any) {}

func (l *failLogger) Errorf(format string, args ...any) {
	l.mu.Lock()
	now := time.Now()
	if t, ok := l.mu.last[format]; ok && now.Sub(t) < errorInterval {
		l.mu.suppressed[format]++
		l.mu.Unlock()
		return
	}
	n := l.mu.suppressed[format]
	l.mu.last[format], l.mu.suppressed[format] = now, 0
	l.mu.Unlock()
	msg := fmt.Sprintf(format, args...)
	if n > 0 {
		msg += fmt.Sprintf(" (and %d more like it in the last %v)", n, errorInterval)
	}
	if !strings.HasPrefix(msg, "pebble: ") {
		msg = "pebble: " + msg
	}
	_ = l.out.Output(2, "embedded: "+msg)
}

func (l *failLogger) Fatalf(format string, args ...any) {
	l.fail.set(&pebbleFatal{msg: fmt.Sprintf(format, args...), cause: firstError(args)})
	l.Errorf("%s", fmt.Sprintf(format, args...)+" (the database now refuses commits)")
}

// backgroundError is Pebble's EventListener.BackgroundError: a failed
// flush or compaction. An I/O error there means the disk cannot take the
// data the log holds, so the DB fails (commits stop; the log keeps every
// acknowledged commit for the next open); anything else is only logged.
func (l *failLogger) backgroundError(err error) {
	l.Errorf("background error: %s", err)
	if isIOError(err) {
		l.fail.set(err)
		// Pebble retries a failed flush at once, forever (its TODO: "count
		// consecutive flush errors and backoff"), with its mutex held; on a
		// full disk that is a hot loop until Close. Slow it down here:
		// nothing else needs Pebble's mutex on a failed DB but Close, which
		// waits at most this long.
		time.Sleep(failedRetryDelay)
	}
}

// failedRetryDelay paces Pebble's retries of a failed flush or compaction.
const failedRetryDelay = 100 * time.Millisecond

// isIOError reports whether err is a disk failure: no space, a quota, an
// I/O error, a read-only filesystem.
func isIOError(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EIO) ||
		errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EROFS)
}

// pebbleFatal is a failure Pebble reported through Fatalf: its message, and
// the error among its arguments, for errors.Is.
type pebbleFatal struct {
	msg   string
	cause error
}

func (e *pebbleFatal) Error() string { return e.msg }
func (e *pebbleFatal) Unwrap() error { return e.cause }

func firstError(args []any) error {
	for _, a := range args {
		if err, ok := a.(error); ok {
			return err
		}
	}
	return nil
}

// listener returns the Pebble event listener that reports background errors
// to l.
func (l *failLogger) listener() *pebble.EventListener {
	return &pebble.EventListener{BackgroundError: l.backgroundError}
}

// failedCommitError is what a commit gets from a failed DB: io_error
// (1510, FoundationDB's "Disk i/o operation failed"), wrapping the failure.
// It is not retryable: only a reopen can make the next attempt succeed.
func failedCommitError(ferr error) error {
	return &kv.Error{Code: kv.CodeIOError, Cause: ferr}
}

// abandoned holds the Pebble opens that openPebble gave up waiting for, by
// directory: each channel is closed once that open has returned and its DB
// (if any) has been closed, releasing the directory's LOCK.
var abandoned struct {
	sync.Mutex
	dirs map[string]chan struct{}
}

// abandonedWait is how long an Open waits for an earlier, abandoned open of
// the same directory to let go of it.
const abandonedWait = 2 * time.Second

// openPebble opens Pebble, giving up as soon as Pebble reports a disk
// failure. Pebble's Open flushes the log it replays and waits for that
// flush, and it retries a failed flush forever: on a disk without room for
// it, Open would never return (and it logged each attempt). The abandoned
// open goes on in the background, retrying every failedRetryDelay; if
// space appears it completes and is closed at once. Until then it holds
// the directory's LOCK, so a later Open of the same directory first waits
// up to abandonedWait for it and otherwise says why it cannot proceed.
func openPebble(dir string, po *pebble.Options, fail *failure) (*pebble.DB, error) {
	key := dir
	if abs, err := filepath.Abs(dir); err == nil {
		key = abs
	}
	abandoned.Lock()
	prev := abandoned.dirs[key]
	abandoned.Unlock()
	if prev != nil {
		select {
		case <-prev:
		case <-time.After(abandonedWait):
			return nil, fmt.Errorf("an earlier Open of this directory failed on a disk error and is still waiting for the disk; free space or fix the disk, then retry")
		}
	}

	type result struct {
		pdb *pebble.DB
		err error
	}
	ch := make(chan result, 1)
	go func() {
		pdb, err := pebble.Open(dir, po)
		ch <- result{pdb, err}
	}()
	select {
	case r := <-ch:
		return r.pdb, r.err
	case <-fail.done:
	}
	done := make(chan struct{})
	abandoned.Lock()
	if abandoned.dirs == nil {
		abandoned.dirs = make(map[string]chan struct{})
	}
	abandoned.dirs[key] = done
	abandoned.Unlock()
	go func() {
		if r := <-ch; r.pdb != nil {
			closeQuietly(r.pdb)
		}
		abandoned.Lock()
		if abandoned.dirs[key] == done {
			delete(abandoned.dirs, key)
		}
		abandoned.Unlock()
		close(done)
	}()
	return nil, fail.openError()
}
