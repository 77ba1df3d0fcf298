package risk

import (
	"context"
	"encoding/csv"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sunpath/sunpath/internal/riskmodel"
)

const templateSpec = "../../models/templates/community-corrections-cn/spec.yaml"

// TestTemplateSpec: the Chinese template is a valid spec whose every field
// is named in Chinese and English, and whose protected attributes are
// reported, never inputs.
func TestTemplateSpec(t *testing.T) {
	s, err := riskmodel.ReadSpec(templateSpec)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range s.Features {
		if f.Labels["zh-CN"] == "" || f.Labels["en"] == "" {
			t.Errorf("feature %s has no zh-CN and en labels: %v", f.Name, f.Labels)
		}
	}
	for _, p := range []string{"sex", "ethnicity", "hukou"} {
		if !strings.Contains(strings.Join(s.Protected, ","), p) || !strings.Contains(strings.Join(s.Groups, ","), p) {
			t.Errorf("%s must be protected and reported", p)
		}
	}
}

// TestSpecRefusesScreeningScores: a mental-health screening result is
// never an input of a supervision-level model, by name or by declared
// source. Broken once: Validate without the screening check.
func TestSpecRefusesScreeningScores(t *testing.T) {
	base, err := os.ReadFile(templateSpec)
	if err != nil {
		t.Fatal(err)
	}
	for _, feat := range []string{
		"- name: phq9_total\n  type: numeric\n  range: [0, 27]\n  bins: {edges: [4, 9, 14, 19]}\n",
		"- name: last_result\n  type: categorical\n  source: screening\n  levels: [minimal, mild, severe]\n",
	} {
		b := strings.Replace(string(base), "features:\n", "features:\n"+feat, 1)
		_, err := riskmodel.ParseSpec([]byte(b))
		if !errors.Is(err, riskmodel.ErrInvalid) || !strings.Contains(err.Error(), "is a mental-health screening result") {
			t.Errorf("spec with %q: error %v, want the screening refusal", strings.SplitN(feat, "\n", 2)[0], err)
		}
	}
}

// TestTemplatePipeline trains the template on a generated file with its
// columns (pipeline test only: a synthetic population with a known effect
// of violations, prior offences and employment, never shipped as a model),
// loads the model and scores a person.
func TestTemplatePipeline(t *testing.T) {
	s, err := riskmodel.ReadSpec(templateSpec)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "generated.csv")
	writeTemplateData(t, s, data, 3000)
	out := filepath.Join(dir, "model")
	man, err := Train(context.Background(), Options{DataPath: data, SpecPath: templateSpec, OutDir: out})
	if err != nil {
		t.Fatalf("Train: %v", err)
	}
	if auc := float64(man.Metrics.AUC); auc < 0.65 {
		t.Errorf("cross-validated AUC on the generated population = %.3f, want ≥ 0.65 (the effect is there)", auc)
	}
	if len(man.Metrics.Groups) == 0 {
		t.Error("no error rates by group")
	}
	m, err := riskmodel.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	p, err := m.Score(map[string]any{"supervision_type": "probation", "offence_category": "property", "sentence_band": "1_to_3y",
		"age_band": "25-34", "education": "junior_high", "employment": "unemployed", "family": "single", "residence_stable": "no",
		"prior_offences": "2+", "violations_during_supervision": "2+", "drug_history": "yes"})
	if err != nil || p.Probability <= 0 || p.Probability >= 1 || p.Tier == "" {
		t.Errorf("score = %+v %v", p, err)
	}
}

// writeTemplateData writes n generated people: each feature uniform over its
// levels (a few missing), the outcome logistic in violations, prior
// offences, unemployment and unstable residence.
func writeTemplateData(t *testing.T, s *riskmodel.Spec, path string, n int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := csv.NewWriter(f)
	head := []string{s.Data.ID, s.Data.Label, "sex", "ethnicity", "hukou"}
	for _, fs := range s.Features {
		head = append(head, fs.Name)
	}
	w.Write(head)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		row := []string{strconv.Itoa(i + 1), "", []string{"female", "male"}[rng.IntN(2)], []string{"han", "other"}[rng.IntN(2)],
			[]string{"local", "nonlocal"}[rng.IntN(2)]}
		z := -1.6
		for _, fs := range s.Features {
			k := rng.IntN(len(fs.Levels))
			v := fs.Levels[k]
			if fs.Missing == riskmodel.MissingIndicator && rng.IntN(20) == 0 {
				v = ""
			}
			switch {
			case v == "":
			case fs.Name == "violations_during_supervision", fs.Name == "prior_offences":
				z += 0.7 * float64(k)
			case fs.Name == "employment" && v == "unemployed", fs.Name == "residence_stable" && v == "no":
				z += 0.5
			}
			row = append(row, v)
		}
		if rng.Float64() < 1/(1+math.Exp(-z)) {
			row[1] = "1"
		} else {
			row[1] = "0"
		}
		w.Write(row)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		t.Fatal(err)
	}
}
