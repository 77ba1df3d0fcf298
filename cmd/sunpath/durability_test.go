package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sunpath/sunpath/internal/sealed"
)

// server is a sunpath serve subprocess (this test binary run as main).
type server struct {
	cmd     *exec.Cmd
	base    string
	metrics string // the metrics listener's base URL
}

func startServer(t *testing.T, env ...string) *server {
	t.Helper()
	return startServerBinary(t, os.Args[0], env...)
}

// startServerBinary starts bin (this test binary, or a built sunpath) as
// `sunpath serve`.
func startServerBinary(t *testing.T, bin string, env ...string) *server {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(environ(), append([]string{"SUNPATH_TEST_AS_MAIN=1", "SUNPATH_HTTP_ADDR=127.0.0.1:0", "SUNPATH_METRICS_ADDR=127.0.0.1:0", "SUNPATH_MODELS_DIR=../../models", "SUNPATH_LOG_LEVEL=warn"}, env...)...)
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	re := regexp.MustCompile(`listening on (http://\S+)`)
	metricsRE := regexp.MustCompile(`metrics on (http://\S+)/metrics`)
	var metrics string
	for sc.Scan() {
		if m := metricsRE.FindStringSubmatch(sc.Text()); m != nil {
			metrics = m[1]
		}
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			go io.Copy(io.Discard, stdout)
			return &server{cmd: cmd, base: m[1], metrics: metrics}
		}
	}
	t.Fatalf("server did not start: %s", stderr.String())
	return nil
}

// TestNoLostAcknowledgedWrite: clients submit assessments while the server
// is killed with SIGKILL and PostgreSQL crashes and restarts, several times;
// they retry with the same Idempotency-Key until they get an answer. Every
// acknowledged assessment is stored exactly once, with its audit event.
func TestNoLostAcknowledgedWrite(t *testing.T) {
	t.Parallel()
	// Not t.TempDir(): its parent is private to root, and the cluster runs
	// as an unprivileged user.
	dir, err := os.MkdirTemp("", "sunpath-durability-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	pgdir := filepath.Join(dir, "pg")
	script := "../../scripts/localpg.sh"
	out, err := exec.Command(script, "start", pgdir).Output()
	if err != nil {
		t.Fatalf("start a dedicated PostgreSQL: %v", err)
	}
	url := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command(script, "stop", pgdir).Run() }) // runs before RemoveAll

	sunpath(t, url, "", "migrate")
	key := lastLine(sunpath(t, url, "", "apikey", "create", "--name", "durability", "--role", "admin"))
	env := []string{"SUNPATH_DATABASE_URL=" + url, "SUNPATH_CRYPTO_KEYS=d1:" + sealed.NewKey()}
	srv := startServer(t, env...)
	put := func(path, body string) int {
		req, _ := http.NewRequest(http.MethodPut, srv.base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if put("/v1/units/u1", `{"name":"unit one"}`) != 201 || put("/v1/subjects/D-1", `{"display_name":"x","sex":"male","supervision_type":"parole","unit":"u1"}`) != 201 {
		t.Fatal("set-up failed")
	}

	var mu sync.Mutex
	base := srv.base
	acked := map[string]string{} // idempotency key → assessment id
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	const clients, each = 6, 15
	for cl := 0; cl < clients; cl++ {
		wg.Add(1)
		go func(cl int) {
			defer wg.Done()
			client := &http.Client{Timeout: 5 * time.Second}
			for i := 0; i < each; i++ {
				k := fmt.Sprintf("c%d-%d", cl, i)
				body := fmt.Sprintf(`{"instrument":"phq9","language":"en","answers":{"phq9_1":%d,"phq9_2":0,"phq9_3":0,"phq9_4":0,"phq9_5":0,"phq9_6":0,"phq9_7":0,"phq9_8":0,"phq9_9":0}}`, i%4)
				for attempt := 0; ; attempt++ {
					if attempt > 400 {
						t.Errorf("%s: no answer after 400 attempts", k)
						return
					}
					mu.Lock()
					b := base
					mu.Unlock()
					req, _ := http.NewRequest(http.MethodPost, b+"/v1/subjects/D-1/assessments", strings.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+key)
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Idempotency-Key", k)
					resp, err := client.Do(req)
					if err != nil {
						time.Sleep(50 * time.Millisecond)
						continue
					}
					rb, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode == http.StatusCreated {
						id := regexp.MustCompile(`"id":"([0-9a-f-]{36})"`).FindSubmatch(rb)
						mu.Lock()
						if prev, ok := acked[k]; ok && prev != string(id[1]) {
							t.Errorf("%s acknowledged twice with different ids", k)
						}
						acked[k] = string(id[1])
						mu.Unlock()
						break
					}
					if resp.StatusCode < 500 {
						t.Errorf("%s: unexpected %d %s", k, resp.StatusCode, rb)
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		}(cl)
	}
	// Chaos: kill the server, crash the database, start the server again.
	for round := 0; round < 3; round++ {
		time.Sleep(700 * time.Millisecond)
		srv.cmd.Process.Kill()
		srv.cmd.Wait()
		if out, err := exec.Command(script, "crash", pgdir).CombinedOutput(); err != nil {
			t.Fatalf("crash PostgreSQL: %v\n%s", err, out)
		}
		srv = startServer(t, env...)
		mu.Lock()
		base = srv.base
		mu.Unlock()
	}
	wg.Wait()
	stop()
	_ = ctx

	if len(acked) != clients*each {
		t.Fatalf("%d of %d submissions acknowledged", len(acked), clients*each)
	}
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var rows, withAudit, orphans int
	err = conn.QueryRow(context.Background(), `SELECT count(*),
		count(*) FILTER (WHERE EXISTS (SELECT 1 FROM audit_events e WHERE e.action = 'assessment.create' AND e.resource_id = a.id::text)),
		(SELECT count(*) FROM audit_events e WHERE e.action = 'assessment.create' AND e.outcome = 'success'
		   AND NOT EXISTS (SELECT 1 FROM assessments x WHERE x.id::text = e.resource_id))
		FROM assessments a`).Scan(&rows, &withAudit, &orphans)
	if err != nil {
		t.Fatal(err)
	}
	if rows != len(acked) || withAudit != rows || orphans != 0 {
		t.Fatalf("stored %d assessments (%d with their audit event, %d events without assessment) for %d acknowledged", rows, withAudit, orphans, len(acked))
	}
	for k, id := range acked {
		var n int
		conn.QueryRow(context.Background(), `SELECT count(*) FROM assessments WHERE id::text = $1`, id).Scan(&n)
		if n != 1 {
			t.Fatalf("acknowledged %s (%s) stored %d times", k, id, n)
		}
	}
	t.Logf("%d acknowledged assessments survived 3 server kills and 3 database crashes, each once with its audit event", len(acked))
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
