package main

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sunpath/sunpath/internal/pgtest"
	"github.com/sunpath/sunpath/internal/sealed"
)

// TestCLIAdministrationIsAudited: every administrative command writes one
// audit event, actor cli:<os user>, role cli, with its resource.
func TestCLIAdministrationIsAudited(t *testing.T) {
	t.Parallel()
	url := pgtest.NewURL(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	events := func(action string) (n int, resource string) {
		t.Helper()
		if err := conn.QueryRow(ctx, `SELECT count(*), coalesce(max(resource_id), '') FROM audit_events
			WHERE action = $1 AND role = 'cli' AND actor LIKE 'cli:_%' AND outcome = 'success'`, action).Scan(&n, &resource); err != nil {
			t.Fatal(err)
		}
		return n, resource
	}
	const pw = "correct horse battery staple\n"
	steps := []struct {
		action, resource string
		run              func()
	}{
		{"user.create", "root2", func() { sunpath(t, url, pw, "user", "create", "--username", "root2", "--role", "admin") }},
		{"user.set-role", "root2", func() { sunpath(t, url, "", "user", "set-role", "--username", "root2", "--role", "auditor") }},
		{"user.reset-password", "root2", func() { sunpath(t, url, pw, "user", "reset-password", "--username", "root2") }},
		{"user.disable", "root2", func() { sunpath(t, url, "", "user", "disable", "--username", "root2") }},
		{"user.enable", "root2", func() { sunpath(t, url, "", "user", "enable", "--username", "root2") }},
		{"user.unlock", "root2", func() { sunpath(t, url, "", "user", "unlock", "--username", "root2") }},
		{"apikey.create", "", func() {
			sunpath(t, url, "", "apikey", "create", "--name", "cms", "--role", "case_system", "--agency", "hz")
		}},
		{"apikey.revoke", "", func() {
			var id string
			conn.QueryRow(ctx, `SELECT id::text FROM api_keys WHERE name = 'cms'`).Scan(&id)
			sunpath(t, url, "", "apikey", "revoke", "--id", id)
		}},
		{"keys.rotate", "r1", func() {
			sunpathEnv(t, []string{"SUNPATH_CRYPTO_KEYS=r1:" + sealed.NewKey(), "SUNPATH_CRYPTO_ACTIVE_KEY=r1"}, url, "keys", "rotate")
		}},
	}
	for _, s := range steps {
		s.run()
		n, res := events(s.action)
		if n != 1 {
			t.Errorf("%s wrote %d audit events, want 1", s.action, n)
		}
		if s.resource != "" && res != s.resource {
			t.Errorf("%s audited resource %q, want %q", s.action, res, s.resource)
		}
		if strings.HasPrefix(s.action, "apikey.") && res == "" {
			t.Errorf("%s audited no key id", s.action)
		}
	}
}
