package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/sealed"
)

// AddSupervisionOutcome stores an outcome of subj's supervision and returns its id.
func (t *Tx) AddSupervisionOutcome(ctx context.Context, subj casework.Subject, o casework.SupervisionOutcome) (string, error) {
	id := uuid.New()
	sid, _ := uuid.Parse(subj.InternalID())
	var note []byte
	if o.Note != "" {
		note = t.seal([]byte(o.Note), "outcomes", "note", id.String())
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO outcomes (id, subject_id, kind, occurred_on, note, recorded_by, recorded_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, id, sid, o.Kind, o.OccurredOn, note, o.RecordedBy, o.RecordedAt)
	return id.String(), err
}

// SupervisionOutcomes lists subj's outcomes, oldest first.
func (t *Tx) SupervisionOutcomes(ctx context.Context, subj casework.Subject) ([]casework.SupervisionOutcome, error) {
	sid, _ := uuid.Parse(subj.InternalID())
	rows, err := t.tx.Query(ctx, `SELECT id, kind, to_char(occurred_on, 'YYYY-MM-DD'), note, recorded_by, recorded_at
		FROM outcomes WHERE subject_id = $1 ORDER BY occurred_on, recorded_at`, sid)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []casework.SupervisionOutcome{}
	for rows.Next() {
		var o casework.SupervisionOutcome
		var id uuid.UUID
		var note []byte
		if err := rows.Scan(&id, &o.Kind, &o.OccurredOn, &note, &o.RecordedBy, &o.RecordedAt); err != nil {
			return nil, err
		}
		o.ID, o.SubjectID, o.RecordedAt = id.String(), subj.ID, o.RecordedAt.UTC()
		if note != nil {
			pt, err := t.open(note, "outcomes", "note", o.ID)
			if err != nil {
				return nil, err
			}
			o.Note = string(pt)
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// TrainingOptions and TrainingRow are casework's: the API exports through
// casework.Service.ExportTraining, the CLI directly.
type (
	TrainingOptions = casework.TrainingOptions
	TrainingRow     = casework.TrainingRow
)

// ExportTraining calls fn with every row TrainingOptions selects, oldest
// first, and returns how many recommendations were left out because their
// window has not passed.
func (c *Cases) ExportTraining(ctx context.Context, opt TrainingOptions, fn func(TrainingRow) error) (pending int, err error) {
	err = c.db.withConn(ctx, func(pc *pgxpool.Conn) error {
		if err := pc.QueryRow(ctx, `SELECT count(DISTINCT subject_id) FROM recommendations r WHERE model_name = $1 AND inputs_sealed IS NOT NULL
			AND r.created_at + make_interval(secs => $2) > $3
			AND NOT EXISTS (SELECT 1 FROM recommendations e WHERE e.subject_id = r.subject_id AND e.model_name = $1 AND e.created_at < r.created_at)`,
			opt.Model, opt.Window.Seconds(), opt.Now).Scan(&pending); err != nil {
			return err
		}
		rows, err := pc.Query(ctx, `SELECT DISTINCT ON (r.subject_id) r.id, r.inputs_sealed, s.sex, r.created_at,
			EXISTS (SELECT 1 FROM outcomes o WHERE o.subject_id = r.subject_id AND o.kind = ANY($2)
			          AND o.occurred_on >= r.created_at::date AND o.occurred_on <= (r.created_at + make_interval(secs => $3))::date)
			FROM recommendations r JOIN subjects s ON s.id = r.subject_id
			WHERE r.model_name = $1 AND r.inputs_sealed IS NOT NULL
			ORDER BY r.subject_id, r.created_at`, opt.Model, opt.Kinds, opt.Window.Seconds())
		if err != nil {
			return err
		}
		defer rows.Close()
		var out []TrainingRow
		for rows.Next() {
			var id uuid.UUID
			var sealedInputs []byte
			var at time.Time
			var r TrainingRow
			if err := rows.Scan(&id, &sealedInputs, &r.Sex, &at, &r.Positive); err != nil {
				return err
			}
			if at.Add(opt.Window).After(opt.Now) {
				continue // the outcome window has not passed
			}
			r.ID = id.String()
			pt, err := c.keys.Open(sealedInputs, sealed.AD("recommendations", "inputs_sealed", r.ID))
			if err != nil {
				return fmt.Errorf("recommendation %s inputs: %w", r.ID, err)
			}
			if err := json.Unmarshal(pt, &r.Inputs); err != nil {
				return err
			}
			out = append(out, r)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for _, r := range out {
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	})
	return pending, err
}
