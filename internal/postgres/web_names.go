package postgres

import (
	"context"
	"fmt"

	"github.com/google/uuid"
)

// SubjectNames implements casework.Tx: the sealed names of the visible
// subjects among ids, opened.
func (t *Tx) SubjectNames(ctx context.Context, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	role, name, scope := t.scopeArgs()
	rows, err := t.tx.Query(ctx, `SELECT s.id, s.external_id, s.display_name FROM subjects s
		WHERE s.external_id = ANY($1) AND subject_visible(s.unit, s.counselor, s.agency, $2, $3, $4)`, ids, role, name, scope)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id uuid.UUID
		var ext string
		var sealedName []byte
		if err := rows.Scan(&id, &ext, &sealedName); err != nil {
			return nil, err
		}
		n, err := t.open(sealedName, "subjects", "display_name", id.String())
		if err != nil {
			return nil, fmt.Errorf("subject display name: %w", err)
		}
		out[ext] = string(n)
	}
	return out, rows.Err()
}
