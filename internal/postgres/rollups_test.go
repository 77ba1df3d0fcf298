package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/pgtest"
	"github.com/sunpath/sunpath/internal/postgres"
	"github.com/sunpath/sunpath/internal/testfix"
)

// TestDashboardRollups checks that a dashboard read from a rollup is the
// dashboard computed live at the refresh, for everyone, an agency and a
// unit; that it stays as of its refresh (new flags show after the next
// one) until it is older than the policy's maximum age, when the
// dashboard is computed live again; that counselors and other periods are
// always live; and that a refresh skips when the rollups are fresh.
func TestDashboardRollups(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := postgres.DefaultConfig()
	cfg.URL = pgtest.NewURL(t)
	db, err := postgres.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	now := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	cases := postgres.NewCases(db, postgres.CasesConfig{Keys: testfix.Keyring(t), Flags: casework.DefaultFlagPolicy, Now: clock})
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	calendar := casework.Policy{Location: shanghai} // the month of reports: November from 31 Oct 16:00 UTC
	service := func(maxAge time.Duration) *casework.Service {
		pol := casework.DefaultPolicy()
		pol.Location = shanghai
		pol.DashboardMaxAge = maxAge
		pol.MaxBackdate = 365 * 24 * time.Hour
		svc, err := casework.New(casework.Deps{Store: cases, Audit: postgres.NewAuditStore(db), Catalog: testfix.Catalog(t),
			Models: testfix.Models(t), Policy: pol, Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	rolled, live := service(5*time.Minute), service(0)
	acct := auth.NewService(postgres.NewAccounts(db), auth.DefaultSessionPolicy)
	admin := casework.Call{Principal: auth.Principal{Kind: auth.KindAPIKey, Name: "rollup", Role: auth.RoleAdmin}}
	for _, u := range []casework.UnitInput{{Code: "u1", Name: "东区", Agency: "hz"}, {Code: "u2", Name: "西区", Agency: "hz"}, {Code: "u3", Name: "北区", Agency: "nb"}} {
		if _, _, err := rolled.PutUnit(ctx, admin, u); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := acct.CreateUser(ctx, "carol", "correct horse battery", auth.RoleCounselor, "u1"); err != nil {
		t.Fatal(err)
	}
	phq9 := func(item, rest int) json.RawMessage {
		a := map[string]int{}
		for i := 1; i <= 9; i++ {
			a[fmt.Sprint("phq9_", i)] = rest
		}
		a["phq9_9"] = item
		b, _ := json.Marshal(a)
		return b
	}
	submit := func(id string, answers json.RawMessage, at time.Time) {
		t.Helper()
		if _, _, err := rolled.SubmitAssessment(ctx, admin, id, casework.AssessmentInput{Instrument: "phq9", Answers: answers, Language: "zh-CN", CompletedAt: &at}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 12 {
		unit := []string{"u1", "u2", "u3"}[i%3]
		in := casework.SubjectInput{DisplayName: "某人", Sex: "unknown", SupervisionType: "probation", Unit: unit,
			SupervisionStart: now.AddDate(0, 0, -20-10*i).Format(casework.DateLayout)}
		if unit == "u1" {
			in.Counselor = "carol"
		}
		id := fmt.Sprint("R-", i+1)
		if _, _, err := rolled.PutSubject(ctx, admin, id, in); err != nil {
			t.Fatal(err)
		}
		if i%4 != 3 { // every fourth never screened: overdue as a new entrant
			submit(id, phq9(i%2, i%4), now.AddDate(0, 0, -15-5*i))
		}
	}
	calls := map[string]casework.Call{
		"all":       admin,
		"unit:u1":   {Principal: auth.Principal{Kind: auth.KindUser, Name: "sup1", Role: auth.RoleSupervisor, Unit: "u1"}},
		"agency:hz": {Principal: auth.Principal{Kind: auth.KindAPIKey, Name: "cms", Role: auth.RoleCaseSystem, Unit: "hz"}},
	}
	dash := func(svc *casework.Service, c casework.Call) casework.Oversight {
		t.Helper()
		o, err := svc.Dashboard(ctx, c, casework.DashboardQuery{})
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	// No rollup yet: computed live.
	if o := dash(rolled, admin); !o.AsOf.Equal(now) || o.Subjects != 12 {
		t.Fatalf("before any refresh: as of %s, %d people; want live (%s), 12", o.AsOf, o.Subjects, now)
	}
	n, err := rolled.RefreshDashboards(ctx, time.Minute)
	if err != nil || n != 6 { // all, 3 units, 2 agencies
		t.Fatalf("refresh: %d scopes, %v; want 6", n, err)
	}
	// Read 30 s after the refresh, a rollup is the dashboard computed live
	// at the refresh.
	same := func(refreshed time.Time) {
		t.Helper()
		want := map[string]casework.Oversight{}
		for scope, c := range calls {
			want[scope] = dash(live, c)
		}
		now = now.Add(30 * time.Second)
		for scope, c := range calls {
			got := dash(rolled, c)
			if !got.AsOf.Equal(refreshed) {
				t.Errorf("%s: as of %s, want the refresh's %s", scope, got.AsOf, refreshed)
			}
			// The overdue list is live: the same here, 30 s later.
			if diff := cmp.Diff(want[scope], got); diff != "" {
				t.Errorf("%s: rollup differs from the live dashboard at the refresh (-live +rollup):\n%s", scope, diff)
			}
		}
	}
	same(now)
	// A rollup is decoded once per refresh and held; what a reader changes
	// in its copy (the web names units in place) does not reach the next.
	mine := dash(rolled, admin)
	mine.Units[0].Name, mine.Tiers["strict"] = "changed", 99
	if again := dash(rolled, admin); again.Units[0].Name == "changed" || again.Tiers["strict"] == 99 {
		t.Errorf("a reader's change reached the held rollup: %+v, %v", again.Units[0], again.Tiers)
	}
	// Another period (the web's month) reads the rollup but for its
	// per-unit outcomes, computed live for that period.
	month := casework.DashboardQuery{From: now.AddDate(0, 0, -40), To: now.AddDate(0, 0, -10)}
	for scope, c := range calls {
		got, err := rolled.Dashboard(ctx, c, month)
		if err != nil {
			t.Fatal(err)
		}
		want, err := live.Dashboard(ctx, c, month)
		if err != nil {
			t.Fatal(err)
		}
		if got.AsOf.Equal(now) || !cmp.Equal(got.Units, want.Units) || !got.From.Equal(want.From) || len(want.Units) == 0 {
			t.Errorf("%s, another period: as of %s, units %+v; want the rollup's time and the period's live outcomes %+v", scope, got.AsOf, got.Units, want.Units)
		}
	}
	// The current calendar month up to now (the web's month): its per-unit
	// outcomes are rolled up too, as of the refresh.
	current := func() casework.DashboardQuery {
		return casework.DashboardQuery{From: calendar.MonthStart(now), To: now}
	}
	monthAt := func(c casework.Call, to time.Time) []casework.UnitOutcome {
		t.Helper()
		o, err := live.Dashboard(ctx, c, casework.DashboardQuery{From: current().From, To: to})
		if err != nil {
			t.Fatal(err)
		}
		return o.Units
	}
	rolledMonth := func(c casework.Call, refreshed time.Time) {
		t.Helper()
		got, err := rolled.Dashboard(ctx, c, current())
		if err != nil {
			t.Fatal(err)
		}
		if want := monthAt(c, refreshed); !got.To.Equal(refreshed) || !got.From.Equal(current().From) || !cmp.Equal(got.Units, want) || len(want) == 0 {
			t.Errorf("the current month: %s to %s, units %+v; want from %s as of the refresh %s, %+v", got.From, got.To, got.Units, current().From, refreshed, want)
		}
	}
	for _, c := range calls {
		rolledMonth(c, now.Add(-30*time.Second))
	}
	if n, err := rolled.RefreshDashboards(ctx, time.Hour); err != nil || n != 0 {
		t.Fatalf("refresh within the fresh window: %d scopes, %v; want 0 (skipped)", n, err)
	}

	// A minute on, a thought of suicide raises an urgent flag: the rollup
	// shows it after the next refresh, a live dashboard at once.
	refreshed := now.Add(-30 * time.Second)
	now = now.Add(time.Minute)
	before := dash(rolled, admin).OpenFlags["urgent"]
	submit("R-1", phq9(3, 3), now)
	if o := dash(rolled, admin); o.OpenFlags["urgent"] != before || !o.AsOf.Equal(refreshed) {
		t.Fatalf("rollup before the refresh: %d urgent flags as of %s; want %d as of %s", o.OpenFlags["urgent"], o.AsOf, before, refreshed)
	}
	if o := dash(live, admin); o.OpenFlags["urgent"] != before+1 {
		t.Fatalf("live dashboard: %d urgent flags, want %d", o.OpenFlags["urgent"], before+1)
	}
	rolledMonth(admin, refreshed) // the month's screenings as of the refresh: not this one yet
	if cmp.Equal(monthAt(admin, now), monthAt(admin, refreshed)) {
		t.Error("the month's live outcomes did not change with a screening in the month")
	}
	if got, want := dash(rolled, calls["unit:u1"]).Overdue, dash(live, calls["unit:u1"]).Overdue; !cmp.Equal(got, want) {
		t.Fatalf("the overdue list of a rolled-up dashboard is not live:\n%s", cmp.Diff(want, got))
	}
	if _, err := rolled.RefreshDashboards(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	same(now)
	nb := casework.Call{Principal: auth.Principal{Kind: auth.KindAPIKey, Name: "cms2", Role: auth.RoleCaseSystem, Unit: "nb"}}
	if o := dash(rolled, nb); o.Subjects != 4 || !o.AsOf.Equal(now.Add(-30*time.Second)) {
		t.Errorf("agency nb: %d people as of %s; want 4 (u3's) from the rollup", o.Subjects, o.AsOf)
	}

	// Counselors, other periods and stale rollups are computed live.
	now = now.Add(time.Minute)
	base := dash(live, admin).OpenFlags["urgent"]
	submit("R-4", phq9(3, 3), now) // u1, carol's
	carol := casework.Call{Principal: auth.Principal{Kind: auth.KindUser, Name: "carol", Role: auth.RoleCounselor, Unit: "u1"}}
	if o := dash(rolled, carol); !o.AsOf.Equal(now) || o.OpenFlags["urgent"] != dash(live, carol).OpenFlags["urgent"] {
		t.Errorf("counselor: as of %s; want live", o.AsOf)
	}
	if o, err := rolled.Dashboard(ctx, admin, casework.DashboardQuery{WindowDays: 30}); err != nil || o.OpenFlags["urgent"] != base+1 {
		t.Errorf("another window: %d urgent flags, %v; want %d, live", o.OpenFlags["urgent"], err, base+1)
	}
	if o := dash(rolled, admin); o.OpenFlags["urgent"] != base {
		t.Errorf("rollup a minute old: %d urgent flags; want %d", o.OpenFlags["urgent"], base)
	}
	now = now.Add(5 * time.Minute)
	if o := dash(rolled, admin); o.OpenFlags["urgent"] != base+1 || !o.AsOf.Equal(now) {
		t.Errorf("rollup older than the maximum age: %d urgent flags as of %s; want %d, live", o.OpenFlags["urgent"], o.AsOf, base+1)
	}
}
