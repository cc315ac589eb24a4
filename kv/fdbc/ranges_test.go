//go:build cgo

package fdbc

import (
	"context"
	"fmt"
	"testing"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/embedded"
)

// countingReader counts the pairs the engine returns to readRange.
type countingReader struct {
	kv.ReadTransaction
	pairs int
}

func (c *countingReader) GetRange(r kv.Range, o kv.RangeOptions) *kv.Future[[]kv.KeyValue] {
	kvs, err := c.ReadTransaction.GetRange(r, o).Get()
	c.pairs += len(kvs)
	return kv.Ready(kvs, err)
}

// A byte target or row limit stops the read within one batch of it, however
// large the range: nothing is materialised beyond what the call returns.
func TestReadRangeReadsNoFurtherThanItsLimits(t *testing.T) {
	db, err := embedded.OpenMem(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tr, _ := db.CreateTransaction(context.Background())
	for i := range 5000 {
		tr.Set(fmt.Appendf(nil, "k%05d", i), make([]byte, 90)) // 96 bytes a pair
	}
	if err := tr.Commit().Err(); err != nil {
		t.Fatal(err)
	}
	all := kv.Range{Begin: []byte("k"), End: []byte("l")}
	for _, c := range []struct {
		name              string
		rows, target      int
		reverse           bool
		wantPairs         int
		wantMore          bool
		maxReadFromEngine int
	}{
		{"SMALL's 256 bytes", 0, 256, false, 3, true, batchRows},
		{"SERIAL's 80000 bytes", 0, 80000, true, 834, true, 834 + batchRows},
		{"row limit alone", 10, 0, false, 10, true, 10},
		{"row limit under a byte target", 5, 80000, false, 5, true, 5},
		{"everything", 0, 1 << 30, false, 5000, false, 5000 + batchRows},
	} {
		tr.Reset()
		rd := &countingReader{ReadTransaction: tr.Snapshot()}
		kvs, more, err := readRange(rd, all, c.rows, c.target, c.reverse)
		if err != nil {
			t.Fatal(err)
		}
		if len(kvs) != c.wantPairs || more != c.wantMore {
			t.Errorf("%s: %d pairs, more=%v; want %d, %v", c.name, len(kvs), more, c.wantPairs, c.wantMore)
		}
		if rd.pairs > c.maxReadFromEngine {
			t.Errorf("%s: read %d pairs from the engine, want at most %d", c.name, rd.pairs, c.maxReadFromEngine)
		}
	}
}

func TestRangeLimits(t *testing.T) {
	for _, c := range []struct {
		limit, target, mode, iteration int
		rows, bytes, code              int
	}{
		{0, 0, modeWantAll, 1, 0, 80000, 0},
		{0, 0, modeIterator, 1, 0, 4096, 0},
		{0, 0, modeIterator, 3, 0, 9216, 0},
		{0, 0, modeIterator, 99, 0, 80000, 0},
		{0, 0, modeIterator, 0, 0, 0, errClientInvalidOp},
		{0, 0, modeExact, 1, 0, 0, errExactModeNoLimits},
		{10, 0, modeExact, 1, 10, 0, 0},
		{0, 100, 1, 1, 0, 100, 0},  // SMALL: the smaller of 256 and 100
		{0, 9999, 1, 1, 0, 256, 0}, // SMALL caps a larger target
		{-1, 0, modeWantAll, 1, 0, 0, errRangeLimitsInvalid},
		{0, -1, modeWantAll, 1, 0, 0, errRangeLimitsInvalid},
		{0, 0, 5, 1, 0, 0, errClientInvalidOp},
	} {
		rows, bytes, code := rangeLimits(c.limit, c.target, c.mode, c.iteration)
		if rows != c.rows || bytes != c.bytes || code != c.code {
			t.Errorf("rangeLimits(%d, %d, mode %d, iteration %d) = %d, %d, %d; want %d, %d, %d",
				c.limit, c.target, c.mode, c.iteration, rows, bytes, code, c.rows, c.bytes, c.code)
		}
	}
}
