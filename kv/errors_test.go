package kv

import "testing"

// FoundationDB 7.3's fdb_error_predicate, code by code, for the codes whose
// classification is easiest to get wrong.
func TestPredicatesMatchFoundationDB73(t *testing.T) {
	cases := []struct {
		code                         Code
		retryable, maybe, notCommits bool
	}{
		{CodeNotCommitted, true, false, true},
		{CodeCommitUnknownResult, true, true, false},
		{CodeClusterVersionChanged, true, true, false},
		{CodeTagThrottled, true, false, true},
		{CodeProxyTagThrottled, true, false, true}, // 1223: in 7.3's RETRYABLE_NOT_COMMITTED
		{CodeTransactionTimedOut, false, false, false},
		{CodeTransactionCancelled, false, false, false},
		{CodeUsedDuringCommit, false, false, false},
		{CodeNoCommitVersion, false, false, false},
	}
	for _, c := range cases {
		err := NewError(c.code)
		if got := IsRetryable(err); got != c.retryable {
			t.Errorf("IsRetryable(%v) = %v, want %v", c.code, got, c.retryable)
		}
		if got := CodeRetryable(c.code); got != c.retryable {
			t.Errorf("CodeRetryable(%v) = %v, want %v", c.code, got, c.retryable)
		}
		if got := MaybeCommitted(err); got != c.maybe {
			t.Errorf("MaybeCommitted(%v) = %v, want %v", c.code, got, c.maybe)
		}
		if got := IsRetryableNotCommitted(err); got != c.notCommits {
			t.Errorf("IsRetryableNotCommitted(%v) = %v, want %v", c.code, got, c.notCommits)
		}
	}
}

// The names are flow's error_definitions.h: 2021 is no_commit_version
// (a read-only transaction's versionstamp or commit version), 2023
// transaction_read_only.
func TestCodeNames(t *testing.T) {
	for code, want := range map[Code]string{
		1223: "proxy_tag_throttled",
		2017: "used_during_commit",
		2018: "invalid_mutation_type",
		2021: "no_commit_version",
		2023: "transaction_read_only",
		9999: "error_9999",
	} {
		if got := code.String(); got != want {
			t.Errorf("Code(%d).String() = %q, want %q", int(code), got, want)
		}
	}
}
