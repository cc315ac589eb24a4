package embedded

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestMemStoreAgainstModel drives the store's committer side (groups of
// sets, deletes and clear-ranges, some aborted, aging as versions pass)
// with seeded random operations and checks every read — gets and scans,
// forward and reversed, with seeks, at random versions of the window —
// against a model that keeps every version of every key. Reads below the
// floor must fail with transaction_too_old; the rest must match.
func TestMemStoreAgainstModel(t *testing.T) {
	seed := testSeed(t)
	// With the default clear limit range clears here delete key by key;
	// with 1, most of them are range deletions.
	for _, limit := range []int{pointClearLimit, 1} {
		t.Run(fmt.Sprintf("clearLimit=%d", limit), func(t *testing.T) { testMemStoreAgainstModel(t, seed, limit) })
	}
}

func testMemStoreAgainstModel(t *testing.T, seed uint64, clearLimit int) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	type ver struct {
		v       int64
		present bool
		value   string
	}
	model := map[string][]ver{} // ascending version
	at := func(k string, v int64) (string, bool) {
		vs := model[k]
		for i := len(vs) - 1; i >= 0; i-- {
			if vs[i].v <= v {
				return vs[i].value, vs[i].present
			}
		}
		return "", false
	}
	keys := func() []string {
		ks := make([]string, 0, len(model))
		for k := range model {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		return ks
	}
	key := func() []byte { return []byte{byte('a' + rng.IntN(12)), byte('a' + rng.IntN(3))} }
	s := newMemStore()
	s.clearLimit = clearLimit
	const window = 40
	ranged := 0
	for cv := int64(1); cv <= 3000; cv++ {
		s.begin(cv)
		pending := map[string]ver{}
		cur := func(k string) bool {
			if p, ok := pending[k]; ok {
				return p.present
			}
			_, ok := at(k, cv)
			return ok
		}
		for range rng.IntN(4) {
			switch k := key(); rng.IntN(4) {
			case 0, 1:
				val := fmt.Sprint(cv, rng.IntN(100))
				s.set(k, []byte(val))
				pending[string(k)] = ver{cv, true, val}
			case 2:
				s.del(k)
				if cur(string(k)) {
					pending[string(k)] = ver{cv, false, ""}
				}
			case 3:
				e := key()
				if bytes.Compare(k, e) > 0 {
					k, e = e, k
				}
				before := len(s.loadDels())
				s.clearRange(k, e)
				if len(s.loadDels()) > before {
					ranged++
				}
				for _, mk := range append(keys(), slices.Collect(func(yield func(string) bool) {
					for pk := range pending {
						if !yield(pk) {
							return
						}
					}
				})...) {
					if mk >= string(k) && mk < string(e) && cur(mk) {
						pending[mk] = ver{cv, false, ""}
					}
				}
			}
		}
		// Reads of the group's own writes before it ends (atomic ops do).
		for k, p := range pending {
			_, mv := s.current([]byte(k))
			if got := mv != nil && mv.present; got != p.present || got && string(mv.value) != p.value {
				t.Fatalf("version %d: current(%q) = %v, want %+v", cv, k, mv, p)
			}
		}
		if rng.IntN(10) == 0 {
			s.abort()
		} else {
			s.commit()
			for k, p := range pending {
				model[k] = append(model[k], p)
			}
		}
		s.age(cv - window)
		floor := s.floor.Load()
		for range 4 {
			v := cv - int64(rng.IntN(window+10))
			tooOld := v < floor
			k := key()
			got, present, err := s.get(k, v)
			if tooOld {
				wantCode(t, fmt.Sprintf("get at %d below floor %d", v, floor), err, 1007)
				continue
			}
			want, wantPresent := at(string(k), v)
			if err != nil || present != wantPresent || string(got) != want {
				t.Fatalf("version %d: get(%q, %d) = %q %v %v, want %q %v", cv, k, v, got, present, err, want, wantPresent)
			}
			b, e := key(), key()
			if bytes.Compare(b, e) > 0 {
				b, e = e, b
			}
			reverse := rng.IntN(2) == 0
			skip := key()
			var gotKeys []string
			err = s.scan(v, b, e, reverse, func(k, val []byte) (bool, []byte) {
				gotKeys = append(gotKeys, string(k)+"="+string(val))
				if bytes.Equal(k[:1], skip[:1]) { // seek past this first byte
					if reverse {
						return true, k[:1]
					}
					return true, []byte{k[0] + 1}
				}
				return true, nil
			})
			var wantKeys []string
			ks := keys()
			if reverse {
				slices.Reverse(ks)
			}
			var skipping []byte
			for _, mk := range ks {
				if mk < string(b) || mk >= string(e) {
					continue
				}
				if skipping != nil && mk[0] == skipping[0] {
					continue
				}
				skipping = nil
				if val, ok := at(mk, v); ok {
					wantKeys = append(wantKeys, mk+"="+val)
					if mk[0] == skip[0] {
						skipping = []byte{mk[0]}
					}
				}
			}
			if err != nil || fmt.Sprint(gotKeys) != fmt.Sprint(wantKeys) {
				t.Fatalf("version %d: scan [%q, %q) at %d reverse=%v skip %q = %q %v, want %q", cv, b, e, v, reverse, skip[:1], gotKeys, err, wantKeys)
			}
		}
	}
	// Aged past everything: no range deletion left, one version per key,
	// and exactly the keys present at the end in the skiplist.
	s.age(1 << 40)
	if d := s.loadDels(); len(d) != 0 {
		t.Fatalf("%d range deletions left after aging past them", len(d))
	}
	var left, want []string
	for n := s.head.next[0].Load(); n != nil; n = n.next[0].Load() {
		mv := n.versions.Load()
		if mv == nil || mv.older.Load() != nil || !mv.present {
			t.Fatalf("key %q after aging: versions %v", n.key, mv)
		}
		left = append(left, string(n.key))
	}
	for _, k := range keys() {
		if _, ok := at(k, 1<<40); ok {
			want = append(want, k)
		}
	}
	if fmt.Sprint(left) != fmt.Sprint(want) {
		t.Fatalf("keys left after aging %q, want %q", left, want)
	}
	if clearLimit == 1 && ranged == 0 {
		t.Fatal("no range deletion was recorded")
	}
	t.Logf("%d range deletions", ranged)
}

// BenchmarkMemStoreSet times the committer's write of one fresh
// marker-like key (a shared prefix, a shard byte, 32 hex digits) per
// group into a store holding window keys already, aging as it goes: the
// per-key cost exactly-once adds in memory.
func BenchmarkMemStoreSet(b *testing.B) {
	for _, window := range []int{10_000, 500_000} {
		b.Run(fmt.Sprintf("window=%d", window), func(b *testing.B) {
			s := newMemStore()
			key := func(i int) []byte {
				return fmt.Appendf([]byte("\xfdbench/"), "%c%016x%016x", byte(i%16), i, uint64(i)*0x9e3779b97f4a7c15)
			}
			keys := make([][]byte, window+b.N)
			for i := range keys {
				keys[i] = key(i)
			}
			val := []byte{1, 0, 0, 0, 1}
			for i := range window {
				s.begin(int64(i + 1))
				s.set(keys[i], val)
				s.commit()
			}
			b.ResetTimer()
			for i := range b.N {
				v := int64(window + i + 1)
				s.begin(v)
				s.set(keys[window+i], val)
				s.commit()
				s.age(v - int64(window))
			}
		})
	}
}

// TestMemStoreAgingMovesKeptVersionsOut checks what newVersion's blocks
// rely on: once a group ages, the version of a key it wrote that is still
// the key's newest moves to an allocation of its own (same version and
// value), while a version a later write superseded is dropped, not moved.
func TestMemStoreAgingMovesKeptVersionsOut(t *testing.T) {
	s := newMemStore()
	s.begin(1)
	s.set([]byte("once"), []byte("v1"))
	s.set([]byte("hot"), []byte("h1"))
	s.commit()
	once := s.seekGE([]byte("once"), nil)
	hot := s.seekGE([]byte("hot"), nil)
	before := once.versions.Load()
	for cv := int64(2); cv <= 10; cv++ {
		s.begin(cv)
		s.set([]byte("hot"), fmt.Appendf(nil, "h%d", cv))
		s.commit()
	}
	hotHead := hot.versions.Load()
	s.age(5)
	after := once.versions.Load()
	if after == before {
		t.Fatal("the aged, still newest version of a key written once stayed in its block")
	}
	if after.version != 1 || !after.present || string(after.value) != "v1" || after.older.Load() != nil {
		t.Fatalf("moved version = {%d %v %q older %v}, want {1 true \"v1\" nil}", after.version, after.present, after.value, after.older.Load())
	}
	if hot.versions.Load() != hotHead {
		t.Fatal("a key's version newer than the floor was moved")
	}
	// hot keeps its versions above the floor and the newest at or below it.
	var got []int64
	for mv := hot.versions.Load(); mv != nil; mv = mv.older.Load() {
		got = append(got, mv.version)
	}
	if want := []int64{10, 9, 8, 7, 6, 5}; !slices.Equal(got, want) {
		t.Fatalf("hot's versions after aging to 5: %v, want %v", got, want)
	}
	if v, ok, err := s.get([]byte("once"), 10); err != nil || !ok || string(v) != "v1" {
		t.Fatalf("get once = %q %v %v", v, ok, err)
	}
}

// BenchmarkMemStoreOverwrite times the committer's overwrite of one of
// 16 marker-sized slot keys per group (what marker slots send the store),
// aging as it goes with a window of groups in it: the per-version cost.
func BenchmarkMemStoreOverwrite(b *testing.B) {
	const window = 100_000
	s := newMemStore()
	var keys [16][]byte
	for i := range keys {
		keys[i] = fmt.Appendf([]byte("\xfdbench/"), "%c%016x%016x", byte(i), i, uint64(i)*0x9e3779b97f4a7c15)
	}
	val := []byte{3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	b.ReportAllocs()
	for i := range b.N {
		v := int64(i + 1)
		s.begin(v)
		s.set(keys[i%len(keys)], val)
		s.commit()
		s.age(v - window)
	}
}
