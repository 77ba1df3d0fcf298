package web

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/testfix"
)

// TestRegisterRules: a counselor registers onto their own caseload whatever
// the form says; validation speaks Chinese and keeps what was typed; a
// taken case number is refused rather than overwritten.
func TestRegisterRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	carol := e.client()
	e.signin(carol, "carol")
	form := url.Values{"subject_id": {"R-1"}, "display_name": {"孙小明"}, "sex": {"male"}, "birth_year": {"1990"}, "supervision_type": {"parole"},
		"unit": {"east"}, "counselor": {"dave"}, "supervision_start": {"2025-01-02"}}
	if resp := e.post(carol, "/subjects", form); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/subjects/R-1?done=registered" {
		t.Fatalf("register = %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	var s casework.Subject
	e.api(http.MethodGet, "/v1/subjects/R-1", e.admin, nil, http.StatusOK, &s)
	if s.Unit != "west" || s.Counselor != "carol" || s.DisplayName != "孙小明" || s.SupervisionType != "parole" {
		t.Errorf("registered %+v, want west, carol's caseload", s)
	}
	// Taken case number: refused, nothing overwritten.
	form.Set("display_name", "别人")
	resp, err := carol.PostForm(e.ts.URL+"/subjects", form)
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body.String(), "该档案号已登记") {
		t.Errorf("taken case number = %d, want 422 with the Chinese message", resp.StatusCode)
	}
	// Invalid fields: every problem in Chinese, what was typed kept.
	bad := url.Values{"subject_id": {"坏 号"}, "display_name": {"  "}, "sex": {"female"}, "birth_year": {"1800"}, "supervision_type": {"probation"},
		"supervision_start": {"2025-05-01"}, "supervision_end": {"2025-01-01"}}
	resp, _ = carol.PostForm(e.ts.URL+"/subjects", bad)
	body.Reset()
	body.ReadFrom(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"档案号须为", "请填写姓名", "出生年份须为", "不早于起始日期", `value="坏 号"`, `aria-invalid="true"`} {
		if !strings.Contains(body.String(), want) {
			t.Errorf("invalid form page lacks %q", want)
		}
	}
	// An edit keeps the profile the case system stored.
	profile := testfix.NIJProfile(t)
	e.putSubject("R-2", "west", "carol", "钱多多", profile)
	edit := url.Values{"display_name": {"钱多多"}, "sex": {"female"}, "supervision_type": {"control"}}
	if resp := e.post(carol, "/subjects/R-2/edit", edit); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("edit = %d", resp.StatusCode)
	}
	e.api(http.MethodGet, "/v1/subjects/R-2", e.admin, nil, http.StatusOK, &s)
	if s.SupervisionType != "control" || len(s.Profile) != len(profile) || len(profile) == 0 {
		t.Errorf("after the edit %+v, want control with the profile kept", s)
	}
	// dave (east) cannot edit carol's person.
	dave := e.client()
	e.signin(dave, "dave")
	if resp := e.post(dave, "/subjects/R-2/edit", edit); resp.StatusCode != http.StatusNotFound {
		t.Errorf("dave edits carol's person = %d, want 404", resp.StatusCode)
	}
	if logs := e.logs.String(); strings.Contains(logs, "孙小明") || strings.Contains(logs, "钱多多") {
		t.Error("a name reached the logs")
	}
}

// TestSearchCaseload: the caseload finds people by name (sealed at rest),
// case number and supervision type, within the caller's scope only.
func TestSearchCaseload(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putSubject("S-10", "west", "carol", "张三丰", nil)
	e.putSubject("S-11", "west", "carol", "李四", nil)
	e.putSubject("S-12", "east", "dave", "张无忌", nil)
	carol := e.client()
	e.signin(carol, "carol")
	for _, tt := range []struct{ query, want, not string }{
		{"q=" + url.QueryEscape("张 三"), "S-10", "S-11"},
		{"q=s-11", "S-11", "S-10"},
		{"q=" + url.QueryEscape("Ｓ－１０"), "S-10", "S-11"},
		{"q=" + url.QueryEscape("张"), "S-10", "S-12"}, // east is not carol's
		{"type=parole", "caseload.empty", "S-10"},
	} {
		_, body := e.get(carol, "/?"+tt.query)
		if tt.want == "caseload.empty" {
			if !strings.Contains(body, "没有符合条件") {
				t.Errorf("%s: want no one", tt.query)
			}
		} else if !strings.Contains(body, `href="/subjects/`+tt.want+`"`) {
			t.Errorf("%s: %s not found", tt.query, tt.want)
		}
		if strings.Contains(body, `href="/subjects/`+tt.not+`"`) {
			t.Errorf("%s: %s listed", tt.query, tt.not)
		}
	}
}

// TestBrowserRegisterFindScreenPrint: a counselor without a case-system
// feed registers a person, finds them by name, screens them (GAD-7, one
// question at a time) and prints the report: A4, with the unit's name and
// the advisory notice, no navigation.
func TestBrowserRegisterFindScreenPrint(t *testing.T) {
	t.Parallel()
	ctx := browser(t, "zh-CN")
	e := newEnv(t)
	b := newTab(t, ctx, e.ts.URL, "counselor")
	b.signin("carol", e.pass)
	b.visit("/subjects/new", "#f-subject_id", "")
	b.do("register",
		chromedp.SendKeys(chromedp.CSS("#f-subject_id"), "HZ-2025-0007"),
		chromedp.SendKeys(chromedp.CSS("#f-display_name"), "吴小燕"),
		chromedp.SetValue(chromedp.CSS("#f-sex"), "female"),
		chromedp.SendKeys(chromedp.CSS("#f-birth_year"), "1991"),
		chromedp.SetValue(chromedp.CSS("#f-supervision_type"), "probation"),
		chromedp.Click(chromedp.CSS("#save-subject")),
		chromedp.WaitVisible(chromedp.CSS("#screen")),
	)
	if got := b.text(".notice.ok"); !strings.Contains(got, "已登记") {
		t.Errorf("after registering: %q", got)
	}
	if got := b.text(".summary"); !strings.Contains(got, "west district") || !strings.Contains(got, "缓刑") {
		t.Errorf("summary = %q, want the unit's name and 缓刑", got)
	}
	b.do("find by name",
		chromedp.Navigate(e.ts.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS("#q")),
		chromedp.SendKeys(chromedp.CSS("#q"), "小燕"),
		chromedp.Submit(chromedp.CSS("#q")),
		chromedp.WaitVisible(chromedp.CSS(`table.caseload a[href="/subjects/HZ-2025-0007"]`)),
	)
	b.check("caseload search")
	b.do("open and screen",
		chromedp.Click(chromedp.CSS(`table.caseload a[href="/subjects/HZ-2025-0007"]`)),
		chromedp.WaitVisible(chromedp.CSS("#screen")),
		chromedp.Click(chromedp.CSS("#inst-gad7")),
		chromedp.Click(chromedp.CSS("#lang-zh")),
		chromedp.Click(chromedp.CSS("#mode-step")),
		chromedp.Click(chromedp.CSS("#start-screening")),
		chromedp.WaitVisible(chromedp.CSS("form.question")),
	)
	for i := 1; i <= 7; i++ {
		b.answer(fmt.Sprintf("gad7_%d", i), 2)
	}
	b.do("submit", chromedp.WaitVisible(chromedp.CSS("#submit")), chromedp.Click(chromedp.CSS("#submit")),
		chromedp.WaitVisible(chromedp.CSS(`a.button.primary[href="/subjects/HZ-2025-0007"]`)))
	b.do("to the report",
		chromedp.Click(chromedp.CSS(`a.button.primary[href="/subjects/HZ-2025-0007"]`)),
		chromedp.WaitVisible(chromedp.CSS(".timeline .assessment-more a")),
		chromedp.Click(chromedp.CSS(".timeline .assessment-more a")),
		chromedp.WaitVisible(chromedp.CSS("#print")),
	)
	if got := b.text("main"); !strings.Contains(got, "14 / 21") || !strings.Contains(got, "吴小燕") || !strings.Contains(got, "仅供参考") {
		t.Errorf("report = %q, want 14 / 21, the name and the advisory notice", got)
	}
	b.visit(strings.TrimPrefix(b.url(), e.ts.URL), "#print", "")
	// Printed: the unit's name heads the page; nothing of the screen's chrome.
	b.do("print media", func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: "print"})
		return chromedp.Void{}, err
	})
	if !b.eval(`getComputedStyle(document.querySelector(".print-head")).display !== "none" && document.querySelector(".print-unit").textContent === "west district" &&
		getComputedStyle(document.querySelector("header.bar")).display === "none" && getComputedStyle(document.querySelector("#print")).display === "none" &&
		getComputedStyle(document.querySelector(".print-advisory")).display !== "none"`) {
		t.Error("the printed report lacks the unit's name or the advisory notice, or shows the navigation")
	}
	var pdf []byte
	yes := true
	b.do("print to PDF", func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		r, err := cdp.Call(ctx, tg, page.PrintToPDF, page.PrintToPDFParams{PreferCSSPageSize: &yes})
		pdf = r.Data
		return chromedp.Void{}, err
	})
	// A4 is 595 × 842 points.
	if !bytes.HasPrefix(pdf, []byte("%PDF")) || !bytes.Contains(pdf, []byte("595")) || !bytes.Contains(pdf, []byte("842")) {
		t.Errorf("the report does not print on A4 (%d bytes)", len(pdf))
	}
}

// TestBrowserResumeFromSubjectPage: a screening interrupted after two
// answers is listed on the subject page and on the caseload; resuming it
// continues at the third question with the answers kept.
func TestBrowserResumeFromSubjectPage(t *testing.T) {
	t.Parallel()
	ctx := browser(t, "zh-CN")
	e := newEnv(t)
	e.putSubject("U-1", "west", "carol", "郑好", nil)
	b := newTab(t, ctx, e.ts.URL, "counselor")
	b.signin("carol", e.pass)
	b.do("start a PHQ-9",
		chromedp.Navigate(e.ts.URL+"/subjects/U-1"),
		chromedp.WaitVisible(chromedp.CSS("#screen")),
		chromedp.Click(chromedp.CSS("#inst-phq9")),
		chromedp.Click(chromedp.CSS("#mode-step")),
		chromedp.Click(chromedp.CSS("#start-screening")),
		chromedp.WaitVisible(chromedp.CSS("form.question")),
	)
	b.answer("phq9_1", 1)
	b.answer("phq9_2", 2)
	b.do("leave", chromedp.Navigate(e.ts.URL+"/"), chromedp.WaitVisible(chromedp.CSS(".open-sessions")))
	if got := b.text(".open-sessions"); !strings.Contains(got, "郑好") || !strings.Contains(got, "最后保存") {
		t.Errorf("caseload's unfinished screenings = %q", got)
	}
	b.visit("/subjects/U-1", "#open-sessions", "")
	b.do("resume", chromedp.Click(chromedp.CSS(`#open-sessions a[href$="/q"]`)), chromedp.WaitVisible(chromedp.CSS("form.question")))
	if got := b.text(".progress-text"); got != "第 3 题，共 10 题" {
		t.Errorf("resumed at %q, want question 3", got)
	}
	b.do("back one", chromedp.Click(chromedp.CSS("#prev")), chromedp.WaitReady(chromedp.CSS(`form.question input[name="item"][value="phq9_2"]`)))
	if !b.eval(`document.querySelector("button.option[aria-pressed=true]").value === "2"`) {
		t.Error("the saved answer to question 2 is not selected after resuming")
	}
}
