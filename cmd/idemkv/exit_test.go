package main

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMain lets the test binary act as the command (IDEMKV_TEST_AS_CLI=1),
// so that exit codes are checked as a shell sees them, through os.Exit.
func TestMain(m *testing.M) {
	if os.Getenv("IDEMKV_TEST_AS_CLI") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func TestProcessExitCodes(t *testing.T) {
	f := fill(t)
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"-store=" + f.uri, "stats"}, exitOK},
		{[]string{"-store=" + f.uri, "frob"}, exitUsage},
		{[]string{"-store=" + f.uri, "show", "nope"}, exitNotFound},
		{[]string{"-h"}, exitOK},
	} {
		cmd := exec.Command(os.Args[0], tc.args...)
		cmd.Env = append(os.Environ(), "IDEMKV_TEST_AS_CLI=1", "IDEMKV_STORE=")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else {
			require.NoError(t, err)
		}
		assert.Equal(t, tc.code, code, "%v: stderr %q", tc.args, stderr.String())
		if tc.code != exitOK {
			assert.Equal(t, 1, strings.Count(stderr.String(), "\n"), "one line on stderr: %q", stderr.String())
		}
	}
}
