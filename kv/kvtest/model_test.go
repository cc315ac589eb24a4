package kvtest

import (
	"errors"
	"flag"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"
)

var seedFlag = flag.Uint64("seed", 0, "replay one seed of the randomized tests (0: seeds 1 to 50)")

// simulate is an independent oracle for the model: it runs in against a
// plain map and returns what each read sees.
func simulate(state map[int]uint64, in txnInput) txnOutput {
	out := make(txnOutput, len(in))
	for i, op := range in {
		switch op.kind {
		case opGet:
			if v, ok := state[op.key]; ok {
				out[i] = []cell{{op.key, v}}
			}
		case opRange:
			var keys []int
			for k := range state {
				if k >= op.key && k < op.end {
					keys = append(keys, k)
				}
			}
			sort.Ints(keys)
			if op.reverse {
				sort.Sort(sort.Reverse(sort.IntSlice(keys)))
			}
			if op.limit > 0 && len(keys) > op.limit {
				keys = keys[:op.limit]
			}
			for _, k := range keys {
				out[i] = append(out[i], cell{k, state[k]})
			}
		case opSet:
			state[op.key] = op.val
		case opAdd:
			state[op.key] += op.val
		case opClear:
			delete(state, op.key)
		case opClearRange:
			for k := op.key; k < op.end; k++ {
				delete(state, k)
			}
		}
	}
	return out
}

// TestModelAgreesWithOracle builds sequential histories with the map oracle
// and checks that porcupine, with the model, accepts each and rejects it
// once one read is corrupted.
func TestModelAgreesWithOracle(t *testing.T) {
	seeds := []uint64{*seedFlag}
	if *seedFlag == 0 {
		seeds = seeds[:0]
		for s := range uint64(50) {
			seeds = append(seeds, s+1)
		}
	}
	o, err := (&HistoryOptions{Keys: 4, MaxOps: 6}).withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, seed := range seeds {
		rng := rand.New(rand.NewPCG(seed, 0x6b767465737421))
		state := map[int]uint64{}
		var ops []porcupine.Operation
		for i := range 40 {
			in := genTxn(rng, o)
			out := simulate(state, in)
			ops = append(ops, porcupine.Operation{ClientId: 0, Input: in, Call: int64(2 * i), Output: out, Return: int64(2*i + 1)})
		}
		m := historyModel(o.Keys)
		if res := porcupine.CheckOperationsTimeout(m, ops, 0); res != porcupine.Ok {
			t.Fatalf("seed %d: sequential history rejected (%s); replay: go test ./kv/kvtest -run TestModelAgreesWithOracle -seed=%d", seed, res, seed)
		}
		// Corrupt the last non-empty read.
		corrupted := false
		for i := len(ops) - 1; i >= 0 && !corrupted; i-- {
			out := ops[i].Output.(txnOutput)
			for j := range out {
				if len(out[j]) > 0 {
					bad := append(txnOutput{}, out...)
					bad[j] = append([]cell{}, out[j]...)
					bad[j][0].val++
					ops[i].Output = bad
					corrupted = true
					break
				}
			}
		}
		if !corrupted {
			continue
		}
		checked++
		if res := porcupine.CheckOperationsTimeout(m, ops, 0); res != porcupine.Illegal {
			t.Fatalf("seed %d: history with a corrupted read accepted (%s); replay: go test ./kv/kvtest -run TestModelAgreesWithOracle -seed=%d", seed, res, seed)
		}
	}
	if checked == 0 {
		t.Fatal("no history had a read to corrupt; the rejection half checked nothing")
	}
}

func TestVerifyRejectsNilDatabase(t *testing.T) {
	if _, err := VerifyStrictSerializable(nil, 1, nil); err == nil || !strings.Contains(err.Error(), "nil kv.Database") {
		t.Fatalf("VerifyStrictSerializable(nil): %v, want an error naming the nil database", err)
	}
}

func TestHistoryOptionsRejectBadValues(t *testing.T) {
	for _, c := range []struct {
		opts  HistoryOptions
		field string
	}{
		{HistoryOptions{Keys: maxModelKeys + 1}, "HistoryOptions.Keys"},
		{HistoryOptions{Clients: -1}, "HistoryOptions.Clients"},
		{HistoryOptions{MaxOps: 33}, "HistoryOptions.MaxOps"},
		{HistoryOptions{CheckTimeout: -1}, "HistoryOptions.CheckTimeout"},
	} {
		_, err := VerifyStrictSerializable(nil, 1, &c.opts)
		if err == nil || !strings.Contains(err.Error(), c.field) || errors.Is(err, ErrNotStrictlySerializable) {
			t.Errorf("options %+v: error %v, want one naming %s", c.opts, err, c.field)
		}
	}
}
