package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sunpath/sunpath/internal/sealed"
)

// runConfig runs `sunpath config` with args and returns stdout.
func runConfig(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), append([]string{"config"}, args...), strings.NewReader(""), &out, &errOut)
	return out.String(), err
}

func TestConfigPrecedence(t *testing.T) {
	// Not parallel: it sets environment variables.
	dir := t.TempDir()
	file := filepath.Join(dir, "sunpath.yaml")
	if err := os.WriteFile(file, []byte("http:\n  addr: 127.0.0.1:9001\n  request_timeout: 7s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"defaults", nil, nil, []string{"addr: 127.0.0.1:8080", "request_timeout: 30s", "statement_timeout: 10s"}},
		{"file over defaults", nil, []string{"--config", file}, []string{"addr: 127.0.0.1:9001", "request_timeout: 7s"}},
		{"env over file", map[string]string{"SUNPATH_HTTP_ADDR": "127.0.0.1:9002"}, []string{"--config", file}, []string{"addr: 127.0.0.1:9002", "request_timeout: 7s"}},
		{"flag over env", map[string]string{"SUNPATH_HTTP_ADDR": "127.0.0.1:9002"}, []string{"--config", file, "--http-addr", "127.0.0.1:9003"}, []string{"addr: 127.0.0.1:9003"}},
		{"nested env key", map[string]string{"SUNPATH_DATABASE_STATEMENT_TIMEOUT": "3s"}, nil, []string{"statement_timeout: 3s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			got, err := runConfig(t, tt.args...)
			if err != nil {
				t.Fatalf("config: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("config output lacks %q:\n%s", w, got)
				}
			}
		})
	}
}

func TestConfigInvalidNamesKey(t *testing.T) {
	dir := t.TempDir()
	unknown := filepath.Join(dir, "unknown.yaml")
	os.WriteFile(unknown, []byte("http:\n  adress: 127.0.0.1:1\n"), 0o600)
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantKey string
	}{
		{"bad address", map[string]string{"SUNPATH_HTTP_ADDR": "nonsense"}, nil, "http.addr"},
		{"bad duration", map[string]string{"SUNPATH_DATABASE_STATEMENT_TIMEOUT": "forever"}, nil, "database.statement_timeout"},
		{"bad number", map[string]string{"SUNPATH_DATABASE_MAX_CONNS": "0"}, nil, "database.max_conns"},
		{"bad url", map[string]string{"SUNPATH_DATABASE_URL": "postgres://%zz"}, nil, "database.url"},
		{"bad level", map[string]string{"SUNPATH_LOG_LEVEL": "loud"}, nil, "log.level"},
		{"bad proxy", map[string]string{"SUNPATH_HTTP_TRUSTED_PROXIES": "10.0.0.1,not-an-ip"}, nil, "http.trusted_proxies"},
		{"unknown key in file", nil, []string{"--config", unknown}, "http.adress"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			_, err := runConfig(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.wantKey) {
				t.Fatalf("config error = %v, want one naming %s", err, tt.wantKey)
			}
		})
	}
}

func TestConfigRedactsSecrets(t *testing.T) {
	t.Setenv("SUNPATH_DATABASE_URL", "postgres://sunpath:s3cr3t-pw@db.example:5432/sunpath")
	got, err := runConfig(t)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got, "s3cr3t-pw") {
		t.Errorf("config prints the database password:\n%s", got)
	}
	if !strings.Contains(got, "sunpath:REDACTED@db.example") {
		t.Errorf("config output lacks the redacted URL:\n%s", got)
	}
}

// devDir writes what `make run` leaves in .data: the local cluster's
// password and port, and the development keys.
func devDir(t *testing.T, keys, signing string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "pg"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"pg/password": "pw-Local_1\n",
		"pg/port":     "55999\n",
		"secrets.env": "SUNPATH_CRYPTO_KEYS=" + keys + "\nSUNPATH_AUDIT_SIGNING_KEY=" + signing + "\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestConfigFallsBackToMakeRun(t *testing.T) {
	// Not parallel: it sets environment variables.
	localKeys, signing := "k1:"+sealed.NewKey(), sealed.NewKey()
	envKeys := "e1:" + sealed.NewKey()
	const localURL = "postgres://sunpath:pw-Local_1@127.0.0.1:55999/sunpath?sslmode=disable"
	const envURL = "postgres://sunpath:x@db.example:5432/sunpath"
	const flagURL = "postgres://sunpath:y@flag.example:5432/sunpath"
	tests := []struct {
		name           string
		env            map[string]string
		flagURL        string
		noDev          bool
		wantURL        string
		wantKeys       string
		wantSigningKey string
		wantNote       bool
	}{
		{name: "nothing set: make run's cluster and keys", wantURL: localURL, wantKeys: localKeys, wantSigningKey: signing, wantNote: true},
		{name: "env names the database", env: map[string]string{"SUNPATH_DATABASE_URL": envURL}, wantURL: envURL},
		{name: "flag names the database", flagURL: flagURL, wantURL: flagURL},
		{name: "env key wins over secrets.env", env: map[string]string{"SUNPATH_CRYPTO_KEYS": envKeys}, wantURL: localURL, wantKeys: envKeys, wantSigningKey: signing, wantNote: true},
		{name: "no .data: nothing", noDev: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stderr bytes.Buffer
			c := &cli{stderr: &stderr, devDir: devDir(t, localKeys, signing)}
			if tt.noDev {
				c.devDir = t.TempDir()
			}
			root := newRootCmd(c)
			if tt.flagURL != "" {
				if err := root.PersistentFlags().Set("database-url", tt.flagURL); err != nil {
					t.Fatal(err)
				}
			}
			cfg, err := c.config()
			if err != nil {
				t.Fatalf("config: %v", err)
			}
			if cfg.Database.URL != tt.wantURL {
				t.Errorf("database.url = %q, want %q", cfg.Database.URL, tt.wantURL)
			}
			if cfg.Crypto.Keys != tt.wantKeys {
				t.Errorf("crypto.keys = %q, want %q", cfg.Crypto.Keys, tt.wantKeys)
			}
			if cfg.Audit.SigningKey != tt.wantSigningKey {
				t.Errorf("audit.signing_key = %q, want %q", cfg.Audit.SigningKey, tt.wantSigningKey)
			}
			note := stderr.String()
			if got := strings.Count(note, "\n"); tt.wantNote && (got != 1 || !strings.Contains(note, filepath.Join(c.devDir, "pg"))) {
				t.Errorf("stderr = %q, want one line naming the local cluster", note)
			} else if !tt.wantNote && note != "" {
				t.Errorf("stderr = %q, want nothing", note)
			}
			if strings.Contains(note, "pw-Local_1") || strings.Contains(note, signing) {
				t.Errorf("stderr shows a secret: %q", note)
			}
		})
	}
}
