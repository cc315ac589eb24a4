//go:build fdb

package fdbkv

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/apple/foundationdb/bindings/go/src/fdb"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/kvtest"
	"github.com/idemkv/idemkv/txn"
)

// openCluster opens the cluster named by FDB_CLUSTER_FILE, or skips.
func openCluster(t *testing.T) *DB {
	t.Helper()
	path := os.Getenv(ClusterFileEnv)
	if path == "" {
		t.Skip("no FoundationDB cluster: set " + ClusterFileEnv + " to a cluster file (e.g. /etc/foundationdb/fdb.cluster) to run this test against it")
	}
	db, err := Open(path, nil)
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestConformance runs the backend conformance suite against a real
// cluster. The suite works under random prefixes and clears them, so a
// shared cluster is fine.
func TestConformance(t *testing.T) {
	openCluster(t) // skip early, before the suite fans out
	kvtest.Run(t, func(t *testing.T) kv.Database { return openCluster(t) })
}

func TestOpenSecondAPIVersionFails(t *testing.T) {
	db := openCluster(t)
	_ = db
	_, err := Open(os.Getenv(ClusterFileEnv), &Options{APIVersion: 710})
	var ke *kv.Error
	if !errors.As(err, &ke) || ke.Code != codeAPIVersionAlreadySet {
		t.Fatalf("second Open with another API version = %v; want api_version_already_set", err)
	}
}

func TestContextCancelMapsToCancelled(t *testing.T) {
	db := openCluster(t)
	ctx, cancel := context.WithCancel(context.Background())
	tr, err := db.CreateTransaction(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	_, err = tr.Get([]byte("fdbkv-test/cancel")).Get()
	if !errors.Is(err, kv.ErrTransactionCancelled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Get after cancel = %v; want transaction_cancelled caused by context.Canceled", err)
	}
	if err := tr.OnError(err); !errors.Is(err, context.Canceled) {
		t.Fatalf("OnError after cancel = %v; want the context's error", err)
	}
}

func TestContextDeadlineMapsToTimedOut(t *testing.T) {
	db := openCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	tr, err := db.CreateTransaction(ctx)
	if err != nil {
		if !errors.Is(err, kv.ErrTransactionTimedOut) {
			t.Fatal(err)
		}
		return
	}
	<-ctx.Done()
	_, err = tr.Get([]byte("fdbkv-test/deadline")).Get()
	if !errors.Is(err, kv.ErrTransactionTimedOut) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get after deadline = %v; want transaction_timed_out caused by context.DeadlineExceeded", err)
	}
}

func TestOnErrorDoesNotRetryTimeouts(t *testing.T) {
	db := openCluster(t)
	tr, err := db.CreateTransaction(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	in := kv.NewError(kv.CodeTransactionTimedOut)
	if got := tr.OnError(in); got != in {
		t.Fatalf("OnError(1031) = %v; want the same error back", got)
	}
	if err := tr.OnError(kv.NewError(kv.CodeClusterVersionChanged)); err != nil {
		t.Fatalf("OnError(1039) = %v; want nil after a reset and backoff", err)
	}
}

func TestUnwrapAndTransact(t *testing.T) {
	d := openCluster(t)
	key := fdb.Key("fdbkv-test/transact")
	got, err := Transact(context.Background(), d.db, func(tr fdb.Transaction) (int, error) {
		tr.Add(key, []byte{1, 0, 0, 0, 0, 0, 0, 0})
		return 1, nil
	}, nil)
	if err != nil || got != 1 {
		t.Fatalf("Transact = %v, %v", got, err)
	}
	tr, err := d.CreateTransaction(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := Unwrap(tr); !ok {
		t.Fatal("Unwrap failed on an fdbkv transaction")
	}
	tr.Clear(key)
	if err := tr.Commit().Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := Transact[int](context.Background(), d.db, nil, nil); !errors.Is(err, txn.ErrNilFunc) {
		t.Fatalf("Transact(nil fn) = %v; want txn.ErrNilFunc", err)
	}
}
