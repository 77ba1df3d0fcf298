package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sunpath/sunpath/internal/audit"
	"github.com/sunpath/sunpath/internal/pgtest"
	"github.com/sunpath/sunpath/internal/postgres/migrations"
	"github.com/sunpath/sunpath/internal/sealed"
)

// rolesDB is a database set up as the runbook says: a schema owner that is
// no superuser and may not create roles, and a login role that is only a
// member of sunpath_app (which a superuser created beforehand).
type rolesDB struct {
	owner, login string // role names
	ownerURL     string // the owner, for migrate
	loginURL     string // the login role, for serve and the other commands
	adminURL     string // the test server's superuser on this database
}

func newRolesDB(t *testing.T) rolesDB {
	t.Helper()
	admin := pgtest.AdminURL(t)
	b := make([]byte, 6)
	rand.Read(b)
	sfx := hex.EncodeToString(b)
	r := rolesDB{owner: "sp_owner_" + sfx, login: "sp_login_" + sfx}
	db, pw := "sunpath_roles_"+sfx, hex.EncodeToString(b)+"-pw"
	// sunpath_app is cluster-wide and shared with every other test database;
	// it may be created concurrently by the template's migration.
	sunpathSQL(t, admin, `DO $$ BEGIN
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sunpath_app') THEN CREATE ROLE sunpath_app NOLOGIN; END IF;
		EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$`)
	sunpathSQL(t, admin, `CREATE ROLE `+r.owner+` LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB PASSWORD '`+pw+`'`)
	sunpathSQL(t, admin, `CREATE ROLE `+r.login+` LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB PASSWORD '`+pw+`' IN ROLE sunpath_app`)
	sunpathSQL(t, admin, `CREATE DATABASE `+db+` OWNER `+r.owner)
	t.Cleanup(func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(ctx)
		for _, sql := range []string{`DROP DATABASE IF EXISTS ` + db + ` WITH (FORCE)`, `DROP ROLE IF EXISTS ` + r.login, `DROP ROLE IF EXISTS ` + r.owner} {
			if _, err := conn.Exec(ctx, sql); err != nil {
				t.Errorf("%s: %v", sql, err)
			}
		}
	})
	u, _ := url.Parse(admin)
	u.Path = "/" + db
	r.adminURL = u.String()
	u.User = url.UserPassword(r.owner, pw)
	r.ownerURL = u.String()
	u.User = url.UserPassword(r.login, pw)
	r.loginURL = u.String()
	return r
}

// TestOwnerMigratesLoginServes: `sunpath migrate` runs as a schema owner
// that is no superuser (database.migrate_url), `sunpath serve` as a login
// role granted only sunpath_app; the login role reads and appends to the
// audit trail but cannot disable its triggers, update, delete or truncate it.
func TestOwnerMigratesLoginServes(t *testing.T) {
	t.Parallel()
	r := newRolesDB(t)
	ctx := context.Background()

	// The login role alone cannot migrate; with the owner's URL it does.
	if err := run(ctx, []string{"--database-url", r.loginURL, "migrate"}, strings.NewReader(""), io.Discard, io.Discard); err == nil {
		t.Fatal("migrate as the login role succeeded; it must not own the schema")
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"--database-url", r.loginURL, "--database-migrate-url", r.ownerURL, "migrate"}, strings.NewReader(""), &out, io.Discard); err != nil {
		t.Fatalf("migrate as the non-superuser owner: %v", err)
	}
	if !strings.Contains(out.String(), "schema at version") {
		t.Fatalf("migrate printed %q", out.String())
	}
	admin, err := pgx.Connect(ctx, r.adminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var owner string
	if err := admin.QueryRow(ctx, `SELECT tableowner FROM pg_tables WHERE tablename = 'audit_events'`).Scan(&owner); err != nil || owner != r.owner {
		t.Fatalf("audit_events owned by %q (%v), want %s", owner, err, r.owner)
	}

	// The service works as the login role: ready, writes, seals, verifies.
	key := lastLine(sunpath(t, r.loginURL, "", "apikey", "create", "--name", "roles", "--role", "admin"))
	signing := sealed.NewKey()
	srv := startServer(t, "SUNPATH_DATABASE_URL="+r.loginURL, "SUNPATH_CRYPTO_KEYS=r1:"+sealed.NewKey(),
		"SUNPATH_AUDIT_SIGNING_KEY="+signing, "SUNPATH_JOBS_SEAL_INTERVAL=100ms")
	if resp, err := http.Get(srv.base + "/readyz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz as the login role: %v %v", err, resp)
	}
	for i, req := range []struct{ method, path, body string }{
		{http.MethodPut, "/v1/units/u1", `{"name":"u1"}`},
		{http.MethodPut, "/v1/subjects/L-1", `{"display_name":"x","sex":"male","supervision_type":"parole","unit":"u1"}`},
		{http.MethodPost, "/v1/subjects/L-1/assessments", `{"instrument":"phq9","language":"en","answers":{"phq9_1":1,"phq9_2":1,"phq9_3":0,"phq9_4":0,"phq9_5":0,"phq9_6":0,"phq9_7":0,"phq9_8":0,"phq9_9":0}}`},
	} {
		rq, _ := http.NewRequest(req.method, srv.base+req.path, strings.NewReader(req.body))
		rq.Header.Set("Authorization", "Bearer "+key)
		rq.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(rq)
		if err != nil || resp.StatusCode >= 300 {
			t.Fatalf("step %d as the login role: %v %v", i, err, resp)
		}
		resp.Body.Close()
	}
	waitSealed(t, admin, 3)
	seed, _ := base64.StdEncoding.DecodeString(signing)
	signer, err := audit.NewSigner(seed)
	if err != nil {
		t.Fatal(err)
	}
	pub := base64.StdEncoding.EncodeToString(signer.Public())
	if out := sunpath(t, r.loginURL, "", "audit", "verify", "--key", pub); !strings.Contains(out, "audit trail intact") {
		t.Fatalf("audit verify as the login role: %s", out)
	}

	// What the service's role may not do to the trail. Privileges are
	// checked before the triggers run, so each refusal must come from the
	// missing privilege or ownership, not from the append-only trigger.
	login, err := pgx.Connect(ctx, r.loginURL)
	if err != nil {
		t.Fatal(err)
	}
	defer login.Close(ctx)
	refused := regexp.MustCompile(`permission denied for table|must be owner of (table|relation)`)
	updates := map[string]string{"audit_events": "actor = 'user:mallory'", "audit_chain": "hash = prev_hash",
		"audit_checkpoints": "hash = hash", "audit_keys": "public_key = public_key"}
	for table, set := range updates {
		for _, sql := range []string{
			`ALTER TABLE ` + table + ` DISABLE TRIGGER ALL`,
			`ALTER TABLE ` + table + ` DISABLE TRIGGER USER`,
			`DROP TRIGGER ` + table + `_append_only ON ` + table,
			`DELETE FROM ` + table,
			`UPDATE ` + table + ` SET ` + set,
			`TRUNCATE ` + table,
			`ALTER TABLE ` + table + ` OWNER TO ` + r.login,
		} {
			if table == "audit_keys" && strings.HasPrefix(sql, "DROP TRIGGER") {
				continue // append-only by privilege alone: it has no triggers
			}
			_, err := login.Exec(ctx, sql)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "42501" || !refused.MatchString(pgErr.Message) {
				t.Errorf("as the login role, %s: %v; want permission denied (42501) for lack of privilege or ownership", sql, err)
			}
		}
	}
	var n int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM audit_chain`).Scan(&n); err != nil || n < 3 {
		t.Errorf("audit chain has %d links after the attempts (%v), want at least 3", n, err)
	}
}

// waitSealed waits until nothing is pending and at least n events are
// chained under a checkpoint.
func waitSealed(t *testing.T, conn *pgx.Conn, n int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var pending, chained, head int
		conn.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM audit_pending), (SELECT count(*) FROM audit_chain),
			(SELECT coalesce(max(seq), 0) FROM audit_checkpoints)`).Scan(&pending, &chained, &head)
		if pending == 0 && chained >= n && head == chained {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not sealed after 20s: %d pending, %d chained, checkpoint at %d", pending, chained, head)
		}
	}
}

// TestMigrateNeedsSunpathApp: the role creation in 0002 creates sunpath_app
// when the migrating role may, and otherwise stops with a message that says
// what a database administrator must do (run here on a stand-in name, since
// sunpath_app is shared by every test database of the cluster).
func TestMigrateNeedsSunpathApp(t *testing.T) {
	t.Parallel()
	r := newRolesDB(t)
	src, err := migrations.FS.ReadFile("0002_audit.sql")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile(`(?s)DO \$\$.*?\n\$\$;`).Find(src)
	if block == nil || !bytes.Contains(block, []byte("CREATE ROLE sunpath_app")) {
		t.Fatalf("no role-creating DO block in 0002_audit.sql")
	}
	stand := "sp_app_" + strings.TrimPrefix(r.owner, "sp_owner_")
	sql := strings.ReplaceAll(string(block), "sunpath_app", stand)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, r.ownerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	if err == nil || !strings.Contains(err.Error(), "CREATE ROLE "+stand+" NOLOGIN") {
		t.Fatalf("role creation by an owner without CREATEROLE = %v, want an error telling the administrator to CREATE ROLE %s NOLOGIN", err, stand)
	}
	t.Cleanup(func() { sunpathSQL(t, pgtest.AdminURL(t), `DROP ROLE IF EXISTS `+stand) })
	sunpathSQL(t, pgtest.AdminURL(t), sql) // a superuser creates it
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("role creation when the role exists, as an owner without CREATEROLE: %v", err)
	}
}
