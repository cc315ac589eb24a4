package kvtest

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/anishathalye/porcupine"
)

// maxModelKeys bounds the workload's key space so that the model state is a
// small comparable value.
const maxModelKeys = 8

type opKind uint8

const (
	opGet opKind = iota
	opRange
	opSet
	opAdd
	opClear
	opClearRange
)

// txnOp is one operation of a workload transaction over keys 0..Keys-1
// (stored as the key prefix followed by 'a'+i). Values are 8-byte
// little-endian unsigned integers, so Add is addition mod 2^64.
type txnOp struct {
	kind     opKind
	key, end int // key; [key, end) for ranges
	val      uint64
	limit    int
	reverse  bool
}

func (o txnOp) String() string {
	switch o.kind {
	case opGet:
		return fmt.Sprintf("get(%d)", o.key)
	case opRange:
		s := fmt.Sprintf("range[%d,%d)", o.key, o.end)
		if o.limit > 0 {
			s += fmt.Sprintf(" limit %d", o.limit)
		}
		if o.reverse {
			s += " rev"
		}
		return s
	case opSet:
		return fmt.Sprintf("set(%d,%d)", o.key, o.val)
	case opAdd:
		return fmt.Sprintf("add(%d,%d)", o.key, o.val)
	case opClear:
		return fmt.Sprintf("clear(%d)", o.key)
	default:
		return fmt.Sprintf("clear[%d,%d)", o.key, o.end)
	}
}

// txnInput is a whole transaction; txnOutput holds, for each operation,
// what it read (nil for writes and for a Get of an absent key).
type (
	txnInput  []txnOp
	txnOutput [][]cell
)

// cell is one key and value seen by a read.
type cell struct {
	key int
	val uint64
}

// genTxn draws a random transaction: 1..MaxOps operations, reads and writes
// mixed, over the small key space.
func genTxn(rng *rand.Rand, o HistoryOptions) txnInput {
	n := 1 + rng.IntN(o.MaxOps)
	in := make(txnInput, n)
	for i := range in {
		k := rng.IntN(o.Keys)
		e := k + 1 + rng.IntN(o.Keys-k)
		op := txnOp{key: k, end: e}
		switch p := rng.IntN(100); {
		case p < 30:
			op.kind = opGet
		case p < 45:
			op.kind = opRange
			if rng.IntN(2) == 0 {
				op.limit = 1 + rng.IntN(3)
			}
			op.reverse = rng.IntN(2) == 0
		case p < 70:
			op.kind = opSet
			op.val = rng.Uint64N(1000)
		case p < 85:
			op.kind = opAdd
			op.val = 1 + rng.Uint64N(10)
		case p < 95:
			op.kind = opClear
		default:
			op.kind = opClearRange
		}
		in[i] = op
	}
	return in
}

// modelState is the whole key space: a presence bit and a value per key.
// It is a comparable value, so porcupine's default equality works and
// Step can copy it freely.
type modelState struct {
	present uint8
	vals    [maxModelKeys]uint64
}

func (s modelState) has(k int) bool { return s.present&(1<<k) != 0 }

// apply runs in against s, returning the new state and whether every read
// matched out. Sequential application gives read-your-writes for free.
func (s modelState) apply(keys int, in txnInput, out txnOutput) (bool, modelState) {
	if len(out) != len(in) {
		return false, s
	}
	for i, op := range in {
		switch op.kind {
		case opGet:
			var want []cell
			if s.has(op.key) {
				want = []cell{{op.key, s.vals[op.key]}}
			}
			if !cellsEqual(want, out[i]) {
				return false, s
			}
		case opRange:
			var want []cell
			for j := range op.end - op.key {
				k := op.key + j
				if op.reverse {
					k = op.end - 1 - j
				}
				if op.limit > 0 && len(want) == op.limit {
					break
				}
				if s.has(k) {
					want = append(want, cell{k, s.vals[k]})
				}
			}
			if !cellsEqual(want, out[i]) {
				return false, s
			}
		case opSet:
			s.present |= 1 << op.key
			s.vals[op.key] = op.val
		case opAdd:
			if !s.has(op.key) {
				s.vals[op.key] = 0
			}
			s.present |= 1 << op.key
			s.vals[op.key] += op.val
		case opClear:
			s.present &^= 1 << op.key
			s.vals[op.key] = 0
		case opClearRange:
			for k := op.key; k < op.end && k < keys; k++ {
				s.present &^= 1 << k
				s.vals[k] = 0
			}
		}
	}
	return true, s
}

func cellsEqual(a, b []cell) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// historyModel is porcupine's model of the whole key space: one state, and
// each committed transaction one atomic step. No partitioning: a
// transaction touches several keys, so keys are not independent.
func historyModel(keys int) porcupine.Model {
	return porcupine.Model{
		Init: func() any { return modelState{} },
		Step: func(state, input, output any) (bool, any) {
			return state.(modelState).apply(keys, input.(txnInput), output.(txnOutput))
		},
		Hash: func(state any) uint64 {
			s := state.(modelState)
			h := uint64(s.present)
			for _, v := range s.vals {
				h = h*1099511628211 ^ v
			}
			return h
		},
		DescribeOperation: func(input, output any) string {
			in, out := input.(txnInput), output.(txnOutput)
			var sb strings.Builder
			for i, op := range in {
				if i > 0 {
					sb.WriteString("; ")
				}
				sb.WriteString(op.String())
				if op.kind == opGet || op.kind == opRange {
					fmt.Fprintf(&sb, "→%v", out[i])
				}
			}
			return sb.String()
		},
		DescribeState: func(state any) string {
			s := state.(modelState)
			var parts []string
			for k := range maxModelKeys {
				if s.has(k) {
					parts = append(parts, fmt.Sprintf("%d=%d", k, s.vals[k]))
				}
			}
			return "{" + strings.Join(parts, " ") + "}"
		},
	}
}
