package postgres

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/sunpath/sunpath/internal/audit"
	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/casework"
)

// escalator is the actor of escalations in the audit trail.
var escalator = auth.Principal{Kind: "system", Name: "escalator", Role: "system"}

// Escalate raises the escalation level of every open flag past its
// deadline: to the unit's supervisors at the deadline, to administrators one
// more deadline period later. Rows are claimed with FOR UPDATE SKIP LOCKED,
// so replicas running it at the same time never escalate a flag twice. Each
// escalation is audited and notified in the same transaction.
func (c *Cases) Escalate(ctx context.Context) ([]casework.Flag, error) {
	now := c.now().UTC()
	var out []casework.Flag
	err := c.db.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `UPDATE flags f SET escalation_level = f.escalation_level + 1, escalated_at = $1
			FROM subjects s
			WHERE s.id = f.subject_id AND f.id IN (
				SELECT id FROM flags WHERE status = 'open' AND escalation_level < 2
				   AND deadline + (deadline - raised_at) * escalation_level < $1
				ORDER BY deadline FOR UPDATE SKIP LOCKED LIMIT 500)
			RETURNING `+flagCols, now)
		if err != nil {
			return err
		}
		t := &Tx{c: c, tx: tx, p: escalator}
		for rows.Next() {
			fl, err := t.scanFlag(rows)
			if err != nil {
				rows.Close()
				return err
			}
			out = append(out, fl)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, fl := range out {
			audience := "supervisors:" + fl.Unit
			if fl.EscalationLevel >= 2 {
				audience = "admins"
			}
			detail, _ := json.Marshal(map[string]any{"level": fl.Level, "code": fl.Code, "escalation_level": fl.EscalationLevel, "notify": audience})
			if _, err := recordAudit(ctx, tx, audit.Event{Actor: escalator.Actor(), Role: "system", Action: "flag.escalate",
				ResourceType: "flag", ResourceID: fl.ID, Subject: fl.SubjectID, Outcome: audit.Success, Detail: string(detail)}); err != nil {
				return err
			}
			if err := t.notify(ctx, "flag.escalated", fl, audience); err != nil {
				return err
			}
		}
		return tx.SendBatch(ctx, &t.pending).Close()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Delivery is one queued notification.
type Delivery struct {
	ID         string
	Endpoint   string
	Topic      string
	Payload    []byte
	Attempts   int
	CreatedAt  time.Time
	DeliveryID string
}

// DeliverOutbox claims up to max due notifications (FOR UPDATE SKIP LOCKED:
// no two replicas send the same one at once), calls send for each, up to
// deliverParallel at a time, and records the outcomes in one round trip:
// delivered, or retried with exponential backoff (capped at an hour) until
// maxAttempts, then failed. Delivery is at least once and in no particular
// order: a receiver deduplicates by the delivery id. send must be safe to
// call concurrently.
func (c *Cases) DeliverOutbox(ctx context.Context, max, maxAttempts int, send func(context.Context, Delivery) error) (delivered, failed int, err error) {
	delivered, failed, _, err = c.deliverOutbox(ctx, max, maxAttempts, send)
	return delivered, failed, err
}

// DrainOutbox calls DeliverOutbox until fewer than max are due (a backlog
// is sent at once, not max per tick) or a delivery fails to be sent.
func (c *Cases) DrainOutbox(ctx context.Context, max, maxAttempts int, send func(context.Context, Delivery) error) (delivered, failed int, err error) {
	for ctx.Err() == nil {
		ok, bad, claimed, err := c.deliverOutbox(ctx, max, maxAttempts, send)
		delivered, failed = delivered+ok, failed+bad
		if err != nil || claimed < max || ok < claimed {
			return delivered, failed, err
		}
	}
	return delivered, failed, ctx.Err()
}

// deliverParallel bounds the notifications sent at once by one replica.
const deliverParallel = 8

func (c *Cases) deliverOutbox(ctx context.Context, max, maxAttempts int, send func(context.Context, Delivery) error) (delivered, failed, claimedN int, err error) {
	err = c.db.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, delivery_id::text, endpoint, topic, payload::text, attempts, created_at FROM outbox
			WHERE status = 'pending' AND next_at <= $1 ORDER BY next_at FOR UPDATE SKIP LOCKED LIMIT $2`, c.now(), max)
		if err != nil {
			return err
		}
		type claimed struct {
			row int64
			d   Delivery
			err error
		}
		var batch []claimed
		for rows.Next() {
			var cl claimed
			var payload string
			if err := rows.Scan(&cl.row, &cl.d.DeliveryID, &cl.d.Endpoint, &cl.d.Topic, &payload, &cl.d.Attempts, &cl.d.CreatedAt); err != nil {
				rows.Close()
				return err
			}
			cl.d.Payload = []byte(payload)
			batch = append(batch, cl)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		claimedN = len(batch)
		var g errgroup.Group
		g.SetLimit(deliverParallel)
		for i := range batch {
			g.Go(func() error {
				batch[i].err = send(ctx, batch[i].d)
				return nil
			})
		}
		g.Wait()
		b := &pgx.Batch{}
		for _, cl := range batch {
			attempts := cl.d.Attempts + 1
			switch {
			case cl.err == nil:
				delivered++
				b.Queue(`UPDATE outbox SET status = 'delivered', attempts = $2, delivered_at = $3, last_error = '' WHERE id = $1`, cl.row, attempts, c.now())
			case attempts >= maxAttempts:
				failed++
				b.Queue(`UPDATE outbox SET status = 'failed', attempts = $2, last_error = $3 WHERE id = $1`, cl.row, attempts, truncate(cl.err.Error(), 500))
			default:
				backoff := time.Second << min(attempts, 12)
				if backoff > time.Hour {
					backoff = time.Hour
				}
				b.Queue(`UPDATE outbox SET attempts = $2, next_at = $3, last_error = $4 WHERE id = $1`, cl.row, attempts, c.now().Add(backoff), truncate(cl.err.Error(), 500))
			}
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		delivered, failed = 0, 0
	}
	return delivered, failed, claimedN, err
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// OutboxEntry is a delivery's status, for the supervisor's view.
// OutboxEntry is one webhook delivery as listed for operators.
type OutboxEntry = casework.OutboxEntry

// Outbox lists recent deliveries, newest first.
func (c *Cases) Outbox(ctx context.Context, status string, limit int) ([]OutboxEntry, error) {
	out := []OutboxEntry{}
	err := c.db.withConn(ctx, func(conn *pgxpool.Conn) error {
		rows, err := conn.Query(ctx, `SELECT delivery_id::text, endpoint, topic, status, attempts, created_at, next_at, delivered_at, last_error
			FROM outbox WHERE ($1 = '' OR status = $1) ORDER BY id DESC LIMIT $2`, status, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var e OutboxEntry
			if err := rows.Scan(&e.DeliveryID, &e.Endpoint, &e.Topic, &e.Status, &e.Attempts, &e.CreatedAt, &e.NextAt, &e.DeliveredAt, &e.LastError); err != nil {
				return err
			}
			out = append(out, e)
		}
		return rows.Err()
	})
	return out, err
}

// FlagStats are gauges over unresolved flags, by level.
type FlagStats struct {
	Open, Overdue map[string]int
	OldestAge     map[string]time.Duration
	OutboxPending int
}

// Stats reads the flag and outbox gauges.
func (c *Cases) Stats(ctx context.Context) (FlagStats, error) {
	st := FlagStats{Open: map[string]int{}, Overdue: map[string]int{}, OldestAge: map[string]time.Duration{}}
	err := c.db.withConn(ctx, func(conn *pgxpool.Conn) error {
		rows, err := conn.Query(ctx, `SELECT level, count(*), count(*) FILTER (WHERE deadline < $1),
			extract(epoch FROM $1 - min(raised_at)) FROM flags WHERE status = 'open' GROUP BY level`, c.now())
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var level string
			var n, overdue int
			var age float64
			if err := rows.Scan(&level, &n, &overdue, &age); err != nil {
				return err
			}
			st.Open[level], st.Overdue[level], st.OldestAge[level] = n, overdue, time.Duration(age*float64(time.Second))
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return conn.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE status = 'pending'`).Scan(&st.OutboxPending)
	})
	return st, err
}
