package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/idemkv/idemkv/kv"
)

// logFault injects errno into every operation of kind ops on the write-ahead
// log (*.log) while on, as a full or failing disk would.
type logFault struct {
	on    atomic.Bool
	errno syscall.Errno
	ops   map[errorfs.OpKind]bool
}

func (f *logFault) String() string { return fmt.Sprintf("log %v", f.errno) }

func (f *logFault) MaybeError(op errorfs.Op) error {
	if !f.ops[op.Kind] || !strings.HasSuffix(op.Path, ".log") {
		return nil
	}
	if !f.on.Load() {
		return nil
	}
	name := "write"
	if op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData || op.Kind == errorfs.OpFileSyncTo {
		name = "sync"
	}
	return &os.PathError{Op: name, Path: op.Path, Err: f.errno}
}

// commitKeys commits keys prefix0..prefixN-1 one transaction each and
// returns the error of the first that fails (nil if none).
func commitKeys(db *DB, prefix string, n int) (acked []string, err error) {
	for i := range n {
		k := fmt.Sprintf("%s%03d", prefix, i)
		tr, err := db.CreateTransaction(context.Background())
		if err != nil {
			return acked, err
		}
		tr.Set([]byte(k), []byte("v-"+k))
		if err := tr.Commit().Err(); err != nil {
			return acked, err
		}
		acked = append(acked, k)
	}
	return acked, nil
}

// wantKeys checks that every acknowledged key reads back.
func wantKeys(t *testing.T, db *DB, keys []string) {
	t.Helper()
	tr := newTr(t, db)
	for _, k := range keys {
		v, err := tr.Get([]byte(k)).Get()
		if err != nil || string(v) != "v-"+k {
			t.Fatalf("acknowledged key %s: %q, %v", k, v, err)
		}
	}
}

// TestLogFailureFailsCommitsNotProcess injects the failures the issue lists
// into the write-ahead log — a full disk on write, EIO on write, EIO on
// sync — and checks each path: the failing commit gets
// commit_unknown_result wrapping ErrFailed and the errno, later commits get
// io_error at once, reads and read-only commits keep working, Close works,
// reopening while the fault persists fails at once, and reopening after it
// is gone recovers every acknowledged commit and commits again.
func TestLogFailureFailsCommitsNotProcess(t *testing.T) {
	for _, overlap := range []bool{false, true} {
		t.Run(fmt.Sprintf("overlap=%v", overlap), func(t *testing.T) { testLogFailure(t, &Options{OverlapSyncs: overlap}) })
	}
}

func testLogFailure(t *testing.T, opts *Options) {
	for _, tc := range []struct {
		name  string
		errno syscall.Errno
		ops   []errorfs.OpKind
	}{
		{"ENOSPC on write", syscall.ENOSPC, []errorfs.OpKind{errorfs.OpFileWrite, errorfs.OpFileWriteAt}},
		{"EIO on write", syscall.EIO, []errorfs.OpKind{errorfs.OpFileWrite, errorfs.OpFileWriteAt}},
		{"EIO on sync", syscall.EIO, []errorfs.OpKind{errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &logFault{errno: tc.errno, ops: map[errorfs.OpKind]bool{}}
			for _, op := range tc.ops {
				f.ops[op] = true
			}
			fs := errorfs.Wrap(vfs.Default, f)
			dir := t.TempDir()
			db, err := openDisk(dir, opts, fs)
			if err != nil {
				t.Fatal(err)
			}
			acked, err := commitKeys(db, "before/", 20)
			if err != nil {
				t.Fatal(err)
			}

			f.on.Store(true)
			tr := newTr(t, db)
			tr.Set([]byte("during"), []byte("x"))
			err = tr.Commit().Err()
			t.Logf("failing commit: %v", err)
			wantCode(t, "the commit whose log write failed", err, kv.CodeCommitUnknownResult)
			if !errors.Is(err, ErrFailed) || !errors.Is(err, tc.errno) {
				t.Fatalf("failing commit: %v does not wrap ErrFailed and %v", err, tc.errno)
			}

			f.on.Store(false) // even with the disk back, the DB stays failed
			tr = newTr(t, db)
			tr.Set([]byte("after"), []byte("x"))
			err = tr.Commit().Err()
			t.Logf("next commit: %v", err)
			wantCode(t, "a commit on the failed DB", err, kv.CodeIOError)
			if !errors.Is(err, ErrFailed) || kv.IsRetryable(err) {
				t.Fatalf("next commit: %v, want ErrFailed, not retryable", err)
			}
			wantKeys(t, db, acked)
			ro := newTr(t, db)
			if _, err := ro.Get([]byte("before/000")).Get(); err != nil {
				t.Fatal(err)
			}
			if err := ro.Commit().Err(); err != nil {
				t.Fatalf("read-only commit on the failed DB: %v", err)
			}
			if v := ro.GetReadVersion().MustGet(); v <= 0 {
				t.Fatalf("read version %d", v)
			}
			status := newTr(t, db).Get([]byte("\xff\xff/status/json")).MustGet()
			if !bytes.Contains(status, []byte(`"available":false`)) || !bytes.Contains(status, []byte("embedded_failed")) {
				t.Fatalf("status/json of the failed DB does not say so: %s", status)
			}
			closeErr := db.Close()
			t.Logf("Close: %v", closeErr)

			f.on.Store(true)
			_, err = openDisk(dir, nil, fs)
			t.Logf("reopen with the fault: %v", err)
			if !errors.Is(err, tc.errno) {
				t.Fatalf("reopen with the fault still there: %v, want an error wrapping %v", err, tc.errno)
			}

			f.on.Store(false)
			db, err = openDisk(dir, nil, fs)
			if err != nil {
				t.Fatalf("reopen once the fault is gone: %v", err)
			}
			defer db.Close()
			wantKeys(t, db, acked)
			if _, err := commitKeys(db, "again/", 5); err != nil {
				t.Fatalf("commit after recovery: %v", err)
			}
		})
	}
}

// TestFullDiskTmpfs fills a real 8 MiB tmpfs (as root, where mounting is
// allowed; skipped elsewhere): commits fail with ENOSPC instead of the
// process exiting, reopening while the disk is full fails at once, and
// after space is freed every acknowledged commit is there.
func TestFullDiskTmpfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=8m"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(mnt, syscall.MNT_DETACH) })
	// Ballast to delete later, standing in for the space an operator frees.
	ballast := filepath.Join(mnt, "ballast")
	if err := os.WriteFile(ballast, make([]byte, 2<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(mnt, "db")
	db, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	var acked []string
	val := bytes.Repeat([]byte{'v'}, 20_000)
	var cerr error
	for i := 0; cerr == nil && i < 10_000; i++ {
		k := fmt.Sprintf("k%05d", i)
		tr := newTr(t, db)
		tr.Set([]byte(k), val)
		if cerr = tr.Commit().Err(); cerr == nil {
			acked = append(acked, k)
		}
	}
	t.Logf("after %d commits: %v", len(acked), cerr)
	if !errors.Is(cerr, syscall.ENOSPC) || !errors.Is(cerr, ErrFailed) {
		t.Fatalf("commit on a full disk: %v, want ErrFailed wrapping ENOSPC", cerr)
	}
	tr := newTr(t, db)
	tr.Set([]byte("more"), []byte("x"))
	wantCode(t, "commit after the disk filled", tr.Commit().Err(), kv.CodeIOError)
	check := func(db *DB) {
		t.Helper()
		tr := newTr(t, db)
		for _, k := range acked {
			v, err := tr.Get([]byte(k)).Get()
			if err != nil || !bytes.Equal(v, val) {
				t.Fatalf("acknowledged %s: %d bytes, %v", k, len(v), err)
			}
		}
	}
	check(db)
	t.Logf("Close: %v", db.Close())

	_, err = Open(dir, nil)
	t.Logf("reopen on the full disk: %v", err)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("reopen on the full disk: %v, want ENOSPC", err)
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	db, err = Open(dir, nil)
	if err != nil {
		t.Fatalf("reopen after freeing space: %v", err)
	}
	defer db.Close()
	check(db)
	commitSet(t, db, "after-recovery", "x")
}

// snapshotDir lists dir's files with their sizes and modification times.
func snapshotDir(t *testing.T, dir string, skipLock bool) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = fmt.Sprintf("%d %v", fi.Size(), fi.ModTime().UnixNano())
		if e.Name() == "LOCK" && skipLock {
			// Taking Pebble's lock truncates the (empty) LOCK file.
			out[e.Name()] = fmt.Sprint(fi.Size())
		}
	}
	return out
}

// TestForeignPebbleStoreUntouched: another application's Pebble store is
// refused from what is on disk, before Pebble opens it for writing: not a
// file in the directory is created, removed or modified.
func TestForeignPebbleStoreUntouched(t *testing.T) {
	dir := t.TempDir()
	pdb, err := pebble.Open(dir, &pebble.Options{Logger: newFailLogger(newFailure())})
	if err != nil {
		t.Fatal(err)
	}
	if err := pdb.Set([]byte("their-key"), []byte("their value"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := pdb.Close(); err != nil {
		t.Fatal(err)
	}
	before := snapshotDir(t, dir, false)
	_, err = Open(dir, nil)
	t.Logf("Open of a foreign Pebble store: %v", err)
	if !errors.Is(err, ErrNotEmbeddedDir) {
		t.Fatalf("Open: %v, want ErrNotEmbeddedDir", err)
	}
	after := snapshotDir(t, dir, false)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("Open changed the foreign directory:\nbefore %v\nafter  %v", before, after)
	}
}

// TestLegacyStoreGetsMarker: a database created before marker files (a
// Pebble store holding our format key, no IDEMKV file) still opens, and
// gets its marker.
func TestLegacyStoreGetsMarker(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	commitSet(t, db, "k", "v")
	db.Close()
	if err := os.Remove(filepath.Join(dir, markerFile)); err != nil {
		t.Fatal(err)
	}
	db, err = Open(dir, nil)
	if err != nil {
		t.Fatalf("Open of a store without its marker file: %v", err)
	}
	defer db.Close()
	if _, err := os.Stat(filepath.Join(dir, markerFile)); err != nil {
		t.Fatalf("marker file not restored: %v", err)
	}
	if v := newTr(t, db).Get([]byte("k")).MustGet(); string(v) != "v" {
		t.Fatalf("k = %q", v)
	}
}

// TestOpenMustExistAndReadOnly: MustExist and ReadOnly refuse a directory
// without a database (and create nothing); ReadOnly reads a database and
// refuses commits that write.
func TestOpenMustExistAndReadOnly(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nothing-here")
	for _, o := range []*Options{{MustExist: true}, {ReadOnly: true}} {
		_, err := Open(missing, o)
		t.Logf("Open(%+v) of a missing directory: %v", *o, err)
		if !errors.Is(err, ErrNotExist) {
			t.Fatalf("Open(%+v): %v, want ErrNotExist", *o, err)
		}
		if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("Open(%+v) created the directory", *o)
		}
	}
	dir := t.TempDir()
	db, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	commitSet(t, db, "k", "v")
	db.Close()
	before := snapshotDir(t, dir, true)
	db, err = Open(dir, &Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only Open: %v", err)
	}
	if v := newTr(t, db).Get([]byte("k")).MustGet(); string(v) != "v" {
		t.Fatalf("k = %q", v)
	}
	tr := newTr(t, db)
	tr.Set([]byte("k2"), []byte("x"))
	err = tr.Commit().Err()
	t.Logf("commit on a read-only DB: %v", err)
	if !errors.Is(err, ErrReadOnly) {
		t.Fatalf("commit on a read-only DB: %v, want ErrReadOnly", err)
	}
	if err := newTr(t, db).Commit().Err(); err != nil {
		t.Fatalf("read-only commit: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if after := snapshotDir(t, dir, true); fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("read-only open changed the directory:\nbefore %v\nafter  %v", before, after)
	}
}

// TestOpenReadOnlyDirectory: a directory the process cannot write in, and
// a missing directory under one, are reported as what they are, not as a
// held LOCK. As root (who ignores permission bits) it uses a read-only
// tmpfs mount; otherwise a directory without write permission.
func TestOpenReadOnlyDirectory(t *testing.T) {
	parent := t.TempDir()
	dbdir := filepath.Join(parent, "db")
	db, err := Open(dbdir, nil)
	if err != nil {
		t.Fatal(err)
	}
	commitSet(t, db, "k", "v")
	db.Close()
	want := syscall.EACCES
	if os.Geteuid() == 0 {
		mnt := t.TempDir()
		if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=16m"); err != nil {
			t.Skipf("cannot mount a tmpfs here: %v", err)
		}
		t.Cleanup(func() { _ = syscall.Unmount(mnt, syscall.MNT_DETACH) })
		if err := os.CopyFS(filepath.Join(mnt, "db"), os.DirFS(dbdir)); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mount("", mnt, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
			t.Skipf("cannot remount read-only: %v", err)
		}
		parent, dbdir, want = mnt, filepath.Join(mnt, "db"), syscall.EROFS
	} else {
		if err := os.Chmod(dbdir, 0o555); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(parent, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(parent, 0o755); os.Chmod(dbdir, 0o755) })
	}
	for _, dir := range []string{dbdir, filepath.Join(parent, "missing")} {
		_, err := Open(dir, nil)
		t.Logf("Open(%s): %v", dir, err)
		if err == nil || errors.Is(err, ErrLocked) || !errors.Is(err, want) {
			t.Fatalf("Open(%s): %v, want an error wrapping %v and not ErrLocked", dir, err, want)
		}
	}
}

// TestEmptyStoreSize records what an empty durable store occupies on disk
// (the figure the package doc explains).
func TestEmptyStoreSize(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var apparent, allocated int64
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		apparent += fi.Size()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			allocated += st.Blocks * 512
		}
	}
	t.Logf("empty durable store: %d files, %d bytes apparent, %d bytes allocated", len(ents), apparent, allocated)
	if apparent > 1<<20 {
		t.Fatalf("an empty store's files add up to %d bytes; the preallocated log should not count", apparent)
	}
}
