package idemhttp

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/idemkv/idemkv/idemkv"
)

// Header is the request header field the draft defines.
const Header = "Idempotency-Key"

// ReplayedHeader marks a response replayed from the store, as Stripe's API
// does.
const ReplayedHeader = "Idempotent-Replayed"

// errBadKey is wrapped by every malformed-header error.
var errBadKey = errors.New("Idempotency-Key is not a valid structured-field string")

// parseKey reads the Idempotency-Key of r: present is false when the field
// is absent. The draft defines the field as an Item Structured Header whose
// value is a String (RFC 9651 §3.3.3): a double-quoted sequence of
// printable ASCII in which only \" and \\ are escaped. Parameters are
// allowed by the grammar and ignored, as the draft defines none. A bare
// token (no quotes) is not a String and is refused, as is an empty one or
// one longer than idemkv.MaxKeyLen.
func parseKey(r *http.Request) (key string, present bool, err error) {
	vals := r.Header.Values(Header)
	if len(vals) == 0 {
		return "", false, nil
	}
	// A field sent as several lines is their comma-joined value (RFC 9110
	// §5.3): a list, never a single Item.
	v := strings.Trim(strings.Join(vals, ","), " \t")
	key, rest, err := parseString(v)
	if err != nil {
		return "", true, err
	}
	if rest = strings.TrimLeft(rest, " \t"); rest != "" && rest[0] != ';' {
		return "", true, fmt.Errorf("%w: unexpected %q after the closing quote (one key per request)", errBadKey, rest)
	}
	switch {
	case key == "":
		return "", true, fmt.Errorf("%w: the key is empty", errBadKey)
	case len(key) > idemkv.MaxKeyLen:
		return "", true, fmt.Errorf("%w: the key is %d bytes, over the %d allowed", errBadKey, len(key), idemkv.MaxKeyLen)
	}
	return key, true, nil
}

// parseString parses an sf-string at the start of v and returns it and
// what follows.
func parseString(v string) (s, rest string, err error) {
	if v == "" || v[0] != '"' {
		return "", "", fmt.Errorf(`%w: send it in double quotes, e.g. Idempotency-Key: "8e03978e-40d5-43e8-bc93-6894a57f9324"`, errBadKey)
	}
	var b strings.Builder
	for i := 1; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\':
			if i+1 == len(v) || (v[i+1] != '"' && v[i+1] != '\\') {
				return "", "", fmt.Errorf(`%w: only \" and \\ may be escaped`, errBadKey)
			}
			i++
			b.WriteByte(v[i])
		case c == '"':
			return b.String(), v[i+1:], nil
		case c < 0x20 || c > 0x7e:
			return "", "", fmt.Errorf("%w: only printable ASCII is allowed (byte 0x%02x)", errBadKey, c)
		default:
			b.WriteByte(c)
		}
	}
	return "", "", fmt.Errorf("%w: no closing quote", errBadKey)
}
