//go:build cgo && !fdbc

package fdbc

import "testing"

// ready selects API version 730 and sets up the network directly, as a C
// client would, the first time a test needs them.
func ready(t testing.TB) {
	t.Helper()
	readyOnce.Do(func() {
		if c := fdb_select_api_version_impl(730, 730); c != 0 {
			t.Fatalf("select API version: %d", c)
		}
		if c := fdb_setup_network(); c != 0 {
			t.Fatalf("setup network: %d", c)
		}
		go fdb_run_network()
	})
}
