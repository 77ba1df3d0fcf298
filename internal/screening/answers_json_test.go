package screening

import (
	"encoding/json"
	"math"
	"testing"
)

// Answers encode exactly as encoding/json encoded the map before they had
// MarshalJSON (keys sorted and escaped alike; values as Answer encodes
// them): the stored canonical answers do not change. Broken once: keys in
// map order.
func TestAnswersJSONAsEncodingJSON(t *testing.T) {
	as := Answers{"phq9_1": Int(3), "phq9_10": Int(0), "phq9_2": Number(1.5), "b<&>": Code("yes \"quoted\" 中文"),
		"a": Bool(true), "z": Unanswered(), "nan": Number(math.NaN()), "Ä": Code("<script>")}
	for range 20 { // map order varies between runs of the loop
		got, err := json.Marshal(as)
		if err != nil {
			t.Fatal(err)
		}
		plain := map[string]json.RawMessage{}
		for k, v := range as {
			b, _ := v.MarshalJSON()
			plain[k] = b
		}
		want, err := json.Marshal(plain)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Fatalf("Answers JSON\n%s\nwant (encoding/json)\n%s", got, want)
		}
	}
	if b, _ := json.Marshal(Answers(nil)); string(b) != "null" {
		t.Errorf("nil answers = %s, want null", b)
	}
}
