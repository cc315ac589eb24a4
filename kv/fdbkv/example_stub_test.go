//go:build !fdb

package fdbkv_test

import (
	"fmt"

	"github.com/idemkv/idemkv/kv/fdbkv"
)

// Without the fdb build tag there is no FoundationDB client to talk to, and
// Open says what to do about it.
func ExampleOpen_withoutFDBTag() {
	_, err := fdbkv.Open("", nil)
	fmt.Println(err)
	// Output: idemkv was built without FoundationDB support: install the FoundationDB client (libfdb_c 7.3) and build with -tags fdb
}
