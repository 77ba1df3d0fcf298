package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sunpath/sunpath/internal/audit"
)

// TestOutcomesPage records a supervision outcome from the form and lists
// it, audited; a refused form names the field; another unit's person is
// not found. Broken once: recordOutcome that redirected without calling the
// use case (the list stayed empty, no audit event).
func TestOutcomesPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putSubject("OC-1", "west", "carol", "测试", nil)
	c := e.client()
	e.signin(c, "carol")
	resp, body := e.get(c, "/subjects/OC-1/outcomes")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "尚无记录") || !strings.Contains(body, "撤销缓刑/假释") {
		t.Fatalf("outcomes page = %d, want the empty list and the form in Chinese", resp.StatusCode)
	}
	if _, body := e.get(c, "/subjects/OC-1"); !strings.Contains(body, `href="/subjects/OC-1/outcomes"`) {
		t.Error("the subject page does not link to the outcomes")
	}
	today := time.Now().Format("2006-01-02")
	resp = e.post(c, "/subjects/OC-1/outcomes", url.Values{"kind": {"revocation"}, "occurred_on": {today}, "note": {"收监执行"}})
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "done=recorded") {
		t.Fatalf("record outcome = %d %s, want 303 to done=recorded", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, body = e.get(c, "/subjects/OC-1/outcomes?done=recorded")
	for _, want := range []string{"已记录。", "<td>" + today + "</td>", "<td>收监执行</td>", "<td>carol</td>"} {
		if !strings.Contains(body, want) {
			t.Errorf("outcomes page lacks %q", want)
		}
	}
	if !hasEvent(t, e, "user:carol", "outcome.record", audit.Success) {
		t.Error("no audit event of the recorded outcome")
	}
	form := url.Values{"kind": {"revocation"}, "occurred_on": {"2999-01-01"}}
	r, err := c.PostForm(e.ts.URL+"/subjects/OC-1/outcomes", form)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var b strings.Builder
	buf := make([]byte, 1<<16)
	for {
		n, err := r.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if r.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(b.String(), "发生日期") {
		t.Errorf("a date in the future = %d, want 422 naming the date", r.StatusCode)
	}
	other := e.client()
	e.signin(other, "dave")
	if resp, _ := e.get(other, "/subjects/OC-1/outcomes"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("another unit's person's outcomes = %d, want 404", resp.StatusCode)
	}
}
