package embedded

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// markerFile is the file in a database directory that says whose it is:
// formatMarker and a newline. Open decides from it — before Pebble opens
// the directory, which rewrites its MANIFEST and OPTIONS and may flush and
// compact — whether the directory is an idemkv database. It is written
// (and synced) before Pebble creates anything in a new directory.
const markerFile = "IDEMKV"

// ErrNotExist is returned (wrapped) by Open with Options.MustExist or
// Options.ReadOnly for a directory that holds no database.
var ErrNotExist = errors.New("embedded: no database in the directory")

// ErrReadOnly is returned (wrapped) by the commit of a transaction that
// wrote, on a database opened with Options.ReadOnly.
var ErrReadOnly = errors.New("embedded: the database was opened read-only")

// dirState is what Open found in a directory.
type dirState struct {
	exists bool // the directory exists
	marker bool // it holds markerFile with our format
	store  bool // it holds a Pebble store
}

// inspectDir reads dir without writing anything and refuses what is not
// an idemkv database or an empty directory: a file, a directory holding
// other files, another format's marker. A Pebble store without a marker
// file is checked by checkLegacy.
func inspectDir(dir string, fs vfs.FS) (dirState, error) {
	var st dirState
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return st, nil
	case err != nil:
		return st, err
	case !fi.IsDir():
		return st, errors.New("is a file, not a directory")
	}
	st.exists = true
	ents, err := os.ReadDir(dir)
	if err != nil {
		return st, err
	}
	if len(ents) == 0 {
		return st, nil
	}
	b, err := os.ReadFile(filepath.Join(dir, markerFile))
	switch {
	case err == nil:
		if !bytes.Equal(bytes.TrimSuffix(b, []byte("\n")), formatMarker) {
			return st, fmt.Errorf("%w: its %s file says %q (want %q)", ErrNotEmbeddedDir, markerFile, bytes.TrimSpace(b), formatMarker)
		}
		st.marker = true
	case !errors.Is(err, os.ErrNotExist):
		return st, err
	}
	desc, err := pebble.Peek(dir, fs)
	st.store = err == nil && desc.Exists
	if !st.marker && !st.store {
		return st, fmt.Errorf("%w: it holds other files (no idemkv database, no Pebble store)", ErrNotEmbeddedDir)
	}
	return st, nil
}

// checkLegacy decides whether a Pebble store without a marker file is
// ours — created before marker files existed, or by a process that died
// between creating the store and writing the marker (it cannot: the marker
// comes first; but a copy may have lost it) — by opening it read-only,
// which writes nothing, and reading the format marker inside. An empty
// store counts as ours, as it always has.
func checkLegacy(dir string, fs vfs.FS) error {
	logger := newFailLogger(newFailure())
	pdb, err := pebble.Open(dir, &pebble.Options{FS: noLockFS{fs}, ReadOnly: true, Logger: logger, EventListener: logger.listener()})
	if err != nil {
		return fmt.Errorf("%w: reading its Pebble store: %v", ErrNotEmbeddedDir, err)
	}
	defer closeQuietly(pdb)
	v, closer, err := pdb.Get(metaFormat)
	switch {
	case err == nil:
		ok := bytes.Equal(v, formatMarker)
		got := string(v)
		closer.Close()
		if !ok {
			return fmt.Errorf("%w: Pebble store with the unknown format marker %q (want %q)", ErrNotEmbeddedDir, got, formatMarker)
		}
		return nil
	case !errors.Is(err, pebble.ErrNotFound):
		return err
	}
	it, err := pdb.NewIter(nil)
	if err != nil {
		return err
	}
	found := it.First()
	it.Close()
	if found {
		return fmt.Errorf("%w: another application's Pebble store (it has keys but no idemkv format marker)", ErrNotEmbeddedDir)
	}
	return nil
}

// noLockFS is a Pebble filesystem whose Lock takes no lock. Pebble's Lock
// creates (truncates) the LOCK file even for a read-only open; checkLegacy
// must not touch a directory it may refuse. Reading without the lock is
// safe for a decision that the real open checks again (checkFormat): a
// writer racing the check can at worst make it refuse.
type noLockFS struct{ vfs.FS }

func (noLockFS) Lock(string) (io.Closer, error) { return io.NopCloser(nil), nil }

// writeMarker writes markerFile durably: the file, then the directory.
func writeMarker(dir string) error {
	f, err := os.OpenFile(filepath.Join(dir, markerFile), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(append(append([]byte{}, formatMarker...), '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// checkWritable creates and removes a file in dir: Pebble reports a
// directory it cannot write in with the same errno as a held lock.
func checkWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".idemkv-write-check-*")
	if err != nil {
		return err
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// prepareDir is Open's decision, made before Pebble touches dir: refuse a
// foreign directory without writing to it; with MustExist or ReadOnly,
// refuse one holding no database; otherwise create the directory and its
// marker, or check that an existing database's directory is writable.
// It reports whether a Pebble store already exists.
func prepareDir(dir string, fs vfs.FS, o Options) (store bool, err error) {
	st, err := inspectDir(dir, fs)
	if err != nil {
		return false, err
	}
	if st.store && !st.marker {
		if err := checkLegacy(dir, fs); err != nil {
			return false, err
		}
	}
	if !st.store && !st.marker && (o.MustExist || o.ReadOnly) {
		why := "Options.MustExist is set"
		if o.ReadOnly {
			why = "a read-only open cannot create one"
		}
		if !st.exists {
			return false, fmt.Errorf("%w (the directory does not exist; %s)", ErrNotExist, why)
		}
		return false, fmt.Errorf("%w (the directory is empty; %s)", ErrNotExist, why)
	}
	if o.ReadOnly {
		return st.store, nil
	}
	if !st.exists {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return false, fmt.Errorf("cannot create the directory: %w", err)
		}
	}
	if !st.marker {
		if err := writeMarker(dir); err != nil {
			return false, fmt.Errorf("the directory is not writable: %w", err)
		}
	} else if err := checkWritable(dir); err != nil {
		return false, fmt.Errorf("the directory is not writable: %w", err)
	}
	return st.store, nil
}

// isLockErr reports whether Pebble failed to take its LOCK file: held by
// another process (fcntl's EAGAIN or EACCES, a bare errno) or by this one
// (Pebble's own registry, which says so only in its message). An EACCES
// from opening or creating a file is a permission problem, not a lock.
func isLockErr(err error) bool {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return false
	}
	return errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) ||
		bytes.Contains([]byte(err.Error()), []byte("lock held by current process"))
}
