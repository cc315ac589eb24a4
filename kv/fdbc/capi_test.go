//go:build cgo

package fdbc

// Direct calls of the exported C API, as a C program makes them: the
// contracts the Go bindings never exercise, bad input above all. Each
// call below would be undefined behaviour or a crash with libfdb_c; here
// it is one of FoundationDB's error codes.

import (
	"sync"
	"testing"
	"unsafe"
)

var readyOnce sync.Once

// openDefault opens the process's default in-memory store (NULL path,
// with FDB_CLUSTER_FILE unset and no ./fdb.cluster in the test's
// directory).
func openDefault(t *testing.T) uintptr {
	t.Helper()
	ready(t)
	t.Setenv("FDB_CLUSTER_FILE", "")
	var h uintptr
	if c := fdb_create_database(nil, &h); c != 0 {
		t.Fatalf("fdb_create_database(NULL) = %d", c)
	}
	t.Cleanup(func() { fdb_database_destroy(h) })
	return h
}

func newTr(t *testing.T, db uintptr) uintptr {
	t.Helper()
	var h uintptr
	if c := fdb_database_create_transaction(db, &h); c != 0 {
		t.Fatalf("create transaction: %d", c)
	}
	t.Cleanup(func() { fdb_transaction_destroy(h) })
	return h
}

// wait blocks on f and returns its error code.
func wait(t *testing.T, f uintptr) int {
	t.Helper()
	if c := fdb_future_block_until_ready(f); c != 0 {
		t.Fatalf("block_until_ready: %d", c)
	}
	return int(fdb_future_get_error(f))
}

func bytesPtr(b []byte) *byte {
	if len(b) == 0 {
		return nil
	}
	return &b[0]
}

func TestAPIVersionRange(t *testing.T) {
	ready(t)
	for _, c := range []struct {
		runtime, header, want int
	}{
		{731, 731, errAPIVersionUnsupported},
		{600, 730, errAPIVersionUnsupported},
		{730, 720, errAPIVersionInvalid},
		{720, 730, errAPIVersionAlreadySet},
		{730, 730, errSuccess},
	} {
		if got := fdb_select_api_version_impl(int32(c.runtime), int32(c.header)); int(got) != c.want {
			t.Errorf("select_api_version(%d, header %d) = %d, want %d", c.runtime, c.header, got, c.want)
		}
	}
	if got := fdb_get_max_api_version(); got != MaxAPIVersion {
		t.Errorf("max API version %d, want %d", got, MaxAPIVersion)
	}
	if got := fdb_setup_network(); got != errNetworkAlreadySetup {
		t.Errorf("second setup_network = %d, want network_already_setup", got)
	}
}

func TestBadHandles(t *testing.T) {
	db := openDefault(t)
	var out uintptr
	for _, h := range []uintptr{0, 1, 12345, handleBase + 3} {
		if c := fdb_database_create_transaction(h, &out); c != errClientInvalidOp {
			t.Errorf("create_transaction(%#x) = %d, want 2000", h, c)
		}
		if c := wait(t, fdb_transaction_get(h, nil, 0, 0)); c != errClientInvalidOp {
			t.Errorf("get on transaction %#x = %d, want 2000", h, c)
		}
		if c := fdb_future_get_error(h); c != errFutureReleased {
			t.Errorf("future_get_error(%#x) = %d, want future_released", h, c)
		}
		fdb_transaction_set(h, nil, 0, nil, 0) // ignored, no crash
		fdb_future_destroy(h)
		fdb_transaction_destroy(h)
		fdb_database_destroy(h)
	}
	// A database handle is not a transaction handle, and NULL out
	// parameters are refused.
	if c := wait(t, fdb_transaction_commit(db)); c != errClientInvalidOp {
		t.Errorf("commit on a database handle = %d, want 2000", c)
	}
	if c := fdb_database_create_transaction(db, nil); c != errClientInvalidOp {
		t.Errorf("create_transaction with NULL out = %d, want 2000", c)
	}
}

func TestDestroyedFutureUsedAgain(t *testing.T) {
	tr := newTr(t, openDefault(t))
	f := fdb_transaction_get_read_version(tr)
	if c := wait(t, f); c != 0 {
		t.Fatal(c)
	}
	var v int64
	if c := fdb_future_get_int64(f, &v); c != 0 || v <= 0 {
		t.Fatalf("get_int64 = %d, %d", c, v)
	}
	// The wrong getter, and a released result.
	var p unsafe.Pointer
	var n int32
	if c := fdb_future_get_key(f, &p, &n); c != errClientInvalidOp {
		t.Errorf("get_key on an int64 future = %d, want 2000", c)
	}
	fdb_future_release_memory(f)
	if c := fdb_future_get_int64(f, &v); c != errFutureReleased {
		t.Errorf("get after release_memory = %d, want future_released", c)
	}
	fdb_future_destroy(f)
	fdb_future_destroy(f) // twice: no effect
	if c := fdb_future_get_int64(f, &v); c != errFutureReleased {
		t.Errorf("get_int64 after destroy = %d, want future_released", c)
	}
	if c := fdb_future_set_callback(f, 1, nil); c != errFutureReleased {
		t.Errorf("set_callback after destroy = %d, want future_released", c)
	}
	if r := fdb_future_is_ready(f); r != 0 {
		t.Errorf("is_ready after destroy = %d", r)
	}
}

func TestNegativeLengths(t *testing.T) {
	db := openDefault(t)
	tr := newTr(t, db)
	k := []byte("k")
	if c := wait(t, fdb_transaction_get(tr, bytesPtr(k), -1, 0)); c != errClientInvalidOp {
		t.Errorf("get with length -1 = %d, want 2000", c)
	}
	if c := wait(t, fdb_transaction_get_range(tr, bytesPtr(k), -5, 0, 1, bytesPtr(k), 1, 0, 1, 0, 0, modeWantAll, 1, 0, 0)); c != errClientInvalidOp {
		t.Errorf("get_range with length -5 = %d, want 2000", c)
	}
	if c := fdb_transaction_add_conflict_range(tr, bytesPtr(k), 1, bytesPtr(k), -1, conflictRead); c != errClientInvalidOp {
		t.Errorf("add_conflict_range with length -1 = %d, want 2000", c)
	}
	// A write with a negative length cannot report; the transaction's
	// later reads and its commit do, and nothing is written.
	fdb_transaction_set(tr, bytesPtr(k), 1, bytesPtr(k), -3)
	if c := wait(t, fdb_transaction_get(tr, bytesPtr(k), 1, 0)); c != errClientInvalidOp {
		t.Errorf("get after a bad set = %d, want 2000", c)
	}
	if c := wait(t, fdb_transaction_commit(tr)); c != errClientInvalidOp {
		t.Errorf("commit after a bad set = %d, want 2000", c)
	}
	// Reset clears it.
	fdb_transaction_reset(tr)
	if c := wait(t, fdb_transaction_get(tr, bytesPtr(k), 1, 0)); c != 0 {
		t.Errorf("get after reset = %d, want 0", c)
	}
}

func TestOptionsByCode(t *testing.T) {
	db := openDefault(t)
	tr := newTr(t, db)
	eight := make([]byte, 8)
	cases := []struct {
		name string
		got  int32
		want int
	}{
		{"unknown transaction option", fdb_transaction_set_option(tr, 9999, nil, 0), errInvalidOption},
		{"int option with 4 bytes", fdb_transaction_set_option(tr, optTimeout, bytesPtr(eight), 4), errInvalidOptionValue},
		{"int option without a value", fdb_transaction_set_option(tr, optRetryLimit, nil, 0), errInvalidOptionValue},
		{"negative length", fdb_transaction_set_option(tr, 800, bytesPtr(eight), -1), errInvalidOptionValue},
		{"size limit below 32", fdb_transaction_set_option(tr, optSizeLimit, bytesPtr(le64(31)), 8), errInvalidOptionValue},
		{"timeout", fdb_transaction_set_option(tr, optTimeout, bytesPtr(le64(1000)), 8), errSuccess},
		{"a no-op: priority batch", fdb_transaction_set_option(tr, 201, nil, 0), errSuccess},
		{"a no-op: tag", fdb_transaction_set_option(tr, 800, bytesPtr([]byte("web")), 3), errSuccess},
		{"refused: read-your-writes disable", fdb_transaction_set_option(tr, 51, nil, 0), errUnsupportedOperation},
		{"unknown database option", fdb_database_set_option(db, 12345, nil, 0), errInvalidOption},
		{"max_watches out of range", fdb_database_set_option(db, dbOptMaxWatches, bytesPtr(le64(-1)), 8), errInvalidOptionValue},
		{"unknown network option", fdb_network_set_option(7777, nil, 0), errInvalidOption},
		{"network no-op: knob", fdb_network_set_option(40, bytesPtr([]byte("a=b")), 3), errSuccess},
	}
	for _, c := range cases {
		if int(c.got) != c.want {
			t.Errorf("%s: %d, want %d", c.name, c.got, c.want)
		}
	}
}

func TestErrorTextsAndPredicates(t *testing.T) {
	for code, want := range map[int]string{
		1020:  "Transaction not committed due to conflict with another transaction",
		2017:  "Operation issued while a commit was outstanding",
		2021:  "Transaction is read-only and therefore does not have a commit version",
		2023:  "Attempted to commit a transaction specified as read-only",
		31337: "An unknown error occurred",
	} {
		if got := goString(fdb_get_error(int32(code))); got != want {
			t.Errorf("fdb_get_error(%d) = %q, want %q", code, got, want)
		}
	}
	for _, c := range []struct {
		test, code int
		want       bool
	}{
		{predicateRetryable, 1020, true},
		{predicateRetryable, 1021, true},
		{predicateRetryable, 1223, true},
		{predicateRetryable, 1031, false},
		{predicateMaybeCommitted, 1021, true},
		{predicateMaybeCommitted, 1039, true},
		{predicateMaybeCommitted, 1020, false},
		{predicateRetryableNotCommitted, 1223, true},
		{predicateRetryableNotCommitted, 1021, false},
		{12, 1020, false},
	} {
		if got := fdb_error_predicate(int32(c.test), int32(c.code)) != 0; got != c.want {
			t.Errorf("fdb_error_predicate(%d, %d) = %v, want %v", c.test, c.code, got, c.want)
		}
	}
}

func TestTenantsRefused(t *testing.T) {
	db := openDefault(t)
	name := []byte("tenant1")
	var out uintptr
	if c := fdb_database_open_tenant(db, bytesPtr(name), int32(len(name)), &out); c != errTenantsDisabled {
		t.Fatalf("open_tenant = %d, want tenants_disabled (2136)", c)
	}
	if c := fdb_tenant_create_transaction(out, &out); c != errClientInvalidOp {
		t.Fatalf("tenant_create_transaction on no tenant = %d, want 2000", c)
	}
}

func TestBlockUntilReadyAndCallbacksFromCommit(t *testing.T) {
	db := openDefault(t)
	tr := newTr(t, db)
	k := []byte("cb/k")
	fdb_transaction_set(tr, bytesPtr(k), int32(len(k)), bytesPtr(k), int32(len(k)))
	vs := fdb_transaction_get_versionstamp(tr)
	f := fdb_transaction_commit(tr)
	if c := wait(t, f); c != 0 {
		t.Fatalf("commit = %d", c)
	}
	if c := wait(t, vs); c != 0 {
		t.Fatalf("versionstamp = %d", c)
	}
	var p unsafe.Pointer
	var n int32
	if c := fdb_future_get_key(vs, &p, &n); c != 0 || n != 10 {
		t.Fatalf("versionstamp key = %d, %d bytes", c, n)
	}
	// After commit: used_during_commit until reset, even for get_versionstamp.
	if c := wait(t, fdb_transaction_get_versionstamp(tr)); c != errUsedDuringCommit {
		t.Errorf("get_versionstamp after commit = %d, want 2017", c)
	}
	if c := wait(t, fdb_transaction_get(tr, bytesPtr(k), int32(len(k)), 0)); c != errUsedDuringCommit {
		t.Errorf("get after commit = %d, want 2017", c)
	}
	var cv int64
	if c := fdb_transaction_get_committed_version(tr, &cv); c != 0 || cv <= 0 {
		t.Errorf("committed version = %d, %d", c, cv)
	}
	fdb_transaction_reset(tr)
	if c := fdb_transaction_get_committed_version(tr, &cv); c != 0 || cv != -1 {
		t.Errorf("committed version after reset = %d, %d; want -1", c, cv)
	}
	if c := wait(t, fdb_transaction_get(tr, bytesPtr(k), int32(len(k)), 0)); c != 0 {
		t.Errorf("get after reset = %d", c)
	}
	for _, h := range []uintptr{f, vs} {
		fdb_future_destroy(h)
	}
}

// goString copies a NUL-terminated C string.
func goString(p *byte) string {
	var b []byte
	for q := unsafe.Pointer(p); *(*byte)(q) != 0; q = unsafe.Add(q, 1) {
		b = append(b, *(*byte)(q))
	}
	return string(b)
}

func le64(v int64) []byte {
	b := make([]byte, 8)
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	return b
}
