package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/sunpath/sunpath/internal/casework"
)

// FlagSpec is a flag an instrument rule or a cross-instrument rule raised.
type FlagSpec struct {
	Code, Level, Item string
}

// NewAssessment is a scored administration to store.
type NewAssessment struct {
	Instrument, Version, ContentHash, EngineVersion, Language string
	Answers                                                   []byte // JSON, sealed at rest
	Result                                                    []byte // JSON of the scored result
	Total                                                     *int
	Severity                                                  string
	Flags                                                     []FlagSpec
	AdministeredBy                                            string
	StartedAt                                                 *time.Time
	CompletedAt                                               time.Time
	SessionID                                                 *uuid.UUID
}

// ConsecutiveRule raises a flag when the last Count results of an instrument
// all have one of the given severities (e.g. two severe PHQ-9 in a row).
type ConsecutiveRule struct {
	Instrument string
	Severities []string
	Count      int
	Code       string
	Level      string
}

// AddAssessment stores a scored assessment of subj, the flags it raised and
// those the cross-instrument rules raise, and queues their notifications.
func (t *Tx) AddAssessment(ctx context.Context, subj casework.Subject, a NewAssessment, rules []ConsecutiveRule) (casework.Assessment, error) {
	id := uuid.New()
	sid, err := uuid.Parse(subj.InternalID())
	if err != nil {
		return casework.Assessment{}, err
	}
	now := t.c.now().UTC()
	// The rules read earlier results, so they run before this one is
	// queued for insertion with the rest of the unit of work.
	flags := append([]FlagSpec(nil), a.Flags...)
	for _, r := range rules {
		fired, err := t.consecutive(ctx, sid, r, a)
		if err != nil {
			return casework.Assessment{}, err
		}
		if fired {
			flags = append(flags, FlagSpec{Code: r.Code, Level: r.Level})
		}
	}
	t.later(`INSERT INTO assessments (id, subject_id, instrument, instrument_version, content_hash, engine_version, language,
		answers, result, total, severity, administered_by, started_at, completed_at, created_by, session_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
		id, sid, a.Instrument, a.Version, a.ContentHash, a.EngineVersion, a.Language,
		t.seal(a.Answers, "assessments", "answers", id.String()), a.Result, a.Total, nullString(a.Severity),
		a.AdministeredBy, a.StartedAt, a.CompletedAt, t.p.Actor(), a.SessionID)
	t.Resource("assessment", id.String(), subj.ID)
	out := casework.Assessment{
		ID: id.String(), SubjectID: subj.ID, Instrument: a.Instrument, InstrumentVersion: a.Version,
		ContentHash: a.ContentHash, EngineVersion: a.EngineVersion, Language: a.Language, Result: a.Result,
		AdministeredBy: a.AdministeredBy, StartedAt: a.StartedAt, CompletedAt: a.CompletedAt, CreatedAt: now,
		Flags: []casework.Flag{},
	}
	if a.SessionID != nil {
		out.SessionID = a.SessionID.String()
	}
	for i, f := range flags {
		source := "instrument"
		if i >= len(a.Flags) {
			source = "rule"
		}
		fl, err := t.raiseFlag(ctx, subj, sid, &id, source, f, now)
		if err != nil {
			return casework.Assessment{}, err
		}
		out.Flags = append(out.Flags, fl)
	}
	codes := make([]string, 0, len(out.Flags))
	for _, f := range out.Flags {
		codes = append(codes, f.Code)
	}
	t.Detail(map[string]any{"instrument": a.Instrument, "flags": codes})
	return out, nil
}

// consecutive reports whether the new result a and the r.Count−1 results of
// r.Instrument before it all have one of r.Severities, and no flag of the
// rule is already unresolved for the subject. It asks the database only
// when a itself qualifies.
func (t *Tx) consecutive(ctx context.Context, sid uuid.UUID, r ConsecutiveRule, a NewAssessment) (bool, error) {
	if a.Instrument != r.Instrument || !slices.Contains(r.Severities, a.Severity) {
		return false, nil
	}
	if r.Count <= 1 {
		return true, nil
	}
	var fired bool
	err := t.tx.QueryRow(ctx, `SELECT count(*) = $3 AND coalesce(bool_and(severity = ANY($4)), false)
		  AND NOT EXISTS (SELECT 1 FROM flags WHERE subject_id = $1 AND code = $5 AND status <> 'resolved')
		FROM (SELECT severity FROM assessments WHERE subject_id = $1 AND instrument = $2
		      ORDER BY completed_at DESC, created_at DESC LIMIT $3) earlier`,
		sid, r.Instrument, r.Count-1, r.Severities, r.Code).Scan(&fired)
	return fired, err
}

func (t *Tx) raiseFlag(ctx context.Context, subj casework.Subject, sid uuid.UUID, assessment *uuid.UUID, source string, f FlagSpec, now time.Time) (casework.Flag, error) {
	id := uuid.New()
	deadline := t.c.flags.Deadline(f.Level, now)
	t.later(`INSERT INTO flags (id, subject_id, assessment_id, source, code, level, item, raised_at, deadline)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, id, sid, assessment, source, f.Code, f.Level, f.Item, now, deadline)
	fl := casework.Flag{ID: id.String(), SubjectID: subj.ID, Source: source, Code: f.Code, Level: f.Level, Item: f.Item,
		Status: "open", RaisedAt: now, Deadline: deadline, Unit: subj.Unit, Counselor: subj.Counselor}
	if assessment != nil {
		fl.AssessmentID = assessment.String()
	}
	if err := t.notify(ctx, "flag.raised", fl, ""); err != nil {
		return casework.Flag{}, err
	}
	return fl, nil
}

// notify queues one outbox row per endpoint. Payloads carry identifiers and
// codes only: never names, answers or notes.
func (t *Tx) notify(ctx context.Context, topic string, f casework.Flag, audience string) error {
	if len(t.c.endpoints) == 0 {
		return nil
	}
	payload, err := json.Marshal(map[string]any{
		"topic": topic, "flag_id": f.ID, "subject_id": f.SubjectID, "code": f.Code, "level": f.Level,
		"status": f.Status, "raised_at": f.RaisedAt, "deadline": f.Deadline, "unit": f.Unit, "counselor": f.Counselor,
		"escalation_level": f.EscalationLevel, "notify": audience,
	})
	if err != nil {
		return err
	}
	for _, ep := range t.c.endpoints {
		t.later(`INSERT INTO outbox (delivery_id, endpoint, topic, payload) VALUES ($1, $2, $3, $4)`, uuid.New(), ep, topic, payload)
	}
	return nil
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

const flagCols = `f.id, s.external_id, f.assessment_id, f.source, f.code, f.level, f.item, f.status, f.raised_at, f.deadline,
	f.acknowledged_by, f.acknowledged_at, f.resolved_by, f.resolved_at, f.resolution_code, f.resolution_note,
	f.escalation_level, s.unit, s.counselor`

func (t *Tx) scanFlag(row pgx.Row) (casework.Flag, error) {
	var f casework.Flag
	var id uuid.UUID
	var asmt *uuid.UUID
	var ackBy, resBy, resCode *string
	var note []byte
	err := row.Scan(&id, &f.SubjectID, &asmt, &f.Source, &f.Code, &f.Level, &f.Item, &f.Status, &f.RaisedAt, &f.Deadline,
		&ackBy, &f.AcknowledgedAt, &resBy, &f.ResolvedAt, &resCode, &note, &f.EscalationLevel, &f.Unit, &f.Counselor)
	if err != nil {
		return f, err
	}
	f.ID = id.String()
	if asmt != nil {
		f.AssessmentID = asmt.String()
	}
	f.AcknowledgedBy, f.ResolvedBy, f.ResolutionCode = deref(ackBy), deref(resBy), deref(resCode)
	if note != nil {
		pt, err := t.open(note, "flags", "resolution_note", f.ID)
		if err != nil {
			return f, fmt.Errorf("flag note: %w", err)
		}
		f.ResolutionNote = string(pt)
	}
	f.RaisedAt, f.Deadline = f.RaisedAt.UTC(), f.Deadline.UTC()
	f.Overdue = f.Status == "open" && t.c.now().After(f.Deadline)
	return f, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// AssessmentFilter narrows a listing of a subject's assessments.
type AssessmentFilter struct {
	Instrument     string
	IncludeAnswers bool
	Limit          int
}

// Assessments lists subj's assessments, newest first, with their flags.
func (t *Tx) Assessments(ctx context.Context, subj casework.Subject, f AssessmentFilter) ([]casework.Assessment, error) {
	sid, _ := uuid.Parse(subj.InternalID())
	t.Resource("assessments", subj.ID, subj.ID)
	rows, err := t.tx.Query(ctx, `SELECT id, instrument, instrument_version, content_hash, engine_version, language, answers, result,
		administered_by, started_at, completed_at, created_at, session_id
		FROM assessments WHERE subject_id = $1 AND ($2 = '' OR instrument = $2)
		ORDER BY completed_at DESC, created_at DESC LIMIT $3`, sid, f.Instrument, f.Limit)
	if err != nil {
		return nil, err
	}
	var out []casework.Assessment
	index := map[string]int{}
	for rows.Next() {
		var a casework.Assessment
		var id uuid.UUID
		var session *uuid.UUID
		var answers []byte
		if err := rows.Scan(&id, &a.Instrument, &a.InstrumentVersion, &a.ContentHash, &a.EngineVersion, &a.Language, &answers, &a.Result,
			&a.AdministeredBy, &a.StartedAt, &a.CompletedAt, &a.CreatedAt, &session); err != nil {
			rows.Close()
			return nil, err
		}
		a.ID, a.SubjectID, a.Flags = id.String(), subj.ID, []casework.Flag{}
		if session != nil {
			a.SessionID = session.String()
		}
		if f.IncludeAnswers {
			pt, err := t.open(answers, "assessments", "answers", a.ID)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("assessment answers: %w", err)
			}
			a.Answers = pt
		}
		a.CompletedAt, a.CreatedAt = a.CompletedAt.UTC(), a.CreatedAt.UTC()
		index[a.ID] = len(out)
		out = append(out, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	frows, err := t.tx.Query(ctx, `SELECT `+flagCols+` FROM flags f JOIN subjects s ON s.id = f.subject_id
		WHERE f.subject_id = $1 AND f.assessment_id IS NOT NULL ORDER BY f.raised_at`, sid)
	if err != nil {
		return nil, err
	}
	defer frows.Close()
	for frows.Next() {
		fl, err := t.scanFlag(frows)
		if err != nil {
			return nil, err
		}
		if i, ok := index[fl.AssessmentID]; ok {
			out[i].Flags = append(out[i].Flags, fl)
		}
	}
	return out, frows.Err()
}

// FlagFilter narrows a flag listing.
type FlagFilter struct {
	Status  string // open, acknowledged, resolved, or "" for unresolved
	Level   string
	Subject string
	Overdue bool
	Limit   int
}

// Flags lists the flags the principal may see, most urgent first: level,
// then deadline.
func (t *Tx) Flags(ctx context.Context, f FlagFilter) ([]casework.Flag, error) {
	role, name, scope := t.scopeArgs()
	t.Resource("flags", f.Status, f.Subject)
	rows, err := t.tx.Query(ctx, `SELECT `+flagCols+` FROM flags f JOIN subjects s ON s.id = f.subject_id
		WHERE subject_visible(s.unit, s.counselor, s.agency, $1, $2, $3)
		  AND (CASE WHEN $4 = '' THEN f.status <> 'resolved' ELSE f.status = $4 END)
		  AND ($5 = '' OR f.level = $5) AND ($6 = '' OR s.external_id = $6)
		  AND (NOT $7 OR (f.status = 'open' AND f.deadline < $9))
		ORDER BY CASE f.level WHEN 'critical' THEN 0 WHEN 'urgent' THEN 1 ELSE 2 END, f.deadline
		LIMIT $8`, role, name, scope, f.Status, f.Level, f.Subject, f.Overdue, f.Limit, t.c.now())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []casework.Flag{}
	for rows.Next() {
		fl, err := t.scanFlag(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, fl)
	}
	return out, rows.Err()
}

// flagForUpdate locks a flag the principal may see.
func (t *Tx) flagForUpdate(ctx context.Context, id string) (casework.Flag, error) {
	fid, err := uuid.Parse(id)
	if err != nil {
		return casework.Flag{}, fmt.Errorf("flag: %w", casework.ErrNotFound)
	}
	role, name, scope := t.scopeArgs()
	var visible bool
	var fl casework.Flag
	row := t.tx.QueryRow(ctx, `SELECT `+flagCols+`, subject_visible(s.unit, s.counselor, s.agency, $2, $3, $4)
		FROM flags f JOIN subjects s ON s.id = f.subject_id WHERE f.id = $1 FOR UPDATE OF f`, fid, role, name, scope)
	fl, err = t.scanFlag(scanPlus{row, &visible})
	if errors.Is(err, pgx.ErrNoRows) {
		return fl, fmt.Errorf("flag: %w", casework.ErrNotFound)
	}
	if err != nil {
		return fl, err
	}
	t.Resource("flag", fl.ID, fl.SubjectID)
	if !visible {
		return casework.Flag{}, casework.ErrOutOfScope
	}
	return fl, nil
}

// scanPlus scans a row with extra trailing columns.
type scanPlus struct {
	row   pgx.Row
	extra *bool
}

func (s scanPlus) Scan(dest ...any) error { return s.row.Scan(append(dest, s.extra)...) }

// Flag returns one flag the principal may see.
func (t *Tx) Flag(ctx context.Context, id string) (casework.Flag, error) {
	return t.flagForUpdate(ctx, id)
}

// AcknowledgeFlag marks an open flag acknowledged by the principal;
// ErrConflict when it is not open.
func (t *Tx) AcknowledgeFlag(ctx context.Context, id string) (casework.Flag, error) {
	fl, err := t.flagForUpdate(ctx, id)
	if err != nil {
		return fl, err
	}
	if fl.Status != "open" {
		return fl, fmt.Errorf("flag is %s, not open: %w", fl.Status, casework.ErrConflict)
	}
	now := t.c.now().UTC()
	if _, err := t.tx.Exec(ctx, `UPDATE flags SET status = 'acknowledged', acknowledged_by = $2, acknowledged_at = $3 WHERE id = $1`,
		fl.ID, t.p.Actor(), now); err != nil {
		return fl, err
	}
	fl.Status, fl.AcknowledgedBy, fl.AcknowledgedAt, fl.Overdue = "acknowledged", t.p.Actor(), &now, false
	t.Detail(map[string]any{"level": fl.Level, "code": fl.Code, "late": now.After(fl.Deadline)})
	return fl, t.notify(ctx, "flag.acknowledged", fl, "")
}

// ResolveFlag closes an acknowledged flag with a resolution code and note;
// ErrConflict when it is not acknowledged.
func (t *Tx) ResolveFlag(ctx context.Context, id, code, note string) (casework.Flag, error) {
	fl, err := t.flagForUpdate(ctx, id)
	if err != nil {
		return fl, err
	}
	if fl.Status != "acknowledged" {
		return fl, fmt.Errorf("flag is %s; only an acknowledged flag can be resolved: %w", fl.Status, casework.ErrConflict)
	}
	now := t.c.now().UTC()
	if _, err := t.tx.Exec(ctx, `UPDATE flags SET status = 'resolved', resolved_by = $2, resolved_at = $3, resolution_code = $4,
		resolution_note = $5 WHERE id = $1`, fl.ID, t.p.Actor(), now, code, t.seal([]byte(note), "flags", "resolution_note", fl.ID)); err != nil {
		return fl, err
	}
	fl.Status, fl.ResolvedBy, fl.ResolvedAt, fl.ResolutionCode, fl.ResolutionNote = "resolved", t.p.Actor(), &now, code, note
	t.Detail(map[string]any{"level": fl.Level, "code": fl.Code, "resolution": code})
	return fl, nil
}
