package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sunpath/sunpath/internal/audit"
	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/pgtest"
	"github.com/sunpath/sunpath/internal/postgres"
	"github.com/sunpath/sunpath/internal/testfix"
)

// BenchmarkOversight times the oversight use cases, as a provincial admin
// and as one unit's supervisor, over a caseload seeded through the real
// write path: SUNPATH_SCALE_PEOPLE people (default 2000 and 20000, comma
// separated), 100 to a unit, who entered supervision over the last 18
// months and were screened (PHQ-9 and GAD-7 alternately, answers from the
// realistic mix of cmd/sunpath-load) about every two months since (five
// times each on average); flags raised by the scoring and the
// consecutive-severity rule; flags older than two weeks acknowledged and
// resolved (in bulk SQL, as the use cases would write them), half of those
// with a follow-up. scripts/bench-scale.sh (make bench-scale) prints the
// table.
func BenchmarkOversight(b *testing.B) {
	sizes := []int{2000, 20000}
	if v := os.Getenv("SUNPATH_SCALE_PEOPLE"); v != "" {
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(f)
			if err != nil || n < 100 {
				b.Fatalf("SUNPATH_SCALE_PEOPLE=%q: want comma-separated counts of at least 100", v)
			}
			sizes = append(sizes, n)
		}
	}
	// Every size is seeded first, then each use case is timed at each size
	// in turn: the pair a ratio compares is measured a few seconds apart,
	// not minutes (this shared machine's speed drifts by ±20 %).
	envs := make([]scaleEnv, len(sizes))
	for i, n := range sizes {
		envs[i] = seedScale(b, n)
	}
	cases := oversightCases(envs[0])
	for k := range cases {
		for i, n := range sizes {
			c := oversightCases(envs[i])[k]
			b.Run(fmt.Sprintf("people=%d/%s", n, c.name), func(b *testing.B) {
				for range b.N {
					if err := c.fn(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// oversightCase is one use case BenchmarkOversight times.
type oversightCase struct {
	name string
	fn   func() error
}

// oversightCases are the use cases BenchmarkOversight times on env.
func oversightCases(env scaleEnv) []oversightCase {
	admin := casework.Call{Principal: auth.Principal{Kind: auth.KindAPIKey, Name: "scale", Role: auth.RoleAdmin}}
	sup := casework.Call{Principal: auth.Principal{Kind: auth.KindUser, Name: "sup", Role: auth.RoleSupervisor, Unit: "u1"}}
	ctx := context.Background()
	return []oversightCase{
		{"dashboard", func() error { _, err := env.svc.Dashboard(ctx, admin, casework.DashboardQuery{}); return err }},
		{"dashboard_month", func() error {
			// the web's page: the calendar month (per-unit outcomes live)
			to := env.now()
			from := time.Date(to.Year(), to.Month(), 1, 0, 0, 0, 0, time.UTC)
			if !from.Before(to) { // the first moment of a month: the month before
				from = from.AddDate(0, -1, 0)
			}
			_, err := env.svc.Dashboard(ctx, admin, casework.DashboardQuery{From: from, To: to})
			return err
		}},
		{"dashboard_live", func() error { _, err := env.live.Dashboard(ctx, admin, casework.DashboardQuery{}); return err }},
		{"rollup_refresh", func() error { _, err := env.svc.RefreshDashboards(ctx, 0); return err }},
		{"flags_open", func() error {
			_, err := env.svc.Flags(ctx, admin, casework.FlagQuery{FlagFilter: casework.FlagFilter{Status: "open", Limit: 50}})
			return err
		}},
		{"flags_unresolved", func() error {
			_, err := env.svc.Flags(ctx, admin, casework.FlagQuery{FlagFilter: casework.FlagFilter{Limit: 50}})
			return err
		}},
		{"due", func() error { _, err := env.svc.Due(ctx, admin, casework.DueQuery{Limit: 50}); return err }},
		{"due_overdue", func() error {
			_, err := env.svc.Due(ctx, admin, casework.DueQuery{OverdueOnly: true, Limit: 50})
			return err
		}},
		{"subjects_overdue", func() error {
			_, err := env.svc.Subjects(ctx, admin, casework.SubjectQuery{Overdue: true, Limit: 50})
			return err
		}},
		{"subjects", func() error { _, err := env.svc.Subjects(ctx, admin, casework.SubjectQuery{Limit: 50}); return err }},
		{"analytics", func() error { _, _, err := env.svc.OverrideAnalytics(ctx, admin, "unit", 90); return err }},
		{"audit", func() error { _, err := env.svc.Audit(ctx, admin, audit.Filter{Limit: 50}); return err }},
		{"unit_dashboard", func() error { _, err := env.svc.Dashboard(ctx, sup, casework.DashboardQuery{}); return err }},
		{"unit_dashboard_live", func() error { _, err := env.live.Dashboard(ctx, sup, casework.DashboardQuery{}); return err }},
		{"unit_due_overdue", func() error {
			_, err := env.svc.Due(ctx, sup, casework.DueQuery{OverdueOnly: true, Limit: 50})
			return err
		}},
		{"unit_subjects", func() error { _, err := env.svc.Subjects(ctx, sup, casework.SubjectQuery{Limit: 50}); return err }},
	}
}

type scaleEnv struct {
	// svc reads dashboards from the rollups (refreshed once after
	// seeding); live computes them.
	svc, live *casework.Service
	now       func() time.Time
}

// scaleClock is the seeding's simulated time.
type scaleClock struct{ ns atomic.Int64 }

func (c *scaleClock) Now() time.Time  { return time.Unix(0, c.ns.Load()) }
func (c *scaleClock) Set(t time.Time) { c.ns.Store(t.UnixNano()) }
func (c *scaleClock) advance(t time.Time) {
	for {
		old := c.ns.Load()
		if t.UnixNano() <= old || c.ns.CompareAndSwap(old, t.UnixNano()) {
			return
		}
	}
}

func seedScale(b *testing.B, people int) scaleEnv {
	b.Helper()
	ctx := context.Background()
	url := pgtest.NewURL(b)
	db, err := postgres.Open(ctx, postgres.Config{URL: url, MaxConns: 16, ConnectTimeout: 5 * time.Second,
		AcquireTimeout: 30 * time.Second, StatementTimeout: 60 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(db.Close)
	end := time.Now().UTC().Truncate(time.Hour)
	begin := end.AddDate(0, -18, 0)
	clock := &scaleClock{}
	clock.Set(begin.Add(-24 * time.Hour))
	cases := postgres.NewCases(db, postgres.CasesConfig{Keys: testfix.Keyring(b), Flags: casework.DefaultFlagPolicy,
		Endpoints: []string{"crisis-desk"}, Now: clock.Now})
	pol := casework.DefaultPolicy()
	pol.Schedule.Instruments = []string{"phq9", "gad7"}
	pol.ReliableChange = map[string]int{"phq9": 5, "gad7": 4}
	pol.MaxBackdate = 365 * 24 * time.Hour
	if err := cases.SyncSchedule(ctx, pol.Schedule.Instruments); err != nil {
		b.Fatal(err)
	}
	svc, err := casework.New(casework.Deps{Store: cases, Audit: postgres.NewAuditStore(db), Catalog: testfix.Catalog(b),
		Models: testfix.Models(b), Policy: pol, Now: clock.Now})
	if err != nil {
		b.Fatal(err)
	}
	admin := casework.Call{Principal: auth.Principal{Kind: auth.KindAPIKey, Name: "seed", Role: auth.RoleAdmin}}
	t0 := time.Now()
	for u := 1; u <= (people+99)/100; u++ {
		if _, _, err := svc.PutUnit(ctx, admin, casework.UnitInput{Code: fmt.Sprint("u", u), Name: fmt.Sprint("unit ", u)}); err != nil {
			b.Fatal(err)
		}
	}
	// Each person: a supervision start in the window, then a screening
	// about every 61 days (±10) from a few days after it, alternating
	// instruments.
	type event struct {
		at      time.Time
		subject string
		inst    string
		seed    uint64
	}
	r := rand.New(rand.NewPCG(uint64(people), 18))
	var events []event
	starts := make([]time.Time, people)
	for i := range people {
		starts[i] = begin.Add(time.Duration(r.Int64N(int64(end.Sub(begin)))))
		k := 0
		for at := starts[i].Add(time.Duration(1+r.IntN(6)) * 24 * time.Hour); at.Before(end); at = at.Add(time.Duration(51+r.IntN(21)) * 24 * time.Hour) {
			inst := []string{"phq9", "gad7"}[k%2]
			events = append(events, event{at, fmt.Sprint("P-", i+1), inst, r.Uint64()})
			k++
		}
	}
	// Registrations go in start order too, each when it happened.
	order := make([]int, people)
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, c int) bool { return starts[order[a]].Before(starts[order[c]]) })
	sort.Slice(events, func(a, c int) bool { return events[a].at.Before(events[c].at) })
	next := 0 // next registration
	register := func(until time.Time) {
		for ; next < people && !starts[order[next]].After(until); next++ {
			i := order[next]
			clock.advance(starts[i])
			_, _, err := svc.PutSubject(ctx, admin, fmt.Sprint("P-", i+1), casework.SubjectInput{DisplayName: "scale", Sex: "unknown",
				SupervisionType: "probation", Unit: fmt.Sprint("u", i/100+1), SupervisionStart: starts[i].Format(casework.DateLayout),
				SupervisionEnd: starts[i].AddDate(2, 0, 0).Format(casework.DateLayout)})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	const window = 64 // submissions in flight at once, as under load
	for lo := 0; lo < len(events); lo += window {
		batch := events[lo:min(lo+window, len(events))]
		register(batch[len(batch)-1].at)
		clock.advance(batch[len(batch)-1].at)
		var wg sync.WaitGroup
		errs := make(chan error, len(batch))
		for _, e := range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(e.seed, 1))
				at := e.at
				_, _, err := svc.SubmitAssessment(ctx, admin, e.subject, casework.AssessmentInput{Instrument: e.inst,
					Answers: scaleAnswers(r, e.inst), Language: "zh-CN", CompletedAt: &at})
				if err != nil {
					errs <- fmt.Errorf("submit %s %s: %w", e.subject, e.inst, err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	register(end)
	clock.Set(end)
	// Flags older than two weeks were answered: acknowledged within their
	// deadline's span, resolved a day later, every other one with a
	// follow-up screening (the triggers schedule it unless the instrument
	// was taken again since).
	if err := execSQL(ctx, url, `UPDATE flags SET status = 'resolved', acknowledged_by = 'user:seed',
			acknowledged_at = raised_at + (deadline - raised_at) / 2, resolved_by = 'user:seed', resolved_at = raised_at + interval '1 day',
			resolution_code = 'referred_to_services', interventions = '{individual_counselling}',
			follow_up_due = CASE WHEN get_byte(uuid_send(id), 0) % 2 = 0 THEN raised_at + interval '15 days' END
		WHERE raised_at < $1`, end.Add(-14*24*time.Hour)); err != nil {
		b.Fatal(err)
	}
	if err := execSQL(ctx, url, `VACUUM ANALYZE`); err != nil {
		b.Fatal(err)
	}
	var na, nf, nopen int
	if err := queryRow(ctx, url, `SELECT (SELECT count(*) FROM assessments), (SELECT count(*) FROM flags),
		(SELECT count(*) FROM flags WHERE status <> 'resolved')`, &na, &nf, &nopen); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d people, %d assessments (%.1f each), %d flags (%d unresolved) in %s", people, na, float64(na)/float64(people), nf, nopen,
		time.Since(t0).Round(time.Second))
	pol.DashboardMaxAge = 24 * time.Hour
	rolled, err := casework.New(casework.Deps{Store: cases, Audit: postgres.NewAuditStore(db), Catalog: testfix.Catalog(b),
		Models: testfix.Models(b), Policy: pol, Now: clock.Now})
	if err != nil {
		b.Fatal(err)
	}
	t1 := time.Now()
	scopes, err := rolled.RefreshDashboards(ctx, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("dashboard rollups of %d scopes refreshed in %s", scopes, time.Since(t1).Round(time.Millisecond))
	if os.Getenv("SUNPATH_SCALE_EXPLAIN") != "" {
		for _, overdue := range []bool{false, true} {
			plan, err := postgres.ExplainDue(ctx, url, admin.Principal, pol.Schedule, clock.Now(), overdue, 50)
			if err != nil {
				b.Fatal(err)
			}
			b.Logf("due list (overdue only: %v):\n%s", overdue, plan)
			plan, err = postgres.ExplainSubjects(ctx, url, admin.Principal, casework.SubjectFilter{Schedule: pol.Schedule, Now: clock.Now(), OverdueOnly: overdue, Limit: 50})
			if err != nil {
				b.Fatal(err)
			}
			b.Logf("caseload (overdue only: %v):\n%s", overdue, plan)
		}
	}
	return scaleEnv{svc: rolled, live: svc, now: clock.Now}
}

// scaleAnswers draws answers of inst from the realistic mix: PHQ-9 as
// cmd/sunpath-load draws them, GAD-7 from the same bands scaled to 21.
func scaleAnswers(r *rand.Rand, inst string) json.RawMessage {
	bands := []struct {
		share      float64
		min, max   int
		lastChance float64
	}{{0.45, 0, 4, 0.02}, {0.30, 5, 9, 0.08}, {0.13, 10, 14, 0.20}, {0.08, 15, 19, 0.30}, {0.04, 20, 27, 0.45}}
	u := r.Float64()
	bd := bands[len(bands)-1]
	for _, x := range bands {
		if u < x.share {
			bd = x
			break
		}
		u -= x.share
	}
	total := bd.min + r.IntN(bd.max-bd.min+1)
	n := 9
	if inst == "gad7" {
		n, total = 7, min(total*21/27, 21)
	}
	items := make([]int, n)
	free := n
	if inst == "phq9" { // item 9 only as drawn
		free = 8
		if r.Float64() < bd.lastChance {
			items[8] = 1 + r.IntN(2)
		}
	}
	left := min(total-items[n-1], 3*free)
	for left > 0 {
		i := r.IntN(free)
		if items[i] < 3 {
			items[i]++
			left--
		}
	}
	m := map[string]int{}
	for i, v := range items {
		m[fmt.Sprintf("%s_%d", inst, i+1)] = v
	}
	out, _ := json.Marshal(m)
	return out
}

func execSQL(ctx context.Context, url, sql string, args ...any) error {
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, sql, args...)
	return err
}

func queryRow(ctx context.Context, url, sql string, dest ...any) error {
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	return c.QueryRow(ctx, sql).Scan(dest...)
}
