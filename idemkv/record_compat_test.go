package idemkv

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/embedded"
)

// TestFormat1LeaseExpiresByVersions: a record in progress written before
// leases had a wall deadline (format 1) is still read, and its lease
// expires by its version deadline alone — the rule it was written under —
// while the same record with a wall deadline (format 2) is still held.
func TestFormat1LeaseExpiresByVersions(t *testing.T) {
	for _, format1 := range []bool{true, false} {
		vclock := embedded.NewManualClock(time.Unix(1_700_000_000, 0))
		wall := embedded.NewManualClock(time.Unix(1_800_000_000, 0))
		ctx := context.Background()
		s, err := Open(ctx, "mem:", &Options{NoJanitor: true, Embedded: &embedded.Options{Clock: vclock.Now}, Clock: wall.Now})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		// The record an earlier version's claim wrote: in progress, its
		// version deadline 30 s after its token.
		k, err := s.newKeyCall("", "old", []byte("p"), false, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Transact(ctx, s, func(tr kv.Transaction) (struct{}, error) {
			rv, err := tr.GetReadVersion().Get()
			if err != nil {
				return struct{}{}, err
			}
			rec := record{status: statusInProgress, token: uint64(rv), leaseUntil: rv + versions30s,
				due: rv + versions(DefaultRetention), fingerprint: k.fingerprint}
			if !format1 {
				rec.leaseWall = wall.Now().Add(30 * time.Second).UnixNano()
			}
			k.put(tr, &rec)
			return struct{}{}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if format1 {
			val := dumpRecord(t, s, k.recordKey)
			if val[0] != recordFormat1 {
				t.Fatalf("record written as format %d; want 1", val[0])
			}
		}
		vclock.Advance(31 * time.Second) // versions past the deadline; the wall clock still
		ran := false
		v, err := Do(ctx, s, "old", []byte("p"), func(context.Context) (string, error) {
			ran = true
			return "new", nil
		}, nil)
		switch {
		case format1 && (err != nil || !ran || v != "new"):
			t.Fatalf("format 1 record past its version deadline: Do = %q, %v (ran %v); want a takeover", v, err, ran)
		case !format1 && (!errors.Is(err, ErrInProgress) || ran):
			t.Fatalf("format 2 record past its version deadline only: Do = %q, %v (ran %v); want ErrInProgress", v, err, ran)
		}
	}
}

const versions30s = 30 * kv.VersionsPerSecond

func dumpRecord(t *testing.T, s *Store, key []byte) []byte {
	t.Helper()
	val, err := ReadTransact(context.Background(), s, func(tr kv.ReadTransaction) ([]byte, error) { return tr.Get(key).Get() })
	if err != nil || val == nil {
		t.Fatalf("record %q: %x, %v", key, val, err)
	}
	return val
}

// TestWallDeadlineBounds: the wall deadline saturates for a lease that
// would pass year 2262 (never 0 or negative, which would expire at once),
// and a clock before 1970 leaves the lease to versions alone.
func TestWallDeadlineBounds(t *testing.T) {
	var now time.Time
	s, err := Open(context.Background(), "mem:", &Options{NoJanitor: true, Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tc := range []struct {
		now   time.Time
		lease time.Duration
		want  int64
	}{
		{time.Unix(1_800_000_000, 0), 30 * time.Second, 1_800_000_030_000_000_000},
		{time.Unix(1_800_000_000, 0), 250 * 365 * 24 * time.Hour, math.MaxInt64},
		{time.Unix(-1, 0), 30 * time.Second, 1},
	} {
		now = tc.now
		d := &doCall{keyCall: keyCall{s: s}, leaseDur: tc.lease}
		if got := d.wallDeadline(); got != tc.want {
			t.Errorf("wallDeadline at %v with lease %v = %d; want %d", tc.now, tc.lease, got, tc.want)
		}
	}
}
