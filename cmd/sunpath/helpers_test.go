package main

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

// sunpathSQL runs one statement against url, for test set-up.
func sunpathSQL(t *testing.T, url, sql string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
