package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sunpath/sunpath/internal/audit"
)

// TestStaffNames: an admin names carol's account on the users page
// (audited, sealed at rest); pages then name her, not her account: in the
// header and where she recorded an outcome. A name too long is refused,
// and a counselor may not name anyone.
func TestStaffNames(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putSubject("SN-1", "west", "carol", "测试", nil)
	carol := e.client()
	e.signin(carol, "carol")
	today := time.Now().Format("2006-01-02")
	e.post(carol, "/subjects/SN-1/outcomes", url.Values{"kind": {"warning"}, "occurred_on": {today}})
	if _, body := e.get(carol, "/subjects/SN-1/outcomes"); !strings.Contains(body, "<td>carol</td>") {
		t.Fatal("before naming: the outcome is not shown as carol's")
	}
	if resp := e.post(carol, "/admin/users/carol/name", url.Values{"display_name": {"王丽"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a counselor naming an account = %d, want 403", resp.StatusCode)
	}

	admin := e.client()
	e.signin(admin, "admin")
	resp := e.post(admin, "/admin/users/carol/name", url.Values{"display_name": {"王丽"}})
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "done=name") {
		t.Fatalf("naming carol = %d %s, want 303 to done=name", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp := e.post(admin, "/admin/users/carol/name", url.Values{"display_name": {strings.Repeat("长", 65)}}); !strings.Contains(resp.Header.Get("Location"), "error=name") {
		t.Errorf("a 65-character name: %s, want error=name", resp.Header.Get("Location"))
	}
	if !hasEvent(t, e, "user:admin", "user.name.set", audit.Success) {
		t.Error("no audit event of the naming")
	}
	if _, body := e.get(admin, "/admin/users"); !strings.Contains(body, "王丽") {
		t.Error("the users page does not show carol's name")
	}

	// The naming dropped the names this server remembered.
	_, body := e.get(carol, "/subjects/SN-1/outcomes")
	if !strings.Contains(body, "<td>王丽</td>") || strings.Contains(body, "<td>carol</td>") {
		t.Error("the outcome is not shown as 王丽's")
	}
	if !strings.Contains(body, "王丽 · ") {
		t.Error("the header does not name the signed-in person")
	}
}
