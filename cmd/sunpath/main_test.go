package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sunpath/sunpath/internal/pgtest"
	"github.com/sunpath/sunpath/internal/sealed"
)

// TestMain lets a test start this test binary as the real sunpath process.
func TestMain(m *testing.M) {
	if os.Getenv("SUNPATH_TEST_AS_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// sunpath runs a subcommand in-process and returns its stdout.
func sunpath(t *testing.T, dbURL, stdin string, args ...string) string {
	t.Helper()
	envMu.RLock()
	defer envMu.RUnlock()
	return runCLI(t, dbURL, stdin, args...)
}

// envMu orders the tests that change the process environment for one
// in-process command (sunpathEnv) against everything that reads it while
// tests run in parallel: in-process commands and servers started as child
// processes (environ). Without it a server started by one test could
// inherit another test's crypto keys.
var envMu sync.RWMutex

// environ is os.Environ() read under envMu.
func environ() []string {
	envMu.RLock()
	defer envMu.RUnlock()
	return os.Environ()
}

func runCLI(t *testing.T, dbURL, stdin string, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := run(context.Background(), append([]string{"--database-url", dbURL}, args...), strings.NewReader(stdin), &out, &errOut); err != nil {
		t.Fatalf("sunpath %v: %v\n%s", args, err, errOut.String())
	}
	return out.String()
}

func TestServeEndToEnd(t *testing.T) {
	t.Parallel()
	url := pgtest.NewURL(t)
	if out := sunpath(t, url, "", "migrate"); !strings.Contains(out, "schema at version") {
		t.Fatalf("migrate printed %q", out)
	}

	cmd := exec.Command(os.Args[0], "serve")
	cmd.Env = append(environ(), "SUNPATH_TEST_AS_MAIN=1", "SUNPATH_DATABASE_URL="+url, "SUNPATH_HTTP_ADDR=127.0.0.1:0",
		"SUNPATH_METRICS_ADDR=127.0.0.1:0", "SUNPATH_MODELS_DIR=../../models", "SUNPATH_CRYPTO_KEYS=e2e:"+sealed.NewKey())
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })

	var base, adminPW, metricsBase, changeAt string
	sc := bufio.NewScanner(stdout)
	addrRE := regexp.MustCompile(`listening on (http://\S+)`)
	pwRE := regexp.MustCompile(`administrator 'admin' with password (\S+)`)
	metricsRE := regexp.MustCompile(`metrics on (http://\S+)/metrics`)
	for base == "" && sc.Scan() {
		if m := metricsRE.FindStringSubmatch(sc.Text()); m != nil {
			metricsBase = m[1]
		}
		if m := pwRE.FindStringSubmatch(sc.Text()); m != nil {
			adminPW = m[1]
		}
		if strings.Contains(sc.Text(), "change it at") {
			changeAt = sc.Text()
		}
		if m := addrRE.FindStringSubmatch(sc.Text()); m != nil {
			base = m[1]
		}
	}
	if base == "" {
		t.Fatalf("serve printed no address; stderr:\n%s", stderr.String())
	}
	go io.Copy(io.Discard, stdout)
	if adminPW == "" {
		t.Fatal("first run printed no admin credentials")
	}
	if !strings.Contains(changeAt, base+"/account/password") {
		t.Errorf("first run names no page to change the password on: %q", changeAt)
	}

	get := func(path, key string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return resp
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp := get("/readyz", "")
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz = %d after 15s", resp.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}

	resp := get("/v1/users", "")
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("anonymous GET /v1/users = %d %s, want 401 problem+json", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	resp.Body.Close()

	// The printed admin password works.
	login, err := http.Post(base+"/v1/auth/login", "application/json", strings.NewReader(`{"username":"admin","password":"`+adminPW+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	login.Body.Close()
	if login.StatusCode != http.StatusOK {
		t.Errorf("login with the printed admin password = %d", login.StatusCode)
	}

	// Administrative commands against the same database.
	sunpath(t, url, "", "unit", "create", "--code", "west", "--name", "West district", "--agency", "hz")
	sunpath(t, url, "a long enough password\n", "user", "create", "--username", "carol", "--role", "counselor", "--unit", "west")
	out := sunpath(t, url, "", "apikey", "create", "--name", "case system", "--role", "case_system", "--agency", "hz")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	key := lines[len(lines)-1]
	resp = get("/v1/auth/me", key)
	var me struct{ Kind, Name, Role string }
	json.NewDecoder(resp.Body).Decode(&me)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || me.Role != "case_system" || me.Kind != "api_key" {
		t.Errorf("GET /v1/auth/me with the new key = %d %+v", resp.StatusCode, me)
	}
	if list := sunpath(t, url, "", "apikey", "list"); strings.Contains(list, key) || !strings.Contains(list, "case system") {
		t.Errorf("apikey list shows the secret or misses the key:\n%s", list)
	}

	if resp = get("/metrics", ""); resp.StatusCode == http.StatusOK {
		t.Error("GET /metrics on the service port = 200, want it only on metrics.addr")
	}
	resp.Body.Close()
	resp, err = http.Get(metricsBase + "/metrics")
	if err != nil {
		t.Fatalf("metrics listener (%q): %v", metricsBase, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(b, []byte("sunpath_http_request_duration_seconds_bucket")) || !bytes.Contains(b, []byte("sunpath_db_pool_connections")) {
		t.Error("/metrics lacks sunpath_ series or the request histogram")
	}

	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10s after SIGTERM")
	}
	t.Logf("exited 0 %s after SIGTERM", time.Since(start).Round(time.Millisecond))
	if strings.Contains(stderr.String(), "a long enough password") {
		t.Error("a password reached the logs")
	}
}

func TestServeRefusesUnsafeDatabase(t *testing.T) {
	t.Parallel()
	url := pgtest.NewURL(t)
	// synchronous_commit can be set per database; fsync cannot, but both go
	// through the same check.
	db := strings.TrimPrefix(url[strings.LastIndex(url, "/"):], "/")
	db = strings.SplitN(db, "?", 2)[0]
	sunpathSQL(t, url, "ALTER DATABASE "+db+" SET synchronous_commit = off")
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfgFile := filepath.Join(t.TempDir(), "sunpath.yaml")
	os.WriteFile(cfgFile, []byte("models:\n  dir: ../../models\ncrypto:\n  keys: t:"+sealed.NewKey()+"\n"), 0o600)
	err := run(ctx, []string{"serve", "--config", cfgFile, "--database-url", url, "--http-addr", "127.0.0.1:0"}, strings.NewReader(""), &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "synchronous_commit=off") {
		t.Fatalf("serve on a synchronous_commit=off database: err = %v, want a refusal naming it", err)
	}
}
