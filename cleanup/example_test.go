package cleanup_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/idemkv/idemkv/cleanup"
	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/embedded"
	"github.com/idemkv/idemkv/txn"
)

// A janitor sweeps the markers that txn.Transact leaves, once they are older
// than the minimum age. Here the engine's version clock is stepped forward
// instead of waiting ten minutes.
func ExampleJanitor_Step() {
	clock := embedded.NewManualClock(time.Now())
	db, err := embedded.OpenMem(&embedded.Options{Clock: clock.Now})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()

	for range 3 {
		_, err := txn.Transact(ctx, db, func(tr kv.Transaction) (struct{}, error) {
			tr.Set([]byte("k"), []byte("v"))
			return struct{}{}, nil
		}, nil)
		if err != nil {
			log.Fatal(err)
		}
	}
	j, err := cleanup.New(db, nil) // defaults: txn's prefix, ten minutes
	if err != nil {
		log.Fatal(err)
	}
	defer j.Close()

	clock.Advance(11 * time.Minute)
	res, err := j.Step(ctx)
	fmt.Println(err, res.Cutoff > 0)

	all, _ := kv.PrefixRange(txn.DefaultPrefix)
	left, err := txn.StockTransact(ctx, db, func(tr kv.Transaction) ([]kv.KeyValue, error) {
		return tr.GetRange(all, kv.RangeOptions{}).Get()
	})
	markers := 0
	for _, e := range left {
		if _, err := txn.ParseMarkerKey(txn.DefaultPrefix, e.Key); err == nil {
			markers++
		}
	}
	// What remains is the watermark and the sentinels of the shards used.
	fmt.Println("markers left:", markers, err)
	// Output:
	// <nil> true
	// markers left: 0 <nil>
}
