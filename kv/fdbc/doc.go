// Package fdbc is FoundationDB's C client API (fdb_c) implemented in Go
// over kv/embedded, so that the unmodified FoundationDB Go bindings
// (github.com/apple/foundationdb/bindings/go) — and everything built on
// them: kv/fdbkv, the tuple, subspace and directory layers, users' own fdb
// code — run in-process, with no libfdb_c and no cluster.
//
// # Enabling it
//
// A program (or test) enables the shim with a blank import, usually in a
// file behind a build tag, and builds with the shim's headers on cgo's
// include path:
//
//	//go:build fdb
//
//	package mypkg_test
//
//	import _ "github.com/idemkv/idemkv/kv/fdbc"
//
//	CGO_CFLAGS="-O2 -g -I$(go list -m -f '{{.Dir}}' github.com/idemkv/idemkv)/kv/fdbc/include" go test -tags fdb ./...
//
// The bindings include <foundationdb/fdb_c.h> (this package's
// include/foundationdb/fdb_c.h, written from FoundationDB's documented C
// API) and link with -lfdb_c, which this package's empty lib/libfdb_c.a
// satisfies; the symbols themselves are this package's cgo exports. Keep
// -O2 -g in CGO_CFLAGS (setting it replaces the defaults). Go's build
// cache does not track the header's contents or CPATH: after editing the
// header run go clean -cache, and pass the path in CGO_CFLAGS, never
// CPATH. The package itself needs cgo and no header; without the import
// and the flag the bindings fail to build, as they do on any machine
// without FoundationDB's client.
//
// # Cluster files
//
// fdb_create_database maps its cluster file path to an embedded store:
//
//   - "" (the bindings' default): $FDB_CLUSTER_FILE if set, else
//     ./fdb.cluster if it exists, else one in-memory store shared by the
//     whole process;
//   - a directory, or a path ending in "/": a durable kv/embedded store in
//     that directory;
//   - a file: its connection string (description:ID@host:port,...) names
//     an in-memory store, shared by every database opened with the same
//     string (fdb_create_database_from_connection_string included).
//
// A store lives while a database handle, a transaction or an armed watch
// uses it; an in-memory store's data goes with its last user. Two handles
// on one store see one database, as two clients of one cluster do.
//
// # What is faithful and what is not
//
// Transactions are kv/embedded's: FoundationDB's isolation, conflicts,
// read-your-writes, atomic operations, versionstamps, size limits, the
// five-second lifetime, timeouts, retry limits and OnError's backoff; see
// that package's documentation for where the engine differs from a
// cluster. This package adds what the C API has on top:
//
//   - Futures are ready at once (reads) or later (commit, OnError's
//     backoff, versionstamps, watches); callbacks run on the goroutine that
//     makes the future ready, or nested in fdb_future_set_callback, never
//     under the shim's locks. Results are C memory owned by the future
//     until fdb_future_release_memory or fdb_future_destroy.
//   - Key selectors resolve by reading as many keys as their offset asks
//     (offset 1, the common bound, reads nothing), with read conflicts as
//     FoundationDB adds them. get_range honours limit, target_bytes, every
//     streaming mode's byte target, iteration, reverse and snapshot, reads
//     the engine in batches of 64 rows so that no call reads further than
//     its limits, and sets more when it stopped on one.
//   - From fdb_transaction_commit until OnError or Reset every operation
//     but get_committed_version fails with used_during_commit (2017) —
//     get_versionstamp included: ask for it before committing. Concurrent
//     calls on one transaction are serialized.
//   - Watches fire on a committed change (kv/embedded's DB.Watch), fail
//     with the commit's error or transaction_cancelled, and past
//     max_watches with too_many_watches (1032).
//   - Options are taken by code (options.go lists every FoundationDB 7.3
//     option): those kv/embedded implements take effect; the rest are
//     accepted as no-ops, except the few that would change semantics the
//     engine does not have (read-your-writes or snapshot RYW disabled,
//     next_write_no_write_conflict_range, bypass_unreadable,
//     use_config_database), which fail with unsupported_operation (2108).
//     Unknown codes fail with invalid_option (2007).
//   - Tenants are refused: fdb_database_open_tenant fails with
//     tenants_disabled (2136), FoundationDB's answer on a cluster without
//     tenant mode.
//   - fdb_get_error returns FoundationDB's texts; fdb_error_predicate is
//     kv's classification, which is FoundationDB 7.3's.
//   - API versions 610 to 730 are accepted; others fail with
//     api_version_not_supported (2203).
//
// # Cost
//
// BenchmarkShimOverhead runs a point read (new transaction, one Get) and a
// commit (new transaction, one Set, Commit) through the bindings and the
// shim and on kv/embedded directly, in-memory, in one run:
//
//	CGO_CFLAGS="-O2 -g -I$PWD/kv/fdbc/include" go test -tags fdbc -run '^$' -bench ShimOverhead -benchtime 2s ./kv/fdbc/
//
// On the 2-core development VM, shared and loaded (load average 18): read
// 7.9 us directly, 25 us through the bindings (3.2x); commit 24 us
// directly, 118 us through the bindings (4.9x: the commit runs on a
// goroutine of its own and wakes the caller through the bindings'
// callback, so scheduling dominates on a busy machine). The shim is for
// tests and single-process use of FoundationDB code; the engine's own
// figures are in kv/embedded.
//
// # Function by function
//
// Faithful (FoundationDB's contract, on kv/embedded):
//
//	fdb_get_error  fdb_error_predicate  fdb_select_api_version_impl  fdb_get_max_api_version
//	fdb_setup_network  fdb_run_network  fdb_stop_network
//	fdb_future_cancel  fdb_future_release_memory  fdb_future_destroy  fdb_future_block_until_ready
//	fdb_future_is_ready  fdb_future_set_callback  fdb_future_get_error  fdb_future_get_int64
//	fdb_future_get_key  fdb_future_get_value  fdb_future_get_keyvalue_array
//	fdb_future_get_key_array  fdb_future_get_string_array
//	fdb_create_database  fdb_create_database_from_connection_string (the convention above)
//	fdb_database_destroy  fdb_database_set_option  fdb_database_create_transaction
//	fdb_transaction_destroy  fdb_transaction_cancel  fdb_transaction_reset
//	fdb_transaction_set_option  fdb_transaction_set_read_version  fdb_transaction_get_read_version
//	fdb_transaction_get  fdb_transaction_get_key  fdb_transaction_get_range
//	fdb_transaction_set  fdb_transaction_atomic_op  fdb_transaction_clear  fdb_transaction_clear_range
//	fdb_transaction_add_conflict_range  fdb_transaction_watch  fdb_transaction_commit
//	fdb_transaction_get_committed_version  fdb_transaction_get_approximate_size
//	fdb_transaction_get_versionstamp  fdb_transaction_on_error
//	fdb_transaction_get_estimated_range_size_bytes (exact: sums the range; FoundationDB samples)
//	fdb_transaction_get_range_split_points (splits every chunk_size bytes of keys and values)
//
// Documented no-ops (there is nothing in one process for them to do):
//
//	fdb_network_set_option (every 7.3 network option: trace, knobs, TLS, external clients)
//	fdb_database_reboot_worker (answers 0: no worker has the address)
//	fdb_database_get_client_status (a healthy client with no connections)
//	fdb_transaction_get_addresses_for_key (the one in-process "storage server", 127.0.0.1:4500)
//
// Refused with FoundationDB's error:
//
//	fdb_database_open_tenant  fdb_tenant_create_transaction  fdb_tenant_destroy
//	(tenants_disabled, 2136: no tenant mode)
//
// # Bad input
//
// Handles are keys into a table, not pointers: a NULL, stale or foreign
// handle, a destroyed future used again, a negative length or a NULL out
// parameter gets FoundationDB's error code (future_released (1102) for a
// destroyed future, client_invalid_operation (2000) otherwise; a void
// write with a negative length makes the transaction's later reads and
// commit fail with 2000) and never touches memory it does not own.
package fdbc
