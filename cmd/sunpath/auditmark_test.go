package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sunpath/sunpath/internal/audit"
	"github.com/sunpath/sunpath/internal/pgtest"
	"github.com/sunpath/sunpath/internal/postgres"
	"github.com/sunpath/sunpath/internal/sealed"
)

// auditFixture is a migrated database with a checkpoint signer, sealing
// audit events the way the server's sealer does.
type auditFixture struct {
	t      *testing.T
	url    string
	store  *postgres.AuditStore
	signer *audit.Signer
	pub    string // base64, for --key
}

func newAuditFixture(t *testing.T) *auditFixture {
	t.Helper()
	url := pgtest.NewURL(t)
	cfg := postgres.DefaultConfig()
	cfg.URL = url
	db, err := postgres.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	seed, _ := base64.StdEncoding.DecodeString(sealed.NewKey())
	s, err := audit.NewSigner(seed)
	if err != nil {
		t.Fatal(err)
	}
	f := &auditFixture{t: t, url: url, store: postgres.NewAuditStore(db), signer: s, pub: base64.StdEncoding.EncodeToString(s.Public())}
	if err := f.store.RegisterKey(context.Background(), s.Public()); err != nil {
		t.Fatal(err)
	}
	return f
}

// record writes n events and seals them under one new checkpoint.
func (f *auditFixture) record(n int) {
	f.t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i++ {
		if err := f.store.Record(ctx, audit.Event{Actor: "user:alice", Role: "counselor", Action: "subject.read", ResourceType: "subject",
			ResourceID: fmt.Sprint(i), Outcome: audit.Success}); err != nil {
			f.t.Fatal(err)
		}
	}
	if got, err := f.store.Seal(ctx, f.signer, 1000); err != nil || got != n {
		f.t.Fatalf("sealed %d (%v), want %d", got, err, n)
	}
}

// verify runs `sunpath audit verify --key PUB` with extra arguments.
func (f *auditFixture) verify(args ...string) (string, error) {
	var out strings.Builder
	err := run(context.Background(), append([]string{"--database-url", f.url, "audit", "verify", "--key", f.pub}, args...), strings.NewReader(""), &out, io.Discard)
	return out.String(), err
}

// superuserSQL runs statements as the test server's superuser, who (like a
// database owner) can switch the audit trail's triggers off.
func superuserSQL(t *testing.T, url string, sql ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, s := range sql {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

const triggersOff = `ALTER TABLE audit_events DISABLE TRIGGER USER; ALTER TABLE audit_chain DISABLE TRIGGER USER; ALTER TABLE audit_checkpoints DISABLE TRIGGER USER`
const triggersOn = `ALTER TABLE audit_events ENABLE TRIGGER USER; ALTER TABLE audit_chain ENABLE TRIGGER USER; ALTER TABLE audit_checkpoints ENABLE TRIGGER USER`

// TestAuditVerifySinceDetectsTruncation: deleting the newest events with
// their chain links and checkpoints leaves a trail that verifies on its own;
// with a checkpoint exported before the deletion, verify fails naming the
// file.
func TestAuditVerifySinceDetectsTruncation(t *testing.T) {
	t.Parallel()
	f := newAuditFixture(t)
	f.record(2) // checkpoint at 2
	f.record(3) // checkpoint at 5, exported below
	file := filepath.Join(t.TempDir(), "checkpoint.json")
	var out strings.Builder
	if err := run(context.Background(), []string{"--database-url", f.url, "audit", "checkpoint", "--out", file, "--key", f.pub}, strings.NewReader(""), &out, io.Discard); err != nil {
		t.Fatalf("audit checkpoint: %v", err)
	}
	var kept map[string]any
	b, _ := os.ReadFile(file)
	if err := json.Unmarshal(b, &kept); err != nil {
		t.Fatalf("checkpoint file %s: %v", b, err)
	}
	var fifth int64
	superuserConn(t, f.url).QueryRow(context.Background(), `SELECT event_id FROM audit_chain WHERE seq = 5`).Scan(&fifth)
	for k, want := range map[string]any{"seq": float64(5), "event_id": float64(fifth)} {
		if kept[k] != want {
			t.Errorf("checkpoint file %s = %v, want %v", k, kept[k], want)
		}
	}
	for _, k := range []string{"hash", "signature", "key_id", "at"} {
		if s, _ := kept[k].(string); s == "" {
			t.Errorf("checkpoint file has no %s: %s", k, b)
		}
	}
	f.record(3) // checkpoint at 8
	if out, err := f.verify("--since", file); err != nil || !strings.Contains(out, "contains the checkpoint") {
		t.Fatalf("verify --since on the intact trail: %v\n%s", err, out)
	}

	// Cut the trail back to position 3: events, links and checkpoints after it.
	superuserSQL(t, f.url, triggersOff,
		`CREATE TEMP TABLE cut AS SELECT event_id FROM audit_chain WHERE seq > 3`,
		`DELETE FROM audit_chain WHERE seq > 3`,
		`DELETE FROM audit_checkpoints WHERE seq > 3`,
		`DELETE FROM audit_events WHERE id IN (SELECT event_id FROM cut)`,
		triggersOn)
	// On its own, the shorter trail is consistent (checkpoint 2 still holds)...
	if out, err := f.verify(); err != nil {
		t.Fatalf("verify of the cut trail without --since failed (%v): this test assumes the cut is consistent\n%s", err, out)
	}
	// ...but it no longer contains the kept checkpoint.
	_, err := f.verify("--since", file)
	if err == nil || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), "deleted") {
		t.Fatalf("verify --since of the cut trail = %v, want a failure naming %s and the deletion", err, file)
	}

	// A trail rewritten past the kept checkpoint (same length, other events)
	// fails too: re-chaining needs no key, only the checkpoints do.
	g := newAuditFixture(t)
	g.record(4)
	file2 := filepath.Join(t.TempDir(), "checkpoint.json")
	if err := run(context.Background(), []string{"--database-url", g.url, "audit", "checkpoint", "--out", file2, "--key", g.pub}, strings.NewReader(""), io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	superuserSQL(t, g.url, triggersOff, `DELETE FROM audit_chain`, `DELETE FROM audit_checkpoints`, `DELETE FROM audit_events`, triggersOn)
	ctx := context.Background()
	for i := 0; i < 4; i++ {
		g.store.Record(ctx, audit.Event{Actor: "user:mallory", Role: "admin", Action: "subject.read", Outcome: audit.Success})
	}
	if _, err := g.store.Seal(ctx, nil, 1000); err != nil { // the attacker cannot sign
		t.Fatal(err)
	}
	if _, err := g.verify(); err != nil {
		t.Fatalf("verify of the re-chained trail without --since: %v (this test assumes it passes)", err)
	}
	if _, err := g.verify("--since", file2); err == nil || !strings.Contains(err.Error(), file2) {
		t.Fatalf("verify --since of a re-chained trail = %v, want a failure naming %s", err, file2)
	}
}

// TestAuditVerifyDetectsGap: event ids come from an identity column, which
// leaves gaps wherever a transaction rolled back, so they are not checked
// for gaps. The chain's position (seq) is gap-free by construction (the
// sealer numbers links under its lock, in the transaction that inserts
// them): a link removed from the middle is a gap in it, and fails verify.
func TestAuditVerifyDetectsGap(t *testing.T) {
	t.Parallel()
	f := newAuditFixture(t)
	f.record(3)
	// A rolled-back change leaves a hole in the event ids: not tampering.
	superuserSQL(t, f.url, `BEGIN; INSERT INTO audit_events (actor, role, action, outcome) VALUES ('user:bob', 'counselor', 'subject.put', 'success'); ROLLBACK`)
	f.record(3)
	var ids []int64
	rows, _ := superuserConn(t, f.url).Query(context.Background(), `SELECT event_id FROM audit_chain ORDER BY seq`)
	ids, _ = pgx.CollectRows(rows, pgx.RowTo[int64])
	if len(ids) != 6 || ids[3] == ids[2]+1 {
		t.Fatalf("event ids %v: want six with a gap after the third", ids)
	}
	if out, err := f.verify(); err != nil {
		t.Fatalf("verify with a gap in event ids (a rolled-back transaction): %v\n%s", err, out)
	}
	// Remove the fourth link and its event: the chain skips position 4.
	superuserSQL(t, f.url, triggersOff, fmt.Sprintf(`DELETE FROM audit_chain WHERE seq = 4; DELETE FROM audit_events WHERE id = %d`, ids[3]), triggersOn)
	_, err := f.verify()
	if err == nil || !strings.Contains(err.Error(), "chain position 5 where 4 was expected") {
		t.Fatalf("verify with link 4 removed = %v, want a failure naming the gap at position 4", err)
	}
}

// superuserConn is a connection as the test server's superuser, closed when
// t ends.
func superuserConn(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}
