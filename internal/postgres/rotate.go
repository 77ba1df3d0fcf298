package postgres

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/sunpath/sunpath/internal/sealed"
)

// sealedColumns lists every column holding a sealed value, by table.
var sealedColumns = []struct{ table, column string }{
	{"subjects", "display_name"},
	{"subjects", "profile"},
	{"assessments", "answers"},
	{"screening_sessions", "answers"},
	{"flags", "resolution_note"},
	{"overrides", "note"},
	{"overrides", "decision_note"},
	{"tier_decisions", "note"},
	{"recommendations", "explanation_sealed"},
}

// sealLegacyExplanations seals the explanations of recommendations written
// before explanations were sealed (migration 0008), a batch per transaction.
func sealLegacyExplanations(ctx context.Context, db *DB, keys *sealed.Keyring) (int, error) {
	total := 0
	for {
		n := 0
		err := db.inTx(ctx, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, `SELECT id, explanation::text FROM recommendations WHERE explanation IS NOT NULL LIMIT 500 FOR UPDATE`)
			if err != nil {
				return err
			}
			type row struct {
				id uuid.UUID
				v  string
			}
			var batch []row
			for rows.Next() {
				var r row
				if err := rows.Scan(&r.id, &r.v); err != nil {
					rows.Close()
					return err
				}
				batch = append(batch, r)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			for _, r := range batch {
				v := keys.Seal([]byte(r.v), sealed.AD("recommendations", "explanation_sealed", r.id.String()))
				if _, err := tx.Exec(ctx, `UPDATE recommendations SET explanation = NULL, explanation_sealed = $2 WHERE id = $1`, r.id, v); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		total += n
		if n == 0 {
			return total, nil
		}
	}
}

// RotateKeys re-seals every value not sealed with the active key, a batch
// per transaction, and returns how many it changed. It can be interrupted
// and run again.
func RotateKeys(ctx context.Context, db *DB, keys *sealed.Keyring) (int, error) {
	total, err := sealLegacyExplanations(ctx, db, keys)
	if err != nil {
		return total, err
	}
	for _, sc := range sealedColumns {
		for {
			n := 0
			err := db.inTx(ctx, func(tx pgx.Tx) error {
				// Values sealed with the active key start with its id.
				prefix := append([]byte{1, byte(len(keys.Active()))}, keys.Active()...)
				rows, err := tx.Query(ctx, fmt.Sprintf(`SELECT id, %[2]s FROM %[1]s WHERE %[2]s IS NOT NULL
					AND substring(%[2]s from 1 for %[3]d) <> $1 LIMIT 500 FOR UPDATE`, sc.table, sc.column, len(prefix)), prefix)
				if err != nil {
					return err
				}
				type upd struct {
					id uuid.UUID
					v  []byte
				}
				var batch []upd
				for rows.Next() {
					var u upd
					if err := rows.Scan(&u.id, &u.v); err != nil {
						rows.Close()
						return err
					}
					batch = append(batch, u)
				}
				rows.Close()
				if err := rows.Err(); err != nil {
					return err
				}
				for _, u := range batch {
					nv, changed, err := keys.Rotate(u.v, sealed.AD(sc.table, sc.column, u.id.String()))
					if err != nil {
						return fmt.Errorf("%s.%s of %s: %w", sc.table, sc.column, u.id, err)
					}
					if !changed {
						continue
					}
					if _, err := tx.Exec(ctx, fmt.Sprintf(`UPDATE %s SET %s = $2 WHERE id = $1`, sc.table, sc.column), u.id, nv); err != nil {
						return err
					}
					n++
				}
				return nil
			})
			if err != nil {
				return total, err
			}
			total += n
			if n == 0 {
				break
			}
		}
	}
	return total, nil
}
