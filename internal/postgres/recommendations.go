package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/sunpath/sunpath/internal/casework"
)

// AddRecommendation stores a model recommendation. It never changes the
// subject's level: only a person's decision does (AddDecision).
func (t *Tx) AddRecommendation(ctx context.Context, subj casework.Subject, r casework.Recommendation) (casework.Recommendation, error) {
	id := uuid.New()
	sid, _ := uuid.Parse(subj.InternalID())
	now := t.c.now().UTC()
	inputs, err := json.Marshal(r.Inputs)
	if err != nil {
		return r, err
	}
	if _, err := t.tx.Exec(ctx, `INSERT INTO recommendations (id, subject_id, model_name, model_version, model_sha256, probability, tier,
		explanation_sealed, inputs_digest, created_by, created_at, unknown_inputs, inputs_sealed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		id, sid, r.Model.Name, r.Model.Version, r.Model.SHA256, r.Probability, string(r.Tier),
		t.seal(r.Explanation, "recommendations", "explanation_sealed", id.String()), r.InputsDigest, t.p.Actor(), now, r.Unknown,
		t.seal(inputs, "recommendations", "inputs_sealed", id.String())); err != nil {
		return r, fmt.Errorf("insert recommendation: %w", err)
	}
	r.ID, r.SubjectID, r.CreatedBy, r.CreatedAt, r.Advisory = id.String(), subj.ID, t.p.Actor(), now, casework.AdvisoryNotice
	t.Resource("recommendation", r.ID, subj.ID)
	t.Detail(map[string]any{"model": r.Model.Name, "model_version": r.Model.Version, "tier": r.Tier, "unknown_inputs": len(r.Unknown)})
	return r, nil
}

const recCols = `r.id, s.external_id, r.model_name, r.model_version, r.model_sha256, r.probability, r.tier, r.explanation, r.explanation_sealed,
	r.inputs_digest, r.created_by, r.created_at, r.unknown_inputs`

// scanRecommendation reads recCols (and extra), opening the sealed
// explanation (or reading one written before explanations were sealed).
func (t *Tx) scanRecommendation(row pgx.Row, extra ...any) (casework.Recommendation, error) {
	var r casework.Recommendation
	var id uuid.UUID
	var tier string
	var sealedExpl []byte
	err := row.Scan(append([]any{&id, &r.SubjectID, &r.Model.Name, &r.Model.Version, &r.Model.SHA256, &r.Probability, &tier,
		&r.Explanation, &sealedExpl, &r.InputsDigest, &r.CreatedBy, &r.CreatedAt, &r.Unknown}, extra...)...)
	if err != nil {
		return r, err
	}
	r.ID, r.Tier, r.CreatedAt, r.Advisory = id.String(), casework.Tier(tier), r.CreatedAt.UTC(), casework.AdvisoryNotice
	if r.Unknown == nil {
		r.Unknown = []string{}
	}
	if sealedExpl != nil {
		pt, err := t.open(sealedExpl, "recommendations", "explanation_sealed", r.ID)
		if err != nil {
			return r, fmt.Errorf("recommendation explanation: %w", err)
		}
		r.Explanation = pt
	}
	return r, nil
}

// Recommendations lists subj's recommendations, newest first.
func (t *Tx) Recommendations(ctx context.Context, subj casework.Subject, limit int) ([]casework.Recommendation, error) {
	sid, _ := uuid.Parse(subj.InternalID())
	t.Resource("recommendations", subj.ID, subj.ID)
	rows, err := t.tx.Query(ctx, `SELECT `+recCols+` FROM recommendations r JOIN subjects s ON s.id = r.subject_id
		WHERE r.subject_id = $1 ORDER BY r.created_at DESC, r.id LIMIT $2`, sid, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []casework.Recommendation{}
	for rows.Next() {
		r, err := t.scanRecommendation(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Recommendation returns one recommendation the principal may see.
func (t *Tx) Recommendation(ctx context.Context, id string) (casework.Recommendation, error) {
	rid, err := uuid.Parse(id)
	if err != nil {
		return casework.Recommendation{}, fmt.Errorf("recommendation: %w", casework.ErrNotFound)
	}
	role, name, scope := t.scopeArgs()
	var visible bool
	r, err := t.scanRecommendation(t.tx.QueryRow(ctx, `SELECT `+recCols+`, subject_visible(s.unit, s.counselor, s.agency, $2, $3, $4)
		FROM recommendations r JOIN subjects s ON s.id = r.subject_id WHERE r.id = $1`, rid, role, name, scope), &visible)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, fmt.Errorf("recommendation: %w", casework.ErrNotFound)
	}
	if err != nil {
		return r, err
	}
	t.Resource("recommendation", r.ID, r.SubjectID)
	if !visible {
		return casework.Recommendation{}, casework.ErrOutOfScope
	}
	return r, nil
}

// PendingOverride reports whether an override of the recommendation waits
// for a decision.
func (t *Tx) PendingOverride(ctx context.Context, recommendationID string) (bool, error) {
	rid, err := uuid.Parse(recommendationID)
	if err != nil {
		return false, fmt.Errorf("recommendation: %w", casework.ErrNotFound)
	}
	var pending bool
	err = t.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM overrides WHERE recommendation_id = $1 AND status = 'pending')`, rid).Scan(&pending)
	return pending, err
}

// AddOverride stores an override request and returns its id.
func (t *Tx) AddOverride(ctx context.Context, o casework.Override) (string, error) {
	id := uuid.New()
	rid, err := uuid.Parse(o.RecommendationID)
	if err != nil {
		return "", fmt.Errorf("recommendation: %w", casework.ErrNotFound)
	}
	if _, err := t.tx.Exec(ctx, `INSERT INTO overrides (id, recommendation_id, subject_id, recommended_tier, requested_tier, reason_code, note, requested_by, requested_at)
		SELECT $1, r.id, r.subject_id, r.tier, $3, $4, $5, $6, $7 FROM recommendations r WHERE r.id = $2`,
		id, rid, string(o.RequestedTier), o.ReasonCode, t.seal([]byte(o.Note), "overrides", "note", id.String()), o.RequestedBy, o.RequestedAt); err != nil {
		return "", err
	}
	t.Resource("override", id.String(), o.SubjectID)
	t.Detail(map[string]any{"recommended": o.RecommendedTier, "requested": o.RequestedTier, "reason": o.ReasonCode, "direction": o.Direction})
	return id.String(), nil
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
	rows, err := t.tx.Query(ctx, `SELECT `+overrideCols+` FROM overrides o
		JOIN recommendations r ON r.id = o.recommendation_id JOIN subjects s ON s.id = o.subject_id
		WHERE subject_visible(s.unit, s.counselor, s.agency, $1, $2, $3) AND `+scopeHint(t.p, "s")+` AND ($4 = '' OR o.status = $4)
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

// Override returns an override the principal may see, locked for update.
func (t *Tx) Override(ctx context.Context, id string) (casework.Override, error) {
	oid, err := uuid.Parse(id)
	if err != nil {
		return casework.Override{}, fmt.Errorf("override: %w", casework.ErrNotFound)
	}
	role, name, scope := t.scopeArgs()
	var visible bool
	o, err := t.scanOverride(t.tx.QueryRow(ctx, `SELECT `+overrideCols+`, subject_visible(s.unit, s.counselor, s.agency, $2, $3, $4)
		FROM overrides o JOIN recommendations r ON r.id = o.recommendation_id JOIN subjects s ON s.id = o.subject_id
		WHERE o.id = $1 FOR UPDATE OF o`, oid, role, name, scope), &visible)
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
	return o, nil
}

// DecideOverride writes the decision the use case made on o.
func (t *Tx) DecideOverride(ctx context.Context, o casework.Override) error {
	var decNote []byte
	if o.DecisionNote != "" {
		decNote = t.seal([]byte(o.DecisionNote), "overrides", "decision_note", o.ID)
	}
	_, err := t.tx.Exec(ctx, `UPDATE overrides SET status = $2, decided_by = $3, decided_at = $4, decision_note = $5 WHERE id = $1 AND status = 'pending'`,
		o.ID, o.Status, o.DecidedBy, o.DecidedAt, decNote)
	return err
}

// AddDecision records a person's decision of subj's level and makes it the
// subject's level; it returns the decision's id.
func (t *Tx) AddDecision(ctx context.Context, subj casework.Subject, d casework.Decision) (string, error) {
	id := uuid.New()
	sid, _ := uuid.Parse(subj.InternalID())
	var rec, ovr *uuid.UUID
	for _, p := range []struct {
		s   string
		dst **uuid.UUID
	}{{d.RecommendationID, &rec}, {d.OverrideID, &ovr}} {
		if p.s != "" {
			u, err := uuid.Parse(p.s)
			if err != nil {
				return "", fmt.Errorf("decision reference: %w", casework.ErrNotFound)
			}
			*p.dst = &u
		}
	}
	var prev *string
	if d.PreviousTier != nil {
		v := string(*d.PreviousTier)
		prev = &v
	}
	var note []byte
	if d.Note != "" {
		note = t.seal([]byte(d.Note), "tier_decisions", "note", id.String())
	}
	if _, err := t.tx.Exec(ctx, `INSERT INTO tier_decisions (id, subject_id, kind, tier, previous_tier, reason_code, note, recommendation_id,
		override_id, requested_by, decided_by, recorded_by, decided_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		id, sid, d.Kind, string(d.Tier), prev, d.ReasonCode, note, rec, ovr, d.RequestedBy, d.DecidedBy, d.RecordedBy, d.DecidedAt); err != nil {
		return "", err
	}
	if _, err := t.tx.Exec(ctx, `UPDATE subjects SET tier = $2, tier_source = $3, tier_updated_at = $4, tier_decision_id = $5 WHERE id = $1`,
		sid, string(d.Tier), d.Kind, d.DecidedAt, id); err != nil {
		return "", err
	}
	return id.String(), nil
}

// Decisions is subj's level history, newest first.
func (t *Tx) Decisions(ctx context.Context, subj casework.Subject, limit int) ([]casework.Decision, error) {
	sid, _ := uuid.Parse(subj.InternalID())
	rows, err := t.tx.Query(ctx, `SELECT id, kind, tier, previous_tier, reason_code, note, recommendation_id, override_id, requested_by,
		decided_by, recorded_by, decided_at FROM tier_decisions WHERE subject_id = $1 ORDER BY decided_at DESC, created_at DESC LIMIT $2`, sid, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []casework.Decision{}
	for rows.Next() {
		var d casework.Decision
		var id uuid.UUID
		var rec, ovr *uuid.UUID
		var tier string
		var prev *string
		var note []byte
		if err := rows.Scan(&id, &d.Kind, &tier, &prev, &d.ReasonCode, &note, &rec, &ovr, &d.RequestedBy, &d.DecidedBy, &d.RecordedBy, &d.DecidedAt); err != nil {
			return nil, err
		}
		d.ID, d.SubjectID, d.Tier, d.DecidedAt = id.String(), subj.ID, casework.Tier(tier), d.DecidedAt.UTC()
		if prev != nil {
			p := casework.Tier(*prev)
			d.PreviousTier = &p
		}
		if rec != nil {
			d.RecommendationID = rec.String()
		}
		if ovr != nil {
			d.OverrideID = ovr.String()
		}
		if note != nil {
			pt, err := t.open(note, "tier_decisions", "note", d.ID)
			if err != nil {
				return nil, fmt.Errorf("decision note: %w", err)
			}
			d.Note = string(pt)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// OverrideStat is one row of override analytics.
type OverrideStat = casework.OverrideStat

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
	rows, err := t.tx.Query(ctx, `WITH o AS (
		SELECT `+col+` AS grp, o.recommended_tier, o.requested_tier, o.status FROM overrides o JOIN subjects s ON s.id = o.subject_id
		 WHERE subject_visible(s.unit, s.counselor, s.agency, $1, $2, $3) AND `+scopeHint(t.p, "s")+` AND o.requested_at >= $4),
	  r AS (SELECT `+recCol+` AS grp, count(*) AS n FROM recommendations r JOIN subjects s ON s.id = r.subject_id
		 WHERE subject_visible(s.unit, s.counselor, s.agency, $1, $2, $3) AND `+scopeHint(t.p, "s")+` AND r.created_at >= $4 GROUP BY 1)
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
