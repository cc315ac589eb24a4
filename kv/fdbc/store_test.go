//go:build fdbc

package fdbc

import (
	"testing"
)

// A durable store whose last reference drops while another caller opens the
// same directory: the opener waits for the close to finish, instead of
// finding the directory's LOCK still held (io_error 1510). The bindings
// drop references from finalizers, on the GC's goroutine, so a program that
// destroys a database and creates one on the same directory races this.
func TestReopenWhileClosing(t *testing.T) {
	dir := t.TempDir() + "/"
	for i := range 30 {
		s, code := clusterStore(dir)
		if code != 0 {
			t.Fatalf("round %d: open: error %d", i, code)
		}
		go s.unref()
		s2, code := clusterStore(dir)
		if code != 0 {
			t.Fatalf("round %d: reopening while the last reference drops: error %d", i, code)
		}
		s2.unref()
	}
}
