package postgres

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sunpath/sunpath/internal/audit"
)

// AuditStore writes, seals, reads and verifies the audit trail.
type AuditStore struct{ db *DB }

// NewAuditStore returns the audit store on db.
func NewAuditStore(db *DB) *AuditStore { return &AuditStore{db: db} }

var insertAuditSQL = coalescable(`WITH e AS (
	INSERT INTO audit_events (actor, role, action, resource_type, resource_id, subject, outcome, request_id, detail)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, coalesce($9::jsonb, '{}'::jsonb)) RETURNING id)
INSERT INTO audit_pending (event_id) SELECT id FROM e RETURNING event_id`)

// recordAudit appends ev inside tx: no audit, no change.
func recordAudit(ctx context.Context, tx pgx.Tx, ev audit.Event) (int64, error) {
	var id int64
	err := tx.QueryRow(ctx, insertAuditSQL, auditArgs(ev)...).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("record audit event: %w", err)
	}
	return id, nil
}

func auditArgs(ev audit.Event) []any {
	var detail *string
	if ev.Detail != "" {
		detail = &ev.Detail
	}
	return []any{ev.Actor, ev.Role, ev.Action, ev.ResourceType, ev.ResourceID, ev.Subject, string(ev.Outcome), ev.RequestID, detail}
}

// Record appends one event in its own transaction (denials, reads without a
// change, failures).
func (s *AuditStore) Record(ctx context.Context, ev audit.Event) error {
	return s.db.inTx(ctx, func(tx pgx.Tx) error {
		_, err := recordAudit(ctx, tx, ev)
		return err
	})
}

// sealReadSQL reads the first $1 events of the sealer's queue: the queue's
// ids, then those events by primary key. As a join, the plan made with the
// queue's statistics (which lag: its rows are replaced every second) merged
// it with audit_events read from the trail's first event, a cost that grew
// with the whole trail (measured: 62 µs an event after 75,000).
const sealReadSQL = `SELECT e.id, e.at, e.actor, e.role, e.action, e.resource_type, e.resource_id, e.subject,
	       e.outcome, e.request_id, e.detail::text
	  FROM audit_events e
	 WHERE e.id = ANY (ARRAY(SELECT event_id FROM audit_pending ORDER BY event_id LIMIT $1))
	 ORDER BY e.id`

// sealLock is the advisory lock key that makes one sealer run at a time
// across all replicas.
const sealLock = 7_270_001

// Seal links up to max pending events into the chain, in event-id order,
// and, with a signer, signs a checkpoint of the new head (also when nothing
// was pending but the head has none yet: events sealed without a signer are
// signed by the next run with one). It returns how many it sealed; 0 with
// no error when another replica holds the sealer lock.
func (s *AuditStore) Seal(ctx context.Context, signer *audit.Signer, max int) (int, error) {
	n := 0
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		var got bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, sealLock).Scan(&got); err != nil || !got {
			return err
		}
		seq := int64(0)
		prev := audit.Genesis
		err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit_chain ORDER BY seq DESC LIMIT 1`).Scan(&seq, &prev)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		rows, err := tx.Query(ctx, sealReadSQL, max)
		if err != nil {
			return err
		}
		events, err := pgx.CollectRows(rows, scanEvent)
		if err != nil {
			return err
		}
		if len(events) == 0 {
			if signer == nil || seq == 0 {
				return nil
			}
			var signed bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM audit_checkpoints WHERE seq = $1)`, seq).Scan(&signed); err != nil || signed {
				return err
			}
			return s.checkpoint(ctx, tx, signer, seq, prev)
		}
		seqs := make([]int64, len(events))
		ids := make([]int64, len(events))
		prevs := make([][]byte, len(events))
		hashes := make([][]byte, len(events))
		for i, e := range events {
			seq++
			h := audit.Hash(prev, e)
			seqs[i], ids[i], prevs[i], hashes[i] = seq, e.ID, prev, h
			prev = h
		}
		if _, err := tx.Exec(ctx, `INSERT INTO audit_chain (seq, event_id, prev_hash, hash)
			SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[])`, seqs, ids, prevs, hashes); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM audit_pending WHERE event_id = ANY($1)`, ids); err != nil {
			return err
		}
		n = len(events)
		if signer != nil {
			return s.checkpoint(ctx, tx, signer, seq, prev)
		}
		return nil
	})
	return n, err
}

// checkpoint signs the chain's head seq, hash.
func (s *AuditStore) checkpoint(ctx context.Context, tx pgx.Tx, signer *audit.Signer, seq int64, hash []byte) error {
	cp := signer.Sign(seq, hash, time.Now())
	_, err := tx.Exec(ctx, `INSERT INTO audit_checkpoints (seq, hash, at, key_id, signature) VALUES ($1, $2, $3, $4, $5)`,
		cp.Seq, cp.Hash, cp.At, cp.KeyID, cp.Signature)
	return err
}

func scanEvent(row pgx.CollectableRow) (audit.Event, error) {
	var e audit.Event
	var outcome string
	err := row.Scan(&e.ID, &e.At, &e.Actor, &e.Role, &e.Action, &e.ResourceType, &e.ResourceID, &e.Subject, &outcome, &e.RequestID, &e.Detail)
	e.Outcome = audit.Outcome(outcome)
	e.At = e.At.UTC()
	return e, err
}

// RegisterKey records a checkpoint public key (idempotent).
func (s *AuditStore) RegisterKey(ctx context.Context, pub ed25519.PublicKey) error {
	return s.db.withConn(ctx, func(c *pgxpool.Conn) error {
		_, err := c.Exec(ctx, `INSERT INTO audit_keys (key_id, public_key) VALUES ($1, $2) ON CONFLICT DO NOTHING`, audit.KeyID(pub), []byte(pub))
		return err
	})
}

// Load reads the whole trail for verification, in one repeatable-read
// snapshot so that concurrent sealing cannot make it look inconsistent.
func (s *AuditStore) Load(ctx context.Context) (audit.Trail, error) {
	t := audit.Trail{Events: map[int64]audit.Event{}, Pending: map[int64]bool{}, Keys: map[string]ed25519.PublicKey{}}
	c, err := s.db.acquire(ctx)
	if err != nil {
		return t, err
	}
	defer c.Release()
	err = pgx.BeginTxFunc(ctx, c, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, at, actor, role, action, resource_type, resource_id, subject, outcome, request_id, detail::text FROM audit_events`)
		if err != nil {
			return err
		}
		events, err := pgx.CollectRows(rows, scanEvent)
		if err != nil {
			return err
		}
		for _, e := range events {
			t.Events[e.ID] = e
		}
		rows, err = tx.Query(ctx, `SELECT seq, event_id, prev_hash, hash FROM audit_chain ORDER BY seq`)
		if err != nil {
			return err
		}
		t.Links, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (audit.Link, error) {
			var l audit.Link
			return l, r.Scan(&l.Seq, &l.EventID, &l.PrevHash, &l.Hash)
		})
		if err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT event_id FROM audit_pending`)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		for _, id := range ids {
			t.Pending[id] = true
		}
		rows, err = tx.Query(ctx, `SELECT seq, hash, at, key_id, signature FROM audit_checkpoints ORDER BY seq`)
		if err != nil {
			return err
		}
		t.Checkpoints, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (audit.Checkpoint, error) {
			var cp audit.Checkpoint
			err := r.Scan(&cp.Seq, &cp.Hash, &cp.At, &cp.KeyID, &cp.Signature)
			return cp, err
		})
		if err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT key_id, public_key FROM audit_keys`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var pub []byte
			if err := rows.Scan(&id, &pub); err != nil {
				return err
			}
			t.Keys[id] = ed25519.PublicKey(pub)
		}
		return rows.Err()
	})
	return t, translate(err)
}

// AuditFilter selects events for GET /v1/audit.
type AuditFilter = audit.Filter

// List returns events matching f, newest first.
func (s *AuditStore) List(ctx context.Context, f AuditFilter) ([]audit.Event, error) {
	var out []audit.Event
	err := s.db.withConn(ctx, func(c *pgxpool.Conn) error {
		rows, err := c.Query(ctx, `SELECT id, at, actor, role, action, resource_type, resource_id, subject, outcome, request_id, detail::text
			  FROM audit_events
			 WHERE ($1 = '' OR subject = $1) AND ($2 = '' OR actor = $2)
			   AND ($3::timestamptz IS NULL OR at >= $3) AND ($4::timestamptz IS NULL OR at < $4)
			   AND ($5 = 0 OR id < $5)
			 ORDER BY id DESC LIMIT $6`, f.Subject, f.Actor, nullTime(f.From), nullTime(f.To), f.BeforeID, f.Limit)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, scanEvent)
		return err
	})
	return out, err
}

// AuditStats are gauges for metrics.
type AuditStats struct {
	Pending        int64
	LastCheckpoint time.Time
}

// Stats reports the sealing backlog and the last checkpoint's time.
func (s *AuditStore) Stats(ctx context.Context) (AuditStats, error) {
	var st AuditStats
	var last *time.Time
	err := s.db.withConn(ctx, func(c *pgxpool.Conn) error {
		return c.QueryRow(ctx, `SELECT (SELECT count(*) FROM audit_pending), (SELECT max(at) FROM audit_checkpoints)`).Scan(&st.Pending, &last)
	})
	if last != nil {
		st.LastCheckpoint = *last
	}
	return st, err
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
