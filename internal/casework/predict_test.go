package casework_test

import (
	"testing"

	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/testfix"
)

// TestUnknownNeverTowardLeniency: for profiles with inputs left unrecorded,
// the suggested tier is never more lenient than the score without the
// unrecorded inputs' lowering contributions. Broken once: Predict returning
// the model's tier as is (a profile whose missing indicators lower the score
// is suggested lenient).
func TestUnknownNeverTowardLeniency(t *testing.T) {
	t.Parallel()
	models := testfix.Models(t)
	full := testfix.NIJProfile(t)
	checked, raised := 0, 0
	for _, name := range []string{"nij-review", "nij-intake"} {
		m := models[name]
		fields := m.InputFields()
		// Drop the inputs that can be missing, one more each round.
		for drop := 0; drop <= len(fields); drop++ {
			f := map[string]any{}
			dropped := 0
			for _, fs := range fields {
				v := full[fs.Name]
				if !fs.Required && dropped < drop {
					v, dropped = nil, dropped+1
				}
				f[fs.Name] = v
			}
			plain, err := m.Score(f)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			got, err := casework.Predict(m, f)
			if err != nil {
				t.Fatal(err)
			}
			var lowered float64
			for _, c := range plain.Explanation {
				if c.Value == "missing" && c.Contribution < 0 {
					lowered += c.Contribution
				}
			}
			_, without := m.TierAt(plain.LogOdds - lowered)
			want := plain.Tier
			if casework.Tier(without).Rank() > casework.Tier(want).Rank() {
				want = without
			}
			if got.Tier != want || casework.Tier(got.Tier).Rank() < casework.Tier(plain.Tier).Rank() {
				t.Errorf("%s with %d unknown: tier %s, model %s, without the unknowns' lowering %s", name, dropped, got.Tier, plain.Tier, without)
			}
			if got.Tier != plain.Tier {
				raised++
			}
			checked++
		}
	}
	t.Logf("%d profiles checked, %d suggestions kept from leniency by unknown inputs", checked, raised)
}
