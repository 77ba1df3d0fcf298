package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sunpath/sunpath/internal/pgtest"
	"github.com/sunpath/sunpath/internal/sealed"
)

// TestTwoReplicas runs two server processes against one database: a session
// opened on one works on the other, the same Idempotency-Key sent to both at
// once makes one assessment, and the background jobs running on both escalate
// each overdue flag exactly once and seal one intact audit chain.
func TestTwoReplicas(t *testing.T) {
	t.Parallel()
	url := pgtest.NewURL(t)
	key := lastLine(sunpath(t, url, "", "apikey", "create", "--name", "replicas", "--role", "admin"))
	sunpath(t, url, "", "unit", "create", "--code", "u1", "--name", "u1")
	sunpath(t, url, "a long enough password\n", "user", "create", "--username", "carol", "--role", "counselor", "--unit", "u1")
	signing := sealed.NewKey()
	env := []string{"SUNPATH_DATABASE_URL=" + url, "SUNPATH_CRYPTO_KEYS=r1:" + sealed.NewKey(), "SUNPATH_AUDIT_SIGNING_KEY=" + signing,
		"SUNPATH_FLAGS_DEADLINE_CRITICAL=1s", "SUNPATH_JOBS_ESCALATE_INTERVAL=100ms", "SUNPATH_JOBS_SEAL_INTERVAL=100ms"}
	a, b := startServer(t, env...), startServer(t, env...)

	do := func(client *http.Client, base, method, path, body string, headers ...string) (int, []byte) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if client == nil {
			client = http.DefaultClient
			req.Header.Set("Authorization", "Bearer "+key)
		}
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		rb, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, rb
	}
	do(nil, a.base, http.MethodPut, "/v1/units/u1", `{"name":"u1"}`)
	if code, rb := do(nil, b.base, http.MethodPut, "/v1/subjects/R-1", `{"display_name":"x","sex":"female","supervision_type":"probation","unit":"u1","counselor":"carol"}`); code != http.StatusCreated {
		t.Fatalf("PUT subject on B = %d %s", code, rb)
	}

	// A session opened on A is honoured by B, and logging out on B ends it on A.
	jar, _ := cookiejar.New(nil)
	person := &http.Client{Jar: jar}
	if code, _ := do(person, a.base, http.MethodPost, "/v1/auth/login", `{"username":"carol","password":"a long enough password"}`); code != http.StatusOK {
		t.Fatalf("login on A = %d", code)
	}
	// The cookie is for A's host:port; send it to B by hand.
	u, _ := http.NewRequest(http.MethodGet, a.base, nil)
	var cookie string
	for _, c := range jar.Cookies(u.URL) {
		cookie = c.Name + "=" + c.Value
	}
	if code, _ := do(&http.Client{}, b.base, http.MethodGet, "/v1/auth/me", "", "Cookie", cookie); code != http.StatusOK {
		t.Errorf("A's session on B = %d, want 200", code)
	}
	do(&http.Client{}, b.base, http.MethodPost, "/v1/auth/logout", "", "Cookie", cookie)
	if code, _ := do(&http.Client{}, a.base, http.MethodGet, "/v1/auth/me", "", "Cookie", cookie); code != http.StatusUnauthorized {
		t.Errorf("session on A after logout on B = %d, want 401", code)
	}

	// One key, one body, twenty requests split across both replicas.
	body := `{"instrument":"asq","language":"en","answers":{"asq_1":"yes","asq_2":"no","asq_3":"no","asq_4":"no","asq_5":"yes"}}`
	var wg sync.WaitGroup
	bodies := make([]string, 20)
	for i := range bodies {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			base := a.base
			if i%2 == 1 {
				base = b.base
			}
			code, rb := do(nil, base, http.MethodPost, "/v1/subjects/R-1/assessments", body, "Idempotency-Key", "both-replicas")
			if code != http.StatusCreated {
				t.Errorf("request %d = %d %s", i, code, rb)
			}
			bodies[i] = string(rb)
		}(i)
	}
	wg.Wait()
	for i := range bodies {
		if bodies[i] != bodies[0] {
			t.Fatalf("replica answers differ:\n%s\n%s", bodies[0], bodies[i])
		}
	}
	// More critical flags, so the escalators have work to race for.
	for i := 0; i < 9; i++ {
		base := []string{a.base, b.base}[i%2]
		if code, rb := do(nil, base, http.MethodPost, "/v1/subjects/R-1/assessments", body); code != http.StatusCreated {
			t.Fatalf("assessment = %d %s", code, rb)
		}
	}

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var assessments int
	conn.QueryRow(ctx, `SELECT count(*) FROM assessments`).Scan(&assessments)
	if assessments != 10 {
		t.Fatalf("%d assessments, want 10 (one for the twenty duplicates)", assessments)
	}
	// Deadline 1s: first escalation after 1s, second after 2s.
	deadline := time.Now().Add(20 * time.Second)
	for {
		var level2 int
		conn.QueryRow(ctx, `SELECT count(*) FROM flags WHERE escalation_level = 2`).Scan(&level2)
		if level2 == 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of 10 flags reached the second escalation", level2)
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // let both escalators run again
	var events, distinct int
	conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT resource_id || detail::text) FROM audit_events WHERE action = 'flag.escalate'`).Scan(&events, &distinct)
	if events != 20 || distinct != 20 {
		t.Errorf("%d escalation events (%d distinct), want 20: each flag escalated exactly once per level", events, distinct)
	}
	var outbox int
	conn.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&outbox)

	// Both replicas sealed into one chain; it verifies against the signing key.
	time.Sleep(300 * time.Millisecond)
	pub := lastLine(sunpathEnv(t, []string{"SUNPATH_AUDIT_SIGNING_KEY=" + signing}, url, "audit", "public-key"))
	out := sunpath(t, url, "", "audit", "verify", "--key", pub)
	if !strings.Contains(out, "audit trail intact") {
		t.Errorf("audit verify: %s", out)
	}
}

// sunpathEnv runs a subcommand in-process with extra environment.
func sunpathEnv(t *testing.T, env []string, dbURL string, args ...string) string {
	t.Helper()
	envMu.Lock()
	defer envMu.Unlock()
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		old, had := os.LookupEnv(k)
		os.Setenv(k, v)
		defer func() {
			if had {
				os.Setenv(k, old)
			} else {
				os.Unsetenv(k)
			}
		}()
	}
	return runCLI(t, dbURL, "", args...)
}

// TestBackupRestoreVerify: a pg_dump of a database with an audit trail,
// restored into a new database, verifies; the same dump with one event
// edited does not, and names it.
func TestBackupRestoreVerify(t *testing.T) {
	t.Parallel()
	url := pgtest.NewURL(t)
	key := lastLine(sunpath(t, url, "", "apikey", "create", "--name", "backup", "--role", "admin"))
	srv := startServer(t, "SUNPATH_DATABASE_URL="+url, "SUNPATH_CRYPTO_KEYS=b1:"+sealed.NewKey(), "SUNPATH_JOBS_SEAL_INTERVAL=100ms")
	for i, req := range []struct{ method, path, body string }{
		{http.MethodPut, "/v1/units/u1", `{"name":"u1"}`},
		{http.MethodPut, "/v1/subjects/B-1", `{"display_name":"x","sex":"male","supervision_type":"parole","unit":"u1"}`},
		{http.MethodPost, "/v1/subjects/B-1/assessments", `{"instrument":"phq9","language":"en","answers":{"phq9_1":1,"phq9_2":1,"phq9_3":0,"phq9_4":0,"phq9_5":0,"phq9_6":0,"phq9_7":0,"phq9_8":0,"phq9_9":0}}`},
	} {
		r, _ := http.NewRequest(req.method, srv.base+req.path, bytes.NewReader([]byte(req.body)))
		r.Header.Set("Authorization", "Bearer "+key)
		r.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(r)
		if err != nil || resp.StatusCode >= 300 {
			t.Fatalf("step %d: %v %v", i, err, resp)
		}
		resp.Body.Close()
	}
	// Wait until the sealer has chained the events (it runs every 100 ms).
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var pending, chained int
		conn.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM audit_pending), (SELECT count(*) FROM audit_chain)`).Scan(&pending, &chained)
		if pending == 0 && chained >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not sealed after 20s: %d pending, %d chained", pending, chained)
		}
	}
	conn.Close(context.Background())
	srv.cmd.Process.Kill()

	bin := pgBin(t)
	dump := filepath.Join(t.TempDir(), "sunpath.dump")
	if out, err := exec.Command(filepath.Join(bin, "pg_dump"), "--format=custom", "--file="+dump, url).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}
	restored := pgtest.NewEmptyURL(t)
	if out, err := exec.Command(filepath.Join(bin, "pg_restore"), "--no-owner", "--exit-on-error", "--dbname="+restored, dump).CombinedOutput(); err != nil {
		t.Fatalf("pg_restore: %v\n%s", err, out)
	}
	out := sunpathEnv(t, nil, restored, "audit", "verify", "--trust-database-keys")
	if !strings.Contains(out, "audit trail intact") {
		t.Fatalf("verify after restore: %s", out)
	}
	// Tamper with the restored copy: verification fails naming the event.
	conn, err = pgx.Connect(context.Background(), restored)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var id int64
	conn.QueryRow(context.Background(), `SELECT event_id FROM audit_chain ORDER BY seq LIMIT 1 OFFSET 1`).Scan(&id)
	if _, err := conn.Exec(context.Background(), fmt.Sprintf(`ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only;
		UPDATE audit_events SET actor = 'user:mallory' WHERE id = %d`, id)); err != nil {
		t.Fatal(err)
	}
	var errOut bytes.Buffer
	err = run(context.Background(), []string{"--database-url", restored, "audit", "verify", "--trust-database-keys"}, strings.NewReader(""), io.Discard, &errOut)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("first bad event %d", id)) {
		t.Fatalf("verify of an edited trail = %v, want a failure naming event %d", err, id)
	}
}

// pgBin finds the PostgreSQL client binaries the local cluster uses.
func pgBin(t *testing.T) string {
	t.Helper()
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_dump")
	if len(matches) > 0 {
		return filepath.Dir(matches[len(matches)-1])
	}
	p, err := exec.LookPath("pg_dump")
	if err != nil {
		t.Fatal("pg_dump not found: PostgreSQL's client binaries come with the server that scripts/localpg.sh installs")
	}
	return filepath.Dir(p)
}
