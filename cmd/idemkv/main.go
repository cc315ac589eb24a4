// Command idemkv inspects and operates an idemkv store from a shell.
//
//	go install github.com/idemkv/idemkv/cmd/idemkv@latest
//	idemkv [global flags] COMMAND [flags] [args]
//
// # Commands
//
//	stats              the database version, the janitor's watermark, markers and keyed records by state
//	keys               keyed records: scope, key, state, age, lease left, token, result size
//	                   (-state in_progress|expired|completed|unknown, -prefix P, -scope S or
//	                   -all-scopes, -limit N)
//	show KEY           one keyed record, its result decoded when it is JSON (-scope S)
//	resolve ID         settle a timed-out call's outcome: committed or not committed. It fences the ID
//	                   (writes a tombstone if no attempt committed), so it first refuses IDs no call of
//	                   this store can have — a shard out of range, a version in the future or older than
//	                   anything the store has seen, below the janitor's watermark — unless -force
//	sweep              one janitor sweep now (-min-age D, default 10m)
//	markers            transaction markers counted by shard and by age
//
// # Global flags
//
//	-store URI         the store: "file:DIR" or a plain directory (an existing embedded store),
//	                   "fdb:[CLUSTER_FILE]" (a FoundationDB cluster; a build with -tags fdb), "mem:".
//	                   Default $IDEMKV_STORE.
//	-store-prefix P    the store's Options.Prefix, with Go escapes (default "\xfdidemkv/")
//	-shards N          the store's Options.Shards (default 16), for resolve's range check
//	-json              JSON on stdout instead of tables, for scripts
//	-timeout D         give up after D (default 30s)
//
// # Exit codes
//
//	0  success (resolve: the outcome is on stdout, committed or not committed)
//	1  the store failed: unreachable, closed, a storage error
//	2  bad usage: unknown command or flag, a malformed argument or ID, an unknown URI scheme
//	3  not found: show's key has no record; no store at the -store path
//	4  refused: resolve's ID cannot be a call of this store (rerun with -force to fence it anyway)
//	5  resolve: the outcome is lost (the janitor removed the marker)
//
// Errors go to stderr, one line, naming the fix. The CLI never creates a
// store: an embedded store must exist (Options.MustExist). Every command
// but resolve and sweep opens it read-only, and a command that fails
// writes nothing. An embedded store admits one process at a time: inspect
// it while its service is stopped, or use a cluster.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Exit codes.
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2
	exitNotFound = 3
	exitRefused  = 4
	exitLost     = 5
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// exitError is an error with the exit code it ends the command with.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &exitError{exitUsage, fmt.Errorf(format, args...)}
}

// run is the command, for main and for tests: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, stdout, stderr)
	if err == nil {
		return exitOK
	}
	if errors.Is(err, errHelp) {
		return exitOK
	}
	// Errors from package idemkv already name it; say it once.
	fmt.Fprintf(stderr, "idemkv: %s\n", strings.TrimPrefix(err.Error(), "idemkv: "))
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitFailure
}
