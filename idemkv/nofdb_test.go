//go:build !fdb

package idemkv_test

import (
	"context"
	"errors"
	"testing"

	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/kv/fdbkv"
)

// Without the fdb tag, "fdb:" URIs fail with the stub's error, which says
// what to install.
func TestOpenFDBWithoutTag(t *testing.T) {
	for _, uri := range []string{"fdb:", "fdb:/etc/foundationdb/fdb.cluster"} {
		if _, err := idemkv.Open(context.Background(), uri, nil); !errors.Is(err, fdbkv.ErrNoFoundationDB) {
			t.Errorf("Open(%q): %v, want fdbkv.ErrNoFoundationDB", uri, err)
		}
	}
}
