package web

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/testfix"
)

// a11yCheck runs in the page and lists what breaks the accessibility rules
// the UI keeps (WCAG 2.1 AA, as far as a script can tell): a language on
// the page, one h1, a label for every control, a name for every button and
// link, alt text, unique ids, and text contrast of at least 4.5:1 (3:1 for
// large text) against the background it is drawn on.
const a11yCheck = `(() => {
  const bad = [];
  const visible = el => { const r = el.getBoundingClientRect(); const s = getComputedStyle(el);
    return r.width > 1 && r.height > 1 && s.visibility !== 'hidden' && s.display !== 'none'; };
  if (!document.documentElement.lang) bad.push('no lang on <html>');
  if (document.querySelectorAll('h1').length !== 1) bad.push(document.querySelectorAll('h1').length + ' h1 elements');
  for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    if (!(el.labels && el.labels.length) && !el.getAttribute('aria-label')) bad.push('control without a label: ' + (el.name || el.id));
  }
  for (const el of document.querySelectorAll('button, a[href]')) {
    if (!el.textContent.trim() && !el.getAttribute('aria-label')) bad.push('unnamed ' + el.tagName + ' ' + el.outerHTML.slice(0, 60));
  }
  for (const el of document.querySelectorAll('img')) if (!el.hasAttribute('alt')) bad.push('img without alt ' + el.src);
  const ids = {};
  for (const el of document.querySelectorAll('[id]')) { if (ids[el.id]) bad.push('duplicate id ' + el.id); ids[el.id] = true; }
  const lum = c => { const m = c.match(/[\d.]+/g).map(Number);
    const [r, g, b] = m.slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const bg = el => { for (let e = el; e; e = e.parentElement) { const c = getComputedStyle(e).backgroundColor; const m = c.match(/[\d.]+/g);
      if (m && (m.length < 4 || Number(m[3]) > 0.5)) return c; } return 'rgb(255, 255, 255)'; };
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('svg') || !visible(el) || el.closest('.visually-hidden')) continue;
    if (![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    const s = getComputedStyle(el), f = lum(s.color), b = lum(bg(el));
    const ratio = (Math.max(f, b) + 0.05) / (Math.min(f, b) + 0.05);
    const size = parseFloat(s.fontSize), large = size >= 24 || (Number(s.fontWeight) >= 700 && size >= 18.66);
    if (ratio < (large ? 3 : 4.5)) bad.push('contrast ' + ratio.toFixed(2) + ': ' + el.tagName.toLowerCase() + ' "' + el.textContent.trim().slice(0, 40) + '"');
  }
  return bad;
})()`

// axeSource is axe-core's axe.min.js, vendored in testdata/axe (see
// SOURCE.md there).
var axeSource = sync.OnceValues(func() (string, error) {
	b, err := os.ReadFile("testdata/axe/axe.min.js")
	if err != nil {
		return "", err
	}
	if sum := fmt.Sprintf("%x", sha256.Sum256(b)); sum != axeSHA256 {
		return "", fmt.Errorf("testdata/axe/axe.min.js has sha256 %s, SOURCE.md says %s", sum, axeSHA256)
	}
	return string(b), nil
})

// axeSHA256 is the vendored axe.min.js's digest, as SOURCE.md records it.
const axeSHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"

// axeRun runs axe-core on the page (WCAG 2.0–2.2 A and AA rules and axe's
// best practices) and lists the critical and serious violations, each with
// its rule id and the first elements it found.
const axeRun = `axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations
  .filter(v => v.impact === "critical" || v.impact === "serious")
  .map(v => v.impact + " " + v.id + " (" + v.help + "): " + v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", ")))`

// axe injects axe-core into the page the tab shows (once per document) and
// fails the test on every critical or serious violation.
func (b *tab) axe(page string) []string {
	b.t.Helper()
	src, err := axeSource()
	if err != nil {
		b.t.Fatalf("read axe-core: %v", err)
	}
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`typeof axe === "undefined" && (0, eval)(`+strconv.Quote(src)+`) === undefined || true`)); err != nil {
		b.t.Fatalf("%s: inject axe-core: %v", page, err)
	}
	bad, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](axeRun, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("%s: axe-core: %v", page, err)
	}
	return bad
}

// check opens nothing: it checks the page the tab shows, with axe-core and
// with the UI's own rules (one h1, contrast of every text node against the
// background it is drawn on, which axe reports only as "needs review" where
// backgrounds are layered).
func (b *tab) check(page string) {
	b.t.Helper()
	bad, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](a11yCheck))
	if err != nil {
		b.t.Fatalf("%s: accessibility check: %v", page, err)
	}
	w, _ := chromedp.Run(b.ctx, chromedp.Evaluate[int](`window.innerWidth`))
	for _, p := range b.axe(page) {
		bad = append(bad, fmt.Sprintf("axe at %d px: %s", w, p))
	}
	for _, p := range bad {
		b.t.Errorf("%s: %s", page, p)
	}
}

// visit opens path, waits for sel and checks the page at desktop and phone
// widths; shot names its screenshots ("" for none).
func (b *tab) visit(path, sel, shot string) {
	b.t.Helper()
	b.do("open "+path, chromedp.Navigate(b.base+path), chromedp.WaitVisible(chromedp.CSS(sel)))
	b.check(path)
	b.do("phone", chromedp.EmulateViewport(390, 844))
	b.check(path + " (phone)")
	wide, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](`document.documentElement.scrollWidth <= window.innerWidth + 1 ? [] :
		[...document.querySelectorAll("body *")].filter(el => el.getBoundingClientRect().right > window.innerWidth + 1 &&
			(!el.closest(".table-wrap") || getComputedStyle(el).position === "absolute")).map(el => el.tagName + "." + el.className).slice(0, 5).concat(["scrollWidth " + document.documentElement.scrollWidth])`))
	if err != nil {
		b.t.Fatal(err)
	}
	if len(wide) > 0 {
		b.t.Errorf("%s: the page scrolls sideways at phone width: %v", path, wide)
	}
	if shot != "" {
		b.shot(shot + "-phone")
	}
	b.do("desktop", chromedp.EmulateViewport(1280, 800))
	if shot != "" {
		b.shot(shot + "-desktop")
	}
}

// chartLabels lists the trend charts' labels that draw smaller than 11 px
// or reach past the drawing's edge (and says so when there is no chart).
const chartLabels = `(() => {
  const svgs = [...document.querySelectorAll("svg.trend")];
  if (!svgs.length) return ["no trend chart on the page"];
  const bad = [];
  for (const svg of svgs) {
    const vb = svg.viewBox.baseVal, scale = svg.getBoundingClientRect().width / vb.width;
    for (const t of svg.querySelectorAll("text")) {
      const b = t.getBBox(), px = parseFloat(getComputedStyle(t).fontSize) * scale;
      if (px < 11) bad.push(t.textContent + ": " + px.toFixed(1) + " px");
      if (b.x < 0 || b.x + b.width > vb.width + 0.5) bad.push(t.textContent + ": cut off at the edge");
    }
  }
  return bad;
})()`

// focusObscured says which focused control the sticky save bar covers, or
// "" when the focus is in view.
const focusObscured = `(() => {
  const el = document.activeElement, bar = document.querySelector(".actions.sticky");
  if (!el || el === document.body || !bar || bar.contains(el)) return "";
  const r = el.getBoundingClientRect(), b = bar.getBoundingClientRect();
  return r.bottom > b.top + 1 && r.top < b.bottom ? (el.name || el.tagName) + " is under the save bar" : "";
})()`

// TestBrowserPagesAccessible opens every kind of page as the role that uses
// it and checks labels, names, contrast and phone width; keyboard use and
// the htmx autosave run under the page's Content-Security-Policy.
func TestBrowserPagesAccessible(t *testing.T) {
	t.Parallel()
	for _, lang := range []string{"zh-CN", "en"} {
		t.Run(lang, func(t *testing.T) {
			t.Parallel()
			pagesAccessible(t, lang)
		})
	}
}

// speak makes the tab's pages speak lang whatever the account's setting
// (the language cookie wins).
func (b *tab) speak(lang string) {
	b.t.Helper()
	if !b.eval(`(document.cookie = "` + langCookie + `=` + lang + `; path=/", true)`) {
		b.t.Fatalf("%s: set the language cookie", b.name)
	}
}

func pagesAccessible(t *testing.T, lang string) {
	browserLang := map[string]string{"en": "en-US"}[lang]
	if browserLang == "" {
		browserLang = lang
	}
	ctx := browser(t, browserLang)
	e := newEnv(t)
	e.putSubject("P-200", "west", "carol", "钱八", testfix.NIJProfile(t))
	e.phq9At("P-200", 40, 3, 3, 2, 2, 2, 2, 2, 2, 0)
	e.phq9At("P-200", 2, 2, 2, 2, 2, 2, 1, 1, 1, 1)
	var rec casework.Recommendation
	e.api(http.MethodPost, "/v1/subjects/P-200/recommendations", e.cms, map[string]string{"model": "nij-review"}, http.StatusCreated, &rec)
	carolHTTP := e.client()
	e.signin(carolHTTP, "carol")
	tier := casework.Strict
	if rec.Tier == casework.Strict {
		tier = casework.Ordinary
	}
	e.post(carolHTTP, "/recommendations/"+rec.ID+"/overrides", url.Values{"subject": {"P-200"}, "tier": {string(tier)}, "reason_code": {"clinical_judgement"}, "note": {"近期就业稳定，家庭支持良好。"}})

	anon := newTab(t, ctx, e.ts.URL, "anonymous")
	anon.visit("/signin", "#username", "21-signin-"+lang)
	if want := map[string]string{"en": "Sign in", "zh-CN": "登录"}[lang]; !anon.eval(`document.documentElement.lang === "` + lang + `" && document.querySelector("h1").textContent === "` + want + `"`) {
		t.Errorf("the sign-in page is not in %s for a %s browser", lang, browserLang)
	}
	anon.visit("/no/such/page", "h1", "")
	// The contrast check is not vacuous: a grey line on white fails it.
	probe, err := chromedp.Run(anon.ctx, chromedp.Evaluate[[]string](`(() => { const p = document.createElement("p");
		p.textContent = "low contrast probe"; p.style.color = "#aaaaaa"; document.querySelector("main").append(p); return []; })()`))
	if err != nil || len(probe) != 0 {
		t.Fatalf("add the probe: %v", err)
	}
	if bad, _ := chromedp.Run(anon.ctx, chromedp.Evaluate[[]string](a11yCheck)); !strings.Contains(strings.Join(bad, "\n"), "low contrast probe") {
		t.Errorf("the contrast check missed a #aaa line on white: %v", bad)
	}

	carol := newTab(t, ctx, e.ts.URL, "counselor")
	carol.signin("carol", e.pass)
	carol.speak(lang)
	carol.visit("/", "table.caseload", "")
	// Keyboard: the first Tab reaches the skip link, visibly; Enter moves
	// focus to the main content.
	carol.do("tab to the skip link", chromedp.KeyEvent("\t"))
	if !carol.eval(`document.activeElement.classList.contains("skip") && parseFloat(getComputedStyle(document.activeElement).outlineWidth) >= 2 && document.activeElement.getBoundingClientRect().left >= 0`) {
		t.Error("the first Tab does not show the skip link with a visible focus ring")
	}
	carol.do("follow the skip link", chromedp.KeyEvent("\r"))
	if !carol.eval(`document.activeElement.id === "main"`) {
		t.Error("the skip link does not move focus to the main content")
	}
	carol.visit("/subjects/P-200", "#recommendation", "22-subject-flags-"+lang)
	// Chart labels read at 11 px or more and none is cut off, at both widths.
	for _, w := range []int64{390, 1280} {
		carol.do("viewport", chromedp.EmulateViewport(w, 800))
		bad, err := chromedp.Run(carol.ctx, chromedp.Evaluate[[]string](chartLabels))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range bad {
			t.Errorf("trend chart at %d px: %s", w, p)
		}
	}
	carol.visit("/flags", "#flag-queue", "")
	carol.visit("/overrides", "h1", "")
	carol.visit("/models", ".model-list", "")
	carol.visit("/models/nij-review/", ".markdown", "23-model-card-"+lang)

	// The full form autosaves through htmx on each change, under the CSP.
	carol.do("start a full form",
		chromedp.Navigate(e.ts.URL+"/subjects/P-200"),
		chromedp.WaitVisible(chromedp.CSS("#screen")),
		chromedp.Click(chromedp.CSS("#inst-gad7")),
		chromedp.Click(chromedp.CSS("#mode-form")),
		chromedp.Click(chromedp.CSS("#start-screening")),
		chromedp.WaitVisible(chromedp.CSS("form.fullform")),
		chromedp.Click(chromedp.CSS(`input[name="a.gad7.gad7_1"][value="2"]`)),
		chromedp.WaitVisible(chromedp.CSS("#save-status")),
	)
	formURL := carol.url()
	if _, err := chromedp.Run(carol.ctx, chromedp.Poll[bool](`document.getElementById("save-status").textContent.includes("`+map[string]string{"en": "Saved automatically", "zh-CN": "已自动保存"}[lang]+`")`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("htmx autosave did not report: %v", err)
	}
	carol.check("full form")
	// Keyboard focus is never hidden under the sticky save bar (WCAG 2.2
	// SC 2.4.11): Tab through the form at phone and desk heights.
	for _, size := range [][2]int64{{390, 844}, {1280, 800}} {
		carol.do("form viewport", chromedp.EmulateViewport(size[0], size[1]))
		carol.eval(`(window.scrollTo(0, 0), document.activeElement.blur(), true)`)
		for range 12 {
			carol.do("tab", chromedp.KeyEvent("\t"))
			if bad, err := chromedp.Run(carol.ctx, chromedp.Evaluate[string](focusObscured)); err != nil || bad != "" {
				t.Errorf("full form at %dx%d: %s %v", size[0], size[1], bad, err)
				break
			}
		}
	}
	carol.shot("24-full-form-" + lang + "-desktop")
	carol.do("reload the form", chromedp.Navigate(formURL), chromedp.WaitVisible(chromedp.CSS("form.fullform")))
	if !carol.eval(`document.querySelector('input[name="a.gad7.gad7_1"][value="2"]').checked`) {
		t.Error("the answer autosaved by htmx is not checked after a reload")
	}
	carol.do("review from the form", chromedp.Click(chromedp.CSS(`button[name="action"][value="review"]`)), chromedp.WaitVisible(chromedp.CSS("#submit")))
	carol.check("review")
	carol.do("kiosk link page",
		chromedp.Navigate(e.ts.URL+"/subjects/P-200"),
		chromedp.WaitVisible(chromedp.CSS("#screen")),
		chromedp.Click(chromedp.CSS("#inst-phq9")),
		chromedp.Click(chromedp.CSS("#mode-kiosk")),
		chromedp.Click(chromedp.CSS("#start-screening")),
		chromedp.WaitVisible(chromedp.CSS("#kiosk-link")),
	)
	carol.check("kiosk link")

	sam := newTab(t, ctx, e.ts.URL, "supervisor")
	sam.signin("sam", e.pass)
	sam.speak(lang)
	sam.visit("/overrides", ".override", "25-overrides-"+lang)
	if got := sam.text(".override"); !strings.Contains(got, "近期就业稳定") || !strings.Contains(got, "Clinical judgement") && !strings.Contains(got, "专业判断") {
		t.Errorf("pending override = %q, want its reason and note", got)
	}
	sam.visit("/dashboard", ".tiles", "")
	sam.visit("/flags", "#flag-queue", "")
	// A version in shadow that scored one recommendation: the comparison.
	e.api(http.MethodPost, "/v1/models/nij-review/versions", e.admin, map[string]any{"files": nextVersion(t, "1.2.0")}, http.StatusCreated, nil)
	e.api(http.MethodPost, "/v1/subjects/P-200/recommendations", e.cms, map[string]string{"model": "nij-review"}, http.StatusCreated, nil)
	sam.visit("/models/nij-review/comparison", "table", "")
	sam.visit("/subjects/P-200/outcomes", "#record-outcome", "")

	admin := newTab(t, ctx, e.ts.URL, "admin")
	admin.signin("admin", e.pass)
	admin.speak(lang)
	admin.visit("/admin/users", "table.admin", "26-users-"+lang)
	admin.visit("/admin/keys", "table.admin", "")
	admin.visit("/admin/units", "table.admin", "")
}
