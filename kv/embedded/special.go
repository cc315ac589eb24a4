package embedded

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/idemkv/idemkv/kv"
)

// specialKeyPrefix is FoundationDB's special key space (\xff\xff): keys
// answered by the client, not stored. The engine serves
// \xff\xff/status/json; any other special key fails as one no module
// serves does on a cluster.
var specialKeyPrefix = []byte{0xff, 0xff}

// codeSpecialKeysNoModuleFound is special_keys_no_module_found (2113).
const codeSpecialKeysNoModuleFound kv.Code = 2113

// getSpecial reads a key of the special key space.
func (t *transaction) getSpecial(key []byte) *kv.Future[[]byte] {
	if !bytes.Equal(key, []byte("\xff\xff/status/json")) {
		return kv.Failed[[]byte](kv.Errorf(codeSpecialKeysNoModuleFound, "special key %q: the embedded engine serves only \\xff\\xff/status/json", trunc(key)))
	}
	doc, err := t.db.status()
	if err != nil {
		return kv.Failed[[]byte](err)
	}
	return kv.Ready(doc, nil)
}

// status is the engine's \xff\xff/status/json: FoundationDB's document
// shape (a "client" and a "cluster" object), filled with what is true of
// one embedded process — available unless failed (see ErrFailed), the
// latest version, the bytes on disk — and nothing invented: no processes,
// machines, roles or workload figures.
func (db *DB) status() ([]byte, error) {
	v, err := db.readVersion()
	if err != nil {
		return nil, err
	}
	type message struct {
		Name        string `json:"name"`
		Description string `json:"description"`
	}
	available := true
	messages := []message{}
	if ferr := db.fail.get(); ferr != nil {
		available = false
		messages = append(messages, message{"embedded_failed", ferr.Error()})
	}
	mode := "durable"
	switch {
	case db.mem:
		mode = "in memory"
	case db.opts.ReadOnly:
		mode = "read-only"
	case !db.sync.Sync:
		mode = "no-sync"
	}
	doc := map[string]any{
		"client": map[string]any{
			"database_status": map[string]bool{"available": available, "healthy": available},
			"messages":        messages,
			"timestamp":       time.Now().Unix(),
		},
		"cluster": map[string]any{
			"database_available": available,
			"latest_version":     v,
			"messages":           messages,
			"configuration": map[string]any{
				"redundancy_mode": "single",
				"storage_engine":  engineName(db, mode),
			},
			"data": map[string]any{
				"total_disk_used_bytes": db.diskUsed(),
			},
			"processes": map[string]any{},
			"machines":  map[string]any{},
			"layers":    map[string]any{"_valid": true},
		},
	}
	return json.Marshal(doc)
}

// diskUsed is the bytes the database's files take: none in memory.
func (db *DB) diskUsed() uint64 {
	if db.pdb == nil {
		return 0
	}
	return db.pdb.Metrics().DiskSpaceUsage()
}

func engineName(db *DB, mode string) string {
	if db.store != nil {
		return "idemkv-embedded (memory store)"
	}
	return "idemkv-embedded (pebble, " + mode + ")"
}
