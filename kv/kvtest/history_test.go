package kvtest

import (
	"testing"

	"github.com/anishathalye/porcupine"
)

// op builds a porcupine operation for a literal history.
func op(client int, call, ret int64, in txnInput, out txnOutput) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret}
}

func set(k int, v uint64) txnOp { return txnOp{kind: opSet, key: k, val: v} }
func get(k int) txnOp           { return txnOp{kind: opGet, key: k} }
func seen(k int, v uint64) []cell {
	return []cell{{k, v}}
}

func TestModelRejectsNonSerializableHistories(t *testing.T) {
	m := historyModel(3)
	for _, c := range []struct {
		name string
		ops  []porcupine.Operation
		want porcupine.CheckResult
	}{
		{
			// A read that starts after a write was acknowledged but does
			// not see it: serializable, but not strictly.
			name: "StaleReadAfterAcknowledgedWrite",
			ops: []porcupine.Operation{
				op(0, 0, 10, txnInput{set(0, 1)}, txnOutput{nil}),
				op(1, 20, 30, txnInput{get(0)}, txnOutput{nil}),
			},
			want: porcupine.Illegal,
		},
		{
			name: "ReadAfterAcknowledgedWrite",
			ops: []porcupine.Operation{
				op(0, 0, 10, txnInput{set(0, 1)}, txnOutput{nil}),
				op(1, 20, 30, txnInput{get(0)}, txnOutput{seen(0, 1)}),
			},
			want: porcupine.Ok,
		},
		{
			// Overlapping in time, the read may go either side of the write.
			name: "ConcurrentReadMissesWrite",
			ops: []porcupine.Operation{
				op(0, 0, 10, txnInput{set(0, 1)}, txnOutput{nil}),
				op(1, 5, 30, txnInput{get(0)}, txnOutput{nil}),
			},
			want: porcupine.Ok,
		},
		{
			// Write skew: each reads the key the other writes and misses
			// the other's write. No serial order explains both.
			name: "WriteSkew",
			ops: []porcupine.Operation{
				op(0, 0, 10, txnInput{get(1), set(0, 1)}, txnOutput{nil, nil}),
				op(1, 0, 10, txnInput{get(0), set(1, 1)}, txnOutput{nil, nil}),
			},
			want: porcupine.Illegal,
		},
		{
			// Fractured read: a transaction sees half of another's writes.
			name: "FracturedRead",
			ops: []porcupine.Operation{
				op(0, 0, 10, txnInput{set(0, 7), set(1, 7)}, txnOutput{nil, nil}),
				op(1, 0, 10, txnInput{get(0), get(1)}, txnOutput{seen(0, 7), nil}),
			},
			want: porcupine.Illegal,
		},
		{
			// Lost update: two adds both read 0 and both commit.
			name: "LostUpdateThroughRange",
			ops: []porcupine.Operation{
				op(0, 0, 10, txnInput{{kind: opRange, key: 0, end: 3}, set(0, 1)}, txnOutput{nil, nil}),
				op(1, 0, 10, txnInput{{kind: opRange, key: 0, end: 3}, set(0, 2)}, txnOutput{nil, nil}),
				op(2, 20, 30, txnInput{get(0)}, txnOutput{seen(0, 2)}),
			},
			want: porcupine.Illegal,
		},
		{
			name: "AddsAndLimitedReverseRange",
			ops: []porcupine.Operation{
				op(0, 0, 10, txnInput{{kind: opAdd, key: 2, val: 3}, {kind: opAdd, key: 2, val: 4}, set(0, 9)}, txnOutput{nil, nil, nil}),
				op(1, 20, 30, txnInput{{kind: opRange, key: 0, end: 3, limit: 1, reverse: true}}, txnOutput{seen(2, 7)}),
				op(1, 40, 50, txnInput{{kind: opClearRange, key: 1, end: 3}, {kind: opRange, key: 0, end: 3}}, txnOutput{nil, seen(0, 9)}),
			},
			want: porcupine.Ok,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := porcupine.CheckOperationsTimeout(m, c.ops, 0); got != c.want {
				t.Fatalf("porcupine says %s, want %s", got, c.want)
			}
		})
	}
}
