package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/sunpath/sunpath/internal/casework"
)

// AdvisoryNotice accompanies every recommendation.
const AdvisoryNotice = "Advisory: a professional decides the supervision level. Mental-health results never by themselves justify stricter supervision."

// AddRecommendation stores a model recommendation and makes its tier the
// subject's current tier.
func (t *Tx) AddRecommendation(ctx context.Context, subj casework.Subject, r casework.Recommendation) (casework.Recommendation, error) {
	id := uuid.New()
	sid, _ := uuid.Parse(subj.InternalID())
	now := t.c.now().UTC()
	if _, err := t.tx.Exec(ctx, `INSERT INTO recommendations (id, subject_id, model_name, model_version, model_sha256, probability, tier,
		explanation, inputs_digest, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		id, sid, r.Model.Name, r.Model.Version, r.Model.SHA256, r.Probability, string(r.Tier), r.Explanation, r.InputsDigest, t.p.Actor(), now); err != nil {
		return r, fmt.Errorf("insert recommendation: %w", err)
	}
	if _, err := t.tx.Exec(ctx, `UPDATE subjects SET tier = $2, tier_source = 'model', tier_updated_at = $3 WHERE id = $1`, sid, string(r.Tier), now); err != nil {
		return r, err
	}
	r.ID, r.SubjectID, r.CreatedBy, r.CreatedAt, r.Advisory = id.String(), subj.ID, t.p.Actor(), now, AdvisoryNotice
	t.Resource("recommendation", r.ID, subj.ID)
	t.Detail(map[string]any{"model": r.Model.Name, "model_version": r.Model.Version, "tier": r.Tier})
	return r, nil
}

const recCols = `r.id, s.external_id, r.model_name, r.model_version, r.model_sha256, r.probability, r.tier, r.explanation, r.inputs_digest, r.created_by, r.created_at`

func scanRecommendation(row pgx.Row, extra ...any) (casework.Recommendation, error) {
	var r casework.Recommendation
	var id uuid.UUID
	var tier string
	err := row.Scan(append([]any{&id, &r.SubjectID, &r.Model.Name, &r.Model.Version, &r.Model.SHA256, &r.Probability, &tier,
		&r.Explanation, &r.InputsDigest, &r.CreatedBy, &r.CreatedAt}, extra...)...)
	r.ID, r.Tier, r.CreatedAt, r.Advisory = id.String(), casework.Tier(tier), r.CreatedAt.UTC(), AdvisoryNotice
	return r, err
}

// Recommendations lists subj's recommendations, newest first.
func (t *Tx) Recommendations(ctx context.Context, subj casework.Subject, limit int) ([]casework.Recommendation, error) {
	sid, _ := uuid.Parse(subj.InternalID())
	t.Resource("recommendations", subj.ID, subj.ID)
	rows, err := t.tx.Query(ctx, `SELECT `+recCols+` FROM recommendations r JOIN subjects s ON s.id = r.subject_id
		WHERE r.subject_id = $1 ORDER BY r.created_at DESC LIMIT $2`, sid, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []casework.Recommendation{}
	for rows.Next() {
		r, err := scanRecommendation(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// recommendation returns one recommendation the principal may see, with its
// subject's unit.
func (t *Tx) recommendation(ctx context.Context, id string) (casework.Recommendation, string, error) {
	rid, err := uuid.Parse(id)
	if err != nil {
		return casework.Recommendation{}, "", fmt.Errorf("recommendation: %w", casework.ErrNotFound)
	}
	role, name, scope := t.scopeArgs()
	var unit string
	var visible bool
	r, err := scanRecommendation(t.tx.QueryRow(ctx, `SELECT `+recCols+`, s.unit, subject_visible(s.unit, s.counselor, s.agency, $2, $3, $4)
		FROM recommendations r JOIN subjects s ON s.id = r.subject_id WHERE r.id = $1`, rid, role, name, scope), &unit, &visible)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, "", fmt.Errorf("recommendation: %w", casework.ErrNotFound)
	}
	if err != nil {
		return r, "", err
	}
	t.Resource("recommendation", r.ID, r.SubjectID)
	if !visible {
		return casework.Recommendation{}, "", casework.ErrOutOfScope
	}
	return r, unit, nil
}

// AddOverride requests a different tier than a recommendation's. Only one
// request may be pending per recommendation.
func (t *Tx) AddOverride(ctx context.Context, recID string, tier casework.Tier, reason, note string) (casework.Override, error) {
	rec, _, err := t.recommendation(ctx, recID)
	if err != nil {
		return casework.Override{}, err
	}
	rid, _ := uuid.Parse(rec.ID)
	var pending bool
	if err := t.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM overrides WHERE recommendation_id = $1 AND status = 'pending')`, rid).Scan(&pending); err != nil {
		return casework.Override{}, err
	}
	if pending {
		return casework.Override{}, fmt.Errorf("an override of this recommendation is already pending: %w", casework.ErrConflict)
	}
	id := uuid.New()
	now := t.c.now().UTC()
	if _, err := t.tx.Exec(ctx, `INSERT INTO overrides (id, recommendation_id, subject_id, recommended_tier, requested_tier, reason_code, note, requested_by, requested_at)
		SELECT $1, r.id, r.subject_id, r.tier, $3, $4, $5, $6, $7 FROM recommendations r WHERE r.id = $2`,
		id, rid, string(tier), reason, t.seal([]byte(note), "overrides", "note", id.String()), t.p.Actor(), now); err != nil {
		return casework.Override{}, err
	}
	t.Resource("override", id.String(), rec.SubjectID)
	t.Detail(map[string]any{"recommended": rec.Tier, "requested": tier, "reason": reason, "direction": casework.Direction(rec.Tier, tier)})
	return casework.Override{ID: id.String(), RecommendationID: rec.ID, SubjectID: rec.SubjectID, RecommendedTier: rec.Tier,
		RequestedTier: tier, Direction: casework.Direction(rec.Tier, tier), ReasonCode: reason, Note: note, Status: "pending",
		RequestedBy: t.p.Actor(), RequestedAt: now, ModelName: rec.Model.Name, ModelVersion: rec.Model.Version,
		InputsDigest: rec.InputsDigest, Probability: rec.Probability}, nil
}

const overrideCols = `o.id, o.recommendation_id, s.external_id, o.recommended_tier, o.requested_tier, o.reason_code, o.note, o.status,
	o.requested_by, o.requested_at, o.decided_by, o.decided_at, o.decision_note, r.model_name, r.model_version, r.inputs_digest, r.probability`

func (t *Tx) scanOverride(row pgx.Row, extra ...any) (casework.Override, error) {
	var o casework.Override
	var id, rid uuid.UUID
	var rec, req string
	var note, decNote []byte
	var decBy *string
	err := row.Scan(append([]any{&id, &rid, &o.SubjectID, &rec, &req, &o.ReasonCode, &note, &o.Status, &o.RequestedBy, &o.RequestedAt,
		&decBy, &o.DecidedAt, &decNote, &o.ModelName, &o.ModelVersion, &o.InputsDigest, &o.Probability}, extra...)...)
	if err != nil {
		return o, err
	}
	o.ID, o.RecommendationID, o.DecidedBy = id.String(), rid.String(), deref(decBy)
	o.RecommendedTier, o.RequestedTier = casework.Tier(rec), casework.Tier(req)
	o.Direction = casework.Direction(o.RecommendedTier, o.RequestedTier)
	o.RequestedAt = o.RequestedAt.UTC()
	pt, err := t.open(note, "overrides", "note", o.ID)
	if err != nil {
		return o, fmt.Errorf("override note: %w", err)
	}
	o.Note = string(pt)
	if decNote != nil {
		pt, err := t.open(decNote, "overrides", "decision_note", o.ID)
		if err != nil {
			return o, fmt.Errorf("override decision note: %w", err)
		}
		o.DecisionNote = string(pt)
	}
	return o, nil
}

// Overrides lists overrides the principal may see, pending first.
func (t *Tx) Overrides(ctx context.Context, status string, limit int) ([]casework.Override, error) {
	role, name, scope := t.scopeArgs()
	t.Resource("overrides", status, "")
	rows, err := t.tx.Query(ctx, `SELECT `+overrideCols+` FROM overrides o
		JOIN recommendations r ON r.id = o.recommendation_id JOIN subjects s ON s.id = o.subject_id
		WHERE subject_visible(s.unit, s.counselor, s.agency, $1, $2, $3) AND ($4 = '' OR o.status = $4)
		ORDER BY (o.status = 'pending') DESC, o.requested_at DESC LIMIT $5`, role, name, scope, status, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []casework.Override{}
	for rows.Next() {
		o, err := t.scanOverride(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// DecideOverride approves or rejects a pending override. Only a supervisor
// of the subject's unit who did not request it may decide (ErrForbidden);
// approval makes the requested tier the subject's tier.
func (t *Tx) DecideOverride(ctx context.Context, id string, approve bool, note string) (casework.Override, error) {
	oid, err := uuid.Parse(id)
	if err != nil {
		return casework.Override{}, fmt.Errorf("override: %w", casework.ErrNotFound)
	}
	role, name, scope := t.scopeArgs()
	var visible bool
	var unit string
	o, err := t.scanOverride(t.tx.QueryRow(ctx, `SELECT `+overrideCols+`, s.unit, subject_visible(s.unit, s.counselor, s.agency, $2, $3, $4)
		FROM overrides o JOIN recommendations r ON r.id = o.recommendation_id JOIN subjects s ON s.id = o.subject_id
		WHERE o.id = $1 FOR UPDATE OF o`, oid, role, name, scope), &unit, &visible)
	if errors.Is(err, pgx.ErrNoRows) {
		return o, fmt.Errorf("override: %w", casework.ErrNotFound)
	}
	if err != nil {
		return o, err
	}
	t.Resource("override", o.ID, o.SubjectID)
	if !visible {
		return casework.Override{}, casework.ErrOutOfScope
	}
	if o.RequestedBy == t.p.Actor() {
		return o, fmt.Errorf("the requester of an override may not decide it: %w", casework.ErrForbidden)
	}
	if o.Status != "pending" {
		return o, fmt.Errorf("override is already %s: %w", o.Status, casework.ErrConflict)
	}
	status := "rejected"
	if approve {
		status = "approved"
	}
	now := t.c.now().UTC()
	var decNote []byte
	if note != "" {
		decNote = t.seal([]byte(note), "overrides", "decision_note", o.ID)
	}
	if _, err := t.tx.Exec(ctx, `UPDATE overrides SET status = $2, decided_by = $3, decided_at = $4, decision_note = $5 WHERE id = $1`,
		oid, status, t.p.Actor(), now, decNote); err != nil {
		return o, err
	}
	if approve {
		if _, err := t.tx.Exec(ctx, `UPDATE subjects SET tier = $2, tier_source = 'override', tier_updated_at = $3 WHERE external_id = $1`,
			o.SubjectID, string(o.RequestedTier), now); err != nil {
			return o, err
		}
	}
	o.Status, o.DecidedBy, o.DecidedAt, o.DecisionNote = status, t.p.Actor(), &now, note
	t.Detail(map[string]any{"decision": status, "direction": o.Direction, "reason": o.ReasonCode})
	return o, nil
}

// OverrideStat is one row of override analytics.
type OverrideStat struct {
	Group           string  `json:"group"`
	Recommendations int     `json:"recommendations"`
	Overrides       int     `json:"overrides"`
	Rate            float64 `json:"rate"`
	Stricter        int     `json:"stricter"`
	MoreLenient     int     `json:"more_lenient"`
	Approved        int     `json:"approved"`
	Rejected        int     `json:"rejected"`
	Pending         int     `json:"pending"`
}

// OverrideAnalytics groups overrides the principal may see by "counselor"
// (the requester), "unit" or "reason", with the rate relative to
// recommendations in the same group where that is defined.
func (t *Tx) OverrideAnalytics(ctx context.Context, by string, since time.Time) ([]OverrideStat, error) {
	col := map[string]string{"counselor": "o.requested_by", "unit": "s.unit", "reason": "o.reason_code"}[by]
	if col == "" {
		return nil, fmt.Errorf("group by must be counselor, unit or reason: %w", casework.ErrNotFound)
	}
	recCol := map[string]string{"counselor": "r.created_by", "unit": "s.unit", "reason": "NULL"}[by]
	role, name, scope := t.scopeArgs()
	t.Resource("override_analytics", by, "")
	rows, err := t.tx.Query(ctx, `WITH o AS (
		SELECT `+col+` AS grp, o.recommended_tier, o.requested_tier, o.status FROM overrides o JOIN subjects s ON s.id = o.subject_id
		 WHERE subject_visible(s.unit, s.counselor, s.agency, $1, $2, $3) AND o.requested_at >= $4),
	  r AS (SELECT `+recCol+` AS grp, count(*) AS n FROM recommendations r JOIN subjects s ON s.id = r.subject_id
		 WHERE subject_visible(s.unit, s.counselor, s.agency, $1, $2, $3) AND r.created_at >= $4 GROUP BY 1)
	SELECT o.grp, coalesce(max(r.n), 0), count(*),
	       count(*) FILTER (WHERE array_position(ARRAY['lenient','ordinary','strict'], o.requested_tier) > array_position(ARRAY['lenient','ordinary','strict'], o.recommended_tier)),
	       count(*) FILTER (WHERE array_position(ARRAY['lenient','ordinary','strict'], o.requested_tier) < array_position(ARRAY['lenient','ordinary','strict'], o.recommended_tier)),
	       count(*) FILTER (WHERE o.status = 'approved'), count(*) FILTER (WHERE o.status = 'rejected'), count(*) FILTER (WHERE o.status = 'pending')
	  FROM o LEFT JOIN r ON r.grp = o.grp GROUP BY o.grp ORDER BY o.grp`, role, name, scope, since)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []OverrideStat{}
	for rows.Next() {
		var s OverrideStat
		if err := rows.Scan(&s.Group, &s.Recommendations, &s.Overrides, &s.Stricter, &s.MoreLenient, &s.Approved, &s.Rejected, &s.Pending); err != nil {
			return nil, err
		}
		if s.Recommendations > 0 {
			s.Rate = float64(s.Overrides) / float64(s.Recommendations)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
