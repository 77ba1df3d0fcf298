package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sunpath/sunpath/internal/audit"
	"github.com/sunpath/sunpath/internal/pgtest"
	"github.com/sunpath/sunpath/internal/postgres"
)

func signer(t *testing.T, b byte) *audit.Signer {
	t.Helper()
	seed := make([]byte, 32)
	seed[0] = b
	s, err := audit.NewSigner(seed)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func exec(t *testing.T, url, sql string) error {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func TestAuditSealAndVerifyConcurrently(t *testing.T) {
	t.Parallel()
	url := pgtest.NewURL(t)
	cfg := postgres.DefaultConfig()
	cfg.URL = url
	ctx := context.Background()
	// Two "replicas": separate pools, each with its own sealer.
	var stores []*postgres.AuditStore
	for i := 0; i < 2; i++ {
		db, err := postgres.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		stores = append(stores, postgres.NewAuditStore(db))
	}
	s := signer(t, 1)
	if err := stores[0].RegisterKey(ctx, s.Public()); err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 40
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				ev := audit.Event{Actor: fmt.Sprintf("user:w%d", w), Role: "counselor", Action: "test.write", Outcome: audit.Success, RequestID: fmt.Sprint(i)}
				if err := stores[w%2].Record(ctx, ev); err != nil {
					t.Errorf("record: %v", err)
					return
				}
			}
		}(w)
	}
	var sealers sync.WaitGroup
	for _, st := range stores {
		sealers.Add(1)
		go func(st *postgres.AuditStore) {
			defer sealers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := st.Seal(ctx, s, 50); err != nil {
					t.Errorf("seal: %v", err)
					return
				}
			}
		}(st)
	}
	wg.Wait()
	close(stop)
	sealers.Wait()
	for {
		n, err := stores[0].Seal(ctx, s, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	tr, err := stores[1].Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(tr)
	if err != nil {
		t.Fatalf("verify intact trail: %v", err)
	}
	if rep.Events != writers*each || rep.Pending != 0 {
		t.Fatalf("report %+v, want %d chained events and none pending", rep, writers*each)
	}

	// The trail is append-only for the application.
	for _, sql := range []string{
		`UPDATE audit_events SET actor = 'user:mallory' WHERE id = 5`,
		`DELETE FROM audit_events WHERE id = 5`,
		`TRUNCATE audit_events CASCADE`,
		`UPDATE audit_chain SET hash = '\x00' WHERE seq = 1`,
		`DELETE FROM audit_checkpoints`,
	} {
		err := exec(t, url, sql)
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want refusal", sql, err)
		}
	}

	// An owner who disables the guard and edits an event is still caught,
	// and the bad event is named.
	var victim int64
	for _, l := range tr.Links {
		if l.Seq == 100 {
			victim = l.EventID
		}
	}
	if err := exec(t, url, fmt.Sprintf(`ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only;
		UPDATE audit_events SET outcome = 'denied' WHERE id = %d;
		ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only;`, victim)); err != nil {
		t.Fatal(err)
	}
	tr, err = stores[0].Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = audit.Verify(tr)
	var p *audit.Problem
	if !errors.As(err, &p) || p.EventID != victim {
		t.Fatalf("verify after an edit of event %d: %v", victim, err)
	}
}
