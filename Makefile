# idemkv's developer targets. `make test` is the README's test command and
# what .ci/run (the CI gate) runs; keep it under 20 minutes on 2 cores.
GO ?= go
export CGO_ENABLED ?= 1

.PHONY: all test race vet fmt-check lint bench bench-report stress example

all: test

# The CI test command: formatting, vet (also with the fdb tag), and every
# test under the race detector, then the FoundationDB bindings' tests on the
# in-process fdb_c shim.
test: fmt-check vet race race-fdb

race:
	$(GO) test -race -count=1 -timeout 18m ./...

# The unmodified FoundationDB Go bindings build against kv/fdbc's
# foundationdb/fdb_c.h and link against its exports (build tag fdbc links
# the shim in tests; fdb builds kv/fdbkv's adapter). CGO_CFLAGS replaces
# cgo's defaults, hence -O2 -g. Never CPATH: the build cache does not see it.
FDBC_CGO_CFLAGS := -O2 -g -I$(CURDIR)/kv/fdbc/include
# The packages with fdb- or fdbc-tagged files (the rest build the same with
# and without the tags).
FDB_TAGGED_PKGS := $(sort $(dir $(shell grep -rl --include='*.go' '^//go:build.*fdb' . 2>/dev/null)))

race-fdb:
	CGO_CFLAGS="$(FDBC_CGO_CFLAGS)" $(GO) test -race -count=1 -timeout 10m -tags fdb,fdbc ./kv/fdbc/ ./kv/fdbkv/
	CGO_CFLAGS="$(FDBC_CGO_CFLAGS)" $(GO) test -race -count=1 -timeout 10m -tags fdb,fdbc -run 'OnShim' ./txn/
	# The whole idemkv suite: its store tests open "fdb:" stores on the
	# shim; those needing the embedded engine itself skip, saying why.
	CGO_CFLAGS="$(FDBC_CGO_CFLAGS)" $(GO) test -race -count=1 -timeout 10m -tags fdb,fdbc ./idemkv/

vet:
	$(GO) vet ./...
	CGO_CFLAGS="$(FDBC_CGO_CFLAGS)" $(GO) vet -tags fdb,fdbc $(FDB_TAGGED_PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# staticcheck 2026.2.2 (module version v0.8.2), fetched through the Go module
# proxy on first use.
lint: fmt-check vet
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
	CGO_CFLAGS="$(FDBC_CGO_CFLAGS)" $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 -tags fdb,fdbc $(FDB_TAGGED_PKGS)

# Micro-benchmarks; compare runs with benchstat.
bench:
	$(GO) test -run='^$$' -bench=. -benchmem -count=1 ./...

# The overhead report: exactly-once against the stock loop, every workload,
# in memory and durable, at 0/1/5% faults, the whole matrix three times so
# that every ratio has its spread (about 11 minutes). Writes
# bench/results/{results.md,results.csv,throughput.png,p99.png,ratio.png}.
BENCH_DURATION ?= 3s
BENCH_RUNS ?= 3
BENCH_FAULTS ?= 0,1,5
bench-report:
	$(GO) run ./bench -duration $(BENCH_DURATION) -runs $(BENCH_RUNS) -faults $(BENCH_FAULTS) -out bench/results

# Long seeded runs, outside CI: more torture seeds, more serializability
# histories, more crash kills (the engine's and the payments service's), more
# janitor seeds and a longer space soak.
# Any failure prints its seed and the one-line command that replays it.
# Every count is a variable, for a shorter pass of the same runs, e.g.
#   make stress STRESS_SEEDS=3000 STRESS_SERIAL_SEEDS=500 STRESS_KILLS=60 \
#     STRESS_CLEANUP_SEEDS=300 STRESS_SOAK=2m STRESS_COUNT=3
STRESS_SEEDS ?= 100000
STRESS_SERIAL_SEEDS ?= 5000
STRESS_KILLS ?= 500
STRESS_CLEANUP_SEEDS ?= 2000
STRESS_SOAK ?= 30m
STRESS_COUNT ?= 20
stress:
	$(GO) test -count=1 -timeout 3h -run 'TestTorture' ./txn -txn.seeds=$(STRESS_SEEDS)
	$(GO) test -count=1 -timeout 1h -run 'TestStrictSerializable' ./kv/embedded -kvtest.seeds=$(STRESS_SERIAL_SEEDS)
	$(GO) test -count=1 -timeout 1h -run 'TestCrash' ./kv/embedded -crash.kills=$(STRESS_KILLS)
	$(GO) test -count=1 -timeout 1h ./cleanup -cleanup.seeds=$(STRESS_CLEANUP_SEEDS) -cleanup.soak=$(STRESS_SOAK)
	$(GO) test -race -count=$(STRESS_COUNT) -timeout 1h ./kv/faulty
	$(GO) test -count=1 -timeout 1h -run 'TestCrashPayments' ./examples/httpapi -crash.kills=$(STRESS_KILLS)

example:
	$(GO) run ./examples/counter
