package main

import (
	"bytes"
	"context"
	"flag"
	"strings"
	"testing"
)

var seedFlag = flag.Uint64("seed", 0, "replay one seed of TestConsumerExample (0: the fixed list)")

// The keyed consumer's total must equal the orders' true total, and the
// naive one must overshoot by exactly the redelivered amounts' sum — or
// the run redelivered nothing and tested nothing.
func TestConsumerExample(t *testing.T) {
	seeds := []uint64{1, 2, 3}
	if *seedFlag != 0 {
		seeds = []uint64{*seedFlag}
	}
	for _, sd := range seeds {
		c := config{messages: 80, workers: 4, redeliver: 0.5, faults: 0.1, seed: sd}
		var out bytes.Buffer
		got, err := run(context.Background(), &out, c)
		if err != nil {
			t.Fatalf("seed %d: %v\n%s\nreplay: go test ./examples/consumer -run TestConsumerExample -seed %d", sd, err, out.String(), sd)
		}
		var redelivered int64
		seen := map[string]bool{}
		for _, m := range deliveriesOf(c) {
			if seen[m.ID] {
				redelivered += m.Amount
			}
			seen[m.ID] = true
		}
		if got.keyed != got.want || got.naive != got.want+redelivered || redelivered == 0 {
			t.Fatalf("seed %d: keyed %d, naive %d, want %d and %d (+%d redelivered)\n%s", sd, got.keyed, got.naive, got.want, got.want+redelivered, redelivered, out.String())
		}
		if got.replays != got.deliveries-got.messages || !strings.Contains(out.String(), "each message counted once") {
			t.Fatalf("seed %d: %d repeats recognised for %d deliveries of %d messages\n%s", sd, got.replays, got.deliveries, got.messages, out.String())
		}
	}
}

func TestConsumerBadFlags(t *testing.T) {
	for _, bad := range []config{
		{messages: 0, workers: 1},
		{messages: 1, workers: 0},
		{messages: 1, workers: 1, redeliver: 0.95},
		{messages: 1, workers: 1, faults: 0.6},
	} {
		if _, err := run(context.Background(), &bytes.Buffer{}, bad); err == nil || !strings.Contains(err.Error(), "must") {
			t.Errorf("%+v: %v, want an error naming the flag's range", bad, err)
		}
	}
}
