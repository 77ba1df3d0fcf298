package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
