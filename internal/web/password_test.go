package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The change-password page: field errors in the person's language, the
// change ends the other sessions but not this one, the old password stops
// working, and a cross-site form post is refused.
func TestChangePasswordPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	here, elsewhere := e.client(), e.client()
	e.signin(here, "carol")
	e.signin(elsewhere, "carol")
	const newPW = "a new and long passphrase"

	resp, body := e.get(here, "/account/password")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="current_password"`) || !strings.Contains(body, "<h1>修改密码</h1>") {
		t.Fatalf("GET /account/password = %d:\n%.400s", resp.StatusCode, body)
	}
	e.post(here, "/language", url.Values{"lang": {"en"}}).Body.Close()
	if _, en := e.get(here, "/account/password"); !strings.Contains(en, "<h1>Change your password</h1>") {
		t.Error("the page has no English title")
	}
	tests := []struct {
		name       string
		form       url.Values
		wantStatus int
		wantID     string // the field whose error is shown
	}{
		{"wrong current", url.Values{"current_password": {"not my password"}, "new_password": {newPW}, "confirm_password": {newPW}}, http.StatusUnprocessableEntity, "current-error"},
		{"mismatch", url.Values{"current_password": {e.pass}, "new_password": {newPW}, "confirm_password": {newPW + "x"}}, http.StatusUnprocessableEntity, "confirm-error"},
		{"too short", url.Values{"current_password": {e.pass}, "new_password": {"short"}, "confirm_password": {"short"}}, http.StatusUnprocessableEntity, "new-error"},
	}
	for _, tt := range tests {
		resp, err := here.PostForm(e.ts.URL+"/account/password", tt.form)
		if err != nil {
			t.Fatal(err)
		}
		b := readAll(resp)
		if resp.StatusCode != tt.wantStatus || !strings.Contains(b, `id="`+tt.wantID+`"`) {
			t.Errorf("%s: %d, want %d showing %s", tt.name, resp.StatusCode, tt.wantStatus, tt.wantID)
		}
		if strings.Contains(b, "not my password") || strings.Contains(b, newPW) {
			t.Errorf("%s: the page echoes a password", tt.name)
		}
	}

	// A form posted from another site is refused before anything changes.
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/account/password",
		strings.NewReader(url.Values{"current_password": {e.pass}, "new_password": {newPW}, "confirm_password": {newPW}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, err := here.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site POST = %v %v, want 403", resp, err)
	}

	resp = e.post(here, "/account/password", url.Values{"current_password": {e.pass}, "new_password": {newPW}, "confirm_password": {newPW}})
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/account/password?done=1" {
		t.Fatalf("change = %d %s, want 303 to the done notice", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, body := e.get(here, "/account/password?done=1"); resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="password-done"`) {
		t.Errorf("this session after the change = %d, want the page with the done notice", resp.StatusCode)
	}
	if resp, _ := e.get(elsewhere, "/account/password"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the other session after the change = %d, want 303 to sign-in", resp.StatusCode)
	}
	again := e.client()
	if resp := e.post(again, "/signin", url.Values{"username": {"carol"}, "password": {e.pass}}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("signing in with the old password = %d, want 401", resp.StatusCode)
	}
	if resp := e.post(again, "/signin", url.Values{"username": {"carol"}, "password": {newPW}, "next": {"/"}}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("signing in with the new password = %d, want 303", resp.StatusCode)
	}
}
