package screening_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/sunpath/sunpath/internal/problem"
	"github.com/sunpath/sunpath/internal/screening"
)

func TestDecodeAnswers(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		want      string // JSON of the decoded answers
		malformed bool
		items     []string // items reported per item
	}{
		{"numbers codes booleans null", `{"a": 1, "b": "yes", "c": true, "d": null, "e": 2.0}`, `{"a":1,"b":"yes","c":true,"d":null,"e":2}`, false, nil},
		{"escaped key", `{"q\u005f1": 3, "\ud83d\ude00": 1}`, `{"q_1":3,"😀":1}`, false, nil},
		{"empty", ` { } `, `{}`, false, nil},
		{"not an object", `[1, 2]`, ``, true, nil},
		{"trailing garbage", `{"a": 1} x`, ``, true, nil},
		{"truncated", `{"a": 1`, ``, true, nil},
		{"bad number", `{"a": 01}`, ``, true, nil},
		{"control character", "{\"a\": \"x\ny\"}", ``, true, nil},
		{"wrong types and duplicates per item", `{"b": [1], "a": 1, "a": 2, "c": {"x": 1}}`, ``, false, []string{"a", "b", "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := screening.DecodeAnswers([]byte(tt.in))
			if tt.malformed {
				if !errors.Is(err, screening.ErrMalformed) {
					t.Fatalf("error = %v, want ErrMalformed", err)
				}
				return
			}
			if tt.items != nil {
				var inv *problem.Invalid
				if !errors.As(err, &inv) {
					t.Fatalf("error = %v, want *problem.Invalid", err)
				}
				var items []string
				for _, fe := range inv.Errors {
					items = append(items, fe.Item)
				}
				if diff := cmp.Diff(tt.items, items); diff != "" {
					t.Errorf("items (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("error = %v", err)
			}
			raw, _ := json.Marshal(got)
			if string(raw) != tt.want {
				t.Errorf("DecodeAnswers = %s, want %s", raw, tt.want)
			}
		})
	}
}

// FuzzDecodeAnswers checks the hand-written decoder against encoding/json
// (it accepts exactly the JSON that encoding/json accepts, and reads the
// same keys and values), and that scoring whatever it returns never panics
// and stays within bounds. Seeds live in testdata/fuzz/FuzzDecodeAnswers.
func FuzzDecodeAnswers(f *testing.F) {
	d, err := screening.NewDefinition(testSpec(), "sha256:test")
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"q1": 1, "q2": 2, "q3": 3, "q4": 0}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := screening.DecodeAnswers(data)
		var top any
		stdErr := json.Unmarshal(data, &top)
		_, isObject := top.(map[string]any)
		switch {
		case stdErr != nil || !isObject:
			if !errors.Is(err, screening.ErrMalformed) {
				t.Fatalf("encoding/json rejects %q (%v) but DecodeAnswers gave %v", data, stdErr, err)
			}
			return
		case errors.Is(err, screening.ErrMalformed):
			t.Fatalf("encoding/json accepts %q but DecodeAnswers says malformed", data)
		}
		obj := top.(map[string]any)
		if utf8.Valid(data) {
			for k, v := range obj {
				got, ok := a[k]
				if !ok {
					t.Fatalf("key %q lost", k)
				}
				raw, _ := json.Marshal(got)
				switch v := v.(type) {
				case string, bool, nil:
					want, _ := json.Marshal(v)
					if err == nil && !bytes.Equal(raw, want) {
						t.Fatalf("key %q: decoded %s, encoding/json %s", k, raw, want)
					}
				}
			}
		}
		body, _ := json.Marshal(map[string]json.RawMessage{"answers": json.RawMessage(data)})
		for _, run := range []func() (screening.Result, error){
			func() (screening.Result, error) { return d.Score(a, screening.ScoreOptions{}) },
			func() (screening.Result, error) { return d.ScoreJSON(body, screening.ScoreOptions{}) },
		} {
			res, err := run()
			if err != nil {
				var inv *problem.Invalid
				if !errors.As(err, &inv) || len(inv.Errors) == 0 {
					t.Fatalf("error %v is not a non-empty *problem.Invalid", err)
				}
				continue
			}
			if *res.Total < d.TotalMin || *res.Total > d.TotalMax {
				t.Fatalf("total %d out of range", *res.Total)
			}
		}
	})
}

// FuzzScoreJSON feeds whole submissions (answers plus fields) to ScoreJSON.
func FuzzScoreJSON(f *testing.F) {
	d, err := screening.NewDefinition(testSpec(), "sha256:test")
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"answers": {"q1": 2, "q2": 2, "q3": 1, "q4": 0, "q5": "yes"}, "duration_seconds": 3, "language": "en"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := d.ScoreJSON(data, screening.ScoreOptions{})
		if !json.Valid(data) && !errors.Is(err, screening.ErrMalformed) {
			t.Fatalf("invalid JSON %q not reported malformed: %v", data, err)
		}
		if err == nil && (*res.Total < d.TotalMin || *res.Total > d.TotalMax || !json.Valid(res.AppendJSON(nil))) {
			t.Fatalf("bad result %+v", res)
		}
	})
}
