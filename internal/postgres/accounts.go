package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sunpath/sunpath/internal/auth"
)

// Accounts stores users, sessions and API keys; it implements auth.Store.
type Accounts struct{ db *DB }

// NewAccounts returns the account store on db.
func NewAccounts(db *DB) *Accounts { return &Accounts{db: db} }

var _ auth.Store = (*Accounts)(nil)

// CreateUser stores u; auth.ErrConflict when the username is taken.
func (a *Accounts) CreateUser(ctx context.Context, u auth.User) (int64, error) {
	var id int64
	err := a.db.withConn(ctx, func(c *pgxpool.Conn) error {
		return c.QueryRow(ctx,
			`INSERT INTO users (username, password_hash, role, unit, language) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
			u.Username, u.PasswordHash, string(u.Role), u.Unit, u.Language).Scan(&id)
	})
	if isUniqueViolation(err) {
		return 0, fmt.Errorf("user %s: %w", u.Username, auth.ErrConflict)
	}
	return id, err
}

// CountUsers returns how many users exist.
func (a *Accounts) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := a.db.withConn(ctx, func(c *pgxpool.Conn) error {
		return c.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&n)
	})
	return n, err
}

// UserByName returns the user, or auth.ErrNotFound.
func (a *Accounts) UserByName(ctx context.Context, username string) (auth.User, error) {
	var u auth.User
	var role string
	err := a.db.withConn(ctx, func(c *pgxpool.Conn) error {
		return c.QueryRow(ctx,
			`SELECT id, username, password_hash, role, unit, language, disabled, failed_logins, locked_at IS NOT NULL
			   FROM users WHERE username = $1`, username).
			Scan(&u.ID, &u.Username, &u.PasswordHash, &role, &u.Unit, &u.Language, &u.Disabled, &u.FailedLogins, &u.Locked)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.User{}, fmt.Errorf("user: %w", auth.ErrNotFound)
	}
	u.Role = auth.Role(role)
	return u, err
}

// RecordLogin implements auth.Store.
func (a *Accounts) RecordLogin(ctx context.Context, userID int64, ok bool, max int) (bool, error) {
	var locked bool
	err := a.db.withConn(ctx, func(c *pgxpool.Conn) error {
		if ok {
			_, err := c.Exec(ctx, `UPDATE users SET failed_logins = 0 WHERE id = $1`, userID)
			return err
		}
		return c.QueryRow(ctx,
			`UPDATE users SET failed_logins = failed_logins + 1,
			        locked_at = CASE WHEN failed_logins + 1 >= $2 THEN coalesce(locked_at, now()) ELSE locked_at END
			  WHERE id = $1 RETURNING locked_at IS NOT NULL`, userID, max).Scan(&locked)
	})
	return locked, err
}

// CreateSession implements auth.Store.
func (a *Accounts) CreateSession(ctx context.Context, tokenHash []byte, userID int64, expires time.Time) error {
	return a.db.withConn(ctx, func(c *pgxpool.Conn) error {
		_, err := c.Exec(ctx, `INSERT INTO sessions (token_hash, user_id, expires_at) VALUES ($1, $2, $3)`, tokenHash, userID, expires)
		return err
	})
}

// SessionPrincipal implements auth.Store. Reading the user on every request
// makes a disabled account, a lock or a role change take effect at once.
func (a *Accounts) SessionPrincipal(ctx context.Context, tokenHash []byte, idle time.Duration) (auth.Principal, error) {
	p := auth.Principal{Kind: auth.KindUser}
	var role string
	err := a.db.withConn(ctx, func(c *pgxpool.Conn) error {
		return c.QueryRow(ctx,
			`UPDATE sessions s SET last_seen_at = now()
			   FROM users u
			  WHERE s.token_hash = $1 AND u.id = s.user_id
			    AND s.revoked_at IS NULL AND s.expires_at > now()
			    AND s.last_seen_at > now() - make_interval(secs => $2)
			    AND NOT u.disabled AND u.locked_at IS NULL
			RETURNING u.id, u.username, u.role, u.unit`, tokenHash, idle.Seconds()).
			Scan(&p.ID, &p.Name, &role, &p.Unit)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.Principal{}, fmt.Errorf("session: %w", auth.ErrUnauthorized)
	}
	p.Role = auth.Role(role)
	return p, err
}

// RevokeSession implements auth.Store.
func (a *Accounts) RevokeSession(ctx context.Context, tokenHash []byte) error {
	return a.db.withConn(ctx, func(c *pgxpool.Conn) error {
		_, err := c.Exec(ctx, `UPDATE sessions SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL`, tokenHash)
		return err
	})
}

// CreateAPIKey implements auth.Store.
func (a *Accounts) CreateAPIKey(ctx context.Context, k auth.APIKey, hash []byte) (int64, error) {
	var id int64
	err := a.db.withConn(ctx, func(c *pgxpool.Conn) error {
		return c.QueryRow(ctx,
			`INSERT INTO api_keys (name, role, unit, key_hash, prefix, expires_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
			k.Name, string(k.Role), k.Unit, hash, k.Prefix, k.ExpiresAt).Scan(&id)
	})
	return id, err
}

// APIKeyPrincipal implements auth.Store.
func (a *Accounts) APIKeyPrincipal(ctx context.Context, hash []byte) (auth.Principal, error) {
	p := auth.Principal{Kind: auth.KindAPIKey}
	var role string
	err := a.db.withConn(ctx, func(c *pgxpool.Conn) error {
		return c.QueryRow(ctx,
			`SELECT id, name, role, unit FROM api_keys
			  WHERE key_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`, hash).
			Scan(&p.ID, &p.Name, &role, &p.Unit)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.Principal{}, fmt.Errorf("api key: %w", auth.ErrUnauthorized)
	}
	p.Role = auth.Role(role)
	return p, err
}

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// ListUsers returns every user, ordered by username, without password hashes.
func (a *Accounts) ListUsers(ctx context.Context) ([]auth.User, error) {
	var out []auth.User
	err := a.db.withConn(ctx, func(c *pgxpool.Conn) error {
		rows, err := c.Query(ctx, `SELECT id, username, role, unit, language, disabled, failed_logins, locked_at IS NOT NULL FROM users ORDER BY username`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var u auth.User
			var role string
			if err := rows.Scan(&u.ID, &u.Username, &role, &u.Unit, &u.Language, &u.Disabled, &u.FailedLogins, &u.Locked); err != nil {
				return err
			}
			u.Role = auth.Role(role)
			out = append(out, u)
		}
		return rows.Err()
	})
	return out, err
}
