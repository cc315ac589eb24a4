package idemkv_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkv/idemkv/cleanup"
	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/txn"
)

// Markers counts every marker, across more than one page of reads, by
// shard and age; CheckID refuses what no call of the store can have, reading
// only; the janitor's sweep moves both.
func TestMarkersAndCheckID(t *testing.T) {
	var ids []txn.ID
	s, clk := openClocked(t, &idemkv.Options{MinAge: cleanup.MinMinAge, Observe: func(st txn.Stats) { ids = append(ids, st.ID) }})
	ctx := context.Background()
	const calls = 2_100 // more than one inspection page
	for i := range calls {
		_, err := idemkv.Transact(ctx, s, func(tr kv.Transaction) (int, error) {
			tr.Set([]byte(fmt.Sprint("k", i)), []byte("v"))
			return i, nil
		})
		require.NoError(t, err)
		if i == calls/2 {
			// A little over a minute: every commit also moves the
			// version by one.
			clk.Advance(time.Minute + time.Second)
		}
	}
	mc, err := s.Markers(ctx)
	require.NoError(t, err)
	assert.Equal(t, calls, mc.Total)
	assert.Len(t, mc.Shards, txn.DefaultShards, "every shard used")
	perShard := 0
	for _, sm := range mc.Shards {
		perShard += sm.Count
		assert.Positive(t, sm.FirstVersion)
		assert.GreaterOrEqual(t, sm.Oldest, time.Minute)
	}
	assert.Equal(t, calls, perShard)
	require.Equal(t, 10*time.Second, mc.ByAge[0].Below)
	assert.Equal(t, calls-calls/2-1, mc.ByAge[0].Count, "the calls after the clock moved are under ten seconds old")
	assert.Zero(t, mc.ByAge[1].Count)
	assert.Equal(t, calls/2+1, mc.ByAge[2].Count, "the rest are a minute old")

	before := dump(t, s, "")
	real := ids[len(ids)-1]
	require.NoError(t, s.CheckID(ctx, real))
	future := real
	future.Version += 1_000_000_000
	ancient := real
	ancient.Version = 1
	outOfRange := txn.ID{Shard: 40, Version: real.Version, Rand: uuid.New()}
	notV4 := real
	notV4.Rand[6] = 0x10 // version 1
	for _, tc := range []struct {
		id   txn.ID
		want error
		msg  string
	}{
		{future, idemkv.ErrImplausibleID, "in the future"},
		{ancient, idemkv.ErrImplausibleID, "older than anything the store has seen"},
		{outOfRange, idemkv.ErrImplausibleID, "shard 40 is out of range"},
		{txn.ID{}, txn.ErrInvalidID, "zero ID"},
		{notV4, txn.ErrInvalidID, "version-4"},
	} {
		err := s.CheckID(ctx, tc.id)
		assert.ErrorIs(t, err, tc.want, tc.id.String())
		assert.ErrorContains(t, err, tc.msg)
	}
	assert.Equal(t, before, dump(t, s, ""), "CheckID wrote")

	clk.Advance(time.Minute)
	res, err := s.Sweep(ctx)
	require.NoError(t, err)
	mc, err = s.Markers(ctx)
	require.NoError(t, err)
	assert.Zero(t, mc.Total, "every marker is past MinAge")
	assert.Equal(t, res.Cutoff, mc.Watermark)
	assert.Len(t, mc.Shards, txn.DefaultShards, "sentinels stay")
	err = s.CheckID(ctx, real)
	assert.ErrorIs(t, err, idemkv.ErrImplausibleID)
	assert.ErrorContains(t, err, "below the janitor's watermark")
}

// KeyedRecords filters by state, prefix, scope and limit; KeyedRecord finds
// one or says ErrNotFound.
func TestKeyedRecords(t *testing.T) {
	s := openUnstepped(t, nil)
	ctx := context.Background()
	for _, k := range []string{"a1", "a2", "b1"} {
		_, err := idemkv.Do(ctx, s, k, nil, func(context.Context) (string, error) { return "r-" + k, nil }, nil)
		require.NoError(t, err)
	}
	_, err := idemkv.Do(ctx, s, "a1", nil, func(context.Context) (string, error) { return "scoped", nil }, &idemkv.DoOptions{Scope: "s"})
	require.NoError(t, err)
	var held []idemkv.KeyedRecord
	_, err = idemkv.Do(ctx, s, "a3", nil, func(ctx context.Context) (int, error) {
		var err error
		held, err = s.KeyedRecords(ctx, idemkv.KeyedFilter{State: idemkv.KeyedStateInProgress})
		return 0, err
	}, nil)
	require.NoError(t, err)
	require.Len(t, held, 1)
	assert.Equal(t, "a3", held[0].Key)
	assert.Positive(t, held[0].LeaseLeft)

	keys := func(f idemkv.KeyedFilter) []string {
		recs, err := s.KeyedRecords(ctx, f)
		require.NoError(t, err)
		var out []string
		for _, r := range recs {
			out = append(out, r.Scope+"/"+r.Key)
		}
		return out
	}
	assert.Equal(t, []string{"/a1", "/a2", "/a3", "/b1"}, keys(idemkv.KeyedFilter{}))
	assert.Equal(t, []string{"/a1", "/a2", "/a3"}, keys(idemkv.KeyedFilter{Prefix: "a"}))
	assert.Equal(t, []string{"/a1", "/a2"}, keys(idemkv.KeyedFilter{Prefix: "a", Limit: 2}))
	assert.Equal(t, []string{"s/a1"}, keys(idemkv.KeyedFilter{Scope: "s"}))
	assert.Equal(t, []string{"/a1", "/a2", "/a3", "/b1", "s/a1"}, keys(idemkv.KeyedFilter{AllScopes: true}))
	assert.Equal(t, []string{"/a1", "s/a1"}, keys(idemkv.KeyedFilter{AllScopes: true, Prefix: "a1"}))
	_, err = s.KeyedRecords(ctx, idemkv.KeyedFilter{State: "done"})
	assert.ErrorIs(t, err, idemkv.ErrInvalidOptions)

	counts, err := s.KeyedCounts(ctx)
	require.NoError(t, err)
	assert.Equal(t, map[idemkv.KeyedState]int{idemkv.KeyedStateCompleted: 5, idemkv.KeyedStateInProgress: 0,
		idemkv.KeyedStateExpired: 0, idemkv.KeyedStateUnknown: 0}, counts)

	r, err := s.KeyedRecord(ctx, "s", "a1")
	require.NoError(t, err)
	assert.Equal(t, idemkv.KeyedStateCompleted, r.State)
	assert.JSONEq(t, `"scoped"`, string(r.Result))
	_, err = s.KeyedRecord(ctx, "", "zz")
	assert.ErrorIs(t, err, idemkv.ErrNotFound)
}
