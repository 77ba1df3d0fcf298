package casework

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sunpath/sunpath/internal/problem"
)

// OutcomeKinds are the supervision outcomes recorded as data: 解除矫正
// (completed), 警告 / 训诫 (warning, reprimand), 治安管理处罚 (public
// security penalty), 撤销缓刑/假释·收监执行 (revocation), 重新犯罪 (new
// offence), 脱管 (absconding).
var OutcomeKinds = []string{"completed", "warning", "reprimand", "public_security_penalty", "revocation", "new_offence", "absconding"}

// SupervisionOutcome is one outcome of a person's supervision.
type SupervisionOutcome struct {
	ID         string    `json:"id"`
	SubjectID  string    `json:"subject_id"`
	Kind       string    `json:"kind"`
	OccurredOn string    `json:"occurred_on"`
	Note       string    `json:"note,omitempty"`
	RecordedBy string    `json:"recorded_by"`
	RecordedAt time.Time `json:"recorded_at"`
}

// OutcomeInput records an outcome: its kind, the date it happened and an
// optional note.
type OutcomeInput struct {
	Kind       string
	OccurredOn string // YYYY-MM-DD
	Note       string
}

// RecordOutcome records an outcome of a person's supervision, audited; the
// date is not in the future and not more than ten years back.
func (s *Service) RecordOutcome(ctx context.Context, c Call, id string, in OutcomeInput) (SupervisionOutcome, Outcome, error) {
	inv := &problem.Invalid{}
	if !oneOf(in.Kind, OutcomeKinds) {
		inv.Add("kind", "must be one of "+strings.Join(OutcomeKinds, ", "))
	}
	now := s.now().UTC()
	d, err := time.Parse(DateLayout, in.OccurredOn)
	switch {
	case err != nil:
		inv.Add("occurred_on", "required: a date YYYY-MM-DD")
	case d.After(now) || d.Before(now.AddDate(-10, 0, 0)):
		inv.Add("occurred_on", "must not be in the future, nor more than ten years ago")
	}
	if utf8.RuneCountInString(in.Note) > MaxNoteRunes {
		inv.Add("note", fmt.Sprintf("at most %d characters", MaxNoteRunes))
	}
	if err := inv.Err(); err != nil {
		return SupervisionOutcome{}, Outcome{}, err
	}
	return run(ctx, s, c, unit{action: "outcome.record", subject: id, idempotent: true}, func(tx Tx) (SupervisionOutcome, error) {
		subj, err := tx.Subject(ctx, id)
		if err != nil {
			return SupervisionOutcome{}, err
		}
		o := SupervisionOutcome{SubjectID: subj.ID, Kind: in.Kind, OccurredOn: in.OccurredOn, Note: strings.TrimSpace(in.Note),
			RecordedBy: c.Principal.Actor(), RecordedAt: now}
		if o.ID, err = tx.AddSupervisionOutcome(ctx, subj, o); err != nil {
			return o, err
		}
		tx.Resource("outcome", o.ID, subj.ID)
		tx.Detail(map[string]any{"kind": o.Kind})
		return o, nil
	})
}

// Outcomes lists a person's recorded outcomes, oldest first.
func (s *Service) Outcomes(ctx context.Context, c Call, id string) ([]SupervisionOutcome, error) {
	return read(ctx, s, c, "outcome.list", id, func(tx Tx) ([]SupervisionOutcome, error) {
		subj, err := tx.Subject(ctx, id)
		if err != nil {
			return nil, err
		}
		tx.Resource("outcomes", subj.ID, subj.ID)
		return tx.SupervisionOutcomes(ctx, subj)
	})
}
