package idemhttp

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// response is what a key stores: the first response's status, its replay
// headers and its body. It is encoded with the store's Codec; with JSON
// the body is base64, so a stored response holds about 64 KiB of body
// under idemkv.MaxResultSize.
type response struct {
	Status int         `json:"status"`
	Header http.Header `json:"header,omitempty"`
	Body   []byte      `json:"body,omitempty"`

	// live is every header the handler set, for the first response only:
	// unexported, so no codec stores it.
	live http.Header
}

// recorder buffers one run of a handler: nothing reaches the client until
// the run's transaction has committed (or its claim completed).
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

var _ http.ResponseWriter = (*recorder)(nil)

func newRecorder() *recorder { return &recorder{header: http.Header{}} }

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}

// code is the status sent: 200 if the handler wrote nothing, as net/http
// does.
func (r *recorder) code() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}

// stored is what to store of the run: status, the replay headers, body.
func (r *recorder) stored(replay []string) response {
	res := response{Status: r.code(), Body: bytes.Clone(r.body.Bytes()), live: r.header}
	for _, k := range replay {
		if v, ok := r.header[k]; ok {
			if res.Header == nil {
				res.Header = http.Header{}
			}
			res.Header[k] = v
		}
	}
	return res
}

// problem writes an RFC 9457 problem details response. extra members are
// added beside type, title, status and detail.
func problem(w http.ResponseWriter, status int, title, detail string, extra map[string]any) {
	body := map[string]any{"type": "about:blank", "title": title, "status": status, "detail": detail}
	for k, v := range extra {
		body[k] = v
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Del(ReplayedHeader)
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(body)
}
