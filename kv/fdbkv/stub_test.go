//go:build !fdb

package fdbkv

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestStubOpenSaysHowToGetFoundationDB(t *testing.T) {
	db, err := Open("", nil)
	if db != nil || !errors.Is(err, ErrNoFoundationDB) {
		t.Fatalf("Open = %v, %v; want nil, ErrNoFoundationDB", db, err)
	}
	for _, want := range []string{"libfdb_c 7.3", "-tags fdb"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	var zero DB
	if _, err := zero.CreateTransaction(context.Background()); !errors.Is(err, ErrNoFoundationDB) {
		t.Errorf("CreateTransaction = %v; want ErrNoFoundationDB", err)
	}
}
