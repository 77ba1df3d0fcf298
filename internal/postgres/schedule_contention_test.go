package postgres_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/pgtest"
	"github.com/sunpath/sunpath/internal/postgres"
	"github.com/sunpath/sunpath/internal/testfix"
)

// TestSubmissionsNeverWaitOnTheSchedule holds a person's schedule row in a
// transaction in flight (an assessment inserted, not committed, as a group
// of WriteGrouped does until its COMMIT) and submits another screening of
// the same person through the service: it must not wait for the first
// transaction (before migration 0012 it did, and two such transactions
// reaching two people in opposite orders deadlocked). Its time is left
// pending and applied by DrainSchedule, after which the schedule holds
// the newest screening.
func TestSubmissionsNeverWaitOnTheSchedule(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewURL(t)
	cfg := postgres.DefaultConfig()
	cfg.URL = url
	db, err := postgres.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	cases := postgres.NewCases(db, postgres.CasesConfig{Keys: testfix.Keyring(t), Flags: casework.DefaultFlagPolicy})
	pol := casework.DefaultPolicy()
	pol.MaxBackdate = 365 * 24 * time.Hour
	svc, err := casework.New(casework.Deps{Store: cases, Audit: postgres.NewAuditStore(db), Catalog: testfix.Catalog(t), Models: testfix.Models(t), Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	admin := casework.Call{Principal: auth.Principal{Kind: auth.KindAPIKey, Name: "sched", Role: auth.RoleAdmin}}
	if _, _, err := svc.PutUnit(ctx, admin, casework.UnitInput{Code: "u1", Name: "u1"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.PutSubject(ctx, admin, "S-1", casework.SubjectInput{DisplayName: "某人", Sex: "unknown", SupervisionType: "probation", Unit: "u1"}); err != nil {
		t.Fatal(err)
	}
	held, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close(ctx)
	first := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	tx, err := held.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO assessments (id, subject_id, instrument, instrument_version, content_hash, engine_version, language,
			answers, result, administered_by, completed_at, created_by)
		SELECT gen_random_uuid(), id, 'phq9', '1', 'x', '1', 'zh-CN', '\x00', '{}', 'test', $1, 'test' FROM subjects WHERE external_id = 'S-1'`, first); err != nil {
		t.Fatal(err)
	}
	answers := json.RawMessage(`{"phq9_1":1,"phq9_2":0,"phq9_3":1,"phq9_4":0,"phq9_5":1,"phq9_6":0,"phq9_7":0,"phq9_8":0,"phq9_9":0}`)
	second := first.Add(time.Hour)
	wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, _, err := svc.SubmitAssessment(wctx, admin, "S-1", casework.AssessmentInput{Instrument: "phq9", Answers: answers, Language: "zh-CN", CompletedAt: &second}); err != nil {
		t.Fatalf("a submission while another transaction holds the person's schedule row: %v (it waited)", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	last := func() time.Time {
		var at time.Time
		if err := held.QueryRow(ctx, `SELECT c.last_at FROM screening_schedule c JOIN subjects s ON s.id = c.subject_id
			WHERE s.external_id = 'S-1' AND c.instrument = 'phq9'`).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at.UTC()
	}
	if got := last(); !got.Equal(first) {
		t.Fatalf("schedule before the drain: last taken %s, want the held transaction's %s", got, first)
	}
	if n, err := cases.DrainSchedule(ctx); err != nil || n != 1 {
		t.Fatalf("DrainSchedule: %d applied, %v; want 1", n, err)
	}
	if got := last(); !got.Equal(second) {
		t.Fatalf("schedule after the drain: last taken %s, want the newest screening's %s", got, second)
	}
	if n, err := cases.DrainSchedule(ctx); err != nil || n != 0 {
		t.Fatalf("second DrainSchedule: %d applied, %v; want 0", n, err)
	}
}
