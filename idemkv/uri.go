package idemkv

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/idemkv/idemkv/kv"
	"github.com/idemkv/idemkv/kv/embedded"
	"github.com/idemkv/idemkv/kv/fdbkv"
)

// ErrInvalidURI is wrapped by Open's error for a URI it cannot use: a
// malformed one, a file URI naming another host, an unknown query
// parameter or a bad parameter value. The message names the part and what
// is accepted.
var ErrInvalidURI = errors.New("idemkv: invalid URI")

// uriHelp lists the schemes, for messages.
const uriHelp = `use "mem:", "file:DIR" (file:/abs, file:///abs, file://localhost/abs; or a plain directory path) or "fdb:[CLUSTER_FILE]"`

// target is where a URI points: the scheme, the directory of a "file:"
// URI, the cluster file of an "fdb:" URI.
type target struct {
	scheme      string // "mem", "file" or "fdb"
	dir         string
	clusterFile string
}

// uriParam is one query parameter: where it applies, what it accepts, and
// the Options field it sets. Open's doc and the package doc's table list
// the same parameters; TestURIParamsDocumented keeps them in step.
type uriParam struct {
	name    string
	schemes []string
	accepts string
	set     func(v string, o *Options, t *target) error
}

var uriParams = []uriParam{
	{"sync", []string{"file"}, "true or false", func(v string, o *Options, _ *target) error {
		b, err := strconv.ParseBool(v)
		embeddedOpts(o).NoSync = !b
		return err
	}},
	{"readonly", []string{"file"}, "true or false", func(v string, o *Options, _ *target) error {
		b, err := strconv.ParseBool(v)
		embeddedOpts(o).ReadOnly = b
		return err
	}},
	{"create", []string{"file"}, "true or false", func(v string, o *Options, _ *target) error {
		b, err := strconv.ParseBool(v)
		embeddedOpts(o).MustExist = !b
		return err
	}},
	{"janitor", []string{"mem", "file", "fdb"}, "true or false", func(v string, o *Options, _ *target) error {
		b, err := strconv.ParseBool(v)
		o.NoJanitor = !b
		return err
	}},
	{"janitor_interval", []string{"mem", "file", "fdb"}, "a Go duration such as 10s", func(v string, o *Options, _ *target) error {
		d, err := time.ParseDuration(v)
		o.JanitorInterval = d
		return err
	}},
	{"min_age", []string{"mem", "file", "fdb"}, "a Go duration such as 10m", func(v string, o *Options, _ *target) error {
		d, err := time.ParseDuration(v)
		o.MinAge = d
		return err
	}},
	{"prefix", []string{"mem", "file", "fdb"}, "a non-empty, percent-encoded byte string", func(v string, o *Options, _ *target) error {
		if v == "" {
			return errors.New("empty")
		}
		o.Prefix = []byte(v)
		return nil
	}},
	{"cluster_file", []string{"fdb"}, "a path", func(v string, _ *Options, t *target) error {
		if v == "" {
			return errors.New("empty")
		}
		t.clusterFile = v
		return nil
	}},
	{"api_version", []string{"fdb"}, fmt.Sprintf("an integer from %d to %d", fdbkv.MinAPIVersion, fdbkv.MaxAPIVersion), func(v string, o *Options, _ *target) error {
		n, err := strconv.Atoi(v)
		if err == nil && (n < fdbkv.MinAPIVersion || n > fdbkv.MaxAPIVersion) {
			err = errors.New("out of range")
		}
		fdbOpts(o).APIVersion = n
		return err
	}},
}

// embeddedOpts returns o.Embedded, replaced by a copy so that a URI never
// changes the caller's struct.
func embeddedOpts(o *Options) *embedded.Options {
	var e embedded.Options
	if o.Embedded != nil {
		e = *o.Embedded
	}
	o.Embedded = &e
	return &e
}

// fdbOpts is embeddedOpts for o.FDB.
func fdbOpts(o *Options) *fdbkv.Options {
	var f fdbkv.Options
	if o.FDB != nil {
		f = *o.FDB
	}
	o.FDB = &f
	return &f
}

// paramNames lists the parameters scheme accepts.
func paramNames(scheme string) string {
	var names []string
	for _, p := range uriParams {
		if slices.Contains(p.schemes, scheme) {
			names = append(names, p.name)
		}
	}
	return strings.Join(names, ", ")
}

// parseURI parses uri and returns where it points and opts with the URI's
// query parameters applied (a copy: the caller's Options are not changed).
// A parameter overrides the Options field it names.
//
// "file:" follows RFC 8089: file:/abs/dir, file:///abs/dir and
// file://localhost/abs/dir are the local absolute path /abs/dir (percent-
// decoded); a file URI naming another host is refused, since the engine
// opens local directories only. Two forms go beyond the RFC: "file:rel/dir"
// is a path relative to the working directory, and "file:" alone is
// DefaultDir(). A string with no scheme is a plain directory path, taken
// as it is: no query parameters, so '?' and '#' are ordinary characters.
func parseURI(uri string, opts *Options) (target, *Options, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if uri == "" {
		return target{}, nil, fmt.Errorf("%w: the URI is empty; %s", ErrUnknownScheme, uriHelp)
	}
	scheme, _, ok := splitScheme(uri)
	if !ok {
		return target{scheme: "file", dir: uri}, &o, nil
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %q: %s", ErrInvalidURI, uri, fmt.Sprintf(format, args...))
	}
	u, err := url.Parse(uri)
	if err != nil {
		return target{}, nil, bad("%v", errors.Unwrap(err))
	}
	if u.Fragment != "" || strings.HasSuffix(uri, "#") {
		return target{}, nil, bad("a fragment (#...) means nothing here; percent-encode '#' in a path as %%23")
	}
	if u.User != nil {
		return target{}, nil, bad("user information (user@) means nothing here")
	}
	t := target{scheme: scheme}
	path, err := uriPath(u)
	if err != nil {
		return target{}, nil, bad("%v", err)
	}
	switch scheme {
	case "mem":
		if path != "" || u.Host != "" {
			return target{}, nil, bad(`"mem:" takes no path; query parameters only ("mem:?janitor=false")`)
		}
	case "file":
		if err := localHost(u.Host, scheme, path); err != nil {
			return target{}, nil, bad("%v", err)
		}
		t.dir = path
		if t.dir == "" {
			t.dir = DefaultDir()
		}
	case "fdb":
		if err := localHost(u.Host, scheme, path); err != nil {
			return target{}, nil, bad("%v", err)
		}
		t.clusterFile = path
	default:
		return target{}, nil, fmt.Errorf("%w %q in %q; %s", ErrUnknownScheme, scheme+":", uri, uriHelp)
	}

	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return target{}, nil, bad("query: %v", err)
	}
	if q.Has("cluster_file") && t.clusterFile != "" {
		return target{}, nil, bad("the path already names the cluster file %q; give it once, as the path or as cluster_file", t.clusterFile)
	}
	names := make([]string, 0, len(q))
	for name := range q {
		names = append(names, name)
	}
	slices.Sort(names) // report the first bad parameter deterministically
	for _, name := range names {
		i := slices.IndexFunc(uriParams, func(p uriParam) bool { return p.name == name && slices.Contains(p.schemes, scheme) })
		if i < 0 {
			return target{}, nil, bad("unknown query parameter %q for %q; known: %s", name, scheme+":", paramNames(scheme))
		}
		p := uriParams[i]
		if len(q[name]) > 1 {
			return target{}, nil, bad("query parameter %q is given %d times", name, len(q[name]))
		}
		if err := p.set(q[name][0], &o, &t); err != nil {
			return target{}, nil, bad("%s=%q: want %s", name, q[name][0], p.accepts)
		}
	}
	return t, &o, nil
}

// uriPath returns u's path, percent-decoded: the opaque part of
// "file:rel/dir" or the path of "file:/abs" and "file:///abs".
func uriPath(u *url.URL) (string, error) {
	if u.Opaque != "" {
		return url.PathUnescape(u.Opaque)
	}
	return u.Path, nil
}

// localHost accepts the empty host and "localhost" (RFC 8089 section 2:
// both mean the local machine) and refuses any other.
func localHost(host, scheme, path string) error {
	if host == "" || strings.EqualFold(host, "localhost") {
		return nil
	}
	return fmt.Errorf("names the host %q, but only local files can be opened (an empty host or localhost); for the local path /%s%s write %s:///%s%s",
		host, host, path, scheme, host, path)
}

// open opens the database t points at.
func (t target) open(uri string, cfg *config) (kv.Database, error) {
	var (
		db  kv.Database
		err error
	)
	switch t.scheme {
	case "mem":
		db, err = embedded.OpenMem(cfg.embedded)
	case "file":
		db, err = embedded.Open(t.dir, cfg.embedded)
	case "fdb":
		db, err = fdbkv.Open(t.clusterFile, cfg.fdb)
	}
	if err != nil {
		return nil, fmt.Errorf("idemkv: open %q: %w", uri, err)
	}
	return db, nil
}

// DefaultDir is the directory "file:" opens: idemkv under the system's
// temporary directory, for examples and experiments. One process at a time
// may hold it. Give a directory of your own for data that matters.
func DefaultDir() string { return filepath.Join(os.TempDir(), "idemkv") }

// splitScheme splits "scheme:rest". A URI scheme is a letter followed by
// letters, digits, '+', '-' or '.'; anything else (a path such as "./a:b"
// or "/tmp/x") has none.
func splitScheme(uri string) (scheme, rest string, ok bool) {
	i := strings.IndexByte(uri, ':')
	if i < 1 {
		return "", "", false
	}
	for j, c := range uri[:i] {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (j == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return "", "", false
		}
	}
	return strings.ToLower(uri[:i]), uri[i+1:], true
}
