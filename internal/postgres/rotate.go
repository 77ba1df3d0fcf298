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
	{"recommendations", "inputs_sealed"},
	{"outcomes", "note"},
}

// sealLegacyExplanations seals the explanations of recommendations written
// before explanations were sealed (migration 0008).
func sealLegacyExplanations(ctx context.Context, db *DB, keys *sealed.Keyring) (int, error) {
	return inBatches(ctx, db, `SELECT id, explanation::text FROM recommendations WHERE explanation IS NOT NULL LIMIT 500 FOR UPDATE`, nil,
		func(tx pgx.Tx, id uuid.UUID, v []byte) (bool, error) {
			sv := keys.Seal(v, sealed.AD("recommendations", "explanation_sealed", id.String()))
			_, err := tx.Exec(ctx, `UPDATE recommendations SET explanation = NULL, explanation_sealed = $2 WHERE id = $1`, id, sv)
			return err == nil, err
		})
}

// RotateKeys re-seals every value not sealed with the active key (and seals
// what older versions left in the clear), a batch per transaction, and
// returns how many it changed. It can be interrupted and run again.
func RotateKeys(ctx context.Context, db *DB, keys *sealed.Keyring) (int, error) {
	total, err := sealLegacyExplanations(ctx, db, keys)
	if err != nil {
		return total, err
	}
	// Values sealed with the active key start with its id.
	prefix := append([]byte{1, byte(len(keys.Active()))}, keys.Active()...)
	for _, sc := range sealedColumns {
		n, err := inBatches(ctx, db, fmt.Sprintf(`SELECT id, %[2]s FROM %[1]s WHERE %[2]s IS NOT NULL
			AND substring(%[2]s from 1 for %[3]d) <> $1 LIMIT 500 FOR UPDATE`, sc.table, sc.column, len(prefix)), []any{prefix},
			func(tx pgx.Tx, id uuid.UUID, v []byte) (bool, error) {
				nv, changed, err := keys.Rotate(v, sealed.AD(sc.table, sc.column, id.String()))
				if err != nil || !changed {
					if err != nil {
						err = fmt.Errorf("%s.%s of %s: %w", sc.table, sc.column, id, err)
					}
					return false, err
				}
				_, err = tx.Exec(ctx, fmt.Sprintf(`UPDATE %s SET %s = $2 WHERE id = $1`, sc.table, sc.column), id, nv)
				return err == nil, err
			})
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// inBatches runs query (it selects id and a value, at most a batch, locked)
// and fn on each row, a transaction per batch, until a batch changes
// nothing; it returns how many rows fn changed.
func inBatches(ctx context.Context, db *DB, query string, args []any, fn func(tx pgx.Tx, id uuid.UUID, v []byte) (bool, error)) (int, error) {
	total := 0
	for {
		n := 0
		err := db.inTx(ctx, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, query, args...)
			if err != nil {
				return err
			}
			type row struct {
				id uuid.UUID
				v  []byte
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
				changed, err := fn(tx, r.id, r.v)
				if err != nil {
					return err
				}
				if changed {
					n++
				}
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
