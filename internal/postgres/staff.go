package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/sealed"
)

// PutStaffName sets a staff account's name (sealed); ErrNotFound when
// there is no such account.
func (t *Tx) PutStaffName(ctx context.Context, username, name string) error {
	tag, err := t.tx.Exec(ctx, `INSERT INTO staff_names (username, name) SELECT username, $2 FROM users WHERE username = $1
		ON CONFLICT (username) DO UPDATE SET name = EXCLUDED.name, updated_at = now()`,
		username, t.seal([]byte(name), "staff_names", "name", username))
	if err == nil && tag.RowsAffected() == 0 {
		return fmt.Errorf("user %s: %w", username, casework.ErrNotFound)
	}
	return err
}

// StaffNames returns every staff account's name by username, outside a
// unit of work: the UI names the people who acted with them.
func (c *Cases) StaffNames(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	err := c.db.withConn(ctx, func(pc *pgxpool.Conn) error {
		rows, err := pc.Query(ctx, `SELECT username, name FROM staff_names`)
		if err != nil {
			return err
		}
		var user string
		var name []byte
		_, err = pgx.ForEachRow(rows, []any{&user, &name}, func() error {
			plain, err := c.keys.Open(name, sealed.AD("staff_names", "name", user))
			if err != nil {
				return fmt.Errorf("staff name of %s: %w", user, err)
			}
			out[user] = string(plain)
			return nil
		})
		return err
	})
	return out, err
}
