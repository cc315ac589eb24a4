package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/txn"
)

// filled is a durable store the test filled, with what it put there.
type filled struct {
	uri        string
	committed  txn.ID // the last call that committed on the first store
	transacts  int    // committed Transact calls (markers)
	inProgress string // a key held under a long lease
	expired    string // a key whose holder's lease expired
}

func fill(t *testing.T) filled {
	t.Helper()
	ctx := context.Background()
	f := filled{uri: "file:" + filepath.Join(t.TempDir(), "store"), inProgress: "order-held", expired: "order-stale"}
	var last txn.Stats
	open := func() *idemkv.Store {
		s, err := idemkv.Open(ctx, f.uri, &idemkv.Options{NoJanitor: true, Lease: time.Hour, Observe: func(st txn.Stats) {
			if st.Err == nil {
				last = st
			}
		}})
		require.NoError(t, err)
		return s
	}
	s := open()
	for i := range 5 {
		_, err := idemkv.Transact(ctx, s, func(tr kv.Transaction) (int, error) {
			tr.Set([]byte(fmt.Sprint("acct/", i)), []byte("1"))
			return i, nil
		})
		require.NoError(t, err)
		f.transacts++
	}

	type receipt struct {
		Order string `json:"order"`
		Cents int    `json:"cents"`
	}
	for i := range 3 {
		_, err := idemkv.Do(ctx, s, fmt.Sprint("order-", i), []byte("p"), func(context.Context) (receipt, error) {
			return receipt{fmt.Sprint("order-", i), 100 * (i + 1)}, nil
		}, nil)
		require.NoError(t, err)
	}
	_, err := idemkv.Do(ctx, s, "order-0", []byte("p"), func(context.Context) (string, error) { return "scoped", nil },
		&idemkv.DoOptions{Scope: "payments"})
	require.NoError(t, err)
	_, err = idemkv.Do(ctx, s, "refund-1", []byte("p"), func(context.Context) (int, error) {
		return 0, idemkv.Final(errors.New("card expired"))
	}, nil)
	require.Error(t, err)
	require.NoError(t, s.Close())
	// The store's last committed call: the calls reuse its marker slot, so
	// that slot holds the last one's answer.
	f.committed = last.ID
	require.False(t, f.committed.IsZero())

	// A holder that never completes: the store closes under it, so its
	// claim stays, in progress.
	hold := func(key string, lease time.Duration) {
		s := open()
		_, err := idemkv.Do(ctx, s, key, []byte("p"), func(context.Context) (int, error) {
			require.NoError(t, s.Close())
			return 1, nil
		}, &idemkv.DoOptions{Lease: lease})
		require.ErrorIs(t, err, idemkv.ErrClosed)
	}
	hold(f.inProgress, time.Hour)
	hold(f.expired, time.Millisecond)
	time.Sleep(5 * time.Millisecond)
	return f
}

// cli runs the command and returns its exit code, stdout and stderr.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// snapshot returns every key and value in the store, to check that a
// command wrote nothing.
func snapshot(t *testing.T, uri string) string {
	t.Helper()
	s, err := idemkv.Open(context.Background(), uri, &idemkv.Options{NoJanitor: true})
	require.NoError(t, err)
	defer s.Close()
	kvs, err := idemkv.ReadTransact(context.Background(), s, func(tr kv.ReadTransaction) ([]kv.KeyValue, error) {
		return tr.GetRange(kv.Range{Begin: []byte{}, End: []byte{0xff}}, kv.RangeOptions{}).Get()
	})
	require.NoError(t, err)
	var b strings.Builder
	for _, e := range kvs {
		fmt.Fprintf(&b, "%q=%q\n", e.Key, e.Value)
	}
	return b.String()
}

func TestEndToEnd(t *testing.T) {
	f := fill(t)
	store := "-store=" + f.uri
	before := snapshot(t, f.uri)

	t.Run("stats", func(t *testing.T) {
		code, out, errs := cli(t, store, "-json", "stats")
		require.Equal(t, exitOK, code, errs)
		var st struct {
			Markers      int            `json:"markers"`
			KeyedRecords int            `json:"keyed_records"`
			KeyedByState map[string]int `json:"keyed_by_state"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &st))
		assert.Equal(t, map[string]int{"completed": 5, "in_progress": 1, "expired": 1, "unknown": 0}, st.KeyedByState)
		assert.Equal(t, 7, st.KeyedRecords, "every scope's")
		// Transact calls reuse their store's marker slots (claims and
		// completions of Do are Transact calls too): a slot per store
		// opened (three: each its own owner), far fewer than the calls.
		assert.GreaterOrEqual(t, st.Markers, 3)
		assert.Less(t, st.Markers, f.transacts+6)
		code, out, _ = cli(t, store, "stats")
		require.Equal(t, exitOK, code)
		assert.Contains(t, out, "keyed records")
	})

	t.Run("keys", func(t *testing.T) {
		code, out, errs := cli(t, store, "-json", "keys")
		require.Equal(t, exitOK, code, errs)
		var keys []keyJSON
		require.NoError(t, json.Unmarshal([]byte(out), &keys))
		require.Len(t, keys, 6)
		byKey := map[string]keyJSON{}
		for _, k := range keys {
			byKey[k.Key] = k
		}
		assert.Equal(t, "in_progress", byKey[f.inProgress].State)
		assert.Greater(t, byKey[f.inProgress].LeaseLeft, 3000.0, "an hour's lease, barely started")
		assert.Equal(t, "expired", byKey[f.expired].State)
		assert.Zero(t, byKey[f.expired].LeaseLeft)
		assert.Equal(t, "completed", byKey["order-1"].State)
		assert.Equal(t, len(`{"order":"order-1","cents":200}`), byKey["order-1"].ResultSize)
		assert.NotZero(t, byKey["order-1"].Token)

		code, out, _ = cli(t, store, "-json", "keys", "-state", "completed", "-prefix", "order-")
		require.Equal(t, exitOK, code)
		require.NoError(t, json.Unmarshal([]byte(out), &keys))
		var names []string
		for _, k := range keys {
			names = append(names, k.Key)
		}
		assert.Equal(t, []string{"order-0", "order-1", "order-2"}, names)

		code, out, _ = cli(t, store, "keys", "-state", "in_progress")
		require.Equal(t, exitOK, code)
		assert.Contains(t, out, "LEASE LEFT")
		assert.Contains(t, out, `"order-held"`)
		assert.NotContains(t, out, `"order-1"`)

		code, out, _ = cli(t, store, "-json", "keys", "-all-scopes", "-prefix", "order-0")
		require.Equal(t, exitOK, code)
		require.NoError(t, json.Unmarshal([]byte(out), &keys))
		require.Len(t, keys, 2)
		assert.Equal(t, []string{"", "payments"}, []string{keys[0].Scope, keys[1].Scope})
		code, out, _ = cli(t, store, "-json", "keys", "-scope", "payments")
		require.Equal(t, exitOK, code)
		require.NoError(t, json.Unmarshal([]byte(out), &keys))
		require.Len(t, keys, 1)
		assert.Equal(t, "order-0", keys[0].Key)
	})

	t.Run("show", func(t *testing.T) {
		code, out, errs := cli(t, store, "-json", "show", "order-2")
		require.Equal(t, exitOK, code, errs)
		var k keyJSON
		require.NoError(t, json.Unmarshal([]byte(out), &k))
		assert.JSONEq(t, `{"order":"order-2","cents":300}`, string(k.Result))
		code, out, _ = cli(t, store, "show", "order-2")
		require.Equal(t, exitOK, code)
		assert.Contains(t, out, `"cents": 300`, "the result is decoded and indented")
		code, out, _ = cli(t, store, "-json", "show", "-scope", "payments", "order-0")
		require.Equal(t, exitOK, code)
		require.NoError(t, json.Unmarshal([]byte(out), &k))
		assert.Equal(t, `"scoped"`, string(k.Result))
		code, out, _ = cli(t, store, "-json", "show", "refund-1")
		require.Equal(t, exitOK, code)
		require.NoError(t, json.Unmarshal([]byte(out), &k))
		assert.True(t, k.StoredError)
		assert.Contains(t, string(k.Result), "card expired")
	})

	t.Run("markers", func(t *testing.T) {
		code, out, errs := cli(t, store, "-json", "markers")
		require.Equal(t, exitOK, code, errs)
		var m markersJSON
		require.NoError(t, json.Unmarshal([]byte(out), &m))
		sum, ages := 0, 0
		for _, s := range m.Shards {
			sum += s.Count
			assert.Less(t, s.Shard, 16)
			assert.Positive(t, s.FirstVersion)
		}
		for _, a := range m.ByAge {
			ages += a.Count
		}
		assert.Zero(t, sum, "no legacy markers")
		assert.Equal(t, 3, m.SlotOwners)
		assert.Equal(t, m.Total, sum+m.Slots)
		assert.Equal(t, m.Total, ages)
		assert.Equal(t, m.Total, m.ByAge[0].Count, "all younger than ten seconds")
	})

	// Everything so far only read.
	require.Equal(t, before, snapshot(t, f.uri), "a read-only command wrote")

	t.Run("bad input writes nothing", func(t *testing.T) {
		reused := f.committed // an earlier call of the same slot
		reused.Seq--
		otherOwner := f.committed
		otherOwner.Owner = uuid.New()
		unused := txn.ID{Shard: 200, Version: 1, Rand: uuid.New()} // a legacy ID
		empty := t.TempDir()
		for _, tc := range []struct {
			args []string
			code int
			msg  string
		}{
			{[]string{store, "frob"}, exitUsage, `unknown command "frob"`},
			{[]string{store, "keys", "-colour"}, exitUsage, "flag provided but not defined: -colour"},
			{[]string{"-nope", "stats"}, exitUsage, "-nope"},
			{[]string{store, "keys", "-state", "done"}, exitUsage, `-state "done"`},
			{[]string{store, "show"}, exitUsage, "show takes KEY"},
			{[]string{store, "show", "no-such-key"}, exitNotFound, "no keyed record"},
			{[]string{store, "show", "-scope", "refunds", "order-0"}, exitNotFound, "no keyed record"},
			{[]string{store, "keys", "-scope", "a", "-all-scopes"}, exitUsage, "exclude each other"},
			{[]string{store, "resolve", "12-34"}, exitUsage, "not of the form shard-version-uuid"},
			{[]string{store, "resolve", "s-12-34"}, exitUsage, "not of the form s-slot-seq-owner"},
			{[]string{store, "resolve", reused.String()}, exitRefused, "later call's sequence"},
			{[]string{store, "resolve", otherOwner.String()}, exitRefused, "has no slot"},
			{[]string{store, "resolve", unused.String()}, exitRefused, "shard 200 is out of range"},
			{[]string{store, "-shards", "0", "stats"}, exitUsage, "-shards 0"},
			{[]string{"stats"}, exitUsage, "no store"},
			{[]string{"-store=" + filepath.Join(t.TempDir(), "absent"), "stats"}, exitNotFound, "no store at"},
			{[]string{"-store=gopher://x", "stats"}, exitUsage, "unknown"},
			{[]string{"-store=" + empty, "keys"}, exitNotFound, "no store at"},
			{[]string{"-store=file:" + empty, "sweep"}, exitNotFound, "no store at"},
			{[]string{"-store=" + f.uri + "?colour=blue", "stats"}, exitUsage, "colour"},
		} {
			t.Setenv("IDEMKV_STORE", "")
			code, out, errs := cli(t, tc.args...)
			assert.Equal(t, tc.code, code, "%v: stderr %q", tc.args, errs)
			assert.Contains(t, errs, tc.msg, tc.args)
			assert.True(t, strings.HasPrefix(errs, "idemkv: ") && strings.Count(errs, "\n") == 1, "%v: one line on stderr: %q", tc.args, errs)
			assert.NotContains(t, errs, "idemkv: idemkv:", "%v: the package named twice", tc.args)
			assert.Empty(t, out, tc.args)
		}
		require.Equal(t, before, snapshot(t, f.uri), "a refused command wrote")
		ents, err := os.ReadDir(empty)
		require.NoError(t, err)
		assert.Empty(t, ents, "the CLI created a store in an empty directory")
	})

	t.Run("resolve", func(t *testing.T) {
		code, out, errs := cli(t, store, "-json", "resolve", f.committed.String())
		require.Equal(t, exitOK, code, errs)
		assert.JSONEq(t, fmt.Sprintf(`{"id":%q,"outcome":"committed"}`, f.committed), out)
		// The ID the next call in the committed one's slot would have, that
		// never committed: fenced, not committed.
		never := f.committed
		never.Seq++
		code, out, errs = cli(t, store, "resolve", never.String())
		require.Equal(t, exitOK, code, errs)
		assert.Contains(t, out, "not committed")
		code, out, _ = cli(t, store, "-json", "resolve", never.String())
		require.Equal(t, exitOK, code)
		assert.Contains(t, out, `"not_committed"`, "the fence is final")
		// Forced, an implausible ID is fenced all the same (here: a slot of
		// an owner the store never had, so Resolve finds no slot: lost).
		unused := f.committed
		unused.Owner = uuid.New()
		code, _, errs = cli(t, store, "resolve", "-force", unused.String())
		assert.Equal(t, exitLost, code, errs)
	})

	t.Run("sweep", func(t *testing.T) {
		code, out, errs := cli(t, store, "-json", "sweep", "-min-age", "10s")
		require.Equal(t, exitOK, code, errs)
		var res struct {
			ReadVersion int64 `json:"read_version"`
			Cutoff      int64 `json:"cutoff"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &res))
		assert.Positive(t, res.ReadVersion)
		code, _, errs = cli(t, store, "sweep", "-min-age", "1s")
		assert.Equal(t, exitUsage, code)
		assert.Contains(t, errs, "below the janitor's minimum")
	})
}
