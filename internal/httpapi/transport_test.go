package httpapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sunpath/sunpath/internal/auth"
)

// TestTLSListener: with a certificate configured the server speaks TLS 1.2+
// only, and marks responses with HSTS.
func TestTLSListener(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	e.srv.cfg.TLSCertFile, e.srv.cfg.TLSKeyFile = cert, key
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()
	url := "https://" + ln.Addr().String() + "/v1/auth/me"

	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11}}}
	if _, err := old.Get(url); err == nil {
		t.Error("a TLS 1.1 client was served")
	}
	good := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}}}
	var resp *http.Response
	for i := 0; i < 50; i++ {
		if resp, err = good.Get(url); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("TLS 1.2 client: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("Strict-Transport-Security"), "max-age=") {
		t.Errorf("over TLS: %d, HSTS %q", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
	}
}

func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(k)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

// TestCrossSiteRequestRefused: a state-changing request that a browser marks
// as cross-site is refused even with a valid session cookie (CSRF), while the
// same request from the site itself, or from an API client, goes through.
func TestCrossSiteRequestRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putSubject("X-1", "west", "carol", nil)
	carol := e.login("carol")
	post := func(site string) int {
		req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/v1/subjects/X-1/sessions", strings.NewReader(`{"instruments":["phq9"],"language":"en"}`))
		req.Header.Set("Content-Type", "application/json")
		if site != "" {
			req.Header.Set("Sec-Fetch-Site", site)
		}
		resp, err := carol.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("cross-site"); code != http.StatusForbidden {
		t.Errorf("cross-site POST with a session cookie = %d, want 403", code)
	}
	if code := post("same-origin"); code != http.StatusCreated {
		t.Errorf("same-origin POST = %d, want 201", code)
	}
	if code := e.call(nil, e.keys[auth.RoleAdmin], http.MethodPost, "/v1/subjects/X-1/sessions", map[string]any{"instruments": []string{"phq9"}, "language": "en"}, nil); code != http.StatusCreated {
		t.Errorf("API client POST = %d, want 201", code)
	}
}
