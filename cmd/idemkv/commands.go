package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/idemkv/idemkv/cleanup"
	"github.com/idemkv/idemkv/idemkv"
	"github.com/idemkv/idemkv/kv/embedded"
	"github.com/idemkv/idemkv/kv/fdbkv"
	"github.com/idemkv/idemkv/txn"
)

// errHelp ends a command that printed its help on request.
var errHelp = errors.New("help requested")

// globals are the flags before the command.
type globals struct {
	store   string
	prefix  string
	shards  int
	json    bool
	timeout time.Duration
}

// command is one subcommand: its flags and what it does with the store.
type command struct {
	name, args, summary string
	flags               func(fs *flag.FlagSet) // defines the command's flags
	nargs               int
	run                 func(ctx context.Context, s *idemkv.Store, args []string, out *output) error
	minAge              *time.Duration // sweep: the store's MinAge
	writes              bool           // resolve and sweep write; the rest open the store read-only
}

func commands() []*command {
	var (
		state, keyPrefix, scope string
		allScopes, force        bool
		limit                   int
		minAge                  time.Duration
	)
	return []*command{
		{name: "stats", summary: "the database version, the janitor's watermark, markers and keyed records by state",
			run: func(ctx context.Context, s *idemkv.Store, _ []string, out *output) error {
				return cmdStats(ctx, s, out)
			}},
		{name: "keys", summary: "keyed records: key, state, age, lease left, token, result size",
			flags: func(fs *flag.FlagSet) {
				fs.StringVar(&state, "state", "", "only records in this state: in_progress, expired, completed or unknown")
				fs.StringVar(&keyPrefix, "prefix", "", "only keys that begin with this")
				fs.StringVar(&scope, "scope", "", "the keys' scope (DoOptions.Scope; default the empty scope)")
				fs.BoolVar(&allScopes, "all-scopes", false, "list every scope's keys")
				fs.IntVar(&limit, "limit", 0, "at most this many records (0: all)")
			},
			run: func(ctx context.Context, s *idemkv.Store, _ []string, out *output) error {
				return cmdKeys(ctx, s, idemkv.KeyedFilter{Scope: scope, AllScopes: allScopes, Prefix: keyPrefix, State: idemkv.KeyedState(state), Limit: limit}, out)
			}},
		{name: "show", args: "KEY", nargs: 1, summary: "one keyed record, its result decoded when it is JSON",
			flags: func(fs *flag.FlagSet) {
				fs.StringVar(&scope, "scope", "", "the key's scope (DoOptions.Scope; default the empty scope)")
			},
			run: func(ctx context.Context, s *idemkv.Store, args []string, out *output) error {
				return cmdShow(ctx, s, scope, args[0], out)
			}},
		{name: "resolve", args: "ID", nargs: 1, summary: "settle a timed-out call's outcome (fences the ID; refuses implausible IDs unless -force)",
			flags: func(fs *flag.FlagSet) {
				fs.BoolVar(&force, "force", false, "fence the ID even if it cannot be a call of this store")
			},
			writes: true,
			run: func(ctx context.Context, s *idemkv.Store, args []string, out *output) error {
				return cmdResolve(ctx, s, args[0], force, out)
			}},
		{name: "sweep", summary: "one janitor sweep now",
			flags: func(fs *flag.FlagSet) {
				fs.DurationVar(&minAge, "min-age", cleanup.DefaultMinAge, "remove transaction markers older than this (the store's MinAge)")
			},
			minAge: &minAge,
			writes: true,
			run: func(ctx context.Context, s *idemkv.Store, _ []string, out *output) error {
				return cmdSweep(ctx, s, out)
			}},
		{name: "markers", summary: "transaction markers counted by shard and by age",
			run: func(ctx context.Context, s *idemkv.Store, _ []string, out *output) error {
				return cmdMarkers(ctx, s, out)
			}},
	}
}

func usage(w io.Writer, gfs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: idemkv [global flags] COMMAND [flags] [args]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-16s %s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
	}
	fmt.Fprintf(w, "\nglobal flags:\n")
	gfs.SetOutput(w)
	gfs.PrintDefaults()
	fmt.Fprintf(w, "\nexit codes: 0 ok, 1 store failure, 2 usage, 3 not found, 4 resolve refused (use -force), 5 outcome lost\n")
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var g globals
	gfs := flag.NewFlagSet("idemkv", flag.ContinueOnError)
	gfs.SetOutput(io.Discard)
	gfs.StringVar(&g.store, "store", os.Getenv("IDEMKV_STORE"), "the store URI: file:DIR or a directory, fdb:[CLUSTER_FILE], mem: (default $IDEMKV_STORE)")
	def := strconv.Quote(string(idemkv.DefaultPrefix))
	gfs.StringVar(&g.prefix, "store-prefix", def[1:len(def)-1], "the store's key prefix (Options.Prefix), with Go escapes such as \\xfd")
	gfs.IntVar(&g.shards, "shards", txn.DefaultShards, "the store's Options.Shards")
	gfs.BoolVar(&g.json, "json", false, "print JSON instead of tables")
	gfs.DurationVar(&g.timeout, "timeout", 30*time.Second, "give up after this long")
	if err := gfs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout, gfs)
			return errHelp
		}
		return usageErr("%v (idemkv -h lists the flags)", err)
	}
	if gfs.NArg() == 0 {
		return usageErr("no command; one of stats, keys, show, resolve, sweep, markers (idemkv -h for more)")
	}
	name, rest := gfs.Arg(0), gfs.Args()[1:]
	var cmd *command
	for _, c := range commands() {
		if c.name == name {
			cmd = c
		}
	}
	if cmd == nil {
		return usageErr("unknown command %q; one of stats, keys, show, resolve, sweep, markers", name)
	}
	fs := flag.NewFlagSet("idemkv "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if cmd.flags != nil {
		cmd.flags(fs)
	}
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stdout, "usage: idemkv %s [flags] %s\n%s\n", name, cmd.args, cmd.summary)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return errHelp
		}
		return usageErr("%s: %v", name, err)
	}
	if fs.NArg() != cmd.nargs {
		if cmd.nargs == 0 {
			return usageErr("%s takes no arguments, got %q", name, fs.Args())
		}
		return usageErr("%s takes %s, got %d arguments", name, cmd.args, fs.NArg())
	}
	if g.timeout <= 0 {
		return usageErr("-timeout %v must be positive", g.timeout)
	}
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	opts, err := g.options()
	if err != nil {
		return err
	}
	if cmd.minAge != nil {
		if *cmd.minAge < cleanup.MinMinAge {
			return usageErr("sweep: -min-age %v is below the janitor's minimum %v", *cmd.minAge, cleanup.MinMinAge)
		}
		opts.MinAge = *cmd.minAge
	}
	s, err := openStore(ctx, g.store, opts, cmd.writes)
	if err != nil {
		return err
	}
	defer s.Close()
	return cmd.run(ctx, s, fs.Args(), &output{w: stdout, json: g.json})
}

func (g *globals) options() (*idemkv.Options, error) {
	prefix, err := strconv.Unquote(`"` + strings.ReplaceAll(g.prefix, `"`, `\"`) + `"`)
	if err != nil {
		return nil, usageErr("-store-prefix %q: not a Go string body (%v); write bytes as \\xNN", g.prefix, err)
	}
	if g.shards < 1 || g.shards > txn.MaxShards {
		return nil, usageErr("-shards %d: it must be 1 to %d", g.shards, txn.MaxShards)
	}
	// The CLI never runs the background janitor: only sweep sweeps.
	return &idemkv.Options{Prefix: []byte(prefix), Shards: g.shards, NoJanitor: true}, nil
}

// openStore opens uri. An embedded store must exist (the CLI inspects
// stores, it never makes one), and commands that only read open it
// read-only, so that nothing can be written to it.
func openStore(ctx context.Context, uri string, opts *idemkv.Options, writes bool) (*idemkv.Store, error) {
	if uri == "" {
		return nil, usageErr("no store: give -store URI (file:DIR, fdb:CLUSTER_FILE) or set IDEMKV_STORE")
	}
	if !strings.HasPrefix(strings.ToLower(uri), "mem:") {
		// For file: URIs and plain paths; the other schemes ignore it.
		opts.Embedded = &embedded.Options{MustExist: true, ReadOnly: !writes}
	}
	s, err := idemkv.Open(ctx, uri, opts)
	switch {
	case errors.Is(err, embedded.ErrNotExist):
		return nil, &exitError{exitNotFound, fmt.Errorf("no store at %q (the CLI does not create stores): %w", uri, err)}
	case errors.Is(err, idemkv.ErrUnknownScheme), errors.Is(err, idemkv.ErrInvalidURI), errors.Is(err, idemkv.ErrInvalidOptions):
		return nil, &exitError{exitUsage, err}
	case errors.Is(err, fdbkv.ErrNoFoundationDB):
		return nil, fmt.Errorf("%w (go install -tags fdb github.com/idemkv/idemkv/cmd/idemkv)", err)
	case errors.Is(err, embedded.ErrLocked):
		return nil, fmt.Errorf("%w: a process has the store open; an embedded store admits one process at a time (inspect it from that process, or stop it first)", err)
	case err != nil:
		return nil, err
	}
	return s, nil
}
