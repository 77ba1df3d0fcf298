package web

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sunpath/sunpath/internal/testfix"
)

// nextVersion is the shipped nij-review relabelled as version (same
// weights), its manifest's digests recomputed.
func nextVersion(t *testing.T, version string) map[string][]byte {
	t.Helper()
	return testfix.Relabel(t, testfix.ModelDirFiles(t, "../../models/nij-review"), version)
}

// TestComparisonPage: supervisors and admins read the shadow comparison in
// zh-CN and en; counselors may not; with too few outcomes it says so.
// Broken once: comparisonPage without its shadow sections (the page showed
// no shadow version).
func TestComparisonPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	e.signin(c, "sam")
	resp, body := e.get(c, "/models/nij-review/comparison")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "该模型没有影子版本") {
		t.Errorf("comparison without shadow = %d, want the no-shadow notice", resp.StatusCode)
	}
	e.api(http.MethodPost, "/v1/models/nij-review/versions", e.admin, map[string]any{"files": nextVersion(t, "1.2.0")}, http.StatusCreated, nil)
	e.putSubject("CP-1", "west", "carol", "测试", testfix.NIJProfile(t))
	e.api(http.MethodPost, "/v1/subjects/CP-1/recommendations", e.cms, map[string]string{}, http.StatusCreated, nil)

	_, body = e.get(c, "/models/nij-review/comparison?outcomes=revocation&within_days=365")
	for _, want := range []string{"模型对比", "当前版本 1.1.0", "影子版本 1.2.0", "两者均已评分的建议 1 条", "等级对照", "结局尚不足", "撤销缓刑/假释"} {
		if !strings.Contains(body, want) {
			t.Errorf("comparison page (zh-CN) lacks %q", want)
		}
	}
	_, body = e.get(c, "/models/nij-review/comparison?outcomes=revocation", "Cookie", langCookie+"=en")
	for _, want := range []string{"Model comparison", "Shadow version 1.2.0", "Not enough outcomes yet"} {
		if !strings.Contains(body, want) {
			t.Errorf("comparison page (en) lacks %q", want)
		}
	}
	if resp, body := e.get(c, "/models/nij-review/comparison?within_days=0"); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "within_days") {
		t.Errorf("a window of 0 days = %d, want 422 naming within_days", resp.StatusCode)
	}
	counselor := e.client()
	e.signin(counselor, "carol")
	if resp, _ := e.get(counselor, "/models/nij-review/comparison"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("comparison for a counselor = %d, want 403", resp.StatusCode)
	}
}

// TestModelCardInChinese: a model's page in zh-CN opens with the working
// Chinese translation of its description, intended use and limitations
// above the authoritative English card; in en it does not.
func TestModelCardInChinese(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	e.signin(c, "carol")
	_, body := e.get(c, "/models/nij-review/")
	for _, want := range []string{"模型说明（工作译文）", "对已在社区监管中的人员进行监管等级复核", "训练数据中女性较少", "以原文为准", `lang="en"`} {
		if !strings.Contains(body, want) {
			t.Errorf("model page (zh-CN) lacks %q", want)
		}
	}
	_, body = e.get(c, "/models/nij-review/", "Cookie", langCookie+"=en")
	if strings.Contains(body, "模型说明") || !strings.Contains(body, "Supervision-level review") {
		t.Error("model page (en) shows the Chinese translation or lacks the English card")
	}
}
