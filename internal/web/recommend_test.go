package web

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/testfix"
)

// TestBrowserAcceptRecommendation: a counselor asks the model for advice on
// a person with model inputs, sees it explained with the advisory notice,
// and accepts it with a note; the level history then shows the decision as
// theirs, and the person's level is the suggested one.
func TestBrowserAcceptRecommendation(t *testing.T) {
	t.Parallel()
	ctx := browser(t, "zh-CN")
	e := newEnv(t)
	e.putSubject("N-1", "west", "carol", "冯七", testfix.NIJProfile(t))
	b := newTab(t, ctx, e.ts.URL, "counselor")
	b.signin("carol", e.pass)
	b.visit("/subjects/N-1", "#recommendation", "")
	b.do("request advice",
		chromedp.Click(chromedp.CSS(`form[action="/subjects/N-1/recommendations"] button`)),
		chromedp.WaitVisible(chromedp.CSS("#accept-rec")),
	)
	if got := b.text("#recommendation"); !strings.Contains(got, "仅供参考") || !strings.Contains(got, "影响最大的因素") {
		t.Errorf("recommendation = %q, want the advisory notice and the factors", got)
	}
	b.check("subject with a recommendation")
	var recs struct{ Recommendations []casework.Recommendation }
	e.api(http.MethodGet, "/v1/subjects/N-1/recommendations", e.admin, nil, http.StatusOK, &recs)
	if len(recs.Recommendations) != 1 {
		t.Fatalf("recommendations = %d, want 1", len(recs.Recommendations))
	}
	want := recs.Recommendations[0].Tier
	b.do("accept",
		chromedp.SendKeys(chromedp.CSS("#accept-note"), "与本人面谈后同意"),
		chromedp.Click(chromedp.CSS("#accept-rec")),
		chromedp.WaitVisible(chromedp.CSS("ul.history")), // the history was empty
	)
	if got := b.text(".notice.ok"); !strings.Contains(got, "监管等级已决定") {
		t.Errorf("after accepting: %q", got)
	}
	if got := b.text(".history"); !strings.Contains(got, "采纳建议") || !strings.Contains(got, "carol") {
		t.Errorf("level history = %q, want carol's acceptance", got)
	}
	b.shots("32-subject-accepted")
	if b.eval(`document.getElementById("accept-rec") !== null`) {
		t.Error("the accept button is still offered once the level is the suggested one")
	}
	var s casework.Subject
	e.api(http.MethodGet, "/v1/subjects/N-1", e.admin, nil, http.StatusOK, &s)
	if s.Tier == nil || *s.Tier != want {
		t.Errorf("level = %v, want the suggested %s", s.Tier, want)
	}
}

// TestProtocolPhoneLinks: the hotline and emergency numbers of the crisis
// protocol are tel: links; other numbers are not.
func TestProtocolPhoneLinks(t *testing.T) {
	got := string(protocolHTML("拨打 12356 或 120 / 110；15 分钟内确认；热线 0571-85029595。\n<b>"))
	for _, want := range []string{`<a href="tel:12356">12356</a>`, `<a href="tel:120">120</a>`, `<a href="tel:110">110</a>`,
		`<a href="tel:057185029595">0571-85029595</a>`, "<br>&lt;b&gt;"} {
		if !strings.Contains(got, want) {
			t.Errorf("protocolHTML lacks %s: %s", want, got)
		}
	}
	if strings.Contains(got, `tel:15"`) {
		t.Errorf("a duration became a phone link: %s", got)
	}
}

func TestBinZH(t *testing.T) {
	for in, want := range map[string]string{"6 or more": "6 及以上", "> 173.8 & ≤ 200": "大于 173.8 且 不超过 200", "[0.341994, 0.60074]": "0.34 至 0.6", "(0, 0.0724638]": "0 至 0.07",
		"true": "是", "43-47": "43-47"} {
		if got := binZH(in); got != want {
			t.Errorf("binZH(%q) = %q, want %q", in, got, want)
		}
	}
}
