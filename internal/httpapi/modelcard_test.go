package httpapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sunpath/sunpath/internal/auth"
)

// TestModelCardAsData: GET /v1/models/{name} gives the card as data — what
// the model is for, its cross-validated metrics with intervals, calibration
// table, tier policy and error rates by group — with texts in Chinese or
// English. Broken once: the Chinese texts ignored (language en for zh-CN).
func TestModelCardAsData(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := e.keys[auth.RoleCaseSystem]
	for _, lang := range []string{"en", "zh-CN"} {
		var card modelCard
		if code := e.call(nil, key, http.MethodGet, "/v1/models/nij-review?lang="+lang, nil, &card); code != http.StatusOK {
			t.Fatalf("GET model card (%s) = %d", lang, code)
		}
		m := card.Metrics
		if card.Language != lang || card.IntendedUse == "" || len(card.Limitations) == 0 || m == nil ||
			float64(m.AUC) < 0.6 || float64(m.AUC) > 1 || len(m.Calibration) == 0 || len(m.Groups) == 0 || len(card.TierPolicy.Bands) != 3 ||
			!(float64(m.Intervals.AUC.Lo) < float64(m.AUC) && float64(m.AUC) < float64(m.Intervals.AUC.Hi)) {
			t.Errorf("card (%s) = language %s, %d limitations, metrics %+v", lang, card.Language, len(card.Limitations), m)
		}
		if lang == "zh-CN" && !strings.Contains(card.IntendedUse, "监管等级") {
			t.Errorf("Chinese card's intended use = %q", card.IntendedUse)
		}
	}
	if code := e.call(nil, key, http.MethodGet, "/v1/models/nope", nil, nil); code != http.StatusNotFound {
		t.Errorf("unknown model = %d, want 404", code)
	}
	var p problemBody
	if code := e.call(nil, key, http.MethodGet, "/v1/models/nij-review?lang=fr", nil, &p); code != http.StatusUnprocessableEntity || !p.names("lang") {
		t.Errorf("lang=fr = %d %+v", code, p.Errors)
	}
}
