package httpapi

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/problem"
)

// People change their own password: the current one is checked, the new one
// meets the policy of every password, field errors name the field, an API
// key cannot, the change is audited and ends the person's other sessions but
// not this one.
func TestChangePassword(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	here, elsewhere := e.login("carol"), e.login("carol")
	const newPW = "a new and long passphrase"

	fields := func(client *http.Client, key string, body any, wantStatus int) []string {
		t.Helper()
		var p problem.Problem
		if code := e.call(client, key, http.MethodPost, "/v1/auth/password", body, &p); code != wantStatus {
			t.Fatalf("POST /v1/auth/password %v = %d, want %d (%+v)", body, code, wantStatus, p)
		}
		var out []string
		for _, fe := range p.Errors {
			out = append(out, fe.Field)
		}
		return out
	}
	tests := []struct {
		name string
		body map[string]string
		want string // the fields named, comma-separated
	}{
		{"both missing", map[string]string{}, "current_password,new_password"},
		{"wrong current", map[string]string{"current_password": "not my password", "new_password": newPW}, "current_password"},
		{"new too short", map[string]string{"current_password": e.pass, "new_password": "short"}, "new_password"},
		{"new is the current", map[string]string{"current_password": e.pass, "new_password": e.pass}, "new_password"},
	}
	for _, tt := range tests {
		if got := strings.Join(fields(here, "", tt.body, http.StatusUnprocessableEntity), ","); got != tt.want {
			t.Errorf("%s: fields %q, want %q", tt.name, got, tt.want)
		}
	}
	fields(nil, e.keys[auth.RoleAdmin], map[string]string{"current_password": e.pass, "new_password": newPW}, http.StatusForbidden)
	fields(nil, "", map[string]string{"current_password": e.pass, "new_password": newPW}, http.StatusUnauthorized)

	if code := e.call(here, "", http.MethodPost, "/v1/auth/password", map[string]string{"current_password": e.pass, "new_password": newPW}, nil); code != http.StatusNoContent {
		t.Fatalf("change = %d, want 204", code)
	}
	if code := e.call(here, "", http.MethodGet, "/v1/auth/me", nil, nil); code != http.StatusOK {
		t.Errorf("this session after the change = %d, want 200", code)
	}
	if code := e.call(elsewhere, "", http.MethodGet, "/v1/auth/me", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("the other session after the change = %d, want 401", code)
	}
	if _, _, err := e.auth.Login(ctx, "carol", e.pass, "192.0.2.1"); err == nil {
		t.Error("the old password still signs in")
	}
	if _, _, err := e.auth.Login(ctx, "carol", newPW, "192.0.2.1"); err != nil {
		t.Errorf("the new password does not sign in: %v", err)
	}

	conn, err := pgx.Connect(ctx, e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE action = 'POST auth.password' AND actor = 'user:carol' AND outcome = 'success'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("%d successful password changes audited, want 1", n)
	}
	if logs := e.logs.String(); strings.Contains(logs, newPW) || strings.Contains(logs, "not my password") {
		t.Error("a password reached the logs")
	}
}
