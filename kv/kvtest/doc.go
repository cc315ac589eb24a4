// Package kvtest is the backend conformance suite: the FoundationDB
// behaviours that idemkv relies on, written only against the kv
// interfaces, so that the same cases run against the embedded engine, the
// fault injector and a real FoundationDB cluster. It also holds a
// strict-serializability check built on porcupine.
//
// # Running the suite against a backend
//
// Call Run from a test in the backend's package with a function that opens
// a database (and registers its Close with t.Cleanup):
//
//	func TestConformance(t *testing.T) {
//		kvtest.Run(t, func(t *testing.T) kv.Database {
//			db, err := mybackend.Open(...)
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { db.Close() })
//			return db
//		})
//	}
//
// Each subtest is named for the behaviour it checks ("RangeRead/LimitReverse",
// "RYW/ClearRangeThenSet", "Conflict/PhantomInsertIntoReadRange",
// "Atomic/AddCarryAndLength", "Versions/TransactionTooOldAfterFiveSeconds",
// ...), so `go test -run 'TestConformance/Conflict/'` runs one family.
// Subtests run in parallel (one sleeps five and a half seconds to age a read
// version past FoundationDB's transaction lifetime); -parallel=1 serializes
// them.
//
// # Against a real cluster
//
// The suite assumes nothing about the database's contents: every case works
// under its own random prefix ("kvtest/<16 hex digits>/"), reads only inside
// it, and clears it when it ends; open may return the same database every
// time. It never writes system keys (the cases that touch 0xff only check
// that doing so is refused or, for reads, allowed by the option). The fdb
// adapter calls Run under build tag fdb when FDB_CLUSTER_FILE is set:
//
//	FDB_CLUSTER_FILE=/etc/foundationdb/fdb.cluster go test -tags fdb ./kv/fdbkv -run TestConformance
//
// # Expected values
//
// Atomic operations are checked against bytes written out literally from
// FoundationDB's fdbclient/Atomic.h semantics, never computed with
// kv.ApplyAtomic, so the suite checks that function too. Errors are checked
// with errors.Is against the kv sentinels and must be *kv.Error values.
//
// # Strict serializability
//
// CheckStrictSerializable (and VerifyStrictSerializable, which returns an
// error instead of failing a test) runs Clients goroutines, each committing
// random multi-key transactions — gets, limited and reverse range reads,
// sets, clears, range clears and little-endian adds over a handful of keys —
// on a fresh prefix. It records each committed transaction's call and return
// times, operations and what its reads saw, and asks porcupine for a serial
// order consistent with real time and with a model of the whole key space.
// Attempts that fail retryable-not-committed had no effect and are dropped;
// a maybe-committed error fails the run, since without fault injection none
// should occur. The workload is seeded: a failure prints the seed, a replay
// command and the path of porcupine's HTML visualization. Goroutine
// scheduling is not seeded, so a replay reruns the same transactions, not
// always the same interleaving.
//
// StaleReads wraps a backend so that it serves reads from old versions; the
// check must reject it, which shows that it can fail.
//
// # Engine bugs
//
// A case that fails against the embedded engine and that FoundationDB's
// documentation or source shows to be right stays failing; ENGINE_BUGS.md in
// this directory lists each with the expected and actual behaviour.
package kvtest
