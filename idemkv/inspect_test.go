package idemkv_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
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

// Markers counts the marker slots — a few for many calls, since a call
// holds one only while it runs — by age and owner; CheckID refuses what no
// call of the store can have or whose outcome is gone, reading only; the
// janitor's sweep removes slots unused for its minimum age.
func TestMarkersAndCheckID(t *testing.T) {
	var mu sync.Mutex
	var ids []txn.ID
	s, clk := openClocked(t, &idemkv.Options{MinAge: cleanup.MinMinAge, Observe: func(st txn.Stats) {
		mu.Lock()
		defer mu.Unlock()
		ids = append(ids, st.ID)
	}})
	ctx := context.Background()
	const calls, conc = 400, 4
	var wg sync.WaitGroup
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range calls / conc {
				_, err := idemkv.Transact(ctx, s, func(tr kv.Transaction) (int, error) {
					tr.Set([]byte(fmt.Sprint("k", w, "/", i)), []byte("v"))
					return i, nil
				})
				assert.NoError(t, err)
			}
		}()
	}
	wg.Wait()
	slots, pinned := txn.PoolSlots(s.Database(), &txn.Options{Prefix: append(bytes.Clone(idemkv.DefaultPrefix), "tx/"...)}, 0)
	mc, err := s.Markers(ctx)
	require.NoError(t, err)
	require.Len(t, ids, calls)
	assert.True(t, slots >= 1 && slots <= conc && pinned == 0, "%d slots (%d pinned) for %d calls, %d at once", slots, pinned, calls, conc)
	assert.Equal(t, slots, mc.Total, "one marker per slot, not per call")
	assert.Equal(t, slots, mc.Slots)
	assert.Equal(t, 1, mc.Owners, "one store, one owner")
	assert.Empty(t, mc.Shards, "no legacy markers")
	assert.Equal(t, slots, mc.ByAge[0].Count, "all written within ten seconds")
	assert.Equal(t, int64(slots), s.MarkersAlive())

	before := dump(t, s, "")
	real := ids[len(ids)-1]
	require.NoError(t, s.CheckID(ctx, real))
	var earlier txn.ID // an earlier call in the same slot: the slot is reused
	for _, id := range ids {
		if id.Slot == real.Slot && id.Seq < real.Seq {
			earlier = id
		}
	}
	require.False(t, earlier.IsZero())
	otherOwner := real
	otherOwner.Owner = uuid.New()
	otherSlot := real
	otherSlot.Slot = 1000
	notV4 := real
	notV4.Owner[6] = 0x10 // version 1
	mixed := real
	mixed.Version = 7
	for _, tc := range []struct {
		id   txn.ID
		want error
		msg  string
	}{
		{earlier, idemkv.ErrImplausibleID, "later call's sequence"},
		{otherOwner, idemkv.ErrImplausibleID, "has no slot"},
		{otherSlot, idemkv.ErrImplausibleID, "has no slot"},
		{txn.ID{}, txn.ErrInvalidID, "zero ID"},
		{notV4, txn.ErrInvalidID, "version-4"},
		{mixed, txn.ErrInvalidID, "mixes"},
	} {
		err := s.CheckID(ctx, tc.id)
		assert.ErrorIs(t, err, tc.want, tc.id.String())
		assert.ErrorContains(t, err, tc.msg)
	}
	assert.Equal(t, before, dump(t, s, ""), "CheckID wrote")

	clk.Advance(time.Minute)
	_, err = s.Sweep(ctx)
	require.NoError(t, err)
	mc, err = s.Markers(ctx)
	require.NoError(t, err)
	assert.Zero(t, mc.Total, "every slot was unused past MinAge")
	err = s.CheckID(ctx, real)
	assert.ErrorIs(t, err, idemkv.ErrImplausibleID)
	assert.ErrorContains(t, err, "has no slot")
	// The next call creates its slot again.
	_, err = idemkv.Transact(ctx, s, func(tr kv.Transaction) (int, error) { return 0, nil })
	require.NoError(t, err)
	mc, err = s.Markers(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, mc.Slots)
}

// legacyMarkers writes n markers as earlier versions of txn wrote them (one
// per call, format 2, dated by the read version), spread over the default
// shards, with their shards' sentinels, under the store's marker prefix.
func legacyMarkers(t *testing.T, s *idemkv.Store, n int) {
	t.Helper()
	prefix := append(bytes.Clone(idemkv.DefaultPrefix), "tx/"...)
	for done := 0; done < n; {
		_, err := txn.StockTransact(context.Background(), s.Database(), func(tr kv.Transaction) (int, error) {
			rv, err := tr.GetReadVersion().Get()
			if err != nil {
				return 0, err
			}
			for shard := range txn.DefaultShards {
				key := txn.SentinelKey(prefix, uint8(shard))
				if v, err := tr.Get(key).Get(); err != nil || v == nil {
					tr.Atomic(kv.SetVersionstampedValue, key, []byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0})
				}
			}
			for i := range min(n-done, 500) {
				id := txn.ID{Shard: uint8((done + i) % txn.DefaultShards), Version: rv, Rand: uuid.New()}
				tr.Set(txn.MarkerKey(prefix, id), append([]byte{2, 0, 0, 0, 1}, make([]byte, 10)...))
			}
			return 0, nil
		})
		require.NoError(t, err)
		done += min(n-done, 500)
	}
}

// Markers counts legacy markers too — those earlier versions of txn left,
// one per call, until the janitor sweeps them — across more than one page
// of reads, by shard and age; CheckID refuses legacy IDs that no call can
// have, and the sweep moves both.
func TestMarkersAndCheckIDLegacy(t *testing.T) {
	s, clk := openClocked(t, &idemkv.Options{MinAge: cleanup.MinMinAge})
	ctx := context.Background()
	const markers = 2_100 // more than one inspection page
	legacyMarkers(t, s, markers/2+1)
	clk.Advance(time.Minute + time.Second)
	legacyMarkers(t, s, markers-markers/2-1)
	mc, err := s.Markers(ctx)
	require.NoError(t, err)
	assert.Equal(t, markers, mc.Total)
	assert.Zero(t, mc.Slots)
	assert.Len(t, mc.Shards, txn.DefaultShards, "every shard used")
	perShard := 0
	for _, sm := range mc.Shards {
		perShard += sm.Count
		assert.Positive(t, sm.FirstVersion)
		assert.GreaterOrEqual(t, sm.Oldest, time.Minute)
	}
	assert.Equal(t, markers, perShard)
	require.Equal(t, 10*time.Second, mc.ByAge[0].Below)
	assert.Equal(t, markers-markers/2-1, mc.ByAge[0].Count, "the markers after the clock moved are under ten seconds old")
	assert.Zero(t, mc.ByAge[1].Count)
	assert.Equal(t, markers/2+1, mc.ByAge[2].Count, "the rest are a minute old")

	before := dump(t, s, "")
	prefix := append(bytes.Clone(idemkv.DefaultPrefix), "tx/"...)
	last := dump(t, s, "tx/")
	var real txn.ID
	for _, e := range last {
		if id, err := txn.ParseMarkerKey(prefix, e.Key); err == nil && id.Version > real.Version {
			real = id
		}
	}
	require.False(t, real.IsZero())
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
	o, err := s.Resolve(ctx, real)
	require.NoError(t, err)
	assert.Equal(t, txn.Committed, o, "a legacy ID resolves against its marker")

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
	_, err = s.Resolve(ctx, real)
	assert.ErrorIs(t, err, txn.ErrOutcomeLost)
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
