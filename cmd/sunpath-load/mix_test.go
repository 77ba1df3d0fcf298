package main

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// TestRealisticMix checks the drawn answers against the distribution the
// README states: valid PHQ-9 answers, about a quarter moderate or worse
// (total >= 10), about one in ten with item 9 above 0.
func TestRealisticMix(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	const n = 100_000
	moderate, item9 := 0, 0
	for i := 0; i < n; i++ {
		s := realistic(r)
		var body struct {
			Answers map[string]int `json:"answers"`
		}
		if err := json.Unmarshal(s.body, &body); err != nil {
			t.Fatalf("body %s: %v", s.body, err)
		}
		total := 0
		for k, v := range body.Answers {
			if v < 0 || v > 3 {
				t.Fatalf("%s = %d in %s", k, v, s.body)
			}
			total += v
		}
		if len(body.Answers) != 9 || total != s.total || (body.Answers["phq9_9"] > 0) != s.item9 {
			t.Fatalf("body %s: total %d item9 %v, drawn as %d %v", s.body, total, body.Answers["phq9_9"] > 0, s.total, s.item9)
		}
		if total >= 10 {
			moderate++
		}
		if s.item9 {
			item9++
		}
	}
	if got := float64(moderate) / n; got < 0.23 || got > 0.27 {
		t.Errorf("moderate or worse = %.3f, want about 0.25", got)
	}
	if got := float64(item9) / n; got < 0.09 || got > 0.11 {
		t.Errorf("item 9 positive = %.3f, want about 0.10", got)
	}
}
