package web

import (
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestCompressed: pages, stylesheets and scripts are sent gzip-compressed
// to a client that accepts it (and say so in Vary), plain to one that does
// not; a workbook, compressed already, is sent as it is.
func TestCompressed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putSubject("G-1", "west", "carol", "顾一", nil)
	// A client that does not decompress for us, so the encoding is seen.
	c := e.client()
	c.Transport = &http.Transport{DisableCompression: true}
	e.signin(c, "carol")
	fetch := func(path, accept string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, e.ts.URL+path, nil)
		if accept != "" {
			req.Header.Set("Accept-Encoding", accept)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	_, page := e.get(c, "/")
	var css, js string
	for _, f := range []string{"app.css", "app.js"} {
		i := strings.Index(page, "/static/"+f)
		if i < 0 {
			t.Fatalf("the caseload page does not link %s", f)
		}
		end := strings.IndexByte(page[i:], '"')
		if f == "app.css" {
			css = page[i : i+end]
		} else {
			js = page[i : i+end]
		}
	}
	for _, path := range []string{"/", "/subjects/G-1", css, js} {
		resp, body := fetch(path, "gzip, deflate, br")
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "gzip" {
			t.Errorf("GET %s with gzip = %d, Content-Encoding %q, want gzip", path, resp.StatusCode, resp.Header.Get("Content-Encoding"))
			continue
		}
		if !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
			t.Errorf("GET %s: Vary = %q, want Accept-Encoding", path, resp.Header.Get("Vary"))
		}
		zr, err := gzip.NewReader(strings.NewReader(string(body)))
		if err != nil {
			t.Errorf("GET %s: not gzip: %v", path, err)
			continue
		}
		plain, err := io.ReadAll(zr)
		if err != nil || len(plain) <= len(body) {
			t.Errorf("GET %s: %d bytes compressed to %d (%v)", path, len(plain), len(body), err)
		}
		if path == "/" && !strings.Contains(string(plain), "顾一") {
			t.Error("the decompressed caseload does not list the person")
		}
		t.Logf("%s: %d bytes, %d gzip-compressed", path, len(plain), len(body))
	}
	if resp, _ := fetch("/", ""); resp.Header.Get("Content-Encoding") != "" {
		t.Errorf("compressed for a client that does not accept it: %q", resp.Header.Get("Content-Encoding"))
	}
	if resp, _ := fetch("/caseload.xlsx", "gzip"); resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "" {
		t.Errorf("workbook = %d, Content-Encoding %q, want sent as it is", resp.StatusCode, resp.Header.Get("Content-Encoding"))
	}
}

// TestHTMXOnlyWhereUsed: htmx loads on the pages that use it (staff pages
// with the live badge, the flag queue, the full form), not on the sign-in
// page or the kiosk; the header names the signed-in person's unit, not its
// code.
func TestHTMXOnlyWhereUsed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	anon := e.client()
	if _, page := e.get(anon, "/signin"); strings.Contains(page, "htmx.min.js") || strings.Contains(page, "htmx-config") {
		t.Error("the sign-in page loads htmx, which it does not use")
	}
	if _, page := e.get(anon, "/kiosk"); strings.Contains(page, "htmx.min.js") {
		t.Error("the kiosk loads htmx, which it does not use")
	}
	carol := e.client()
	e.signin(carol, "carol")
	_, page := e.get(carol, "/flags")
	if !strings.Contains(page, "htmx.min.js") {
		t.Error("the flag queue does not load htmx, which polls its live list")
	}
	if !strings.Contains(page, "· west district</span>") || strings.Contains(page, "· west</span>") {
		t.Error("the header does not name the unit (west district)")
	}
}
