//go:build !unix

package txn_test

func processCPU() (int64, bool) { return 0, false }
