//go:build cgo

package fdbc

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// The network's lifecycle is once per process, so it runs in a child
// process: select, setup, run (blocking) until stop, and no restart.
func TestNetworkLifecycle(t *testing.T) {
	if os.Getenv("FDBC_NETWORK_CHILD") == "1" {
		networkLifecycle(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestNetworkLifecycle$", "-test.v")
	cmd.Env = append(os.Environ(), "FDBC_NETWORK_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func networkLifecycle(t *testing.T) {
	var h uintptr
	if c := fdb_setup_network(); c != errAPIVersionUnset {
		t.Fatalf("setup before select = %d, want api_version_unset", c)
	}
	if c := fdb_create_database(nil, &h); c != errAPIVersionUnset {
		t.Fatalf("create_database before select = %d, want api_version_unset", c)
	}
	if c := fdb_select_api_version_impl(710, 730); c != 0 {
		t.Fatal(c)
	}
	if c := fdb_run_network(); c != errNetworkNotSetup {
		t.Fatalf("run before setup = %d, want network_not_setup", c)
	}
	if c := fdb_create_database(nil, &h); c != errNetworkNotSetup {
		t.Fatalf("create_database before setup = %d, want network_not_setup", c)
	}
	if c := fdb_setup_network(); c != 0 {
		t.Fatal(c)
	}
	done := make(chan int32)
	go func() { done <- fdb_run_network() }()
	select {
	case c := <-done:
		t.Fatalf("run_network returned %d before stop_network", c)
	case <-time.After(50 * time.Millisecond):
	}
	if c := fdb_stop_network(); c != 0 {
		t.Fatal(c)
	}
	if c := <-done; c != 0 {
		t.Fatalf("run_network = %d after stop", c)
	}
	if c := fdb_setup_network(); c != errNetworkCannotRestart {
		t.Fatalf("setup after stop = %d, want network_cannot_be_restarted", c)
	}
	if c := fdb_stop_network(); c != errNetworkNotSetup {
		t.Fatalf("second stop = %d, want network_not_setup", c)
	}
}
