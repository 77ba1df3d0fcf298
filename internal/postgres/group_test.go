package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sunpath/sunpath/internal/audit"
	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/pgtest"
	"github.com/sunpath/sunpath/internal/postgres"
	"github.com/sunpath/sunpath/internal/screening"
	"github.com/sunpath/sunpath/internal/testfix"
)

var (
	admin     = auth.Principal{Kind: auth.KindAPIKey, Name: "cms", Role: auth.RoleAdmin}
	counselor = auth.Principal{Kind: auth.KindUser, Name: "carol", Role: auth.RoleCounselor, Unit: "west"}
)

// groupEnv is a case store on a fresh database with subjects S-1…S-4 in unit
// west, S-1 and S-2 on carol's caseload, and a grouping store limited to one
// group at a time.
func groupEnv(t *testing.T) (*postgres.Cases, *pgx.Conn) {
	t.Helper()
	return groupEnvWith(t, nil)
}

// groupEnvWith is groupEnv with a hook on every group transaction.
func groupEnvWith(t *testing.T, onGroup func(units int, committed bool)) (*postgres.Cases, *pgx.Conn) {
	t.Helper()
	return groupEnvConfig(t, func(c *postgres.CasesConfig) { c.OnGroup = onGroup })
}

// groupEnvConfig is groupEnv with the case store's configuration changed by
// set.
func groupEnvConfig(t *testing.T, set func(*postgres.CasesConfig)) (*postgres.Cases, *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	url := pgtest.NewURL(t)
	cfg := postgres.DefaultConfig()
	cfg.URL = url
	db, err := postgres.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	svc := auth.NewService(postgres.NewAccounts(db), auth.DefaultSessionPolicy)
	if err := postgres.NewUnits(db).Create(ctx, postgres.Unit{Code: "west", Name: "West", Agency: "hz"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateUser(ctx, "carol", "correct horse battery", auth.RoleCounselor, "west"); err != nil {
		t.Fatal(err)
	}
	cc := postgres.CasesConfig{Keys: testfix.Keyring(t), Flags: casework.DefaultFlagPolicy, Groups: 1}
	set(&cc)
	cases := postgres.NewCases(db, cc)
	_, _, err = cases.Write(ctx, postgres.Op{Principal: admin, Audit: audit.Event{Actor: admin.Actor(), Role: "admin", Action: "setup"}},
		func(tx casework.Tx) (postgres.Reply, error) {
			if err := tx.PutUnit(ctx, casework.Unit{Code: "west", Name: "West", Agency: "hz"}); err != nil {
				return postgres.Reply{}, err
			}
			for i := 1; i <= 4; i++ {
				in := casework.SubjectInput{DisplayName: "x", Sex: "male", SupervisionType: "parole", Unit: "west"}
				if i <= 2 {
					in.Counselor = "carol"
				}
				if _, _, err := tx.PutSubject(ctx, fmt.Sprintf("S-%d", i), in); err != nil {
					return postgres.Reply{}, err
				}
			}
			return postgres.Reply{Status: 200}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	return cases, conn
}

type submission struct {
	p        auth.Principal
	subject  string
	severity string
	key      string
}

type outcome struct {
	rep      postgres.Reply
	replayed bool
	err      error
	flags    []string
}

// submitGrouped sends subs at once through WriteGrouped, with the store's
// only group held open until every submission is queued behind it, so that
// all of them share the next group transaction.
func submitGrouped(t *testing.T, cases *postgres.Cases, subs []submission) []outcome {
	t.Helper()
	ctx := context.Background()
	release := holdGroup(cases)
	var wg sync.WaitGroup
	out := make([]outcome, len(subs))
	for i, s := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Every other unit reads only the subject's identity and scope.
			ref := i%2 == 1
			op := postgres.Op{Principal: s.p, Subject: s.subject, SubjectRef: ref,
				Audit: audit.Event{Actor: s.p.Actor(), Role: string(s.p.Role), Action: "assessment.create"}}
			if s.key != "" {
				op.Idem = &postgres.Idem{Client: s.p.Actor(), Key: s.key, Hash: []byte(s.key), TTL: time.Hour}
			}
			if s.severity == "severe" {
				op.History = []casework.HistoryRead{ruleHistory} // addWithRule's read, sent with BEGIN
			}
			var flags []string
			rep, replayed, err := cases.WriteGrouped(ctx, op, func(tx casework.Tx) (postgres.Reply, error) {
				subject := tx.Subject
				if ref {
					subject = tx.SubjectRef
				}
				subj, err := subject(ctx, s.subject)
				if err != nil {
					return postgres.Reply{}, err
				}
				if ref && (subj.DisplayName != "" || subj.Profile != nil || subj.Unit != "west" || subj.InternalID() == "") {
					return postgres.Reply{}, fmt.Errorf("subject reference %+v: want identity and scope only", subj)
				}
				total := 22
				a, err := addWithRule(ctx, tx, subj, &total, s.severity)
				flags = nil
				for _, f := range a.Flags {
					flags = append(flags, f.Code)
				}
				return postgres.Reply{Status: 201, Body: []byte(`"` + a.ID + `"`)}, err
			})
			out[i] = outcome{rep, replayed, err, flags}
		}()
	}
	waitQueued(t, cases, len(subs))
	release()
	wg.Wait()
	return out
}

// noErrors fails t at the first unit of out that was refused.
func noErrors(t *testing.T, out []outcome) {
	t.Helper()
	for i, o := range out {
		if o.err != nil {
			t.Fatalf("unit %d: %v", i, o.err)
		}
	}
}

// holdGroup occupies the store's only group transaction until release is
// called (and returns once the holding unit is answered), so that units sent
// meanwhile queue up for the next group together.
func holdGroup(cases *postgres.Cases) (release func()) {
	hold, held, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		cases.WriteGrouped(context.Background(), postgres.Op{Principal: admin, Audit: audit.Event{Actor: admin.Actor(), Role: "admin", Action: "hold"}},
			func(casework.Tx) (postgres.Reply, error) {
				close(held)
				<-hold
				return postgres.Reply{}, errors.New("held")
			})
	}()
	<-held
	return func() { close(hold); <-done }
}

// waitQueued waits until n units wait for a group.
func waitQueued(t *testing.T, cases *postgres.Cases, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for cases.QueuedUnits() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d units queued, want %d", cases.QueuedUnits(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func count(t *testing.T, conn *pgx.Conn, sql string) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Units grouped in one transaction: each is stored once with its own audit
// event; a refused unit (unknown subject, outside the caller's caseload)
// stores nothing and does not disturb the others; a later unit reads the
// writes of the earlier ones (two severe results in a row raise the rule's
// flag, as they would one after another).
func TestGroupedUnits(t *testing.T) {
	t.Parallel()
	cases, conn := groupEnv(t)
	out := submitGrouped(t, cases, []submission{
		{p: counselor, subject: "S-1", severity: "minimal", key: "a"},
		{p: counselor, subject: "S-3", severity: "minimal", key: "b"}, // not carol's
		{p: admin, subject: "S-2", severity: "severe", key: "c"},
		{p: admin, subject: "NOBODY", severity: "minimal", key: "d"},
		{p: admin, subject: "S-2", severity: "severe"},
		{p: counselor, subject: "S-1", severity: "mild", key: "e"},
	})
	for i, want := range []error{nil, casework.ErrOutOfScope, nil, casework.ErrNotFound, nil, nil} {
		if !errors.Is(out[i].err, want) || (want == nil) != (out[i].rep.Status == 201) {
			t.Errorf("unit %d: %v %+v, want %v", i, out[i].err, out[i].rep, want)
		}
	}
	if f := append(out[2].flags, out[4].flags...); len(f) != 1 || f[0] != "persistent_severe_depression" {
		t.Errorf("flags of the two severe results = %v, %v; want persistent_severe_depression on the later one only", out[2].flags, out[4].flags)
	}
	if n := count(t, conn, `SELECT count(*) FROM assessments`); n != 4 {
		t.Errorf("%d assessments stored, want 4", n)
	}
	if n := count(t, conn, `SELECT count(DISTINCT xmin::text) FROM assessments`); n != 1 {
		t.Errorf("assessments written by %d transactions, want 1 (grouped)", n)
	}
	if n := count(t, conn, `SELECT count(*) FROM audit_events WHERE action = 'assessment.create'`); n != 4 {
		t.Errorf("%d audit events, want one per stored assessment (4)", n)
	}
	if n := count(t, conn, `SELECT count(*) FROM idempotency_keys`); n != 3 {
		t.Errorf("%d idempotency records, want 3 (a, c, e)", n)
	}
	if n := count(t, conn, `SELECT count(*) FROM flags`); n != 1 {
		t.Errorf("%d flags, want 1", n)
	}
}

// A group's assessments are one INSERT (coalesce), and each schedule row
// ends at the person's newest result in it (S-3 three times, S-4 once),
// whatever the order of the rows. Broken once (with a statement-level
// trigger tried and left: no cheaper than the row trigger): the oldest taken.
func TestGroupScheduleTakesTheNewest(t *testing.T) {
	t.Parallel()
	cases, conn := groupEnv(t)
	out := submitGrouped(t, cases, []submission{
		{p: admin, subject: "S-3", severity: "minimal", key: "a"},
		{p: admin, subject: "S-4", severity: "mild", key: "b"},
		{p: admin, subject: "S-3", severity: "mild", key: "c"},
		{p: admin, subject: "S-3", severity: "minimal", key: "d"},
	})
	noErrors(t, out)
	if n := count(t, conn, `SELECT count(DISTINCT xmin::text) FROM assessments`); n != 1 {
		t.Errorf("assessments written by %d transactions, want 1", n)
	}
	if n := count(t, conn, `SELECT count(*) FROM screening_schedule c
		JOIN (SELECT subject_id, instrument, max(completed_at) AS newest FROM assessments GROUP BY 1, 2) a USING (subject_id, instrument)
		WHERE c.last_at = a.newest`); n != 2 {
		t.Errorf("%d schedule rows at their person's newest result, want 2 (S-3, S-4)", n)
	}
}

// When the group transaction fails (here: one unit repeats an Idempotency-Key
// already used, another repeats a key of the same group), every unit runs
// again on its own: the repeats replay the first replies, the rest are
// stored once.
func TestGroupFailureRunsUnitsAlone(t *testing.T) {
	t.Parallel()
	cases, conn := groupEnv(t)
	first := submitGrouped(t, cases, []submission{{p: admin, subject: "S-1", severity: "minimal", key: "k1"}})
	if first[0].err != nil {
		t.Fatal(first[0].err)
	}
	out := submitGrouped(t, cases, []submission{
		{p: admin, subject: "S-2", severity: "minimal", key: "k2"},
		{p: admin, subject: "S-1", severity: "minimal", key: "k1"},
		{p: admin, subject: "S-3", severity: "minimal", key: "k3"},
		{p: admin, subject: "S-3", severity: "minimal", key: "k3"},
		{p: admin, subject: "S-4", severity: "minimal"},
	})
	for i, o := range out {
		if o.err != nil || o.rep.Status != 201 {
			t.Fatalf("unit %d: %v %+v", i, o.err, o.rep)
		}
	}
	if !out[1].replayed || string(out[1].rep.Body) != string(first[0].rep.Body) {
		t.Errorf("repeated key k1: replayed=%v %s, want the first reply %s", out[1].replayed, out[1].rep.Body, first[0].rep.Body)
	}
	if out[2].replayed == out[3].replayed || string(out[2].rep.Body) != string(out[3].rep.Body) {
		t.Errorf("key k3 twice in one group: %+v / %+v, want one stored and one replay of it", out[2], out[3])
	}
	if n := count(t, conn, `SELECT count(*) FROM assessments`); n != 4 {
		t.Errorf("%d assessments stored, want 4 (k1, k2, k3, and the one without key)", n)
	}
	if n := count(t, conn, `SELECT count(*) FROM audit_events WHERE action = 'assessment.create'`); n != 4 {
		t.Errorf("%d audit events, want 4", n)
	}
}

// A unit that panics in a group loses the group, not the process: the panic
// reaches the unit's own caller (the server's recovery answers it there) and
// the store goes on grouping the units after it.
func TestGroupUnitPanic(t *testing.T) {
	t.Parallel()
	cases, conn := groupEnv(t)
	ctx := context.Background()
	panicked := make(chan any, 1)
	go func() {
		defer func() { panicked <- recover() }()
		cases.WriteGrouped(ctx, postgres.Op{Principal: admin, Audit: audit.Event{Actor: admin.Actor(), Role: "admin", Action: "boom"}},
			func(casework.Tx) (postgres.Reply, error) {
				panic("boom")
			})
	}()
	if p := <-panicked; p != "boom" {
		t.Fatalf("caller saw %v, want the unit's panic", p)
	}
	out := submitGrouped(t, cases, []submission{{p: admin, subject: "S-1", severity: "minimal"}, {p: admin, subject: "S-2", severity: "minimal"}})
	for i, o := range out {
		if o.err != nil {
			t.Errorf("unit %d: %v", i, o.err)
		}
	}
	if n := count(t, conn, `SELECT count(*) FROM assessments`); n != 2 {
		t.Errorf("%d assessments stored, want 2", n)
	}
}

// Statements in a group run under the group's context: a unit whose client
// went away (its context cancelled) while the group ran must not break a
// query the group depends on. The unit completes, and so do the others.
func TestGroupIgnoresUnitCancellation(t *testing.T) {
	t.Parallel()
	cases, conn := groupEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	release := holdGroup(cases)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i, subject := range []string{"S-1", "S-2", "S-3"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			uctx := context.Background()
			if i == 0 {
				uctx = ctx
			}
			op := postgres.Op{Principal: admin, Subject: subject, Audit: audit.Event{Actor: admin.Actor(), Role: "admin", Action: "assessment.create"}}
			_, _, errs[i] = cases.WriteGrouped(uctx, op, func(tx casework.Tx) (postgres.Reply, error) {
				if i == 0 {
					cancel()                                           // the client goes away while its unit runs…
					if _, err := tx.Subject(uctx, "S-4"); err != nil { // …and the unit reads
						return postgres.Reply{}, err
					}
				}
				subj, err := tx.Subject(uctx, subject)
				if err != nil {
					return postgres.Reply{}, err
				}
				total := 3
				_, err = tx.AddAssessment(uctx, subj, postgres.NewAssessment{Instrument: "phq9", Version: "1", ContentHash: "h", EngineVersion: "1",
					Language: "en", Answers: []byte(`{}`), Result: []byte(`{}`), Total: &total, Severity: "minimal", AdministeredBy: "t",
					CompletedAt: time.Now()})
				return postgres.Reply{Status: 201, Body: []byte(`{}`)}, err
			})
		}()
	}
	waitQueued(t, cases, 3)
	release()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("unit %d: %v", i, err)
		}
	}
	if n := count(t, conn, `SELECT count(DISTINCT xmin::text) FROM assessments`); n != 1 {
		t.Errorf("assessments written by %d transactions, want 1", n)
	}
	if n := count(t, conn, `SELECT count(*) FROM assessments`); n != 3 {
		t.Errorf("%d assessments, want 3", n)
	}
}

// ruleHistory is the read addWithRule makes for a severe result.
var ruleHistory = casework.HistoryRead{Instrument: "phq9", N: 1, Code: "persistent_severe_depression"}

// The history a rule reads is sent with BEGIN (Op.History) and answers the
// rule's read without a round trip inside the group, with what was committed
// before: S-3's last result is mild (after a severe one), so a severe result
// raises nothing; S-4's last is severe, so the first of its two severe
// results raises the rule's flag, and the second reads the first unit's
// writes (its flag, unresolved: nothing more). Broken once each: the
// prefetch ordered oldest first (S-3 flagged); the prefetch used after the
// group wrote for the subject (S-4 flagged twice; and TestGroupedUnits).
func TestGroupPrefetchesHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cases, conn := groupEnv(t)
	for _, s := range []struct{ subject, severity string }{{"S-3", "severe"}, {"S-3", "mild"}, {"S-4", "severe"}} {
		if _, _, err := cases.Write(ctx, postgres.Op{Principal: admin, Audit: audit.Event{Actor: admin.Actor(), Role: "admin", Action: "assessment.create"}},
			func(tx casework.Tx) (postgres.Reply, error) {
				subj, err := tx.Subject(ctx, s.subject)
				if err != nil {
					return postgres.Reply{}, err
				}
				_, err = addWithRule(ctx, tx, subj, nil, s.severity)
				return postgres.Reply{Status: 201}, err
			}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // distinct completion times
	}
	out := submitGrouped(t, cases, []submission{
		{p: admin, subject: "S-3", severity: "severe", key: "a"},
		{p: admin, subject: "S-4", severity: "severe", key: "b"},
		{p: admin, subject: "S-4", severity: "severe", key: "c"},
	})
	noErrors(t, out)
	if len(out[0].flags) != 0 {
		t.Errorf("S-3 (last result mild): flags %v, want none", out[0].flags)
	}
	// The two units of S-4 run in the order they were queued: one of them first.
	if f := append(out[1].flags, out[2].flags...); fmt.Sprint(f) != "[persistent_severe_depression]" {
		t.Errorf("S-4 (last result severe): flags %v and %v, want the rule's flag on the first only", out[1].flags, out[2].flags)
	}
	if n := count(t, conn, `SELECT count(DISTINCT xmin::text) FROM assessments WHERE created_by = 'api_key:cms' AND total = 22`); n != 1 {
		t.Errorf("the group's assessments written by %d transactions, want 1", n)
	}
}

// addWithRule stores a PHQ-9 result with the severity given and, as the
// consecutive-severity rule does, a flag when the result before it was
// severe too (read inside the unit: it must see earlier units' writes).
func addWithRule(ctx context.Context, tx casework.Tx, subj casework.Subject, total *int, severity string) (casework.Assessment, error) {
	now := time.Now()
	var flags []casework.Flag
	if severity == "severe" {
		sev, unresolved, err := tx.RecentSeverities(ctx, subj, "phq9", 1, "persistent_severe_depression")
		if err != nil {
			return casework.Assessment{}, err
		}
		if !unresolved && len(sev) == 1 && sev[0] == "severe" {
			flags = append(flags, casework.Flag{Source: "rule", Code: "persistent_severe_depression", Level: screening.LevelUrgent,
				Status: "open", RaisedAt: now, Deadline: now.Add(time.Hour)})
		}
	}
	return tx.AddAssessment(ctx, subj, casework.NewAssessment{Instrument: "phq9", Version: "1", ContentHash: "h", EngineVersion: "1",
		Language: "en", Answers: []byte(`{}`), Result: []byte(`{}`), Total: total, Severity: severity, AdministeredBy: "t",
		CompletedAt: now, Flags: flags})
}

// TestDuplicateKeysNeverShareATransaction: concurrent duplicates of the
// same Idempotency-Keys never sit in open transactions at once (no group is
// lost on a duplicate key, no two groups wait on each other's records);
// each duplicate is answered by replaying the first. Broken once: without
// the per-key wait the group is lost and every unit runs again alone.
func TestDuplicateKeysNeverShareATransaction(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	lost := 0
	cases, conn := groupEnvWith(t, func(_ int, committed bool) {
		mu.Lock()
		defer mu.Unlock()
		if !committed {
			lost++
		}
	})
	out := submitGrouped(t, cases, []submission{
		{p: admin, subject: "S-1", severity: "minimal", key: "a"},
		{p: admin, subject: "S-2", severity: "minimal", key: "b"},
		{p: admin, subject: "S-2", severity: "minimal", key: "b"},
		{p: admin, subject: "S-1", severity: "minimal", key: "a"},
	})
	replays := 0
	for i, o := range out {
		if o.err != nil || o.rep.Status != 201 {
			t.Fatalf("unit %d: %v %+v", i, o.err, o.rep)
		}
		if o.replayed {
			replays++
		}
	}
	if replays != 2 || string(out[0].rep.Body) != string(out[3].rep.Body) || string(out[1].rep.Body) != string(out[2].rep.Body) {
		t.Errorf("duplicates: %d replays, want 2 replaying the first replies: %+v", replays, out)
	}
	mu.Lock()
	defer mu.Unlock()
	if lost != 0 {
		t.Errorf("%d group transactions lost to duplicate keys, want 0", lost)
	}
	if n := count(t, conn, `SELECT count(*) FROM assessments`); n != 2 {
		t.Errorf("%d assessments stored, want 2", n)
	}
}

// A retry of a committed request in a group is answered as a replay, and
// the rest of its group commits together: before, inserting
// its Idempotency-Key again lost the whole group, so under retries every
// group ran unit by unit (make bench's retry run at half the rate).
func TestGroupKeepsRetriesOut(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var groups []bool
	cases, conn := groupEnvWith(t, func(units int, committed bool) {
		mu.Lock()
		defer mu.Unlock()
		groups = append(groups, committed)
	})
	first := submitGrouped(t, cases, []submission{{p: admin, subject: "S-1", severity: "minimal", key: "k1"}})
	if first[0].err != nil {
		t.Fatal(first[0].err)
	}
	mu.Lock()
	groups = nil
	mu.Unlock()
	out := submitGrouped(t, cases, []submission{
		{p: admin, subject: "S-2", severity: "minimal", key: "k2"},
		{p: admin, subject: "S-1", severity: "minimal", key: "k1"},
		{p: admin, subject: "S-3", severity: "minimal", key: "k3"},
	})
	for i, o := range out {
		if o.err != nil || o.rep.Status != 201 {
			t.Fatalf("unit %d: %v %+v", i, o.err, o.rep)
		}
	}
	if !out[1].replayed || string(out[1].rep.Body) != string(first[0].rep.Body) {
		t.Errorf("retried key k1: replayed=%v %s, want the first reply %s", out[1].replayed, out[1].rep.Body, first[0].rep.Body)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, committed := range groups {
		if !committed {
			t.Errorf("group %d was lost (its units ran alone); want the retry kept out of it: %v", i, groups)
		}
	}
	if n := count(t, conn, `SELECT count(DISTINCT a.xmin::text) FROM assessments a JOIN subjects s ON s.id = a.subject_id WHERE s.external_id IN ('S-2', 'S-3')`); n != 1 {
		t.Errorf("k2 and k3 were stored by %d transactions, want 1 (one group)", n)
	}
	if n := count(t, conn, `SELECT count(*) FROM assessments`); n != 3 {
		t.Errorf("%d assessments stored, want 3 (k1 once, k2, k3)", n)
	}
}

// A retry whose key is stored is answered in its group from the stored
// record, without running again: the reply, or a mismatch for another
// request under the key; once its person is out of the caller's scope, it
// runs alone and is refused, as Write would refuse it. Broken once: retries
// ran alone (fn ran again for each).
func TestGroupReplaysStoredKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cases, conn := groupEnv(t)
	runs := 0
	write := func(key, hash string) (postgres.Reply, bool, error) {
		op := postgres.Op{Principal: counselor, Subject: "S-1",
			Audit: audit.Event{Actor: counselor.Actor(), Role: string(counselor.Role), Action: "assessment.create"},
			Idem:  &postgres.Idem{Client: counselor.Actor(), Key: key, Hash: []byte(hash), TTL: time.Hour}}
		return cases.WriteGrouped(ctx, op, func(tx casework.Tx) (postgres.Reply, error) {
			runs++
			subj, err := tx.Subject(ctx, "S-1")
			if err != nil {
				return postgres.Reply{}, err
			}
			total := 3
			a, err := addWithRule(ctx, tx, subj, &total, "minimal")
			return postgres.Reply{Status: 201, Body: []byte(`"` + a.ID + `"`)}, err
		})
	}
	first, replayed, err := write("k1", "h1")
	if err != nil || replayed || runs != 1 {
		t.Fatalf("first: %+v %v %v after %d runs", first, replayed, err, runs)
	}
	rep, replayed, err := write("k1", "h1")
	if err != nil || !replayed || string(rep.Body) != string(first.Body) || rep.Status != first.Status {
		t.Errorf("retry: %d %s replayed=%v %v; want the first reply %s", rep.Status, rep.Body, replayed, err, first.Body)
	}
	if _, _, err := write("k1", "another request"); !errors.Is(err, postgres.ErrIdempotencyMismatch) {
		t.Errorf("another request under k1: %v, want a mismatch", err)
	}
	if runs != 1 {
		t.Errorf("the unit ran %d times, want once (the retries answered from the record)", runs)
	}
	if _, err := conn.Exec(ctx, `UPDATE subjects SET counselor = '' WHERE external_id = 'S-1'`); err != nil {
		t.Fatal(err)
	}
	if rep, replayed, err := write("k1", "h1"); !errors.Is(err, casework.ErrNotFound) || replayed {
		t.Errorf("retry out of scope: %d %s replayed=%v %v, want not found", rep.Status, rep.Body, replayed, err)
	}
	if n := count(t, conn, `SELECT count(*) FROM assessments`); n != 1 {
		t.Errorf("%d assessments stored, want 1", n)
	}
}

// A person's record and caseload row carry the most pressing level of the
// open flags (a resolved critical one no longer counts). Broken once: the
// least pressing taken instead.
func TestTopFlagLevel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cases, conn := groupEnv(t)
	now := time.Now()
	add := func(levels ...screening.Level) {
		t.Helper()
		_, _, err := cases.Write(ctx, postgres.Op{Principal: admin, Subject: "S-1", Audit: audit.Event{Actor: admin.Actor(), Role: "admin", Action: "assessment.create"}},
			func(tx casework.Tx) (postgres.Reply, error) {
				subj, err := tx.Subject(ctx, "S-1")
				if err != nil {
					return postgres.Reply{}, err
				}
				a := casework.NewAssessment{Instrument: "phq9", Version: "1", ContentHash: "h", EngineVersion: "1", Language: "en",
					Answers: []byte(`{}`), Result: []byte(`{}`), AdministeredBy: "t", CompletedAt: now}
				for i, l := range levels {
					a.Flags = append(a.Flags, casework.Flag{Source: "instrument", Code: fmt.Sprint("code_", l, i), Level: l, Status: "open", RaisedAt: now, Deadline: now.Add(time.Hour)})
				}
				_, err = tx.AddAssessment(ctx, subj, a)
				return postgres.Reply{Status: 201}, err
			})
		if err != nil {
			t.Fatal(err)
		}
	}
	add(screening.LevelReview, screening.LevelUrgent, screening.LevelCritical)
	add(screening.LevelReview)
	if _, err := conn.Exec(ctx, `UPDATE flags SET status = 'resolved', acknowledged_at = now(), resolved_at = now() WHERE level = 'critical'`); err != nil {
		t.Fatal(err)
	}
	_, err := cases.Read(ctx, postgres.Op{Principal: admin, Audit: audit.Event{Actor: admin.Actor(), Role: "admin", Action: "subject.read"}},
		func(tx casework.Tx) (postgres.Reply, error) {
			one, err := tx.Subject(ctx, "S-1")
			if err != nil {
				return postgres.Reply{}, err
			}
			page, err := tx.Subjects(ctx, casework.SubjectFilter{Schedule: casework.DefaultPolicy().Schedule, Now: now, Limit: 10})
			if err != nil {
				return postgres.Reply{}, err
			}
			if len(page) == 0 || page[0].ID != "S-1" {
				t.Fatalf("caseload %+v, want S-1 first", page)
			}
			for _, s := range []casework.Subject{one, page[0]} {
				if s.TopFlagLevel != screening.LevelUrgent || s.OpenFlags != 3 {
					t.Errorf("top level %q of %d open flags, want urgent of 3", s.TopFlagLevel, s.OpenFlags)
				}
			}
			if page[1].TopFlagLevel != "" || page[1].OpenFlags != 0 {
				t.Errorf("S-2: top level %q of %d open flags, want none", page[1].TopFlagLevel, page[1].OpenFlags)
			}
			return postgres.Reply{}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
}

// A follow-up carries its person's scope and end of supervision (for the
// due lists' index-only stream) and follows the person's changes: a
// transfer moves it to the new unit's lists, an ended supervision takes it
// off them. Broken once: the person's update trigger dropped.
func TestFollowUpsFollowTheirPerson(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cases, conn := groupEnv(t)
	now := time.Now()
	_, _, err := cases.Write(ctx, postgres.Op{Principal: admin, Subject: "S-1", Audit: audit.Event{Actor: admin.Actor(), Role: "admin", Action: "assessment.create"}},
		func(tx casework.Tx) (postgres.Reply, error) {
			if err := tx.PutUnit(ctx, casework.Unit{Code: "east", Name: "East", Agency: "hz"}); err != nil {
				return postgres.Reply{}, err
			}
			subj, err := tx.Subject(ctx, "S-1")
			if err != nil {
				return postgres.Reply{}, err
			}
			_, err = tx.AddAssessment(ctx, subj, casework.NewAssessment{Instrument: "asq", Version: "1", ContentHash: "h", EngineVersion: "1", Language: "en",
				Answers: []byte(`{}`), Result: []byte(`{}`), AdministeredBy: "t", CompletedAt: now.Add(-time.Hour),
				Flags: []casework.Flag{{Source: "instrument", Code: "suicide_risk", Level: screening.LevelUrgent, Status: "open", RaisedAt: now, Deadline: now.Add(time.Hour)}}})
			return postgres.Reply{Status: 201}, err
		})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `UPDATE flags SET status = 'resolved', acknowledged_at = now(), resolved_at = now(), follow_up_due = now() - interval '1 day'`); err != nil {
		t.Fatal(err)
	}
	sched := casework.DefaultPolicy().Schedule
	followUps := func(p auth.Principal) int {
		t.Helper()
		n := 0
		_, err := cases.Read(ctx, postgres.Op{Principal: p, Audit: audit.Event{Actor: p.Actor(), Role: string(p.Role), Action: "due.read"}},
			func(tx casework.Tx) (postgres.Reply, error) {
				for _, subjects := range [][]string{nil, {"S-1"}} { // the streams, and one person's rows
					due, err := tx.Due(ctx, casework.DueFilter{Schedule: sched, Subjects: subjects, OverdueOnly: true, Now: now, Limit: 50})
					if err != nil {
						return postgres.Reply{}, err
					}
					for _, d := range due {
						if d.Reason == casework.DueFollowUp && d.SubjectID == "S-1" {
							n++
						}
					}
				}
				return postgres.Reply{}, nil
			})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	west := auth.Principal{Kind: auth.KindUser, Name: "sw", Role: auth.RoleSupervisor, Unit: "west"}
	east := auth.Principal{Kind: auth.KindUser, Name: "se", Role: auth.RoleSupervisor, Unit: "east"}
	check := func(when string, want map[string]int) {
		t.Helper()
		for name, p := range map[string]auth.Principal{"carol": counselor, "west": west, "east": east, "admin": admin} {
			if got := followUps(p); got != want[name] {
				t.Errorf("%s: %s sees the follow-up %d times, want %d", when, name, got, want[name])
			}
		}
	}
	check("set", map[string]int{"carol": 2, "west": 2, "admin": 2})
	if _, err := conn.Exec(ctx, `UPDATE subjects SET unit = 'east', counselor = '' WHERE external_id = 'S-1'`); err != nil {
		t.Fatal(err)
	}
	check("transferred", map[string]int{"east": 2, "admin": 2})
	if _, err := conn.Exec(ctx, `UPDATE subjects SET supervision_end = current_date - 1 WHERE external_id = 'S-1'`); err != nil {
		t.Fatal(err)
	}
	check("ended", map[string]int{})
}
