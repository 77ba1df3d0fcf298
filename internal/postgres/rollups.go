package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sunpath/sunpath/internal/audit"
	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/casework"
)

// Figures runs fn as p in one read-only snapshot, on the read replica when
// one is configured (falling back to the primary when it is unavailable),
// outside a unit of work and unaudited: for the periodic refresh of
// figures that hold no person's data (casework.RefreshDashboards).
func (c *Cases) Figures(ctx context.Context, p auth.Principal, fn func(casework.Tx) error) error {
	run := func(db *DB) error {
		return db.withConn(ctx, func(pc *pgxpool.Conn) error {
			return pgx.BeginTxFunc(ctx, pc, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
				t := &Tx{c: c, tx: tx, p: p, ev: &audit.Event{}}
				if err := fn(t); err != nil {
					return err
				}
				if len(t.pending.QueuedQueries) > 0 {
					return fmt.Errorf("figures: %w", errReplicaWrite)
				}
				return nil
			})
		})
	}
	if c.replica != nil {
		err := run(c.replica)
		if !errors.Is(err, ErrUnavailable) || ctx.Err() != nil {
			return err
		}
	}
	return run(c.db)
}

// PutRollups replaces every stored dashboard rollup with rs, at once.
func (c *Cases) PutRollups(ctx context.Context, rs []casework.Rollup) error {
	return c.db.inTx(ctx, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`DELETE FROM dashboard_rollups`)
		for _, r := range rs {
			b.Queue(`INSERT INTO dashboard_rollups (scope, as_of, body) VALUES ($1, $2, $3)`, r.Scope, r.AsOf, r.Body)
		}
		return tx.SendBatch(ctx, b).Close()
	})
}

// Rollup returns the stored rollup of scope; found is false when there is
// none.
func (t *Tx) Rollup(ctx context.Context, scope string, have time.Time) (r casework.Rollup, found bool, err error) {
	r.Scope = scope
	err = t.tx.QueryRow(ctx, `SELECT as_of, CASE WHEN as_of = $2 THEN NULL ELSE body END FROM dashboard_rollups WHERE scope = $1`,
		scope, have).Scan(&r.AsOf, &r.Body)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, false, nil
	}
	r.AsOf = r.AsOf.UTC()
	return r, err == nil, err
}
