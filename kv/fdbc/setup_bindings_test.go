//go:build fdbc

package fdbc

import (
	"testing"

	"github.com/apple/foundationdb/bindings/go/src/fdb"
)

// ready lets the bindings select API version 730 and start the network, as
// they do for any program, so that direct calls and the bindings share one
// process state.
func ready(t testing.TB) {
	t.Helper()
	readyOnce.Do(func() {
		if err := fdb.APIVersion(730); err != nil {
			t.Fatal(err)
		}
		if _, err := fdb.OpenDatabase(""); err != nil { // starts the network thread
			t.Fatal(err)
		}
	})
}
