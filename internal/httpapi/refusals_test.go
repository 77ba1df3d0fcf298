package httpapi

import (
	"context"
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

	"github.com/sunpath/sunpath/internal/auth"
)

// dbConn is a direct connection to the test's database, for checks.
func dbConn(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func countAudit(t *testing.T, e *env) int {
	t.Helper()
	var n int
	if err := dbConn(t, e.dbURL).QueryRow(context.Background(), `SELECT count(*) FROM audit_events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAnonymousFloodIsAuditedAsCounts: 2,000 requests without or with
// forged credentials add a handful of audit events whose counts add up to
// 2,000, the address is refused before authentication once it has failed
// too often, and an authenticated caller is unaffected.
func TestAnonymousFloodIsAuditedAsCounts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	before := countAudit(t, e)
	forged := []string{"", "Bearer " + auth.APIKeyPrefix + strings.Repeat("A", 43), "Bearer nonsense", "Bearer " + auth.SessionPrefix + strings.Repeat("B", 43)}
	const n = 2000
	codes := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				req, _ := http.NewRequest(http.MethodGet, e.ts.URL+"/v1/users", nil)
				if h := forged[i%len(forged)]; h != "" {
					req.Header.Set("Authorization", h)
				}
				resp, err := e.ts.Client().Do(req)
				if err != nil {
					t.Error(err)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				codes[resp.StatusCode]++
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	if codes[401]+codes[429] != n || codes[429] == 0 {
		t.Fatalf("codes %v: want only 401 and 429, and the address refused once over its budget", codes)
	}
	// The refusal is brief: once the address's bucket refills a token, a
	// caller with good credentials from that address gets through.
	time.Sleep(time.Second / time.Duration(DefaultConfig().UnauthenticatedRate))
	resp := e.do(http.MethodGet, "/v1/users", e.keys[auth.RoleAdmin], nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("admin key from the flooded address after the wait = %d, want 200", resp.StatusCode)
	}

	e.srv.flushRefusals(context.Background(), true)
	added := countAudit(t, e) - before
	t.Logf("%d anonymous requests (%v) added %d audit events", n, codes, added)
	if added > 5 {
		t.Errorf("%d anonymous requests added %d audit events, want at most 5", n, added)
	}
	rows, err := dbConn(t, e.dbURL).Query(context.Background(), `SELECT detail::text FROM audit_events WHERE action = 'http.refused' AND resource_id = '127.0.0.1'`)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for rows.Next() {
		var d string
		var detail struct{ Count int }
		if err := rows.Scan(&d); err != nil {
			t.Fatal(err)
		}
		json.Unmarshal([]byte(d), &detail)
		total += detail.Count
	}
	if total != n {
		t.Errorf("refusal counts add up to %d, want %d", total, n)
	}
	b := e.scrape()
	if !strings.Contains(string(b), `sunpath_http_refused_total{reason="unauthenticated"}`) ||
		!strings.Contains(string(b), `sunpath_http_refused_total{reason="rate_limited"}`) {
		t.Error("/metrics lacks sunpath_http_refused_total by reason")
	}
}

// TestMadeUpMethodsDoNotGrowMetrics: 300 invented HTTP methods add no series
// to /metrics beyond one OTHER.
func TestMadeUpMethodsDoNotGrowMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	series := func() int {
		b := e.scrape()
		n := 0
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "sunpath_http_request_duration_seconds_count") {
				n++
			}
		}
		return n
	}
	send := func(m string) {
		req, _ := http.NewRequest(m, e.ts.URL+"/v1/instruments", nil)
		resp, err := e.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	send("FOO0")
	before := series()
	for i := 1; i <= 300; i++ {
		send(fmt.Sprintf("M%03dX", i))
	}
	if after := series(); after != before {
		t.Errorf("300 made-up methods grew sunpath_http_request_duration_seconds from %d to %d series", before, after)
	}
}

// TestClientClosedIsNotAServerError: a request whose client went away is
// answered (and counted) 499, logged at info, never as a 5xx error.
func TestClientClosedIsNotAServerError(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequest(http.MethodGet, "/v1/users", nil).WithContext(ctx)
	req.Header.Set("Authorization", "Bearer "+auth.APIKeyPrefix+strings.Repeat("C", 43))
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, req)
	if rec.Code != 499 {
		t.Errorf("status = %d, want 499", rec.Code)
	}
	if logs := e.logs.String(); strings.Contains(logs, `"level":"ERROR"`) || !strings.Contains(logs, "client closed request") {
		t.Errorf("logs: %s; want an info line and no error", logs)
	}
	if b := e.scrape(); !strings.Contains(string(b), `route="/v1/users",status="499"`) || strings.Contains(string(b), `status="500"`) {
		t.Error("metrics do not count the request as 499")
	}
}
