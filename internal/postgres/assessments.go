package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/screening"
)

// The one-row inserts of a submission, combined across a group (coalesce).
var (
	insertAssessmentSQL = coalescable(`INSERT INTO assessments (id, subject_id, instrument, instrument_version, content_hash, engine_version, language,
		answers, result, total, severity, administered_by, started_at, completed_at, created_by, session_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`)
	insertFlagSQL = coalescable(`INSERT INTO flags (id, subject_id, assessment_id, source, code, level, item, raised_at, deadline)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`)
	insertOutboxSQL = coalescable(`INSERT INTO outbox (delivery_id, endpoint, topic, payload) VALUES ($1, $2, $3, $4)`)
)

// NewAssessment is a scored administration to store.
type NewAssessment = casework.NewAssessment

// AddAssessment stores a scored assessment of subj and the flags given,
// and queues their notifications. Every write is queued for the end of the
// unit of work (group commit).
func (t *Tx) AddAssessment(ctx context.Context, subj casework.Subject, a casework.NewAssessment) (casework.Assessment, error) {
	id := uuid.New()
	sid, err := uuid.Parse(subj.InternalID())
	if err != nil {
		return casework.Assessment{}, err
	}
	var session pgtype.UUID
	if a.SessionID != "" {
		u, err := uuid.Parse(a.SessionID)
		if err != nil {
			return casework.Assessment{}, err
		}
		session = pgUUID(u)
	}
	now := t.c.now().UTC()
	if t.wrote != nil {
		t.wrote[sid] = true
	}
	t.later(insertAssessmentSQL,
		pgUUID(id), pgUUID(sid), a.Instrument, a.Version, a.ContentHash, a.EngineVersion, a.Language,
		t.seal(a.Answers, "assessments", "answers", id.String()), a.Result, a.Total, nullString(a.Severity),
		a.AdministeredBy, a.StartedAt, a.CompletedAt, t.p.Actor(), session)
	t.Resource("assessment", id.String(), subj.ID)
	out := casework.Assessment{
		ID: id.String(), SubjectID: subj.ID, Instrument: a.Instrument, InstrumentVersion: a.Version,
		ContentHash: a.ContentHash, EngineVersion: a.EngineVersion, Language: a.Language, Result: a.Result,
		AdministeredBy: a.AdministeredBy, StartedAt: a.StartedAt, CompletedAt: a.CompletedAt, CreatedAt: now,
		SessionID: a.SessionID, Flags: []casework.Flag{},
	}
	codes := make([]string, 0, len(a.Flags))
	for _, f := range a.Flags {
		fid := uuid.New()
		f.ID, f.AssessmentID = fid.String(), id.String()
		t.later(insertFlagSQL, pgUUID(fid), pgUUID(sid), pgUUID(id), f.Source, f.Code, string(f.Level), f.Item, f.RaisedAt, f.Deadline)
		if err := t.notify(ctx, "flag.raised", f, ""); err != nil {
			return casework.Assessment{}, err
		}
		out.Flags = append(out.Flags, f)
		codes = append(codes, f.Code)
	}
	t.Detail(map[string]any{"instrument": a.Instrument, "flags": codes})
	return out, nil
}

// RecentSeverities returns the severities of subj's last n results of
// instrument, newest first, and whether a flag with code is unresolved.
func (t *Tx) RecentSeverities(ctx context.Context, subj casework.Subject, instrument string, n int, code string) ([]string, bool, error) {
	sid, err := uuid.Parse(subj.InternalID())
	if err != nil {
		return nil, false, err
	}
	if p := t.pre; p != nil && p.err == nil && p.row.id == sid && !t.wrote[sid] {
		if h := p.history(casework.HistoryRead{Instrument: instrument, N: n, Code: code}); h != nil {
			return h.sev, h.unresolved, h.err
		}
	}
	var sev []string
	var unresolved bool
	err = t.tx.QueryRow(ctx, historySQL, sid, instrument, n, code).Scan(&sev, &unresolved)
	return sev, unresolved, err
}

// historySQL reads the severities of subject $1's last $3 results of
// instrument $2, newest first, and whether a flag with code $4 is unresolved.
var historySQL = historyOf("$1")

// historyByExternalSQL is historySQL for the subject with external id $1
// (read with BEGIN, before the subject's internal id is known).
var historyByExternalSQL = historyOf("(SELECT id FROM subjects WHERE external_id = $1)")

// historyOf is historySQL for the subject id subject.
func historyOf(subject string) string {
	return `SELECT coalesce((SELECT array_agg(coalesce(severity, '')) FROM (SELECT severity FROM assessments
	  WHERE subject_id = ` + subject + ` AND instrument = $2 ORDER BY completed_at DESC, created_at DESC LIMIT $3) earlier), '{}'),
	EXISTS (SELECT 1 FROM flags WHERE subject_id = ` + subject + ` AND code = $4 AND status <> 'resolved')`
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
		t.later(insertOutboxSQL, pgUUID(uuid.New()), ep, topic, payload)
	}
	return nil
}

// pgUUID is u as pgx encodes it directly (a uuid.UUID goes through its
// driver.Valuer string and a failed binary plan first).
func pgUUID(u uuid.UUID) pgtype.UUID { return pgtype.UUID{Bytes: u, Valid: true} }

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

const flagCols = `f.id, s.external_id, f.assessment_id, f.source, f.code, f.level, f.item, f.status, f.raised_at, f.deadline,
	f.acknowledged_by, f.acknowledged_at, f.resolved_by, f.resolved_at, f.resolution_code, f.resolution_note,
	f.escalation_level, s.unit, s.counselor, f.interventions, f.follow_up_due`

func (t *Tx) scanFlag(row pgx.Row) (casework.Flag, error) {
	var f casework.Flag
	var id uuid.UUID
	var asmt *uuid.UUID
	var ackBy, resBy, resCode *string
	var note []byte
	var level string
	err := row.Scan(&id, &f.SubjectID, &asmt, &f.Source, &f.Code, &level, &f.Item, &f.Status, &f.RaisedAt, &f.Deadline,
		&ackBy, &f.AcknowledgedAt, &resBy, &f.ResolvedAt, &resCode, &note, &f.EscalationLevel, &f.Unit, &f.Counselor, &f.Interventions, &f.FollowUpDue)
	f.Level = screening.Level(level)
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
type AssessmentFilter = casework.AssessmentFilter

// Assessments lists subj's assessments, newest first, with their flags.
func (t *Tx) Assessments(ctx context.Context, subj casework.Subject, f casework.AssessmentFilter) ([]casework.Assessment, error) {
	t.Resource("assessments", subj.ID, subj.ID)
	return t.assessments(ctx, subj, f, nil)
}

// assessments lists subj's assessments (only the one with id, when given).
func (t *Tx) assessments(ctx context.Context, subj casework.Subject, f casework.AssessmentFilter, only *uuid.UUID) ([]casework.Assessment, error) {
	sid, _ := uuid.Parse(subj.InternalID())
	rows, err := t.tx.Query(ctx, `SELECT id, instrument, instrument_version, content_hash, engine_version, language, answers, result,
		administered_by, started_at, completed_at, created_at, session_id
		FROM assessments WHERE subject_id = $1 AND ($2 = '' OR instrument = $2) AND ($4::uuid IS NULL OR id = $4)
		ORDER BY completed_at DESC, created_at DESC LIMIT $3`, sid, f.Instrument, f.Limit, only)
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
type FlagFilter = casework.FlagFilter

// Flags lists the flags the principal may see, most urgent first: level,
// then deadline.
func (t *Tx) Flags(ctx context.Context, f casework.FlagFilter) ([]casework.Flag, error) {
	role, name, scope := t.scopeArgs()
	// The status is written into the query so that the planner can use the
	// partial index in the queue's order (flags_queue, flags_resolved_queue):
	// a page of the queue reads a page of the index.
	var status string
	switch f.Status {
	case "":
		status = "f.status <> 'resolved'"
	case casework.FlagOpen, casework.FlagAcknowledged, casework.FlagResolved:
		status = "f.status = '" + f.Status + "'"
	default:
		return nil, fmt.Errorf("unknown flag status %q", f.Status)
	}
	rows, err := t.tx.Query(ctx, `SELECT `+flagCols+` FROM flags f JOIN subjects s ON s.id = f.subject_id
		WHERE subject_visible(s.unit, s.counselor, s.agency, $1, $2, $3) AND `+scopeHint(t.p, "s")+` AND `+status+`
		  AND ($4 = '' OR f.level = $4) AND `+equalUnlessEmpty(f.Subject, "s.external_id", "$5")+`
		  AND (NOT $6 OR (f.status = 'open' AND f.deadline < $8))
		ORDER BY `+levelRank+`, f.deadline
		LIMIT $7`, role, name, scope, string(f.Level), f.Subject, f.Overdue, f.Limit, t.c.now())
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

// levelRank orders flags most urgent first; the queue indexes of migration
// 0010 are on this expression.
const levelRank = `CASE f.level WHEN 'critical' THEN 0 WHEN 'urgent' THEN 1 ELSE 2 END`

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

// Flag returns one flag the principal may see, locked for update.
func (t *Tx) Flag(ctx context.Context, id string) (casework.Flag, error) {
	return t.flagForUpdate(ctx, id)
}

// UpdateFlag writes a flag's status, acknowledgement, resolution and
// follow-up as the use case set them, and queues a notification of topic.
func (t *Tx) UpdateFlag(ctx context.Context, f casework.Flag, topic string) error {
	var note []byte
	if f.ResolutionNote != "" {
		note = t.seal([]byte(f.ResolutionNote), "flags", "resolution_note", f.ID)
	}
	if _, err := t.tx.Exec(ctx, `UPDATE flags SET status = $2, acknowledged_by = $3, acknowledged_at = $4, resolved_by = $5, resolved_at = $6,
		resolution_code = $7, resolution_note = $8, interventions = $9, follow_up_due = $10 WHERE id = $1`,
		f.ID, f.Status, nullString(f.AcknowledgedBy), f.AcknowledgedAt, nullString(f.ResolvedBy), f.ResolvedAt, nullString(f.ResolutionCode),
		note, f.Interventions, f.FollowUpDue); err != nil {
		return err
	}
	return t.notify(ctx, topic, f, "")
}

// Assessment returns one assessment the principal may see, with its flags
// and, with withAnswers, its answers.
func (t *Tx) Assessment(ctx context.Context, id string, withAnswers bool) (casework.Assessment, error) {
	aid, err := uuid.Parse(id)
	if err != nil {
		return casework.Assessment{}, fmt.Errorf("assessment: %w", casework.ErrNotFound)
	}
	var ext string
	err = t.tx.QueryRow(ctx, `SELECT s.external_id FROM assessments a JOIN subjects s ON s.id = a.subject_id WHERE a.id = $1`, aid).Scan(&ext)
	if errors.Is(err, pgx.ErrNoRows) {
		return casework.Assessment{}, fmt.Errorf("assessment: %w", casework.ErrNotFound)
	}
	if err != nil {
		return casework.Assessment{}, err
	}
	subj, err := t.SubjectRef(ctx, ext)
	if err != nil {
		return casework.Assessment{}, err
	}
	as, err := t.assessments(ctx, subj, casework.AssessmentFilter{IncludeAnswers: withAnswers, Limit: 1}, &aid)
	if err != nil {
		return casework.Assessment{}, err
	}
	if len(as) == 0 {
		return casework.Assessment{}, fmt.Errorf("assessment: %w", casework.ErrNotFound)
	}
	t.Resource("assessment", id, subj.ID)
	return as[0], nil
}
