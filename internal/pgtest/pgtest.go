// Package pgtest gives every test its own freshly migrated PostgreSQL
// database, cloned from a template that is migrated once per schema.
//
// The server comes from the environment that `make test` sets up
// (SUNPATH_TEST_DATABASE_URL, an account allowed to create databases). When
// it is not set, tests fail: a missing database is never a skip.
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sunpath/sunpath/internal/postgres"
	"github.com/sunpath/sunpath/internal/postgres/migrations"
)

// EnvURL names the variable holding the admin URL of the test server.
const EnvURL = "SUNPATH_TEST_DATABASE_URL"

// AdminURL returns the test server's admin URL, failing t when it is unset.
func AdminURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		t.Fatalf("%s is not set: run the tests with 'make test', which starts a throwaway PostgreSQL", EnvURL)
	}
	return u
}

// NewURL creates a fresh migrated database for t, dropped when t ends, and
// returns its URL.
func NewURL(t testing.TB) string {
	t.Helper()
	admin := AdminURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tpl, err := template(ctx, admin)
	if err != nil {
		t.Fatalf("pgtest: template database: %v", err)
	}
	name := "sunpath_test_" + randomHex(8)
	if err := exec(ctx, admin, fmt.Sprintf(`CREATE DATABASE %s TEMPLATE %s`, name, tpl)); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		if os.Getenv("SUNPATH_TEST_KEEP_DB") != "" {
			t.Logf("pgtest: kept database %s", name)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := exec(ctx, admin, fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, name)); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return withDatabase(admin, name)
}

// NewEmptyURL creates an empty database (no migrations) for t, dropped when
// t ends: a target for restores.
func NewEmptyURL(t testing.TB) string {
	t.Helper()
	admin := AdminURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := "sunpath_empty_" + randomHex(8)
	if err := exec(ctx, admin, `CREATE DATABASE `+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = exec(ctx, admin, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`)
	})
	return withDatabase(admin, name)
}

// NewDB returns a pool on a fresh migrated database, closed when t ends.
func NewDB(t testing.TB) *postgres.DB {
	t.Helper()
	cfg := postgres.DefaultConfig()
	cfg.URL = NewURL(t)
	cfg.MaxConns = 8
	db, err := postgres.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("pgtest: open: %v", err)
	}
	t.Cleanup(db.Close)
	return db
}

// template returns the name of a migrated template database for the embedded
// migrations, creating it under an advisory lock when no test process has.
func template(ctx context.Context, admin string) (string, error) {
	name := "sunpath_tpl_" + migrationsHash()[:16]
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(727274)`); err != nil {
		return "", err
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock(727274)`) //nolint:errcheck
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	// Build under a temporary name and rename at the end, so that a crash
	// half-way never leaves a half-migrated template behind.
	build := name + "_build"
	if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+build+` WITH (FORCE)`); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+build); err != nil {
		return "", err
	}
	cfg := postgres.DefaultConfig()
	cfg.URL = withDatabase(admin, build)
	db, err := postgres.Open(ctx, cfg)
	if err != nil {
		return "", err
	}
	_, err = db.Migrate(ctx)
	db.Close()
	if err != nil {
		return "", fmt.Errorf("migrate template: %w", err)
	}
	if _, err := conn.Exec(ctx, `ALTER DATABASE `+build+` RENAME TO `+name); err != nil {
		return "", err
	}
	return name, nil
}

func migrationsHash() string {
	h := sha256.New()
	var names []string
	_ = fs.WalkDir(migrations.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, p)
		}
		return nil
	})
	sort.Strings(names)
	for _, n := range names {
		b, _ := fs.ReadFile(migrations.FS, n)
		fmt.Fprintf(h, "%s %d\n", n, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func exec(ctx context.Context, url, sql string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func withDatabase(admin, name string) string {
	u, err := url.Parse(admin)
	if err != nil {
		panic("pgtest: bad admin url")
	}
	u.Path = "/" + name
	return u.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
