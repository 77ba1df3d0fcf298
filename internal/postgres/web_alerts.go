package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/casework"
)

// OpenAlerts implements casework.Store: one indexed read (flags_open) of
// the open critical and urgent flags in p's scope, outside a transaction.
func (c *Cases) OpenAlerts(ctx context.Context, p auth.Principal) (casework.Alerts, error) {
	role, name, scope := scopeOf(p)
	var a casework.Alerts
	var latest *string
	var at *time.Time
	err := c.db.withConn(ctx, func(conn *pgxpool.Conn) error {
		return conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE f.level = 'critical'), count(*) FILTER (WHERE f.level = 'urgent'),
			(array_agg(f.id::text ORDER BY f.raised_at DESC, f.id))[1], max(f.raised_at)
			FROM flags f JOIN subjects s ON s.id = f.subject_id
			WHERE f.status = 'open' AND f.level IN ('critical', 'urgent')
			  AND subject_visible(s.unit, s.counselor, s.agency, $1, $2, $3) AND `+scopeHint(p, "s"), role, name, scope).
			Scan(&a.Critical, &a.Urgent, &latest, &at)
	})
	if latest != nil {
		a.Latest = *latest
	}
	if at != nil {
		a.LatestAt = *at
	}
	return a, err
}
