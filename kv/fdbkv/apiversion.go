package fdbkv

import (
	"strconv"
	"sync"

	"github.com/idemkv/idemkv/kv"
)

// FoundationDB lets a process select its API version once; the bindings
// return api_version_already_set (2201) for any later, different request.
// apiVersion remembers what this package selected so that a second Open
// with another version fails with a message that says so, before touching
// the bindings.
var apiVersion struct {
	sync.Mutex
	selected int // 0 until the first successful selection
}

// selectAPIVersion selects v once per process through set (the bindings'
// fdb.APIVersion, or a fake in tests). current reports a version selected
// outside this package (by user code calling fdb.APIVersion directly), 0 if
// none. Calling it again with the same version is a no-op.
func selectAPIVersion(v int, current func() int, set func(int) error) error {
	if err := validateAPIVersion(v); err != nil {
		return err
	}
	apiVersion.Lock()
	defer apiVersion.Unlock()
	if apiVersion.selected == 0 {
		if cur := current(); cur != 0 {
			apiVersion.selected = cur
		}
	}
	if s := apiVersion.selected; s != 0 {
		if s == v {
			return nil
		}
		return &kv.Error{Code: codeAPIVersionAlreadySet, Detail: "api_version_already_set: fdbkv: API version " +
			strconv.Itoa(v) + " requested but " + strconv.Itoa(s) + " is already selected in this process; " +
			"FoundationDB allows one API version per process, so open every database with the same Options.APIVersion"}
	}
	if err := set(v); err != nil {
		return err
	}
	apiVersion.selected = v
	return nil
}
