package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/txn"
)

// output prints a command's result: a table or text for people, one JSON
// document for scripts.
type output struct {
	w    io.Writer
	json bool
}

func (o *output) emit(v any, table func(w *tabwriter.Writer)) error {
	if o.json {
		enc := json.NewEncoder(o.w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(o.w, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// dur formats a duration for tables: milliseconds below a second, whole
// seconds above a minute.
func dur(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// keyJSON is a keyed record for -json.
type keyJSON struct {
	Scope       string          `json:"scope,omitempty"`
	Key         string          `json:"key"`
	State       string          `json:"state"`
	AgeSeconds  float64         `json:"age_seconds"`
	LeaseLeft   float64         `json:"lease_left_seconds"`
	RemovalIn   float64         `json:"removal_in_seconds"`
	Token       uint64          `json:"token"`
	ResultSize  int             `json:"result_size"`
	StoredError bool            `json:"stored_error,omitempty"`
	Result      json.RawMessage `json:"result,omitempty"`       // show: when the result is JSON
	ResultBytes []byte          `json:"result_bytes,omitempty"` // show: when it is not (base64)
}

func toKeyJSON(r idemkv.KeyedRecord, withResult bool) keyJSON {
	k := keyJSON{
		Scope: r.Scope, Key: r.Key, State: string(r.State), AgeSeconds: r.Age.Seconds(), LeaseLeft: r.LeaseLeft.Seconds(),
		RemovalIn: r.RemovalIn.Seconds(), Token: r.Token, ResultSize: len(r.Result), StoredError: r.StoredError,
	}
	if withResult && len(r.Result) > 0 {
		if json.Valid(r.Result) {
			k.Result = r.Result
		} else {
			k.ResultBytes = r.Result
		}
	}
	return k
}

func cmdKeys(ctx context.Context, s *idemkv.Store, f idemkv.KeyedFilter, out *output) error {
	switch f.State {
	case "", idemkv.KeyedStateInProgress, idemkv.KeyedStateExpired, idemkv.KeyedStateCompleted, idemkv.KeyedStateUnknown:
	default:
		return usageErr("keys: -state %q; use in_progress, expired, completed or unknown", f.State)
	}
	if f.AllScopes && f.Scope != "" {
		return usageErr("keys: -scope and -all-scopes exclude each other")
	}
	if f.Limit < 0 {
		return usageErr("keys: -limit %d is negative", f.Limit)
	}
	recs, err := s.KeyedRecords(ctx, f)
	if err != nil {
		return err
	}
	js := make([]keyJSON, 0, len(recs))
	for _, r := range recs {
		js = append(js, toKeyJSON(r, false))
	}
	return out.emit(js, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "SCOPE\tKEY\tSTATE\tAGE\tLEASE LEFT\tTOKEN\tRESULT SIZE")
		for _, r := range recs {
			lease := "-"
			if r.State == idemkv.KeyedStateInProgress {
				lease = dur(r.LeaseLeft)
			}
			fmt.Fprintf(w, "%q\t%q\t%s\t%s\t%s\t%d\t%d\n", r.Scope, r.Key, r.State, dur(r.Age), lease, r.Token, len(r.Result))
		}
	})
}

func cmdShow(ctx context.Context, s *idemkv.Store, scope, key string, out *output) error {
	if key == "" {
		return usageErr("show: the key is empty")
	}
	r, err := s.KeyedRecord(ctx, scope, key)
	switch {
	case errors.Is(err, idemkv.ErrNotFound):
		return &exitError{exitNotFound, err}
	case errors.Is(err, idemkv.ErrEmptyKey), errors.Is(err, idemkv.ErrKeyTooLong), errors.Is(err, idemkv.ErrScopeTooLong):
		return &exitError{exitUsage, err}
	case err != nil:
		return err
	}
	return out.emit(toKeyJSON(r, true), func(w *tabwriter.Writer) {
		if r.Scope != "" {
			fmt.Fprintf(w, "scope\t%q\n", r.Scope)
		}
		fmt.Fprintf(w, "key\t%q\n", r.Key)
		fmt.Fprintf(w, "state\t%s\n", r.State)
		fmt.Fprintf(w, "age\t%s\n", dur(r.Age))
		if r.State == idemkv.KeyedStateInProgress {
			fmt.Fprintf(w, "lease left\t%s\n", dur(r.LeaseLeft))
		}
		fmt.Fprintf(w, "token\t%d\n", r.Token)
		fmt.Fprintf(w, "removal in\t%s\n", dur(r.RemovalIn))
		if len(r.Result) == 0 {
			return
		}
		kind := "value"
		switch {
		case r.State == idemkv.KeyedStateUnknown:
			kind = "the unknown outcome's cause"
		case r.StoredError:
			kind = "stored error (Final)"
		}
		fmt.Fprintf(w, "result\t%s, %d bytes\n", kind, len(r.Result))
		w.Flush()
		var pretty bytes.Buffer
		if json.Indent(&pretty, r.Result, "", "  ") == nil {
			fmt.Fprintln(w, pretty.String())
		} else {
			fmt.Fprintf(w, "%q\n", r.Result)
		}
	})
}

func cmdResolve(ctx context.Context, s *idemkv.Store, arg string, force bool, out *output) error {
	id, err := txn.ParseID(arg)
	if err != nil {
		return usageErr("resolve: %v (IDs look like s-00000003-0000000000000007-6f1c2d3e-...: slot, sequence, owner UUID, as an UnknownResultError prints them; or, from earlier versions, 03-000000000a1b2c3d-6f1c2d3e-...: shard, version, UUID)", err)
	}
	if err := s.CheckID(ctx, id); err != nil {
		switch {
		case errors.Is(err, txn.ErrInvalidID):
			return &exitError{exitUsage, fmt.Errorf("resolve: %w", err)}
		case !errors.Is(err, idemkv.ErrImplausibleID):
			return err
		case !force:
			return &exitError{exitRefused, fmt.Errorf("resolve refused, nothing written: %w; rerun with resolve -force to fence it anyway", err)}
		}
	}
	o, err := s.Resolve(ctx, id)
	switch {
	case errors.Is(err, txn.ErrOutcomeLost):
		return &exitError{exitLost, err}
	case errors.Is(err, txn.ErrInvalidID):
		return &exitError{exitUsage, fmt.Errorf("resolve: %w", err)}
	}
	if err != nil {
		return err
	}
	type resolveJSON struct {
		ID      string `json:"id"`
		Outcome string `json:"outcome"`
	}
	return out.emit(resolveJSON{id.String(), strings.ReplaceAll(o.String(), " ", "_")}, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "%s\t%s\n", id, o)
	})
}

func cmdSweep(ctx context.Context, s *idemkv.Store, out *output) error {
	res, err := s.Sweep(ctx)
	if err != nil {
		return err
	}
	type sweepJSON struct {
		ReadVersion  int64   `json:"read_version"`
		Cutoff       int64   `json:"cutoff"`
		KeyedRemoved int     `json:"keyed_removed"`
		KeyedMore    bool    `json:"keyed_more"`
		Seconds      float64 `json:"duration_seconds"`
	}
	return out.emit(sweepJSON{res.ReadVersion, res.Cutoff, res.KeyedRemoved, res.KeyedMore, res.Duration.Seconds()}, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "read version\t%d\n", res.ReadVersion)
		fmt.Fprintf(w, "markers removed below\t%d\n", res.Cutoff)
		fmt.Fprintf(w, "keyed records removed\t%d\n", res.KeyedRemoved)
		if res.KeyedMore {
			fmt.Fprintf(w, "more due\tyes (run sweep again)\n")
		}
		fmt.Fprintf(w, "duration\t%s\n", dur(res.Duration))
	})
}

type markersJSON struct {
	ReadVersion int64 `json:"read_version"`
	Watermark   int64 `json:"watermark"`
	Total       int   `json:"total"`
	Slots       int   `json:"slots"`
	SlotOwners  int   `json:"slot_owners"`
	Shards      []struct {
		Shard         int     `json:"shard"`
		Count         int     `json:"count"`
		OldestSeconds float64 `json:"oldest_seconds"`
		FirstVersion  int64   `json:"first_version"`
	} `json:"shards"`
	ByAge []struct {
		BelowSeconds float64 `json:"below_seconds"` // 0: no bound
		Count        int     `json:"count"`
	} `json:"by_age"`
}

func toMarkersJSON(mc idemkv.MarkerCounts) markersJSON {
	j := markersJSON{ReadVersion: mc.ReadVersion, Watermark: mc.Watermark, Total: mc.Total, Slots: mc.Slots, SlotOwners: mc.Owners}
	for _, sm := range mc.Shards {
		j.Shards = append(j.Shards, struct {
			Shard         int     `json:"shard"`
			Count         int     `json:"count"`
			OldestSeconds float64 `json:"oldest_seconds"`
			FirstVersion  int64   `json:"first_version"`
		}{int(sm.Shard), sm.Count, sm.Oldest.Seconds(), sm.FirstVersion})
	}
	for _, a := range mc.ByAge {
		j.ByAge = append(j.ByAge, struct {
			BelowSeconds float64 `json:"below_seconds"`
			Count        int     `json:"count"`
		}{a.Below.Seconds(), a.Count})
	}
	return j
}

func ageLabel(byAge []idemkv.AgeCount, i int) string {
	lo := "0s"
	if i > 0 {
		lo = dur(byAge[i-1].Below)
	}
	if byAge[i].Below == 0 {
		return ">= " + lo
	}
	return lo + " - " + dur(byAge[i].Below)
}

func cmdMarkers(ctx context.Context, s *idemkv.Store, out *output) error {
	mc, err := s.Markers(ctx)
	if err != nil {
		return err
	}
	return out.emit(toMarkersJSON(mc), func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "markers\t%d\n", mc.Total)
		fmt.Fprintf(w, "marker slots\t%d of %d owners\n", mc.Slots, mc.Owners)
		fmt.Fprintf(w, "watermark\t%d (%s behind the read version %d)\n\n", mc.Watermark, dur(idemkvDur(mc.ReadVersion-mc.Watermark)), mc.ReadVersion)
		fmt.Fprintln(w, "SHARD\tLEGACY MARKERS\tOLDEST")
		for _, sm := range mc.Shards {
			fmt.Fprintf(w, "%d\t%d\t%s\n", sm.Shard, sm.Count, dur(sm.Oldest))
		}
		fmt.Fprintln(w, "\nAGE\tMARKERS\t")
		for i, a := range mc.ByAge {
			fmt.Fprintf(w, "%s\t%d\t\n", ageLabel(mc.ByAge, i), a.Count)
		}
	})
}

func cmdStats(ctx context.Context, s *idemkv.Store, out *output) error {
	mc, err := s.Markers(ctx)
	if err != nil {
		return err
	}
	counts, err := s.KeyedCounts(ctx)
	if err != nil {
		return err
	}
	byState, records := map[string]int{}, 0
	for st, n := range counts {
		byState[string(st)] = n
		records += n
	}
	type statsJSON struct {
		ReadVersion   int64          `json:"read_version"`
		Watermark     int64          `json:"watermark"`
		Markers       int            `json:"markers"`
		MarkerSlots   int            `json:"marker_slots"`
		MarkerShards  int            `json:"marker_shards"`
		KeyedRecords  int            `json:"keyed_records"`
		KeyedByState  map[string]int `json:"keyed_by_state"`
		OldestMarkerS float64        `json:"oldest_marker_seconds"`
	}
	var oldest time.Duration
	for _, sm := range mc.Shards {
		oldest = max(oldest, sm.Oldest)
	}
	st := statsJSON{mc.ReadVersion, mc.Watermark, mc.Total, mc.Slots, len(mc.Shards), records, byState, oldest.Seconds()}
	return out.emit(st, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "read version\t%d\n", st.ReadVersion)
		fmt.Fprintf(w, "janitor watermark\t%d\n", st.Watermark)
		fmt.Fprintf(w, "markers\t%d: %d slots, %d legacy in %d shards, oldest legacy %s\n", st.Markers, st.MarkerSlots, st.Markers-st.MarkerSlots, st.MarkerShards, dur(oldest))
		fmt.Fprintf(w, "keyed records\t%d\n", st.KeyedRecords)
		for _, k := range []idemkv.KeyedState{idemkv.KeyedStateInProgress, idemkv.KeyedStateExpired, idemkv.KeyedStateCompleted, idemkv.KeyedStateUnknown} {
			fmt.Fprintf(w, "  %s\t%d\n", k, byState[string(k)])
		}
	})
}

func idemkvDur(versions int64) time.Duration { return time.Duration(versions) * time.Microsecond }
