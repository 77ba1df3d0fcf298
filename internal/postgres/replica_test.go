package postgres_test

import (
	"context"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/postgres"
	"github.com/sunpath/sunpath/internal/testfix"
)

// TestReadReplica runs the oversight reads against a real streaming
// replica (pg_basebackup -R of a primary started for the test): they see
// what the primary committed once it is replayed, they are served by the
// replica (with replay paused, a new person is not listed), and every read
// writes its audit event on the primary.
func TestReadReplica(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "sunpath-replica-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755) // the cluster's OS user must reach it
	script, _ := filepath.Abs("../../scripts/localpg.sh")
	sh := func(args ...string) string {
		t.Helper()
		out, err := osexec.Command(script, args...).Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*osexec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("localpg.sh %s: %v\n%s", strings.Join(args, " "), err, stderr)
		}
		return strings.TrimSpace(string(out))
	}
	t.Cleanup(func() {
		osexec.Command(script, "stop", filepath.Join(dir, "r")).Run()
		osexec.Command(script, "stop", filepath.Join(dir, "p")).Run()
		os.RemoveAll(dir)
	})
	primaryURL := sh("start", filepath.Join(dir, "p"))
	cfg := postgres.DefaultConfig()
	cfg.URL = primaryURL
	primary, err := postgres.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Close()
	if _, err := primary.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	replicaURL := sh("replica", filepath.Join(dir, "p"), filepath.Join(dir, "r"))
	rcfg := cfg
	rcfg.URL = replicaURL
	replica, err := postgres.Open(ctx, rcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer replica.Close()

	cases := postgres.NewCases(primary, postgres.CasesConfig{Keys: testfix.Keyring(t), Flags: casework.DefaultFlagPolicy, Replica: replica})
	svc, err := casework.New(casework.Deps{Store: cases, Audit: postgres.NewAuditStore(primary), Catalog: testfix.Catalog(t), Models: testfix.Models(t)})
	if err != nil {
		t.Fatal(err)
	}
	admin := casework.Call{Principal: auth.Principal{Kind: auth.KindAPIKey, Name: "replica", Role: auth.RoleAdmin}}
	if _, _, err := svc.PutUnit(ctx, admin, casework.UnitInput{Code: "u1", Name: "u1"}); err != nil {
		t.Fatal(err)
	}
	put := func(id string) {
		t.Helper()
		if _, _, err := svc.PutSubject(ctx, admin, id, casework.SubjectInput{DisplayName: "x", Sex: "female", SupervisionType: "probation", Unit: "u1"}); err != nil {
			t.Fatal(err)
		}
	}
	put("R-1")
	if _, _, err := svc.SubmitAssessment(ctx, admin, "R-1", casework.AssessmentInput{Instrument: "phq9", Language: "en",
		Answers: []byte(`{"phq9_1":3,"phq9_2":3,"phq9_3":3,"phq9_4":3,"phq9_5":3,"phq9_6":3,"phq9_7":3,"phq9_8":3,"phq9_9":2}`)}); err != nil {
		t.Fatal(err)
	}

	pc, err := pgx.Connect(ctx, primaryURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close(ctx)
	rc, err := pgx.Connect(ctx, replicaURL)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close(ctx)
	caughtUp := func() {
		t.Helper()
		var lsn string
		if err := pc.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&lsn); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			var done bool
			if err := rc.QueryRow(ctx, `SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn`, lsn).Scan(&done); err != nil {
				t.Fatal(err)
			}
			if done {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("the replica did not catch up in 30 s")
			}
		}
	}
	audited := func(action string) int {
		t.Helper()
		var n int
		if err := pc.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE action = $1 AND actor = 'api_key:replica'`, action).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	listed := func() []string {
		t.Helper()
		page, err := svc.Subjects(ctx, admin, casework.SubjectQuery{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, s := range page.Subjects {
			ids = append(ids, s.ID)
		}
		return ids
	}
	caughtUp()

	// Every oversight read answers from the replica, audited on the primary.
	d, err := svc.Dashboard(ctx, admin, casework.DashboardQuery{})
	if err != nil || d.Subjects != 1 || len(d.OpenFlags) == 0 {
		t.Errorf("Dashboard = %d subjects, open flags %v, %v; want 1 subject and R-1's flags", d.Subjects, d.OpenFlags, err)
	}
	if fs, err := svc.Flags(ctx, admin, casework.FlagQuery{FlagFilter: casework.FlagFilter{Status: "open", Limit: 10}}); err != nil || len(fs) == 0 {
		t.Errorf("Flags = %d flags, %v; want the critical flag", len(fs), err)
	}
	if due, err := svc.Due(ctx, admin, casework.DueQuery{Limit: 10}); err != nil || len(due) == 0 {
		t.Errorf("Due = %v, %v; want R-1's screenings", due, err)
	}
	if _, _, err := svc.OverrideAnalytics(ctx, admin, "unit", 30); err != nil {
		t.Errorf("OverrideAnalytics: %v", err)
	}
	if got := listed(); len(got) != 1 || got[0] != "R-1" {
		t.Errorf("Subjects = %v, want [R-1]", got)
	}
	for _, a := range []string{"dashboard.read", "flag.list", "schedule.list", "override.analytics", "subject.list"} {
		if n := audited(a); n != 1 {
			t.Errorf("%s audit events on the primary = %d, want 1", a, n)
		}
	}

	// With replay paused the replica does not know R-2: a listing that
	// showed it would have been read on the primary.
	if _, err := rc.Exec(ctx, `SELECT pg_wal_replay_pause()`); err != nil {
		t.Fatal(err)
	}
	put("R-2")
	if got := listed(); len(got) != 1 {
		t.Errorf("Subjects with replay paused = %v, want only R-1 (read on the replica)", got)
	}
	if n := audited("subject.list"); n != 2 {
		t.Errorf("subject.list audit events on the primary = %d, want 2 (recorded there while the replica is paused)", n)
	}
	if _, err := rc.Exec(ctx, `SELECT pg_wal_replay_resume()`); err != nil {
		t.Fatal(err)
	}
	caughtUp()
	if got := listed(); len(got) != 2 {
		t.Errorf("Subjects after replay = %v, want [R-1 R-2]", got)
	}
}
