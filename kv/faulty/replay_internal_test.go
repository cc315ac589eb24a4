package faulty

import (
	"context"
	"testing"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/embedded"
)

// TestRecordsOnlyForLateCommits checks that a transaction keeps copies of
// its operations exactly when its DB can make a late commit, which replays
// them: a DB without late faults forwards and keeps nothing.
func TestRecordsOnlyForLateCommits(t *testing.T) {
	inner, err := embedded.OpenMem(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	for _, c := range []struct {
		name string
		cfg  Config
		want bool
	}{
		{"none", Config{}, false},
		{"applied and not applied", Config{UnknownResultApplied: 0.5, UnknownResultNotApplied: 0.5}, false},
		{"unknown result late", Config{UnknownResultLate: 0.1}, true},
		{"timed out late", Config{TimedOutLate: 0.1}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			db := Wrap(inner, c.cfg)
			defer db.Close()
			tr, err := db.CreateTransaction(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Cancel()
			tr.Set([]byte("a"), []byte("1"))
			tr.Atomic(kv.Add, []byte("b"), []byte{1})
			tr.Get([]byte("c"))
			if err := tr.AddReadConflictRange(kv.SingleKeyRange([]byte("d"))); err != nil {
				t.Fatal(err)
			}
			ops := len(tr.(*transaction).att.ops)
			if got := ops > 0; got != c.want {
				t.Fatalf("%d operations recorded; want recording %v", ops, c.want)
			}
			if c.want && ops != 4 {
				t.Fatalf("%d operations recorded, want 4", ops)
			}
		})
	}
}
