// Package idemkv is the user-facing store of idemkv: exactly-once
// transactions, counters and keyed requests on FoundationDB (or on the
// embedded engine with FoundationDB's semantics).
//
// # Opening a store
//
// Open takes a URI: "mem:" (in memory), "file:DIR" (embedded, durable;
// RFC 8089's file:/abs, file:///abs and file://localhost/abs, plus
// file:rel/dir; "file:" alone is DefaultDir()) or a plain directory path
// (taken as is, without query parameters), or "fdb:" / "fdb:CLUSTER_FILE"
// (a real cluster, in a build with -tags fdb). The store starts a janitor
// (package cleanup) that keeps transaction markers and expired keyed
// records bounded; Close stops it and closes the database.
// Options.WrapDatabase interposes a wrapper, such as kv/faulty's fault
// injector, between the store and its database.
//
// Query parameters set options, overriding the Options field they name;
// an unknown one is refused with the list of those the scheme accepts:
//
//	| parameter        | schemes        | values                    | sets
//	| sync             | file           | true (default), false     | Embedded.NoSync = !sync (false: UNSAFE, a machine crash can lose acknowledged commits)
//	| readonly         | file           | false (default), true     | Embedded.ReadOnly: read an existing database, refuse commits that write
//	| create           | file           | true (default), false     | Embedded.MustExist = !create: fail instead of creating a database
//	| janitor          | mem, file, fdb | true (default), false     | NoJanitor = !janitor
//	| janitor_interval | mem, file, fdb | a duration (default 10s)  | JanitorInterval
//	| min_age          | mem, file, fdb | a duration (default 10m)  | MinAge
//	| prefix           | mem, file, fdb | percent-encoded bytes     | Prefix (default "\xfdidemkv/", i.e. %FDidemkv%2F)
//	| cluster_file     | fdb            | a path                    | the cluster file (or give it as the URI's path)
//	| api_version      | fdb            | 620 to 730 (default 730)  | FDB.APIVersion
//
// For example "file:///var/lib/app/db?janitor=false" or
// "fdb:?cluster_file=/etc/foundationdb/fdb.cluster&api_version=710".
//
// # Exactly-once transactions
//
// Transact runs a function in a transaction exactly once, through package
// txn's marker protocol: FoundationDB's commit_unknown_result (1021) and
// cluster_version_changed (1039) are retried without applying the
// transaction twice, which the stock retry loop cannot promise. The
// function may run more than once and must have no outside effects. A
// call that times out is not retried: its error (*txn.UnknownResultError)
// carries an ID, and Store.Resolve answers, definitively, whether it
// committed. ReadTransact runs read-only functions, which need no marker.
//
// # Counters
//
// Counter(name) is one key, updated with FoundationDB's atomic add: adds
// never conflict with each other, and Get is one point read. But every add
// to the key lands on the same storage servers; a counter incremented by
// many clients at a high rate (thousands of adds a second) becomes a hot
// key. ShardedCounter(name, n) spreads adds over n keys, chosen at random,
// and Get sums them with one range read of n keys. Use a plain Counter
// unless one counter takes a large share of the write load; use a sharded
// one when it does and reads are rarer than writes. Both Add exactly once
// (Add) or inside a caller's Transact (AddTx).
//
// # Keyed requests
//
// A keyed request is a caller-chosen key (an HTTP Idempotency-Key, a
// message ID, a file name) whose first call runs and whose repeats — from
// any process, after restarts — get the first call's stored result
// (Options.Codec, JSON by default) without running again. The record holds
// a SHA-256 fingerprint of the payload: the same key with another payload
// is ErrPayloadMismatch, never a silent replay. A scope (KeyOptions.Scope,
// DoOptions.Scope: an endpoint, a tenant) namespaces keys without eating
// into MaxKeyLen. KeyInfo.Replayed tells a replay from a first run.
//
// TransactKey is for requests whose effect is in the store (most are): fn
// runs in a transaction under txn's exactly-once protocol, and the
// attempt that commits writes fn's writes and the key's record together.
// Nothing can separate them: there is no lease, no in-progress state, and
// a crash at any moment leaves either both or neither. A first call costs
// one commit; a repeat one point read and no write. Concurrent duplicates
// conflict on the record's key; one commits and the others replay it.
//
// Do is for requests whose effect is outside the store (another service,
// an upload, a mail): fn runs outside any transaction, between a claim
// and a completion that are each exactly-once transactions.
//
// # Leases, fencing and unknown outcomes (Do)
//
// While fn runs, the key is in progress under a lease (Options.Lease,
// default 30 s, by database versions and by the wall clock: see "Leases
// across recoveries and clock skew"); a long fn renews it (RenewLease, or
// DoOptions.Heartbeat). A concurrent duplicate gets *InProgressError with
// the lease left (for Retry-After), or waits with DoOptions.Wait. Once the
// lease expires, the next caller
// takes the key over with a new, larger fencing token (LeaseToken); the
// displaced caller's result is refused with ErrLeaseLost. Hand LeaseToken
// to downstream systems that can reject smaller tokens to fence the
// outside effects too.
//
// fn's plain error releases the key for a retry; an error wrapped with
// Final is stored and replayed as a *StoredError, which keeps its status,
// code and the caller's own error type (errors.As decodes it). An error
// that may mean fn's effect happened — txn.ErrUnknownResult,
// txn.ErrOutcomeLost, a raw commit_unknown_result, a nested
// ErrOutcomeUnknown — never frees the key: it is kept as "outcome
// unknown", and every later call gets *OutcomeUnknownError until someone
// who knows calls Store.ForgetKey. A completion whose own commit outcome
// is unknown is settled by Do itself: it resolves (fences) the
// completion's transaction and retries it under the same token.
//
// What each reader can conclude: a record in progress means a holder may
// be running fn; completed means fn's outcome is stored and fn will not
// run again under this record; outcome unknown means fn ran and its effect
// is in doubt; no record means no call with the key has committed a claim
// or a result since the last retention sweep (or ForgetKey).
//
// # Leases across recoveries and clock skew
//
// Neither clock a lease could be measured by is safe alone. Database
// versions are the cluster's, so no client's clock skew moves them, but
// every FoundationDB recovery advances them by about 100 seconds' worth at
// once (a forced recovery by far more): measured in versions alone, one
// recovery expires every lease shorter than that while its holder still
// runs, and fn's outside effect runs twice. A wall clock does not jump
// with a recovery, but each process has its own, skewed from the others'
// and stepped by NTP. So a lease has two deadlines, as the janitor's
// MinAge has (package cleanup, "Versions and wall clocks"): every claim and
// renewal writes the version deadline (its read version plus the lease)
// and the wall deadline (its own clock's time plus the lease), and a
// would-be taker takes the key over only when its read version has passed
// the first and its own clock the second.
//
// What the holder can conclude: no one takes its key over until a full
// lease has passed by versions and by the taker's clock. If a recovery
// advanced versions by J and the taker's clock runs s ahead of the
// holder's, the takeover can come after lease - min(J, s) of real time:
// a jump alone or skew alone cannot shorten a lease, only both at once,
// and then by the smaller error. Renewing at a third of the lease
// (Heartbeat) leaves room for that. What a would-be taker can conclude:
// an in-progress record whose two deadlines it has seen pass was not
// renewed within a lease by either clock, so its holder is gone or too
// slow to keep it; *InProgressError's RetryAfter is the later of the two
// deadlines' time left, by its own clock. The fencing rule is unchanged —
// a takeover's token (its read version) is larger than any before it, and
// the displaced caller's completion fails with ErrLeaseLost — so
// downstream systems that check LeaseToken stay fenced whatever the clocks
// do.
//
// What it costs: a taker whose clock runs s behind the claimer's waits up
// to the lease plus s, so the key of a crashed holder frees up to the skew
// later (keep clocks synchronized; a clock hours behind holds keys for
// hours). Each claim and renewal reads the clock and stores 8 more bytes.
//
// Why not the janitor's clock samples (a version beside the wall time it
// was current, written by one process and read back by the same rule)?
// A taker would need a sample at least a lease old, so some process would
// have to write samples at intervals well under the lease (seconds, not
// the janitor's 10 s default), the lease would be only as fine as that
// interval, and the store would depend on that writer running. Wall
// deadlines need no writer and no extra reads.
//
// Records written before leases had a wall deadline (record format 1) are
// still read; one in progress expires by its version deadline alone, the
// rule it was written under (nothing else is known of its holder's clock,
// and keeping it until its retention would strand the key for a day).
// Completed and outcome-unknown records are written as before; only
// in-progress records carry the wall deadline (format 2), which a binary
// from before this change refuses as a corrupt record — an error, never a
// takeover — so during a rolling upgrade old processes fail on keys that
// upgraded ones hold in progress. The janitor keeps an in-progress record
// whose age-index entry comes due while its wall deadline still holds (a
// retention shorter than the lease, and a version jump), indexing it
// again for after the lease.
//
// Options.Clock is the wall clock (default time.Now, or the embedded
// engine's Clock if set); tests step it apart from the versions.
//
// # Retention and the janitor
//
// Every keyed record has an entry in an age index, due Options.Retention
// (default 24 h, as Stripe keeps idempotency keys) after its last write;
// the janitor removes due records, checking a token so that a record
// written again since is kept. After that, the key is new again.
// Transaction markers are slots a process's calls reuse (see txn's doc);
// the janitor removes the slots unused for MinAge (default 10 minutes):
// those of processes and handles gone, and idle ones. A call whose outcome
// is unknown keeps its slot for Resolve for as long; resolve timed-out
// calls within it.
//
// # Keyspace
//
// Everything lives under Options.Prefix (default "\xfdidemkv/"): "tx/"
// transaction marker slots (and the legacy markers of earlier versions, the
// janitor's watermark and clock samples), "c/" plain counters,
// "s/" sharded counter shards, "k/" keyed records, "a/" their age index.
// Processes sharing a database must share the prefix; keep other data out
// of it.
//
// # Operating a store
//
// Options.Logger (a *slog.Logger; nil is silent) gets janitor sweeps at
// debug, janitor failures at error, and at warn the calls whose outcome is
// unknown (with the ID to resolve), outcomes lost, and keyed requests
// whose lease expired and was taken over (with the key and both fencing
// tokens). Options.Metrics gets every call's outcome and txn.Stats, every
// sweep, every keyed request's result and an estimate of the markers
// alive; package idemkv/prom exports them to Prometheus, and
// Options.Observe is txn's own per-call hook. Store.Health reports the
// janitor's state and last error, for a readiness probe: the janitor never
// stops on an error (a foreign key under the marker prefix included), it
// retries with backoff and Health shows why until a sweep succeeds. The
// command cmd/idemkv inspects a store from a shell: stats, keyed records,
// markers, resolve and sweep.
//
// # Errors
//
// Errors are classified with errors.Is and errors.As, never by string:
// idemkv's sentinels and types (ErrInProgress and *InProgressError,
// ErrOutcomeUnknown and *OutcomeUnknownError, ErrPayloadMismatch,
// ErrLeaseLost, ErrClosed, ...), txn's exactly-once outcomes (txn.ErrUnknownResult,
// txn.ErrOutcomeLost) and FoundationDB's own failures as *kv.Error with
// their real codes (kv.ErrTransactionTimedOut, ...). Bad input — an empty
// or over-long key, a result over MaxResultSize, a nil function, a closed
// store, an unknown URI scheme — is a clear error and writes nothing.
package idemkv
