package web

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/testfix"
)

// The browser tests drive headless Chromium (Debian's chromium package) with
// chromedp through the whole server. scripts/test.sh exports
// SUNPATH_CHROMIUM from scripts/ensure-chromium.sh; under CI a missing
// browser is a failure, never a skip.

// chromium returns the browser to drive.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SUNPATH_CHROMIUM"); p != "" {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("SUNPATH_CHROMIUM is not set: under CI the browser tests must run; scripts/test.sh sets it from scripts/ensure-chromium.sh")
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	t.Skip("no Chromium found (set SUNPATH_CHROMIUM, or run scripts/ensure-chromium.sh, which installs Debian's chromium when root); under CI this is a failure")
	return ""
}

// browser starts a headless Chromium with a fresh profile, closed when the
// test ends. The flags keep it off the (closed) network.
func browser(t *testing.T, lang string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("lang", lang),
		chromedp.Flag("accept-lang", lang),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser; no timeout on this first run
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// tab is one browser context (its own cookies, like a separate device) with
// a deadline for everything done in it. It records Content-Security-Policy
// violations and uncaught JavaScript errors; the test fails on any.
type tab struct {
	t        *testing.T
	ctx      context.Context
	base     string
	name     string
	mu       sync.Mutex
	problems []string
}

func newTab(t *testing.T, parent context.Context, base, name string) *tab {
	t.Helper()
	b := &tab{t: t, base: base, name: name}
	ctx, cancel := chromedp.NewContext(parent, chromedp.WithNewBrowserContext(), chromedp.WithListener(b.listen))
	enableLog := func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, cdplog.Enable, cdp.Empty{})
		return chromedp.Void{}, err
	}
	if err := chromedp.Do(ctx, enableLog); err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	dctx, cancelDeadline := context.WithTimeout(ctx, 2*time.Minute)
	b.ctx = dctx
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, p := range b.problems {
			t.Errorf("%s: %s", name, p)
		}
		cancelDeadline()
		cancel()
	})
	return b
}

// listen runs in the tab's event loop: it only records.
func (b *tab) listen(ev any) {
	var p string
	switch ev := ev.(type) {
	case *cdplog.EventEntryAdded:
		if e := ev.Entry; e != nil && (e.Source == cdplog.EntrySourceSecurity || strings.Contains(e.Text, "Content Security Policy") || strings.Contains(e.Text, "Refused to")) {
			p = "console: " + e.Text
		}
	case *runtime.EventExceptionThrown:
		if d := ev.ExceptionDetails; d != nil {
			p = "uncaught JavaScript error: " + d.Text
			if d.Exception != nil {
				p += " " + d.Exception.Description
			}
		}
	}
	if p != "" {
		b.mu.Lock()
		b.problems = append(b.problems, p)
		b.mu.Unlock()
	}
}

// do runs actions; on failure it saves a screenshot and the page's URL for
// diagnosis.
func (b *tab) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		loc, _ := chromedp.Run(b.ctx, chromedp.Location())
		b.shot("failure-" + b.name)
		b.t.Fatalf("%s: %s: %v (at %s)", b.name, step, err, loc)
	}
}

func (b *tab) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("%s: text of %s: %v", b.name, sel, err)
	}
	return strings.TrimSpace(s)
}

func (b *tab) eval(expr string) bool {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](expr))
	if err != nil {
		b.t.Fatalf("%s: evaluate %s: %v", b.name, expr, err)
	}
	return v
}

func (b *tab) url() string {
	u, _ := chromedp.Run(b.ctx, chromedp.Location())
	return u
}

// screenshotDir is where screenshots are kept for review (git-ignored).
const screenshotDir = "testdata/screenshots"

// shot saves a full-page PNG at the current viewport.
func (b *tab) shot(name string) {
	buf, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(screenshotDir, name+".png")
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	abs, _ := filepath.Abs(p)
	b.t.Logf("screenshot: %s", abs)
}

// shots saves the page at desktop and phone widths.
func (b *tab) shots(name string) {
	b.t.Helper()
	b.do("phone viewport", chromedp.EmulateViewport(390, 844))
	b.shot(name + "-phone")
	b.do("desktop viewport", chromedp.EmulateViewport(1280, 900))
	b.shot(name + "-desktop")
}

func (b *tab) signin(user, pass string) {
	b.t.Helper()
	b.do("sign in as "+user,
		chromedp.Navigate(b.base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), user),
		chromedp.SendKeys(chromedp.CSS("#password"), pass),
		chromedp.Click(chromedp.CSS(`form[action="/signin"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/signout"]`)),
	)
}

func (b *tab) signout() {
	b.t.Helper()
	b.do("sign out",
		chromedp.Click(chromedp.CSS(`form[action="/signout"] button`)),
		chromedp.WaitVisible(chromedp.CSS("#username")),
	)
}

// answer clicks the option with value on the question page of item, one
// question at a time, and waits for the next page to load.
func (b *tab) answer(item string, value int) {
	b.t.Helper()
	b.do("answer "+item,
		chromedp.WaitReady(chromedp.CSS(`form.question input[name="item"][value="`+item+`"]`)),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`form.question button.option[value="%d"]`, value))),
		chromedp.WaitNotPresent(chromedp.CSS(`form.question input[name="item"][value="`+item+`"]`)),
	)
}

// TestBrowserCounselorCrisisAndSupervisor is scenario 1: a counselor signs
// in, administers a PHQ-9 in Chinese one question at a time with item 9
// positive (an urgent flag), then an ASQ answered acute-positive, and sees
// the crisis protocol at once; the unit's supervisor then finds the critical
// flag at the head of the queue and acknowledges it.
func TestBrowserCounselorCrisisAndSupervisor(t *testing.T) {
	t.Parallel()
	ctx := browser(t, "zh-CN")
	e := newEnv(t)
	e.putSubject("P-100", "west", "carol", "李四", testfix.NIJProfile(t))
	e.putSubject("P-101", "west", "carol", "周七", nil)
	e.phq9At("P-100", 75, 3, 2, 2, 2, 2, 1, 2, 1, 0)
	e.phq9At("P-100", 45, 2, 2, 1, 1, 1, 1, 1, 1, 0)
	e.phq9At("P-100", 15, 1, 1, 1, 1, 0, 1, 0, 0, 0)
	e.api(http.MethodPost, "/v1/subjects/P-100/recommendations", e.cms, map[string]string{"model": "nij-review"}, http.StatusCreated, nil)
	phq9, _ := testfix.Catalog(t).Get("phq9")

	b := newTab(t, ctx, e.ts.URL, "counselor")
	b.do("open the start page", chromedp.Navigate(e.ts.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#username")))
	if !b.eval(`document.documentElement.lang === "zh-CN" && document.querySelector("h1").textContent.includes("登录")`) {
		t.Error("the sign-in page is not in Chinese for a zh-CN browser")
	}
	b.shots("01-signin")
	b.signin("carol", e.pass)
	b.do("caseload", chromedp.WaitVisible(chromedp.CSS("table.caseload")))
	if got := b.text("table.caseload tbody"); !strings.Contains(got, "李四") || !strings.Contains(got, "周七") {
		t.Errorf("caseload = %q, want both people", got)
	}
	b.shots("02-caseload")

	b.do("open the subject", chromedp.Click(chromedp.CSS(`a[href="/subjects/P-100"]`)), chromedp.WaitVisible(chromedp.CSS("#screen")))
	if !b.eval(`document.querySelectorAll("svg.trend rect.band").length === 5 && document.querySelectorAll("svg.trend circle.point").length === 3`) {
		t.Error("the PHQ-9 trend chart lacks its 5 severity bands or 3 points")
	}
	if got := b.text("#recommendation"); !strings.Contains(got, "仅供参考") || !strings.Contains(got, "使估计") {
		t.Errorf("recommendation block = %q, want the advisory notice and signed contributions", got)
	}
	b.shots("03-subject")

	// PHQ-9 in Chinese, one question at a time; item 9 positive.
	b.do("start a PHQ-9",
		chromedp.Click(chromedp.CSS("#inst-phq9")),
		chromedp.Click(chromedp.CSS("#lang-zh")),
		chromedp.Click(chromedp.CSS("#mode-step")),
		chromedp.Click(chromedp.CSS("#start-screening")),
		chromedp.WaitVisible(chromedp.CSS("form.question")),
	)
	if got := b.text("#question-text"); !strings.Contains(got, phq9.Items[0].Text["zh-CN"]) {
		t.Errorf("first question = %q, want the Chinese text of phq9_1", got)
	}
	if got := b.text(".progress-text"); got != "第 1 题，共 10 题" {
		t.Errorf("progress = %q", got)
	}
	for i := 1; i <= 8; i++ {
		if i == 5 {
			b.shots("04-question")
		}
		b.answer(fmt.Sprintf("phq9_%d", i), 1)
	}
	b.answer("phq9_9", 1)
	b.answer("phq9_difficulty", 1)
	b.do("review", chromedp.WaitVisible(chromedp.CSS("#submit")))
	b.shots("05-review")
	b.do("submit the PHQ-9", chromedp.Click(chromedp.CSS("#submit")), chromedp.WaitVisible(chromedp.CSS("#urgent")))
	if b.eval(`document.getElementById("crisis") !== null`) {
		t.Error("an urgent PHQ-9 flag shows the crisis protocol, which is for critical flags")
	}
	if got := b.text("main"); !strings.Contains(got, "9 / 27") {
		t.Errorf("PHQ-9 result = %q, want a total of 9 / 27", got)
	}

	// ASQ: yes to question 1 makes question 5 appear; yes to it is acute.
	b.do("back to the subject", chromedp.Click(chromedp.CSS(`a.button.primary[href="/subjects/P-100"]`)), chromedp.WaitVisible(chromedp.CSS("#screen")))
	b.do("start an ASQ",
		chromedp.Click(chromedp.CSS("#inst-asq")),
		chromedp.Click(chromedp.CSS("#mode-step")),
		chromedp.Click(chromedp.CSS("#start-screening")),
		chromedp.WaitVisible(chromedp.CSS("form.question")),
	)
	// Question 5 counts until questions 1-4 are answered no: the ASQ treats
	// a refusal (an unanswered question) as yes, and then asks question 5.
	if got := b.text(".progress-text"); got != "第 1 题，共 5 题" {
		t.Errorf("ASQ progress before any answer = %q", got)
	}
	b.answer("asq_1", 1)
	if got := b.text(".progress-text"); got != "第 2 题，共 5 题" {
		t.Errorf("ASQ progress after a yes = %q, want question 5 asked", got)
	}
	b.answer("asq_2", 0)
	b.answer("asq_3", 0)
	b.answer("asq_4", 0)
	b.answer("asq_5", 1)
	b.do("submit the ASQ", chromedp.WaitVisible(chromedp.CSS("#submit")), chromedp.Click(chromedp.CSS("#submit")),
		chromedp.WaitVisible(chromedp.CSS(`#crisis[role="alert"]`)))
	if got := b.text("#crisis"); !strings.Contains(got, crisisZH) {
		t.Errorf("crisis box = %q, want the configured Chinese protocol", got)
	}
	if !b.eval(`document.querySelector("main").firstElementChild.id === "crisis"`) {
		t.Error("the crisis protocol is not the first thing on the result page")
	}
	b.shots("06-crisis")
	b.signout()

	// The supervisor of the unit: the critical flag heads the queue.
	b.signin("sam", e.pass)
	b.do("flag queue", chromedp.Navigate(e.ts.URL+"/flags"), chromedp.WaitVisible(chromedp.CSS("#flag-queue")))
	if !b.eval(`document.querySelector("#flag-queue > li").classList.contains("flag-critical")`) {
		t.Error("the critical flag is not first in the queue")
	}
	if got := b.text("#flag-queue > li:first-child"); !strings.Contains(got, "P-100") || !strings.Contains(got, "危机处置流程") {
		t.Errorf("first flag = %q, want P-100 with the crisis protocol", got)
	}
	b.shots("07-flags")
	b.do("acknowledge",
		chromedp.Click(chromedp.CSS(`#flag-queue > li.flag-critical form[action$="/acknowledge"] button`)),
		chromedp.WaitVisible(chromedp.CSS(".notice.ok")),
	)
	if got := b.text("#flag-queue > li.flag-critical .status"); got != "已确认，待办结" {
		t.Errorf("critical flag status after acknowledging = %q", got)
	}
	// Resolve it with a code and a note.
	b.do("resolve",
		chromedp.SetValue(chromedp.CSS(`#flag-queue > li.flag-critical select[name="resolution_code"]`), "safety_plan_made"),
		chromedp.Click(chromedp.CSS(`#flag-queue > li.flag-critical input[name="intervention"][value="crisis_intervention"]`)),
		chromedp.SendKeys(chromedp.CSS(`#flag-queue > li.flag-critical textarea[name="note"]`), "已制定安全计划并转介"),
		chromedp.Click(chromedp.CSS(`#flag-queue > li.flag-critical form[action$="/resolve"] button`)),
		chromedp.WaitNotPresent(chromedp.CSS("#flag-queue > li.flag-critical")),
	)
	var fl struct{ Flags []casework.Flag }
	e.api(http.MethodGet, "/v1/flags?status=resolved", e.admin, nil, http.StatusOK, &fl)
	if len(fl.Flags) != 1 || fl.Flags[0].Level != "critical" || fl.Flags[0].AcknowledgedBy != "user:sam" {
		t.Errorf("resolved flags = %+v, want the critical one, acknowledged by sam", fl.Flags)
	}
	b.do("dashboard", chromedp.Navigate(e.ts.URL+"/dashboard"), chromedp.WaitVisible(chromedp.CSS(".tiles")))
	b.shots("08-dashboard")
}

// TestBrowserKioskInterruptedAndResumed is scenario 2: a kiosk session is
// answered in part, the page is closed, the link opened again on a new
// browser context shows the saved answers selected, the session is
// submitted, the kiosk shows only thanks and the link stops working.
func TestBrowserKioskInterruptedAndResumed(t *testing.T) {
	t.Parallel()
	ctx := browser(t, "en-US")
	e := newEnv(t)
	e.putSubject("K-1", "west", "carol", "Kiosk Person", nil)

	staff := newTab(t, ctx, e.ts.URL, "staff")
	staff.signin("carol", e.pass)
	staff.do("start a kiosk session",
		chromedp.Navigate(e.ts.URL+"/subjects/K-1"),
		chromedp.WaitVisible(chromedp.CSS("#screen")),
		chromedp.Click(chromedp.CSS("#inst-phq9")),
		chromedp.Click(chromedp.CSS("#lang-en")),
		chromedp.Click(chromedp.CSS("#mode-kiosk")),
		chromedp.Click(chromedp.CSS("#start-screening")),
		chromedp.WaitVisible(chromedp.CSS("#kiosk-link")),
	)
	link := staff.text("#kiosk-link")
	if !strings.HasPrefix(link, e.ts.URL+"/kiosk#spq_") {
		t.Fatalf("kiosk link = %q", link)
	}
	staff.shots("11-kiosk-link")

	// First visit: three answers, then the page is closed.
	first := newTab(t, ctx, e.ts.URL, "kiosk-1")
	first.do("open the kiosk link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("form.question")))
	if u := first.url(); strings.Contains(u, "spq_") {
		t.Errorf("the token stays in the address bar: %s", u)
	}
	if !first.eval(`document.body.classList.contains("kiosk") && document.querySelectorAll("a[href]:not(.skip):not([href^='/kiosk'])").length === 0 && document.querySelector("nav") === null`) {
		t.Error("the kiosk page has navigation or links out")
	}
	if got := first.text(".progress-text"); got != "Question 1 of 10" {
		t.Errorf("kiosk progress = %q (the kiosk speaks the session's language)", got)
	}
	first.answer("phq9_1", 0)
	first.answer("phq9_2", 1)
	first.shots("12-kiosk-question")
	first.answer("phq9_3", 2)
	first.do("close the page", chromedp.Navigate("about:blank"))

	// A new browser context (no cookie): the link resumes where it stopped.
	second := newTab(t, ctx, e.ts.URL, "kiosk-2")
	second.do("reopen the kiosk link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("form.question")))
	if got := second.text(".progress-text"); got != "Question 4 of 10" {
		t.Errorf("resumed at %q, want the first unanswered question", got)
	}
	for _, want := range []struct {
		item  string
		value int
	}{{"phq9_3", 2}, {"phq9_2", 1}, {"phq9_1", 0}} {
		second.do("back to "+want.item, chromedp.Click(chromedp.CSS("#prev")),
			chromedp.WaitReady(chromedp.CSS(`form.question input[name="item"][value="`+want.item+`"]`)))
		if !second.eval(fmt.Sprintf(`(() => { const s = [...document.querySelectorAll("button.option[aria-pressed=true]")]; return s.length === 1 && s[0].value === "%d" && s[0].classList.contains("selected"); })()`, want.value)) {
			t.Errorf("%s: the saved answer %d is not the one selected", want.item, want.value)
		}
	}
	second.shots("13-kiosk-resumed")
	// Forward again to the first unanswered question and finish.
	second.do("to the first unanswered", chromedp.Navigate(e.ts.URL+"/kiosk"), chromedp.WaitReady(chromedp.CSS(`input[name="item"][value="phq9_4"]`)))
	for _, item := range []string{"phq9_4", "phq9_5", "phq9_6", "phq9_7", "phq9_8", "phq9_9", "phq9_difficulty"} {
		second.answer(item, 0)
	}
	second.do("review", chromedp.WaitVisible(chromedp.CSS("#submit")))
	second.shots("14-kiosk-review")
	second.do("submit", chromedp.Click(chromedp.CSS("#submit")), chromedp.WaitVisible(chromedp.CSS("#thanks")))
	body := second.text("main")
	if !strings.Contains(body, "Thank you") {
		t.Errorf("after submission the kiosk shows %q", body)
	}
	for _, no := range []string{"Total", "total", "/ 27", "Minimal", "severity", "flag"} {
		if strings.Contains(body, no) {
			t.Errorf("the thank-you page shows %q: a kiosk never shows results", no)
		}
	}
	if !second.eval(`document.querySelectorAll("a[href]:not(.skip), form").length === 0`) {
		t.Error("the thank-you page has links or forms")
	}
	second.shots("15-kiosk-thanks")

	// The link no longer works, in this browser context or a fresh one.
	second.do("link again", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("h1")))
	if got := second.text("h1"); got != "This link does not work" {
		t.Errorf("the used link shows %q", got)
	}
	third := newTab(t, ctx, e.ts.URL, "kiosk-3")
	third.do("link on a new device", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("h1")))
	if got := third.text("h1"); got != "This link does not work" {
		t.Errorf("the used link on a new browser context shows %q", got)
	}
	third.do("kiosk question page", chromedp.Navigate(e.ts.URL+"/kiosk/q"), chromedp.WaitVisible(chromedp.CSS("h1")))
	if got := third.text("h1"); got != "This link does not work" {
		t.Errorf("/kiosk/q without a live kiosk shows %q", got)
	}

	// Staff see the self-administered result; the answers were stored once.
	var list struct{ Assessments []casework.Assessment }
	e.api(http.MethodGet, "/v1/subjects/K-1/assessments", e.admin, nil, http.StatusOK, &list)
	if len(list.Assessments) != 1 || list.Assessments[0].AdministeredBy != "kiosk (self-administered)" {
		t.Fatalf("assessments = %+v, want one self-administered", list.Assessments)
	}
	staff.do("subject after the kiosk", chromedp.Navigate(e.ts.URL+"/subjects/K-1"), chromedp.WaitVisible(chromedp.CSS(".timeline")))
	if got := staff.text(".timeline"); !strings.Contains(got, "kiosk (self-administered)") {
		t.Errorf("timeline = %q", got)
	}
}
