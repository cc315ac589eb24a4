//go:build cgo

package fdbc

import "C"

import (
	"sync"
	"unsafe"
)

// API versions the shim implements: 730 is the header's, and 610 the
// oldest whose behaviour kv/embedded has (timeouts, retry limits and max
// retry delays that survive OnError).
const (
	MinAPIVersion = 610
	MaxAPIVersion = 730
)

// network is the process-wide client state libfdb_c keeps: the selected
// API version and the network thread's lifecycle.
var network struct {
	sync.Mutex
	apiVersion int  // 0 until selected
	setup      bool // fdb_setup_network succeeded
	running    bool // fdb_run_network is blocked
	stopped    bool // fdb_stop_network ran; the network cannot restart
	stop       chan struct{}
}

// fdb_select_api_version_impl selects the API version once per process.
// The header version the caller was compiled with must be at least the
// runtime version (api_version_invalid otherwise), both within what this
// library implements (api_version_not_supported); selecting a different
// version later fails with api_version_already_set.
//
//export fdb_select_api_version_impl
func fdb_select_api_version_impl(runtime, header int32) int32 {
	network.Lock()
	defer network.Unlock()
	switch {
	case runtime > header:
		return errAPIVersionInvalid
	case runtime < MinAPIVersion || runtime > MaxAPIVersion || header > MaxAPIVersion:
		return errAPIVersionUnsupported
	case network.apiVersion != 0 && network.apiVersion != int(runtime):
		return errAPIVersionAlreadySet
	}
	network.apiVersion = int(runtime)
	return errSuccess
}

//export fdb_get_max_api_version
func fdb_get_max_api_version() int32 { return MaxAPIVersion }

// fdb_network_set_option accepts every network option FoundationDB 7.3
// defines as a documented no-op (there is no network, trace file, TLS or
// external client here), checking integer parameters' width; an unknown
// code fails with invalid_option.
//
//export fdb_network_set_option
func fdb_network_set_option(code int32, value *byte, n int32) int32 {
	network.Lock()
	unset := network.apiVersion == 0
	network.Unlock()
	if unset {
		return errAPIVersionUnset
	}
	return int32(checkOption(networkOptions, int(code), value, n))
}

//export fdb_setup_network
func fdb_setup_network() int32 {
	network.Lock()
	defer network.Unlock()
	switch {
	case network.apiVersion == 0:
		return errAPIVersionUnset
	case network.stopped:
		return errNetworkCannotRestart
	case network.setup:
		return errNetworkAlreadySetup
	}
	network.setup = true
	network.stop = make(chan struct{})
	return errSuccess
}

// fdb_run_network blocks until fdb_stop_network, as libfdb_c's network
// thread does; the shim's work runs on the callers' goroutines and its own,
// so the loop has nothing else to do.
//
//export fdb_run_network
func fdb_run_network() int32 {
	network.Lock()
	var code int32
	switch {
	case network.running:
		code = errNetworkAlreadySetup
	case !network.setup || network.stopped:
		code = errNetworkNotSetup
	}
	if code != errSuccess {
		network.Unlock()
		return code
	}
	network.running = true
	stop := network.stop
	network.Unlock()
	<-stop
	network.Lock()
	network.running = false
	network.Unlock()
	return errSuccess
}

//export fdb_stop_network
func fdb_stop_network() int32 {
	network.Lock()
	defer network.Unlock()
	if !network.setup || network.stopped {
		return errNetworkNotSetup
	}
	network.stopped = true
	close(network.stop)
	return errSuccess
}

// networkReady reports the error creating a database meets: the API
// version and the network must be set up first.
func networkReady() int {
	network.Lock()
	defer network.Unlock()
	switch {
	case network.apiVersion == 0:
		return errAPIVersionUnset
	case !network.setup:
		return errNetworkNotSetup
	}
	return errSuccess
}

// goBytes copies n bytes at p into Go memory. The caller has checked n >= 0.
func goBytes(p *byte, n int32) []byte {
	if n <= 0 || p == nil {
		return []byte{}
	}
	return append([]byte(nil), unsafe.Slice(p, int(n))...)
}
