package idemkv

import (
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestParseURI(t *testing.T) {
	for _, c := range []struct {
		uri  string
		want target
	}{
		{"mem:", target{scheme: "mem"}},
		{"mem:?janitor=false", target{scheme: "mem"}},
		{"MEM:", target{scheme: "mem"}},
		{"file:/tmp/x", target{scheme: "file", dir: "/tmp/x"}},
		{"file:///tmp/x", target{scheme: "file", dir: "/tmp/x"}},
		{"file://localhost/tmp/x", target{scheme: "file", dir: "/tmp/x"}},
		{"file://LOCALHOST/tmp/x", target{scheme: "file", dir: "/tmp/x"}},
		{"file:///tmp/a%20b%3Fc", target{scheme: "file", dir: "/tmp/a b?c"}},
		{"file:/path?sync=false", target{scheme: "file", dir: "/path"}},
		{"file:rel/dir", target{scheme: "file", dir: "rel/dir"}},
		{"file:rel/dir?create=false", target{scheme: "file", dir: "rel/dir"}},
		{"file:", target{scheme: "file", dir: DefaultDir()}},
		{"file:?sync=false", target{scheme: "file", dir: DefaultDir()}},
		{"/plain/path?not=a-query#x", target{scheme: "file", dir: "/plain/path?not=a-query#x"}},
		{"./a:b", target{scheme: "file", dir: "./a:b"}},
		{"fdb:", target{scheme: "fdb"}},
		{"fdb:/etc/foundationdb/fdb.cluster", target{scheme: "fdb", clusterFile: "/etc/foundationdb/fdb.cluster"}},
		{"fdb:///etc/foundationdb/fdb.cluster", target{scheme: "fdb", clusterFile: "/etc/foundationdb/fdb.cluster"}},
		{"fdb:?cluster_file=/etc/fdb.cluster&api_version=710", target{scheme: "fdb", clusterFile: "/etc/fdb.cluster"}},
	} {
		got, _, err := parseURI(c.uri, nil)
		if err != nil || got != c.want {
			t.Errorf("parseURI(%q) = %+v, %v; want %+v", c.uri, got, err, c.want)
		}
	}
}

func TestParseURIOptions(t *testing.T) {
	mine := &Options{Shards: 4}
	_, o, err := parseURI("file:/d?sync=false&readonly=true&create=false&janitor=false&janitor_interval=3s&min_age=20m&prefix=app%2F%FD", mine)
	if err != nil {
		t.Fatal(err)
	}
	if e := o.Embedded; e == nil || !e.NoSync || !e.ReadOnly || !e.MustExist {
		t.Fatalf("embedded options %+v", o.Embedded)
	}
	if !o.NoJanitor || o.JanitorInterval != 3*time.Second || o.MinAge != 20*time.Minute || string(o.Prefix) != "app/\xfd" || o.Shards != 4 {
		t.Fatalf("options %+v", o)
	}
	if mine.Embedded != nil || mine.NoJanitor {
		t.Fatalf("parseURI changed the caller's Options: %+v", mine)
	}
	_, o, err = parseURI("fdb:?api_version=710", nil)
	if err != nil || o.FDB == nil || o.FDB.APIVersion != 710 {
		t.Fatalf("api_version: %+v, %v", o.FDB, err)
	}
	_, o, err = parseURI("file:/d?sync=true&create=true", nil)
	if err != nil || o.Embedded.NoSync || o.Embedded.MustExist {
		t.Fatalf("sync=true&create=true: %+v, %v", o.Embedded, err)
	}
}

func TestParseURIRefused(t *testing.T) {
	for _, c := range []struct {
		uri  string
		want error
		says string
	}{
		{"", ErrUnknownScheme, "empty"},
		{"redis://x", ErrUnknownScheme, `"redis:"`},
		{"file://server/share/x", ErrInvalidURI, `names the host "server"`},
		{"file://tmp/x", ErrInvalidURI, "file:///tmp/x"},
		{"file:/x?sync=maybe", ErrInvalidURI, `sync="maybe": want true or false`},
		{"file:/x?syncc=false", ErrInvalidURI, "known: sync, readonly, create, janitor, janitor_interval, min_age, prefix"},
		{"file:/x?sync=false&sync=true", ErrInvalidURI, "given 2 times"},
		{"file:/x#frag", ErrInvalidURI, "fragment"},
		{"file://user@localhost/x", ErrInvalidURI, "user information"},
		{"mem:foo", ErrInvalidURI, "takes no path"},
		{"mem:?readonly=true", ErrInvalidURI, `unknown query parameter "readonly" for "mem:"; known: janitor, janitor_interval, min_age, prefix`},
		{"mem:?prefix=", ErrInvalidURI, "non-empty"},
		{"mem:?min_age=soon", ErrInvalidURI, "duration"},
		{"fdb:?api_version=100", ErrInvalidURI, "from 620 to 730"},
		{"fdb:/a?cluster_file=/b", ErrInvalidURI, "already names"},
		{"fdb:?sync=false", ErrInvalidURI, "known: janitor, janitor_interval, min_age, prefix, cluster_file, api_version"},
	} {
		_, _, err := parseURI(c.uri, nil)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("parseURI(%q) = %v; want %v saying %q", c.uri, err, c.want, c.says)
		}
	}
}

// TestURIParamsDocumented keeps the package doc's table and the parser's
// list of parameters in step.
func TestURIParamsDocumented(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^//\s+\|\s*([a-z_]+)\s*\|`).FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = true
	}
	delete(documented, "parameter")
	for _, p := range uriParams {
		if !documented[p.name] {
			t.Errorf("query parameter %q is missing from doc.go's table", p.name)
		}
		delete(documented, p.name)
	}
	for name := range documented {
		t.Errorf("doc.go's table lists %q, which parseURI does not accept", name)
	}
}

// TestOpenFileURIWithQuery opens the two URIs: the query sets
// options instead of becoming part of the directory name, and
// file://localhost/abs opens /abs, not ./localhost/abs.
func TestOpenFileURIWithQuery(t *testing.T) {
	dir := t.TempDir()
	for _, uri := range []string{
		"file:" + dir + "/a?sync=false&janitor=false",
		"file://localhost" + dir + "/b?create=true",
	} {
		s, err := Open(t.Context(), uri, nil)
		if err != nil {
			t.Fatalf("Open(%q): %v", uri, err)
		}
		s.Close()
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "a,b" {
		t.Fatalf("directories created: %q, want a and b", names)
	}
	if _, err := os.Stat("localhost"); err == nil {
		t.Fatal("file://localhost/... created ./localhost")
	}
	_, err = Open(t.Context(), "file:"+dir+"/missing?create=false", nil)
	if err == nil || !strings.Contains(err.Error(), "no database") {
		t.Fatalf("create=false on a missing directory: %v", err)
	}
}
