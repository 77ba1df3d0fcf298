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

// UnitExists implements auth.Store.
func (a *Accounts) UnitExists(ctx context.Context, code string) (bool, error) {
	var ok bool
	err := a.db.withConn(ctx, func(c *pgxpool.Conn) error {
		return c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM units WHERE code = $1)`, code).Scan(&ok)
	})
	return ok, err
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
			        locked_at = CASE WHEN $2 > 0 AND failed_logins + 1 >= $2 THEN coalesce(locked_at, now()) ELSE locked_at END
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

// ChangePassword implements auth.Store: the new hash and the end of every
// other session of the user are one transaction.
func (a *Accounts) ChangePassword(ctx context.Context, userID int64, hash string, keep []byte) error {
	return a.db.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET password_hash = $2, failed_logins = 0, updated_at = now() WHERE id = $1`, userID, hash)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("user %d: %w", userID, auth.ErrNotFound)
		}
		_, err = tx.Exec(ctx, `UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND token_hash <> $2 AND revoked_at IS NULL`, userID, keep)
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

// UpdateUser applies one administrative change to a user and, for anything
// that narrows access, revokes the user's sessions in the same transaction so
// that it takes effect at once. auth.ErrNotFound when the user is unknown.
func (a *Accounts) UpdateUser(ctx context.Context, username string, ch auth.UserChange) error {
	return a.db.inTx(ctx, func(tx pgx.Tx) error {
		var id int64
		err := tx.QueryRow(ctx, `SELECT id FROM users WHERE username = $1 FOR UPDATE`, username).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("user %s: %w", username, auth.ErrNotFound)
		}
		if err != nil {
			return err
		}
		revoke := false
		switch {
		case ch.PasswordHash != "":
			_, err = tx.Exec(ctx, `UPDATE users SET password_hash = $2, failed_logins = 0, locked_at = NULL, updated_at = now() WHERE id = $1`, id, ch.PasswordHash)
			revoke = true
		case ch.Disabled != nil:
			_, err = tx.Exec(ctx, `UPDATE users SET disabled = $2, updated_at = now() WHERE id = $1`, id, *ch.Disabled)
			revoke = *ch.Disabled
		case ch.Unlock:
			_, err = tx.Exec(ctx, `UPDATE users SET failed_logins = 0, locked_at = NULL, updated_at = now() WHERE id = $1`, id)
		case ch.Role != "":
			_, err = tx.Exec(ctx, `UPDATE users SET role = $2, updated_at = now() WHERE id = $1`, id, string(ch.Role))
			revoke = true
		}
		if err != nil || !revoke {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL`, id)
		return err
	})
}

// ListAPIKeys returns every key without its secret, newest first.
func (a *Accounts) ListAPIKeys(ctx context.Context) ([]auth.APIKey, error) {
	var out []auth.APIKey
	err := a.db.withConn(ctx, func(c *pgxpool.Conn) error {
		rows, err := c.Query(ctx, `SELECT id, name, role, unit, prefix, created_at, expires_at, revoked_at FROM api_keys ORDER BY id DESC`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k auth.APIKey
			var role string
			if err := rows.Scan(&k.ID, &k.Name, &role, &k.Unit, &k.Prefix, &k.CreatedAt, &k.ExpiresAt, &k.RevokedAt); err != nil {
				return err
			}
			k.Role = auth.Role(role)
			out = append(out, k)
		}
		return rows.Err()
	})
	return out, err
}

// RevokeAPIKey revokes a key at once; auth.ErrNotFound when there is no live key with that id.
func (a *Accounts) RevokeAPIKey(ctx context.Context, id int64) error {
	return a.db.withConn(ctx, func(c *pgxpool.Conn) error {
		tag, err := c.Exec(ctx, `UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL`, id)
		if err == nil && tag.RowsAffected() == 0 {
			return fmt.Errorf("api key %d: %w", id, auth.ErrNotFound)
		}
		return err
	})
}
