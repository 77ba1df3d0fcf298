package web

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserKioskASQ: a person answering the ASQ alone on a phone reads
// their own instructions, never the interviewer's, is offered no "skip"
// under a suicide question, and gets large touch targets.
func TestBrowserKioskASQ(t *testing.T) {
	t.Parallel()
	ctx := browser(t, "zh-CN")
	e := newEnv(t)
	e.putSubject("K-9", "west", "carol", "何九", nil)
	staff := newTab(t, ctx, e.ts.URL, "staff")
	staff.signin("carol", e.pass)
	staff.do("start a kiosk ASQ",
		chromedp.Navigate(e.ts.URL+"/subjects/K-9"),
		chromedp.WaitVisible(chromedp.CSS("#screen")),
		chromedp.Click(chromedp.CSS("#inst-asq")),
		chromedp.Click(chromedp.CSS("#lang-zh")),
		chromedp.Click(chromedp.CSS("#mode-kiosk")),
		chromedp.Click(chromedp.CSS("#start-screening")),
		chromedp.WaitVisible(chromedp.CSS("#kiosk-link")),
	)
	link := staff.text("#kiosk-link")
	k := newTab(t, ctx, e.ts.URL, "kiosk")
	k.do("phone", chromedp.EmulateViewport(390, 844))
	k.do("open the kiosk", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("form.question")))
	if got := k.text(".instructions"); strings.Contains(got, "请向对方") || !strings.Contains(got, "你自己") {
		t.Errorf("kiosk instructions = %q, want the person's own", got)
	}
	if k.eval(`document.getElementById("next") !== null`) {
		t.Error("a skip link is offered under an ASQ question")
	}
	if !k.eval(`[...document.querySelectorAll("button.option")].every(b => b.getBoundingClientRect().height >= 48 && b.getBoundingClientRect().width >= 120)`) {
		t.Error("the answer buttons are smaller than 48 px high on a phone")
	}
	k.check("kiosk ASQ (phone)")
	k.shot("41-kiosk-asq-phone")
	// Refusing is an explicit answer (the ASQ scores it as yes), offered
	// on every question, instead of a skip.
	if got := k.text(`form.question button.option[value="2"]`); got != "不愿回答" {
		t.Errorf("the refusal option reads %q, want 不愿回答", got)
	}
	k.answer("asq_1", 0)
	if k.eval(`document.getElementById("next") !== null`) {
		t.Error("a skip link is offered under ASQ question 2")
	}
	k.answer("asq_2", 2)
	k.answer("asq_3", 0)
	k.answer("asq_4", 0)
	if !k.eval(`document.querySelector('form.question input[name="item"][value="asq_5"]') !== null && document.querySelector('form.question button.option[value="2"]') !== null`) {
		t.Errorf("a declined question 2 does not lead to question 5 with its refusal option (at %s)", k.url())
	}
	// Staff keep their instructions.
	staff.do("staff ASQ",
		chromedp.Navigate(e.ts.URL+"/subjects/K-9"),
		chromedp.WaitVisible(chromedp.CSS("#screen")),
		chromedp.Click(chromedp.CSS("#inst-asq")),
		chromedp.Click(chromedp.CSS("#mode-step")),
		chromedp.Click(chromedp.CSS("#start-screening")),
		chromedp.WaitVisible(chromedp.CSS("form.question")),
	)
	if got := staff.text(".instructions"); !strings.Contains(got, "请向对方") {
		t.Errorf("staff instructions = %q, want the interviewer's", got)
	}
}
