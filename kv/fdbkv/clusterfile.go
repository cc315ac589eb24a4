package fdbkv

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
)

// ClusterFileEnv is the environment variable FoundationDB's client reads
// for the cluster file when none is given.
const ClusterFileEnv = "FDB_CLUSTER_FILE"

// defaultClusterFile is where the FoundationDB packages install the cluster
// file on this platform.
func defaultClusterFile() string {
	switch runtime.GOOS {
	case "darwin":
		return "/usr/local/etc/foundationdb/fdb.cluster"
	case "windows":
		return `C:\ProgramData\foundationdb\fdb.cluster`
	}
	return "/etc/foundationdb/fdb.cluster"
}

// resolveClusterFile finds the cluster file the way libfdb_c does — the
// given path, else $FDB_CLUSTER_FILE, else fdb.cluster in the working
// directory, else the platform default — and checks that it can be read
// and looks like a cluster file (description:id@address:port,...). It
// returns the path, so that Open passes libfdb_c an explicit file and an
// error can never name a different one than the client used.
//
// The check runs before libfdb_c is involved because the client's own
// failure for a missing file is a bare no_cluster_file_found (1515) or a
// connection that hangs until a timeout, neither of which names the path.
func resolveClusterFile(path string, getenv func(string) string) (string, error) {
	from := "the path given to Open"
	if path == "" {
		if env := getenv(ClusterFileEnv); env != "" {
			path, from = env, "$"+ClusterFileEnv
		} else if _, err := os.Stat("fdb.cluster"); err == nil {
			path, from = "fdb.cluster", "the working directory"
		} else {
			path, from = defaultClusterFile(), "the default location ("+ClusterFileEnv+" is not set)"
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("fdbkv: cannot read the FoundationDB cluster file %q (from %s): %w; "+
			"set %s to the cluster file's path (on a server, /etc/foundationdb/fdb.cluster) or pass it to Open",
			path, from, err, ClusterFileEnv)
	}
	if err := checkClusterString(bytes.TrimSpace(b)); err != nil {
		return "", fmt.Errorf("fdbkv: the FoundationDB cluster file %q (from %s) is not valid: %v; "+
			"set %s to a file holding description:id@host:port[,host:port...]", path, from, err, ClusterFileEnv)
	}
	return path, nil
}

// checkClusterString makes the shallow checks that catch a wrong file: one
// line of the form description:id@coordinators, with at least one
// coordinator. Comments (# lines) are allowed, as the client allows them.
func checkClusterString(b []byte) error {
	var line []byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		l = bytes.TrimSpace(l)
		if len(l) == 0 || l[0] == '#' {
			continue
		}
		if line != nil {
			return fmt.Errorf("more than one connection string")
		}
		line = l
	}
	if len(line) == 0 {
		return fmt.Errorf("it is empty")
	}
	at := bytes.IndexByte(line, '@')
	if at < 0 {
		return fmt.Errorf("no '@' between the cluster ID and the coordinators")
	}
	if bytes.IndexByte(line[:at], ':') <= 0 {
		return fmt.Errorf("no description:id before '@'")
	}
	if len(bytes.TrimSpace(line[at+1:])) == 0 {
		return fmt.Errorf("no coordinators after '@'")
	}
	return nil
}
