package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sunpath/sunpath/internal/auth"
)

// PeekSessionPrincipal implements auth.Store: the checks of
// SessionPrincipal, without setting last_seen_at.
func (a *Accounts) PeekSessionPrincipal(ctx context.Context, tokenHash []byte, idle time.Duration) (auth.Principal, error) {
	p := auth.Principal{Kind: auth.KindUser}
	var role string
	err := a.db.withConn(ctx, func(c *pgxpool.Conn) error {
		return c.QueryRow(ctx,
			`SELECT u.id, u.username, u.role, u.unit
			   FROM sessions s JOIN users u ON u.id = s.user_id
			  WHERE s.token_hash = $1
			    AND s.revoked_at IS NULL AND s.expires_at > now()
			    AND s.last_seen_at > now() - make_interval(secs => $2)
			    AND NOT u.disabled AND u.locked_at IS NULL`, tokenHash, idle.Seconds()).
			Scan(&p.ID, &p.Name, &role, &p.Unit)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.Principal{}, fmt.Errorf("session: %w", auth.ErrUnauthorized)
	}
	p.Role = auth.Role(role)
	return p, err
}
