package web

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/httpapi"
)

// asqAcute stores an ASQ answered acute positive (a critical flag) through
// the API, as a case system or another device would.
func (e *env) asqAcute(subject string) {
	e.t.Helper()
	at := time.Now().UTC()
	e.api(http.MethodPost, "/v1/subjects/"+subject+"/assessments", e.admin, map[string]any{"instrument": "asq", "language": "zh-CN",
		"answers": map[string]int{"asq_1": 1, "asq_2": 0, "asq_3": 0, "asq_4": 0, "asq_5": 1}, "completed_at": at, "started_at": at.Add(-5 * time.Minute)},
		http.StatusCreated, nil)
}

// TestAlertPollDoesNotExtendSession: a page left open polls for alerts,
// and that poll must not keep the session alive. With a 2 s idle timeout,
// polling for 3 s ends the session; browsing pages for 3 s keeps it.
func TestAlertPollDoesNotExtendSession(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, httpapi.DefaultConfig(), auth.SessionPolicy{Idle: 2 * time.Second, Absolute: time.Hour})
	e.putSubject("A-1", "west", "carol", "王五", nil)

	browse, poll := e.client(), e.client()
	e.signin(browse, "carol")
	e.signin(poll, "carol")
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(300 * time.Millisecond) {
		if resp, _ := e.get(browse, "/"); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET / while browsing = %d, want 200", resp.StatusCode)
		}
		resp, body := e.get(poll, "/alerts", "HX-Request", "true")
		switch {
		case resp.StatusCode == http.StatusOK && strings.Contains(body, `id="alerts-state"`):
		case resp.StatusCode == http.StatusNoContent:
		case resp.StatusCode == http.StatusUnauthorized && resp.Header.Get("HX-Redirect") == "/signin":
			// the poll has seen the session end: fine, keep going
		default:
			t.Fatalf("GET /alerts = %d %q", resp.StatusCode, body)
		}
	}
	if resp, _ := e.get(browse, "/flags"); resp.StatusCode != http.StatusOK {
		t.Errorf("after 3 s of browsing GET /flags = %d, want 200: pages keep the session alive", resp.StatusCode)
	}
	if resp, _ := e.get(poll, "/flags"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("after 3 s of polling only GET /flags = %d, want 303 to sign in: the poll kept the session alive", resp.StatusCode)
	}
	resp, _ := e.get(poll, "/alerts", "HX-Request", "true")
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("HX-Redirect") != "/signin" {
		t.Errorf("poll after the session ended = %d, HX-Redirect %q; want 401 to the sign-in page", resp.StatusCode, resp.Header.Get("HX-Redirect"))
	}
}

// TestAlertPollScope: the badge counts only flags the caller may see, and
// answers 204 while nothing changed.
func TestAlertPollScope(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putSubject("A-2", "west", "carol", "赵六", nil)
	e.asqAcute("A-2")
	carol, dave := e.client(), e.client()
	e.signin(carol, "carol")
	e.signin(dave, "dave")
	resp, body := e.get(carol, "/alerts", "HX-Request", "true")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-count="1"`) || !strings.Contains(body, "危急 1") {
		t.Fatalf("carol's badge = %d %q, want one critical alert", resp.StatusCode, body)
	}
	if strings.Contains(body, "赵六") || strings.Contains(body, "A-2") {
		t.Errorf("the badge names the person: %q", body)
	}
	i := strings.Index(body, `value="`) + len(`value="`)
	state := body[i : i+strings.Index(body[i:], `"`)]
	if resp, _ := e.get(carol, "/alerts?state="+state, "HX-Request", "true"); resp.StatusCode != http.StatusNoContent {
		t.Errorf("poll with the current state = %d, want 204", resp.StatusCode)
	}
	if _, body := e.get(dave, "/alerts", "HX-Request", "true"); !strings.Contains(body, `data-count="0"`) {
		t.Errorf("dave (east) sees west's alert: %q", body)
	}
	if resp, _ := e.get(e.client(), "/alerts"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous poll = %d, want 401", resp.StatusCode)
	}
}

// TestBrowserLiveAlert: a critical flag raised through the API reaches the
// flag queue already open in the counselor's and the supervisor's browsers,
// without a reload, within 10 s: the card with the person's name, the
// header badge and the document title.
func TestBrowserLiveAlert(t *testing.T) {
	t.Parallel()
	ctx := browser(t, "zh-CN")
	e := newEnv(t)
	e.putSubject("L-1", "west", "carol", "陈一", nil)
	e.phq9At("L-1", 3, 1, 1, 1, 1, 1, 1, 1, 1, 1) // an urgent flag already there

	var tabs []*tab
	for _, user := range []string{"carol", "sam"} {
		b := newTab(t, ctx, e.ts.URL, user)
		b.signin(user, e.pass)
		b.do("open the flag queue", chromedp.Navigate(e.ts.URL+"/flags"), chromedp.WaitVisible(chromedp.CSS("#flag-queue")))
		b.eval(`(window.__noReload = true)`)
		if !b.eval(`document.title.startsWith("【1 条警报待确认】")`) {
			t.Errorf("%s: title %q does not count the open urgent flag", user, b.text("title"))
		}
		tabs = append(tabs, b)
	}
	raised := time.Now()
	e.asqAcute("L-1")
	for _, b := range tabs {
		b.wait("the live alert", `document.querySelector("#flag-live li.flag-critical") !== null`, 10*time.Second)
		b.t.Logf("%s: the alert arrived after %v", b.name, time.Since(raised).Round(100*time.Millisecond))
		if !b.eval(`window.__noReload === true`) {
			t.Errorf("%s: the page was reloaded", b.name)
		}
		if got := b.text("#flag-live li.flag-critical"); !strings.Contains(got, "陈一") || !strings.Contains(got, "ASQ 急性阳性") {
			t.Errorf("%s: live card = %q, want the person's name and the flag", b.name, got)
		}
		b.wait("the badge", `document.querySelector("#alert-link.alert-critical") !== null && document.title.startsWith("【2 条警报待确认】")`, 10*time.Second)
		b.check("flags with a live alert")
	}
	tabs[1].shots("31-flags-live-alert")
	// Acknowledging from the live card works like any other.
	tabs[1].do("acknowledge the live alert",
		chromedp.Click(chromedp.CSS(`#flag-live li.flag-critical form[action$="/acknowledge"] button`)),
		chromedp.WaitVisible(chromedp.CSS(".notice.ok")))
	if got := tabs[1].text("#flag-queue > li.flag-critical .status"); got != "已确认，待办结" {
		t.Errorf("after acknowledging the live alert its status = %q", got)
	}
}

// wait polls expr in the page until it is true, failing the test after d.
func (b *tab) wait(what, expr string, d time.Duration) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(d))); err != nil {
		b.shot("failure-" + b.name)
		b.t.Fatalf("%s: waiting for %s: %v", b.name, what, err)
	}
}
