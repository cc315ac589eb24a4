package idemkv

import "encoding/json"

// Codec encodes keyed requests' results for storage. Unmarshal is given a
// pointer to a value of fn's result type. Implementations must be safe for
// concurrent use, and must decode what they encode in any process (the
// stored bytes outlive the process that wrote them).
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// JSON is the default Codec: encoding/json. Only exported fields of a
// result struct survive a replay.
var JSON Codec = jsonCodec{}

type jsonCodec struct{}

func (jsonCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (jsonCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
