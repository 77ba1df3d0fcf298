package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/sunpath/sunpath/internal/pgtest"
)

// sunpathErr runs a subcommand that should fail and returns its error text.
func sunpathErr(t *testing.T, dbURL, stdin string, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), append([]string{"--database-url", dbURL}, args...), strings.NewReader(stdin), &out, &errOut)
	if err == nil {
		t.Fatalf("sunpath %v succeeded, want an error:\n%s", args, out.String())
	}
	return err.Error()
}

// Units are real everywhere: accounts and keys name units that exist, a
// rename keeps the agency, and a case-system key needs an agency.
func TestUnitsAreReal(t *testing.T) {
	t.Parallel()
	url := pgtest.NewURL(t)
	sunpath(t, url, "", "migrate")

	if out := sunpath(t, url, "", "unit", "create", "--code", "u1", "--name", "Unit one", "--agency", "hz"); !strings.Contains(out, "created unit u1") {
		t.Errorf("unit create printed %q", out)
	}
	sunpath(t, url, "", "unit", "create", "--code", "u2", "--name", "Unit two")
	if msg := sunpathErr(t, url, "", "unit", "create", "--code", "u1", "--name", "again"); !strings.Contains(msg, "already exists") {
		t.Errorf("creating u1 twice: %s", msg)
	}
	if msg := sunpathErr(t, url, "", "unit", "create", "--code", "no spaces", "--name", "x"); !strings.Contains(msg, "code") {
		t.Errorf("a malformed code: %s", msg)
	}
	if out := sunpath(t, url, "", "unit", "rename", "--code", "u1", "--name", "Unit one, renamed"); !strings.Contains(out, "agency hz") {
		t.Errorf("unit rename printed %q, want the agency kept", out)
	}
	if msg := sunpathErr(t, url, "", "unit", "rename", "--code", "u9", "--name", "x"); !strings.Contains(msg, "not found") {
		t.Errorf("renaming an unknown unit: %s", msg)
	}
	list := sunpath(t, url, "", "unit", "list")
	for _, want := range []string{"u1 Unit one, renamed hz", "u2 Unit two default"} {
		if !strings.Contains(strings.Join(strings.Fields(list), " "), want) {
			t.Errorf("unit list lacks %q:\n%s", want, list)
		}
	}

	const pw = "a long enough password\n"
	msg := sunpathErr(t, url, pw, "user", "create", "--username", "c0", "--role", "counselor", "--unit", "NOPE")
	if !strings.Contains(msg, `--unit: no unit "NOPE"`) || !strings.Contains(msg, "sunpath unit create") {
		t.Errorf("user create in an unknown unit: %s", msg)
	}
	sunpath(t, url, pw, "user", "create", "--username", "c1", "--role", "counselor", "--unit", "u1")

	if msg := sunpathErr(t, url, "", "apikey", "create", "--name", "cms", "--role", "case_system"); !strings.Contains(msg, "--agency") {
		t.Errorf("a case_system key without an agency: %s", msg)
	}
	if msg := sunpathErr(t, url, "", "apikey", "create", "--name", "sup", "--role", "supervisor", "--unit", "NOPE"); !strings.Contains(msg, `no unit "NOPE"`) {
		t.Errorf("a supervisor key in an unknown unit: %s", msg)
	}
	if out := sunpath(t, url, "", "apikey", "create", "--name", "cms", "--role", "case_system", "--agency", "hz"); !strings.Contains(out, `scope "hz"`) {
		t.Errorf("apikey create printed %q", out)
	}
	if list := sunpath(t, url, "", "apikey", "list"); !strings.Contains(strings.Join(strings.Fields(list), " "), "cms case_system hz") {
		t.Errorf("apikey list does not show the key's agency:\n%s", list)
	}
}
