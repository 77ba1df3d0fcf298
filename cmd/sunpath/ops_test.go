package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sunpath/sunpath/internal/pgtest"
	"github.com/sunpath/sunpath/internal/sealed"
)

// TestKeyRotation: values sealed with an old key are re-sealed with the new
// active key by 'sunpath keys rotate', after which the old key can go.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	url := pgtest.NewURL(t)
	key := lastLine(sunpath(t, url, "", "apikey", "create", "--name", "rotate", "--role", "admin"))
	old, next := "old:"+sealed.NewKey(), "new:"+sealed.NewKey()
	srv := startServer(t, "SUNPATH_DATABASE_URL="+url, "SUNPATH_CRYPTO_KEYS="+old)
	call := func(base, method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	call(srv.base, http.MethodPut, "/v1/units/u1", `{"name":"u1"}`)
	call(srv.base, http.MethodPut, "/v1/subjects/K-1", `{"display_name":"王五","sex":"male","supervision_type":"parole","unit":"u1"}`)
	if code, b := call(srv.base, http.MethodPost, "/v1/subjects/K-1/assessments", `{"instrument":"phq9","language":"en","answers":{"phq9_1":1,"phq9_2":0,"phq9_3":0,"phq9_4":0,"phq9_5":0,"phq9_6":0,"phq9_7":0,"phq9_8":0,"phq9_9":0}}`); code != 201 {
		t.Fatalf("assessment = %d %s", code, b)
	}
	if _, m := call(srv.metrics, http.MethodGet, "/metrics", ""); !strings.Contains(m, "sunpath_write_group_units_count 1\n") ||
		!strings.Contains(m, "sunpath_write_groups_lost_total 0\n") {
		t.Errorf("metrics lack the one group transaction of the submission")
	}
	srv.cmd.Process.Kill()

	out := sunpathEnv(t, []string{"SUNPATH_CRYPTO_KEYS=" + next + "," + old, "SUNPATH_CRYPTO_ACTIVE_KEY=new"}, url, "keys", "rotate")
	if !strings.Contains(out, "re-encrypted 3 values") { // display name, profile, answers
		t.Errorf("rotate: %s", out)
	}
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var stale int
	conn.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM subjects WHERE substring(display_name from 3 for 3) <> 'new' OR substring(profile from 3 for 3) <> 'new')
		+ (SELECT count(*) FROM assessments WHERE substring(answers from 3 for 3) <> 'new')`).Scan(&stale)
	if stale != 0 {
		t.Fatalf("%d values still sealed with the old key after rotation (%s)", stale, out)
	}
	// The old key is gone; everything still opens.
	srv = startServer(t, "SUNPATH_DATABASE_URL="+url, "SUNPATH_CRYPTO_KEYS="+next)
	code, b := call(srv.base, http.MethodGet, "/v1/subjects/K-1/assessments?include_answers=true", "")
	if code != 200 || !strings.Contains(b, `"phq9_1":1`) {
		t.Fatalf("after rotation: %d %s", code, b)
	}
	if code, b := call(srv.base, http.MethodGet, "/v1/subjects/K-1", ""); code != 200 || !strings.Contains(b, "王五") {
		t.Fatalf("subject after rotation: %d %s", code, b)
	}
}

// TestWebhookToFailingReceiver: a real HTTP receiver that fails three times
// gets the critical-flag notification once it recovers, signed, with the
// same delivery id on every attempt.
func TestWebhookToFailingReceiver(t *testing.T) {
	t.Parallel()
	const secret = "a webhook secret of enough length"
	var mu sync.Mutex
	attempts := 0
	ids := map[string]int{}
	var payload map[string]any
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		attempts++
		ids[r.Header.Get("Sunpath-Delivery")]++
		ts, sig, _ := strings.Cut(r.Header.Get("Sunpath-Signature"), ",v1=")
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(strings.TrimPrefix(ts, "t=") + "."))
		mac.Write(body)
		if !hmac.Equal([]byte(sig), []byte(hex.EncodeToString(mac.Sum(nil)))) {
			t.Errorf("bad signature on attempt %d", attempts)
		}
		if attempts <= 3 {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		json.Unmarshal(body, &payload)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()

	url := pgtest.NewURL(t)
	key := lastLine(sunpath(t, url, "", "apikey", "create", "--name", "hooks", "--role", "admin"))
	srv := startServer(t, "SUNPATH_DATABASE_URL="+url, "SUNPATH_CRYPTO_KEYS=w1:"+sealed.NewKey(),
		"SUNPATH_WEBHOOKS_ENDPOINTS=desk="+recv.URL, "SUNPATH_WEBHOOKS_SECRET="+secret, "SUNPATH_JOBS_DELIVER_INTERVAL=100ms")
	raiseCriticalFlag(t, srv.base, key)
	// Backoff is 2s, 4s, 8s after the first three failures.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		done := payload != nil
		mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not delivered after 30s (%d attempts)", attempts)
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if attempts != 4 || len(ids) != 1 {
		t.Errorf("%d attempts with %d delivery ids, want 4 attempts of one delivery", attempts, len(ids))
	}
	if payload["level"] != "critical" || payload["code"] != "suicide_risk_acute" || payload["subject_id"] != "H-1" {
		t.Errorf("payload = %v", payload)
	}
	if b, _ := json.Marshal(payload); strings.Contains(string(b), "赵六") {
		t.Error("the webhook carries the person's name")
	}
}

// TestJobsFollowTheWrites: with the polls an hour apart, a critical flag's
// notification is still sent, and its audit events sealed and signed,
// within moments of the commit (the jobs are woken by this replica's
// commits), and the delay is exported. Broken once each: the delivery job
// only polled (not delivered in 5 s); the sealer only polled; the delay
// observed 2 s long.
func TestJobsFollowTheWrites(t *testing.T) {
	t.Parallel()
	got := make(chan time.Time, 4)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- time.Now()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()
	url := pgtest.NewURL(t)
	key := lastLine(sunpath(t, url, "", "apikey", "create", "--name", "hooks", "--role", "admin"))
	srv := startServer(t, "SUNPATH_DATABASE_URL="+url, "SUNPATH_CRYPTO_KEYS=w1:"+sealed.NewKey(),
		"SUNPATH_WEBHOOKS_ENDPOINTS=desk="+recv.URL, "SUNPATH_WEBHOOKS_SECRET=a webhook secret of enough length",
		"SUNPATH_JOBS_DELIVER_INTERVAL=1h", "SUNPATH_JOBS_SEAL_INTERVAL=1h")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// The jobs' first runs, at start, are over once the sealer has signed
	// its first checkpoint (of the API key's event).
	waitFor := func(what, sql string) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			var ok bool
			if err := conn.QueryRow(ctx, sql).Scan(&ok); err != nil {
				t.Fatal(err)
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 5 s", what)
			}
		}
	}
	waitFor("first checkpoint", `SELECT EXISTS (SELECT FROM audit_checkpoints)`)
	var head int64
	if err := conn.QueryRow(ctx, `SELECT max(seq) FROM audit_chain`).Scan(&head); err != nil {
		t.Fatal(err)
	}
	raiseCriticalFlag(t, srv.base, key)
	sent := time.Now()
	select {
	case at := <-got:
		t.Logf("notification sent %v after the commit", at.Sub(sent).Round(time.Millisecond))
	case <-time.After(5 * time.Second):
		t.Fatal("the notification was not sent within 5 s of its commit")
	}
	// The delay is measured from the notification's queueing, and exported.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		req, _ := http.NewRequest(http.MethodGet, srv.metrics+"/metrics", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), "sunpath_webhook_delivery_delay_seconds_bucket{le=\"1\"} 1\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no delivery within 1 s in sunpath_webhook_delivery_delay_seconds:\n%s", grepLines(string(body), "sunpath_webhook_delivery_delay"))
		}
	}
	waitFor("sealed", fmt.Sprintf(`SELECT NOT EXISTS (SELECT FROM audit_pending) AND (SELECT max(seq) FROM audit_chain) > %d`, head))
	// Signed only once an interval: the head sealed after the start waits
	// for the next (an hour away here).
	var checkpoints int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM audit_checkpoints`).Scan(&checkpoints); err != nil || checkpoints != 1 {
		t.Errorf("%d checkpoints (%v), want the first run's one", checkpoints, err)
	}
}

// raiseCriticalFlag registers unit u1 and person H-1 (named 赵六) and submits
// an ASQ that raises the critical suicide_risk_acute flag.
func raiseCriticalFlag(t *testing.T, base, key string) {
	t.Helper()
	for _, rq := range []struct{ m, p, b string }{
		{http.MethodPut, "/v1/units/u1", `{"name":"u1"}`},
		{http.MethodPut, "/v1/subjects/H-1", `{"display_name":"赵六","sex":"female","supervision_type":"probation","unit":"u1"}`},
		{http.MethodPost, "/v1/subjects/H-1/assessments", `{"instrument":"asq","language":"en","answers":{"asq_1":"yes","asq_2":"no","asq_3":"no","asq_4":"no","asq_5":"yes"}}`},
	} {
		req, _ := http.NewRequest(rq.m, base+rq.p, strings.NewReader(rq.b))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %v %v", rq.m, rq.p, err, resp)
		}
		resp.Body.Close()
	}
}

// grepLines is the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
