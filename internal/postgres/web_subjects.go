package postgres

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/problem"
)

// PutOwnSubject implements casework.Tx: PutSubject for a counselor's own
// caseload. unit_writable grants counselors no unit, so this checks the
// rule casework applies (their unit, themselves as counselor) and then
// writes the row as PutSubject does.
func (t *Tx) PutOwnSubject(ctx context.Context, externalID string, in casework.SubjectInput) (casework.Subject, bool, error) {
	t.Resource("subject", externalID, externalID)
	role, name, scope := t.scopeArgs()
	var id uuid.UUID
	var visible bool
	err := t.tx.QueryRow(ctx, `SELECT id, subject_visible(unit, counselor, agency, $2, $3, $4) FROM subjects WHERE external_id = $1 FOR UPDATE`,
		externalID, role, name, scope).Scan(&id, &visible)
	created := errors.Is(err, pgx.ErrNoRows)
	if err != nil && !created {
		return casework.Subject{}, false, err
	}
	if !created && !visible {
		return casework.Subject{}, false, casework.ErrOutOfScope
	}
	inv := &problem.Invalid{}
	var unitOK bool
	if err := t.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM units WHERE code = $1)`, in.Unit).Scan(&unitOK); err != nil {
		return casework.Subject{}, false, err
	}
	if !unitOK || in.Unit != t.p.Unit || t.p.Unit == "" {
		inv.Add("unit", "unknown unit, or one you may not assign")
	}
	if in.Counselor != t.p.Name {
		inv.Add("counselor", "a counselor registers people onto their own caseload")
	}
	if err := inv.Err(); err != nil {
		return casework.Subject{}, false, err
	}
	if created {
		id = uuid.New()
	}
	profile := []byte("{}")
	if in.Profile != nil {
		if profile, err = json.Marshal(in.Profile); err != nil {
			return casework.Subject{}, false, err
		}
	}
	args := []any{id, externalID, t.seal([]byte(in.DisplayName), "subjects", "display_name", id.String()), in.Sex, in.BirthYear,
		in.SupervisionType, in.Unit, in.Counselor, nullDate(in.SupervisionStart), nullDate(in.SupervisionEnd),
		t.seal(profile, "subjects", "profile", id.String())}
	if created {
		_, err = t.tx.Exec(ctx, `INSERT INTO subjects (id, external_id, display_name, sex, birth_year, supervision_type, unit, counselor,
			supervision_start, supervision_end, profile) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, args...)
	} else {
		_, err = t.tx.Exec(ctx, `UPDATE subjects SET display_name = $3, sex = $4, birth_year = $5, supervision_type = $6, unit = $7,
			counselor = $8, supervision_start = $9, supervision_end = $10, profile = $11, updated_at = now() WHERE id = $1 AND external_id = $2`, args...)
	}
	if err != nil {
		return casework.Subject{}, false, err
	}
	s, err := t.subjectByID(ctx, id)
	return s, created, err
}
