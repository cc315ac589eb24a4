package idemkv_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"

	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/embedded"
)

// A store over a database the program already has open (on a cluster: an
// fdb.Database adapted with fdbkv.Wrap), logging warnings and errors.
func ExampleNew() {
	db, err := embedded.OpenMem(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close() // the program's: the store does not close it
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := idemkv.New(context.Background(), db, &idemkv.Options{Logger: logger})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	n, err := idemkv.Transact(context.Background(), s, func(tr kv.Transaction) (int, error) {
		tr.Set([]byte("greeting"), []byte("hello"))
		return 1, nil
	})
	fmt.Println(n, err)
	// Output: 1 <nil>
}

// A readiness probe: the janitor's state and last error.
func ExampleStore_Health() {
	s, err := idemkv.Open(context.Background(), "mem:", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	h := s.Health()
	fmt.Println(h.Janitor, h.Err())
	// Output: running <nil>
}
