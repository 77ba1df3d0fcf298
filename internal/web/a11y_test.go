package web

import (
	"net/http"
	"net/url"
	"strings"
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

// check opens nothing: it checks the page the tab shows.
func (b *tab) check(page string) {
	b.t.Helper()
	bad, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](a11yCheck))
	if err != nil {
		b.t.Fatalf("%s: accessibility check: %v", page, err)
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
	b.do("desktop", chromedp.EmulateViewport(1280, 900))
	if shot != "" {
		b.shot(shot + "-desktop")
	}
}

// TestBrowserPagesAccessible opens every kind of page as the role that uses
// it and checks labels, names, contrast and phone width; keyboard use and
// the htmx autosave run under the page's Content-Security-Policy.
func TestBrowserPagesAccessible(t *testing.T) {
	t.Parallel()
	ctx := browser(t, "en-US")
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
	anon.visit("/signin", "#username", "21-signin-en")
	if !anon.eval(`document.documentElement.lang === "en" && document.querySelector("h1").textContent === "Sign in"`) {
		t.Error("the sign-in page is not in English for an en-US browser")
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
	carol.visit("/subjects/P-200", "#recommendation", "22-subject-flags")
	carol.visit("/flags", "#flag-queue", "")
	carol.visit("/overrides", "h1", "")
	carol.visit("/models", ".model-list", "")
	carol.visit("/models/nij-review/", ".markdown", "23-model-card")

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
	if _, err := chromedp.Run(carol.ctx, chromedp.Poll[bool](`document.getElementById("save-status").textContent.includes("已自动保存")`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("htmx autosave did not report: %v", err)
	}
	carol.check("full form")
	carol.shot("24-full-form-desktop")
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
	sam.visit("/overrides", ".override", "25-overrides")
	if got := sam.text(".override"); !strings.Contains(got, "近期就业稳定") || !strings.Contains(got, "Clinical judgement") && !strings.Contains(got, "专业判断") {
		t.Errorf("pending override = %q, want its reason and note", got)
	}
	sam.visit("/dashboard", ".tiles", "")
	sam.visit("/flags", "#flag-queue", "")
	// A version in shadow that scored one recommendation: the comparison.
	e.api(http.MethodPost, "/v1/models/nij-review/versions", e.admin, map[string]any{"files": nextVersion(t, "1.1.0")}, http.StatusCreated, nil)
	e.api(http.MethodPost, "/v1/subjects/P-200/recommendations", e.cms, map[string]string{"model": "nij-review"}, http.StatusCreated, nil)
	sam.visit("/models/nij-review/comparison", "table", "")
	sam.visit("/subjects/P-200/outcomes", "#record-outcome", "")

	admin := newTab(t, ctx, e.ts.URL, "admin")
	admin.signin("admin", e.pass)
	admin.visit("/admin/users", "table.admin", "26-users")
	admin.visit("/admin/keys", "table.admin", "")
	admin.visit("/admin/units", "table.admin", "")
}
