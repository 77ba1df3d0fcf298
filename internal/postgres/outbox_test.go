package postgres_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sunpath/sunpath/internal/audit"
	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/postgres"
	"github.com/sunpath/sunpath/internal/screening"
)

// A backlog of notifications is sent in one drain, several at a time, each
// once; a delivery that fails stops the drain after its batch and is
// retried later. Broken once each: one batch per call (150 of 250 left);
// sends one at a time (at most 1 in flight).
func TestDrainOutbox(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cases, conn := groupEnv(t)
	if _, err := conn.Exec(ctx, `INSERT INTO outbox (delivery_id, endpoint, topic, payload)
		SELECT gen_random_uuid(), 'cms', 'flag.raised', '{}' FROM generate_series(1, 250)`); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var inFlight, most atomic.Int32
	var first atomic.Bool
	send := func(_ context.Context, d postgres.Delivery) error {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		// The first send waits for a second to start (sent one at a time,
		// none ever does).
		if first.CompareAndSwap(false, true) {
			for wait := time.Now().Add(5 * time.Second); most.Load() < 2 && time.Now().Before(wait); {
				time.Sleep(time.Millisecond)
			}
		}
		mu.Lock()
		seen[d.DeliveryID]++
		mu.Unlock()
		return nil
	}
	ok, failed, err := cases.DrainOutbox(ctx, 100, 5, send)
	if err != nil || ok != 250 || failed != 0 {
		t.Fatalf("drain = %d delivered, %d failed, %v; want 250, 0", ok, failed, err)
	}
	if len(seen) != 250 {
		t.Errorf("%d delivery ids sent, want 250", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("delivery %s sent %d times", id, n)
		}
	}
	if m := most.Load(); m < 2 || m > 8 {
		t.Errorf("at most %d sent at once, want 2-8", m)
	}
	if n := count(t, conn, `SELECT count(*) FROM outbox WHERE status = 'delivered' AND attempts = 1 AND delivered_at IS NOT NULL`); n != 250 {
		t.Errorf("%d recorded delivered, want 250", n)
	}

	// A receiver that refuses: the drain stops after one batch.
	if _, err := conn.Exec(ctx, `INSERT INTO outbox (delivery_id, endpoint, topic, payload)
		SELECT gen_random_uuid(), 'cms', 'flag.raised', '{}' FROM generate_series(1, 150)`); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	ok, _, err = cases.DrainOutbox(ctx, 100, 5, func(context.Context, postgres.Delivery) error {
		if calls.Add(1) == 1 {
			return errors.New("receiver down")
		}
		return nil
	})
	if err != nil || ok != 99 || calls.Load() != 100 {
		t.Errorf("drain with a refusal = %d delivered in %d calls, %v; want 99 in 100", ok, calls.Load(), err)
	}
	if n := count(t, conn, `SELECT count(*) FROM outbox WHERE status = 'pending' AND attempts = 1 AND next_at > now() AND last_error = 'receiver down'`); n != 1 {
		t.Errorf("%d deliveries waiting to be retried, want 1", n)
	}
}

// A committed write wakes the sealer, and the delivery job when it queued
// a notification; a refused one wakes neither. Broken once each: no wake
// after a group's COMMIT; none after Write's.
func TestCommitsWakeTheJobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cases, _ := groupEnvConfig(t, func(c *postgres.CasesConfig) { c.Endpoints = []string{"cms"} })
	woke := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	woke(cases.AuditQueued()) // the setup's write
	check := func(what string, audited, queued bool) {
		t.Helper()
		if got := woke(cases.AuditQueued()); got != audited {
			t.Errorf("%s: sealer woken %v, want %v", what, got, audited)
		}
		if got := woke(cases.OutboxQueued()); got != queued {
			t.Errorf("%s: delivery woken %v, want %v", what, got, queued)
		}
	}
	op := postgres.Op{Principal: admin, Subject: "S-1", Audit: audit.Event{Actor: admin.Actor(), Role: "admin", Action: "assessment.create"}}
	add := func(severity string, refuse bool) func(casework.Tx) (postgres.Reply, error) {
		return func(tx casework.Tx) (postgres.Reply, error) {
			subj, err := tx.Subject(ctx, "S-1")
			if err != nil {
				return postgres.Reply{}, err
			}
			total := 5
			now := time.Now()
			a := casework.NewAssessment{Instrument: "phq9", Version: "1", ContentHash: "h", EngineVersion: "1", Language: "en",
				Answers: []byte(`{}`), Result: []byte(`{}`), Total: &total, Severity: severity, AdministeredBy: "t", CompletedAt: now}
			if severity == "severe" {
				a.Flags = []casework.Flag{{Source: "instrument", Code: "suicidal_ideation", Level: screening.LevelCritical, Status: "open", RaisedAt: now, Deadline: now.Add(time.Hour)}}
			}
			if _, err := tx.AddAssessment(ctx, subj, a); err != nil {
				return postgres.Reply{}, err
			}
			if refuse {
				return postgres.Reply{}, casework.ErrConflict
			}
			return postgres.Reply{Status: 201}, nil
		}
	}
	for _, write := range []struct {
		name string
		fn   func(context.Context, postgres.Op, func(casework.Tx) (postgres.Reply, error)) (postgres.Reply, bool, error)
	}{{"alone", cases.Write}, {"grouped", cases.WriteGrouped}} {
		if _, _, err := write.fn(ctx, op, add("minimal", false)); err != nil {
			t.Fatal(err)
		}
		check(write.name+", no flag", true, false)
		if _, _, err := write.fn(ctx, op, add("severe", false)); err != nil {
			t.Fatal(err)
		}
		check(write.name+", a flag", true, true)
		if _, _, err := write.fn(ctx, op, add("severe", true)); !errors.Is(err, casework.ErrConflict) {
			t.Fatalf("refused write: %v", err)
		}
		check(write.name+", refused", false, false)
	}
}
