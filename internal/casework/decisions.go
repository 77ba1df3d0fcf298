package casework

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/problem"
	"github.com/sunpath/sunpath/internal/riskmodel"
)

// AdvisoryNotice accompanies every recommendation.
const AdvisoryNotice = "Advisory: a professional decides the supervision level. Mental-health results never by themselves justify stricter supervision."

// ErrNotAPerson means a decision was asked of an API key or a kiosk: only
// people decide supervision levels.
var ErrNotAPerson = fmt.Errorf("only a signed-in person may decide a supervision level: %w", ErrForbidden)

// Model returns the named model's active version, or the default for "".
func (s *Service) Model(name string) (*riskmodel.Model, error) {
	return s.modelIn(s.registry.snapshot(), name)
}

func (s *Service) modelIn(snap *models, name string) (*riskmodel.Model, error) {
	if name == "" {
		name = s.defaultModel
	}
	m, ok := snap.active[name]
	if !ok {
		return nil, invalid("model", "unknown model; GET /v1/models lists them")
	}
	return m, nil
}

// MinKnownInputs is how many of m's inputs must be recorded for a
// recommendation (the policy's share of them, rounded up).
func (s *Service) MinKnownInputs(m *riskmodel.Model) int {
	return int(math.Ceil(s.policy.MinKnownShare * float64(len(m.InputFields()))))
}

// Features builds a model's inputs from a profile. Every field the model
// reads is an input; one not recorded (absent or null) is unknown. A field
// the model cannot do without, and a record with fewer known inputs than
// the policy's share, are refused naming what is missing.
func (s *Service) Features(m *riskmodel.Model, profile map[string]any) (features map[string]any, unknown []string, err error) {
	features = map[string]any{}
	var missing []problem.FieldError
	fields := m.InputFields()
	for _, f := range fields {
		v, ok := profile[f.Name]
		if !ok || v == nil {
			unknown = append(unknown, f.Name)
			features[f.Name] = nil
			if f.Required {
				missing = append(missing, problem.FieldError{Field: "profile." + f.Name,
					Detail: "model " + m.Ref().Name + " needs a value; set it with PUT /v1/subjects/{subject_id}"})
			}
			continue
		}
		features[f.Name] = v
	}
	need := s.MinKnownInputs(m)
	if known := len(fields) - len(unknown); known < need && len(missing) == 0 {
		for _, name := range unknown {
			missing = append(missing, problem.FieldError{Field: "profile." + name, Detail: "not recorded"})
		}
		return nil, unknown, &problem.Invalid{Errors: append([]problem.FieldError{{Field: "profile",
			Detail: fmt.Sprintf("insufficient information: %d of the %d inputs of model %s are recorded, at least %d are needed; a recommendation is not made on an unrecorded profile",
				known, len(fields), m.Ref().Name, need)}}, missing...)}
	}
	if len(missing) > 0 {
		return nil, unknown, &problem.Invalid{Errors: missing}
	}
	return features, unknown, nil
}

// Predict scores features and keeps unknown inputs from pushing toward
// leniency: when the contributions of unrecorded inputs lower the score,
// the suggested tier is the one the score would have without them, if that
// is stricter.
func Predict(m *riskmodel.Model, features map[string]any) (riskmodel.Prediction, error) {
	pred, err := m.Score(features)
	if err != nil {
		return pred, err
	}
	var lowered float64
	for _, c := range pred.Explanation {
		if c.Value == "missing" && c.Contribution < 0 {
			lowered += c.Contribution
		}
	}
	if lowered < 0 {
		if _, t := m.TierAt(pred.LogOdds - lowered); Tier(t).Rank() > Tier(pred.Tier).Rank() {
			pred.Tier = t
		}
	}
	return pred, nil
}

// Recommend asks the model for advice on a person and stores it. It never
// changes the person's level: a suggestion that differs from the current
// level is marked for review.
func (s *Service) Recommend(ctx context.Context, c Call, id, model string) (Recommendation, Outcome, error) {
	snap := s.registry.snapshot()
	m, err := s.modelIn(snap, model)
	if err != nil {
		return Recommendation{}, Outcome{}, err
	}
	r, out, err := run(ctx, s, c, unit{action: "recommendation.create", subject: id, idempotent: true}, func(tx Tx) (Recommendation, error) {
		subj, err := tx.Subject(ctx, id)
		if err != nil {
			return Recommendation{}, err
		}
		features, unknown, err := s.Features(m, subj.Profile)
		if err != nil {
			return Recommendation{}, err
		}
		pred, err := Predict(m, features)
		if err != nil {
			return Recommendation{}, prefixFeatures(err)
		}
		expl, err := json.Marshal(pred.Explanation)
		if err != nil {
			return Recommendation{}, err
		}
		ref := m.Ref()
		rec := Recommendation{
			Model: ModelRef{Name: ref.Name, Version: ref.Version, SHA256: ref.SHA256}, Probability: pred.Probability,
			Tier: Tier(pred.Tier), Explanation: expl, InputsDigest: InputsDigest(features), Unknown: unknown, Inputs: features,
		}
		if unknown == nil {
			rec.Unknown = []string{}
		}
		rec.Review = subj.Tier == nil || *subj.Tier != rec.Tier
		saved, err := tx.AddRecommendation(ctx, subj, rec)
		if err != nil {
			return saved, err
		}
		return saved, s.scoreShadows(ctx, tx, snap.shadows[ref.Name], subj, saved)
	})
	if err == nil && !out.Replayed {
		s.count(func(mt Metrics) { mt.Recommended(m.Ref().Name, r.Probability) })
	}
	return r, out, err
}

// prefixFeatures renames the model's "features.X" errors to the profile's.
func prefixFeatures(err error) error {
	inv, ok := err.(*problem.Invalid)
	if !ok {
		return err
	}
	out := &problem.Invalid{}
	for _, fe := range inv.Errors {
		fe.Field = "profile." + strings.TrimPrefix(fe.Field, "features.")
		out.Errors = append(out.Errors, fe)
	}
	return out
}

// Recommendations lists a person's recommendations, newest first, with
// whether each disagrees with the current level.
func (s *Service) Recommendations(ctx context.Context, c Call, id string) ([]Recommendation, error) {
	return read(ctx, s, c, "recommendation.list", id, func(tx Tx) ([]Recommendation, error) {
		subj, err := tx.Subject(ctx, id)
		if err != nil {
			return nil, err
		}
		rs, err := tx.Recommendations(ctx, subj, 100)
		markReview(rs, subj)
		return rs, err
	})
}

func markReview(rs []Recommendation, subj Subject) {
	for i := range rs {
		rs[i].Review = subj.Tier == nil || *subj.Tier != rs[i].Tier
	}
}

// AcceptInput is a counselor's acceptance of a recommendation's suggestion.
type AcceptInput struct {
	Note string // optional
}

// AcceptRecommendation makes the newest recommendation's suggested tier the
// person's level, as the decision of the person who accepts it.
func (s *Service) AcceptRecommendation(ctx context.Context, c Call, recID string, in AcceptInput) (Decision, Outcome, error) {
	if !c.Principal.IsPerson() {
		return Decision{}, Outcome{}, ErrNotAPerson
	}
	if c.Principal.Role != auth.RoleCounselor && c.Principal.Role != auth.RoleSupervisor {
		return Decision{}, Outcome{}, fmt.Errorf("only a counselor or supervisor accepts a recommendation: %w", ErrForbidden)
	}
	if utf8.RuneCountInString(in.Note) > MaxNoteRunes {
		return Decision{}, Outcome{}, invalid("note", fmt.Sprintf("at most %d characters", MaxNoteRunes))
	}
	return run(ctx, s, c, unit{action: "recommendation.accept", idempotent: true}, func(tx Tx) (Decision, error) {
		rec, err := tx.Recommendation(ctx, recID)
		if err != nil {
			return Decision{}, err
		}
		subj, err := tx.Subject(ctx, rec.SubjectID)
		if err != nil {
			return Decision{}, err
		}
		latest, err := tx.Recommendations(ctx, subj, 1)
		if err != nil {
			return Decision{}, err
		}
		if len(latest) == 0 || latest[0].ID != rec.ID {
			return Decision{}, fmt.Errorf("a newer recommendation exists; accept or override that one: %w", ErrConflict)
		}
		d := Decision{Kind: DecisionAccepted, Tier: rec.Tier, Note: strings.TrimSpace(in.Note), RecommendationID: rec.ID,
			DecidedBy: c.Principal.Actor()}
		return s.decide(ctx, tx, c, subj, d)
	})
}

// decide records d as the person's level from now on.
func (s *Service) decide(ctx context.Context, tx Tx, c Call, subj Subject, d Decision) (Decision, error) {
	d.SubjectID, d.PreviousTier, d.RecordedBy = subj.ID, subj.Tier, c.Principal.Actor()
	if d.DecidedAt.IsZero() {
		d.DecidedAt = s.now().UTC()
	}
	id, err := tx.AddDecision(ctx, subj, d)
	if err != nil {
		return Decision{}, err
	}
	d.ID = id
	det := map[string]any{"kind": d.Kind, "tier": d.Tier, "reason": d.ReasonCode}
	if d.PreviousTier != nil {
		det["previous"] = *d.PreviousTier
		det["direction"] = Direction(*d.PreviousTier, d.Tier)
	}
	tx.Detail(det)
	return d, nil
}

// OverrideInput asks for a different tier than a recommendation's.
type OverrideInput struct {
	Tier       Tier
	ReasonCode string
	Note       string
}

// RequestOverride asks a supervisor to set a different tier than the
// recommendation suggests. Only one request per recommendation may wait.
func (s *Service) RequestOverride(ctx context.Context, c Call, recID string, in OverrideInput) (Override, Outcome, error) {
	inv := &problem.Invalid{}
	if !in.Tier.Valid() {
		inv.Add("tier", "must be lenient, ordinary or strict")
	}
	if !ValidOverrideReason(in.ReasonCode) {
		inv.Add("reason_code", "must be one of "+strings.Join(OverrideReasons, ", "))
	}
	if !ValidNote(in.Note) {
		inv.Add("note", fmt.Sprintf("required, at most %d characters", MaxNoteRunes))
	}
	if err := inv.Err(); err != nil {
		return Override{}, Outcome{}, err
	}
	if !c.Principal.IsPerson() {
		return Override{}, Outcome{}, ErrNotAPerson
	}
	o, out, err := run(ctx, s, c, unit{action: "override.request", idempotent: true}, func(tx Tx) (Override, error) {
		rec, err := tx.Recommendation(ctx, recID)
		if err != nil {
			return Override{}, err
		}
		pending, err := tx.PendingOverride(ctx, rec.ID)
		if err != nil {
			return Override{}, err
		}
		if pending {
			return Override{}, fmt.Errorf("an override of this recommendation is already pending: %w", ErrConflict)
		}
		o := Override{RecommendationID: rec.ID, SubjectID: rec.SubjectID, RecommendedTier: rec.Tier, RequestedTier: in.Tier,
			Direction: Direction(rec.Tier, in.Tier), ReasonCode: in.ReasonCode, Note: in.Note, Status: "pending",
			RequestedBy: c.Principal.Actor(), RequestedAt: s.now().UTC(), ModelName: rec.Model.Name, ModelVersion: rec.Model.Version,
			InputsDigest: rec.InputsDigest, Probability: rec.Probability}
		var err2 error
		if o.ID, err2 = tx.AddOverride(ctx, o); err2 != nil {
			return Override{}, err2
		}
		return o, nil
	})
	if err == nil && !out.Replayed {
		s.count(func(m Metrics) { m.OverrideDecided(o.Direction, "requested") })
	}
	return o, out, err
}

// DecideOverride approves or rejects a pending override. Only a supervisor
// (a person) of the person's unit who did not ask may decide; approval makes
// the requested tier the person's level, as the approver's decision.
func (s *Service) DecideOverride(ctx context.Context, c Call, id string, approve bool, note string) (Override, error) {
	if utf8.RuneCountInString(note) > MaxNoteRunes {
		return Override{}, invalid("note", fmt.Sprintf("at most %d characters", MaxNoteRunes))
	}
	if !c.Principal.IsPerson() {
		return Override{}, ErrNotAPerson
	}
	if c.Principal.Role != auth.RoleSupervisor {
		return Override{}, fmt.Errorf("only a supervisor of the unit decides an override: %w", ErrForbidden)
	}
	action := "override.reject"
	if approve {
		action = "override.approve"
	}
	o, _, err := run(ctx, s, c, unit{action: action}, func(tx Tx) (Override, error) {
		o, err := tx.Override(ctx, id)
		if err != nil {
			return o, err
		}
		if o.RequestedBy == c.Principal.Actor() {
			return o, fmt.Errorf("the requester of an override may not decide it: %w", ErrForbidden)
		}
		if o.Status != "pending" {
			return o, fmt.Errorf("override is already %s: %w", o.Status, ErrConflict)
		}
		now := s.now().UTC()
		o.Status, o.DecidedBy, o.DecidedAt, o.DecisionNote = "rejected", c.Principal.Actor(), &now, note
		if approve {
			o.Status = "approved"
		}
		if err := tx.DecideOverride(ctx, o); err != nil {
			return o, err
		}
		if approve {
			subj, err := tx.Subject(ctx, o.SubjectID)
			if err != nil {
				return o, err
			}
			if _, err := s.decide(ctx, tx, c, subj, Decision{Kind: DecisionOverride, Tier: o.RequestedTier, ReasonCode: o.ReasonCode,
				RecommendationID: o.RecommendationID, OverrideID: o.ID, RequestedBy: o.RequestedBy, DecidedBy: c.Principal.Actor()}); err != nil {
				return o, err
			}
		}
		tx.Resource("override", o.ID, o.SubjectID)
		tx.Detail(map[string]any{"decision": o.Status, "direction": o.Direction, "reason": o.ReasonCode})
		return o, nil
	})
	if err == nil {
		s.count(func(m Metrics) { m.OverrideDecided(o.Direction, o.Status) })
	}
	return o, err
}

// AdjustInput is a supervision-level adjustment (降低/提高监管等级) decided
// by a supervisor, or a level decided in the agency's case system and sent
// with the deciding person's name (DecidedBy).
type AdjustInput struct {
	Tier       Tier
	ReasonCode string
	Note       string
	DecidedBy  string     // case systems: who decided, as the case system names them
	DecidedAt  *time.Time // case systems: when; now when nil
}

// AdjustLevel records a person's decision of a supervision level that is not
// a response to a recommendation: a supervisor's reward or sanction, or a
// decision taken in the case system by the person it names (recorded as
// theirs, never as the model's).
func (s *Service) AdjustLevel(ctx context.Context, c Call, id string, in AdjustInput) (Decision, Outcome, error) {
	inv := &problem.Invalid{}
	if !in.Tier.Valid() {
		inv.Add("tier", "must be lenient, ordinary or strict")
	}
	if !oneOf(in.ReasonCode, AdjustmentReasons) {
		inv.Add("reason_code", "must be one of "+strings.Join(AdjustmentReasons, ", "))
	}
	if !ValidNote(in.Note) {
		inv.Add("note", fmt.Sprintf("required, at most %d characters", MaxNoteRunes))
	}
	kind := DecisionAdjustment
	decidedBy := c.Principal.Actor()
	switch {
	case c.Principal.Role == auth.RoleCaseSystem:
		kind = DecisionCaseSystem
		name := strings.TrimSpace(in.DecidedBy)
		if name == "" || utf8.RuneCountInString(name) > 100 || strings.ContainsRune(name, 0) {
			inv.Add("decided_by", "required from a case system: the name of the person who decided, at most 100 characters")
		}
		decidedBy = "person:" + name
	case !c.Principal.IsPerson():
		return Decision{}, Outcome{}, ErrNotAPerson
	case c.Principal.Role != auth.RoleSupervisor:
		return Decision{}, Outcome{}, fmt.Errorf("only a supervisor adjusts a supervision level: %w", ErrForbidden)
	default:
		if in.DecidedBy != "" {
			inv.Add("decided_by", "only a case system names who decided; a person decides as themself")
		}
	}
	if in.DecidedAt != nil && (in.DecidedAt.After(s.now().Add(5*time.Minute)) || in.DecidedAt.Before(s.now().Add(-s.policy.MaxBackdate))) {
		inv.Add("decided_at", "must not be in the future, nor more than "+days(s.policy.MaxBackdate)+" days ago")
	}
	if err := inv.Err(); err != nil {
		return Decision{}, Outcome{}, err
	}
	return run(ctx, s, c, unit{action: "level.adjust", subject: id, idempotent: true}, func(tx Tx) (Decision, error) {
		subj, err := tx.Subject(ctx, id)
		if err != nil {
			return Decision{}, err
		}
		d := Decision{Kind: kind, Tier: in.Tier, ReasonCode: in.ReasonCode, Note: strings.TrimSpace(in.Note), DecidedBy: decidedBy}
		if in.DecidedAt != nil {
			d.DecidedAt = in.DecidedAt.UTC()
		}
		return s.decide(ctx, tx, c, subj, d)
	})
}

// LevelHistory is a person's supervision-level decisions, newest first:
// what, who, when, why and on which recommendation.
func (s *Service) LevelHistory(ctx context.Context, c Call, id string) ([]Decision, error) {
	return read(ctx, s, c, "level.history", id, func(tx Tx) ([]Decision, error) {
		subj, err := tx.Subject(ctx, id)
		if err != nil {
			return nil, err
		}
		tx.Resource("level_history", subj.ID, subj.ID)
		return tx.Decisions(ctx, subj, 200)
	})
}

// Overrides lists the override requests the caller may see, pending first.
func (s *Service) Overrides(ctx context.Context, c Call, status string) ([]Override, error) {
	if status != "" && status != "pending" && status != "approved" && status != "rejected" {
		return nil, invalid("status", "must be pending, approved or rejected")
	}
	return read(ctx, s, c, "override.list", "", func(tx Tx) ([]Override, error) {
		tx.Resource("overrides", status, "")
		return tx.Overrides(ctx, status, 200)
	})
}

// OverrideQueue is the overrides the caller may see with the
// recommendation each departs from.
type OverrideQueue struct {
	Overrides       []Override
	Recommendations map[string]Recommendation
}

// ReviewOverrides lists overrides with their recommendations, in one read.
func (s *Service) ReviewOverrides(ctx context.Context, c Call) (OverrideQueue, error) {
	return read(ctx, s, c, "override.list", "", func(tx Tx) (OverrideQueue, error) {
		q := OverrideQueue{Recommendations: map[string]Recommendation{}}
		os, err := tx.Overrides(ctx, "", 200)
		if err != nil {
			return q, err
		}
		q.Overrides = os
		for _, o := range os {
			if o.Status != "pending" {
				continue
			}
			if _, ok := q.Recommendations[o.RecommendationID]; ok {
				continue
			}
			r, err := tx.Recommendation(ctx, o.RecommendationID)
			if err != nil {
				return q, err
			}
			q.Recommendations[r.ID] = r
		}
		tx.Resource("overrides", "", "")
		return q, nil
	})
}

// OverrideAnalytics groups overrides by counselor, unit or reason over the
// last days.
func (s *Service) OverrideAnalytics(ctx context.Context, c Call, by string, days int) ([]OverrideStat, time.Time, error) {
	if by != "counselor" && by != "unit" && by != "reason" {
		return nil, time.Time{}, invalid("by", "must be counselor, unit or reason")
	}
	since := s.now().UTC().AddDate(0, 0, -days)
	g, err := oversightRead(ctx, s, c, "override.analytics", func(tx Tx) ([]OverrideStat, error) {
		tx.Resource("override_analytics", by, "")
		return tx.OverrideAnalytics(ctx, by, since)
	})
	return g, since, err
}
