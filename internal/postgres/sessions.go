package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/casework"
)

// sessionAnswers are a session's saved answers: instrument → item → value.
type sessionAnswers = map[string]map[string]json.RawMessage

// CreateSession opens a screening session for subj. With kioskTTL > 0 it also
// returns a one-time kiosk token (shown once; only its hash is stored).
func (t *Tx) CreateSession(ctx context.Context, subj casework.Subject, instruments []string, lang string, ttl, kioskTTL time.Duration) (casework.Session, string, error) {
	id := uuid.New()
	sid, _ := uuid.Parse(subj.InternalID())
	now := t.c.now().UTC()
	s := casework.Session{ID: id.String(), SubjectID: subj.ID, Instruments: instruments, Language: lang, Status: "open",
		Answers: sessionAnswers{}, CreatedBy: t.p.Actor(), CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(ttl)}
	var token string
	var tokenHash []byte
	if kioskTTL > 0 {
		token, tokenHash = auth.NewToken(auth.KioskPrefix)
		exp := now.Add(kioskTTL)
		s.KioskExpiresAt = &exp
	}
	if _, err := t.tx.Exec(ctx, `INSERT INTO screening_sessions (id, subject_id, instruments, language, answers, created_by, created_at, updated_at,
		expires_at, kiosk_token_hash, kiosk_expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9, $10)`,
		id, sid, instruments, lang, t.seal([]byte("{}"), "screening_sessions", "answers", id.String()), t.p.Actor(), now,
		s.ExpiresAt, tokenHash, s.KioskExpiresAt); err != nil {
		return s, "", err
	}
	t.Resource("session", s.ID, subj.ID)
	t.Detail(map[string]any{"instruments": instruments, "kiosk": kioskTTL > 0})
	return s, token, nil
}

// Session returns a session the principal may see, locked for update, with
// its subject. A kiosk principal sees only its own session.
func (t *Tx) Session(ctx context.Context, id string) (casework.Session, casework.Subject, error) {
	sid, err := uuid.Parse(id)
	if err != nil {
		return casework.Session{}, casework.Subject{}, fmt.Errorf("session: %w", casework.ErrNotFound)
	}
	var s casework.Session
	var subjectID uuid.UUID
	var answers []byte
	err = t.tx.QueryRow(ctx, `SELECT subject_id, instruments, language, status, answers, created_by, created_at, updated_at, submitted_at,
		expires_at, kiosk_expires_at FROM screening_sessions WHERE id = $1 FOR UPDATE`, sid).
		Scan(&subjectID, &s.Instruments, &s.Language, &s.Status, &answers, &s.CreatedBy, &s.CreatedAt, &s.UpdatedAt, &s.SubmittedAt,
			&s.ExpiresAt, &s.KioskExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, casework.Subject{}, fmt.Errorf("session: %w", casework.ErrNotFound)
	}
	if err != nil {
		return s, casework.Subject{}, err
	}
	s.ID = sid.String()
	subj, err := t.subjectByID(ctx, subjectID)
	if err != nil {
		return s, subj, err
	}
	s.SubjectID = subj.ID
	t.Resource("session", s.ID, subj.ID)
	if t.p.Kind == auth.KindKiosk {
		if t.p.Name != s.ID {
			return casework.Session{}, casework.Subject{}, casework.ErrOutOfScope
		}
	} else {
		role, name, scope := t.scopeArgs()
		var visible bool
		if err := t.tx.QueryRow(ctx, `SELECT subject_visible(s.unit, s.counselor, s.agency, $2, $3, $4) FROM subjects s WHERE s.id = $1`,
			subj.InternalID(), role, name, scope).Scan(&visible); err != nil {
			return s, subj, err
		}
		if !visible {
			return casework.Session{}, casework.Subject{}, casework.ErrOutOfScope
		}
	}
	pt, err := t.open(answers, "screening_sessions", "answers", s.ID)
	if err != nil {
		return s, subj, fmt.Errorf("session answers: %w", err)
	}
	if err := json.Unmarshal(pt, &s.Answers); err != nil {
		return s, subj, err
	}
	if s.Status == "open" && t.c.now().After(s.ExpiresAt) {
		s.Status = "expired"
	}
	rows, err := t.tx.Query(ctx, `SELECT id FROM assessments WHERE session_id = $1 ORDER BY created_at`, sid)
	if err != nil {
		return s, subj, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return s, subj, err
	}
	for _, a := range ids {
		s.AssessmentIDs = append(s.AssessmentIDs, a.String())
	}
	return s, subj, nil
}

// SaveSessionAnswers stores a session's answers after the caller merged and
// checked them.
func (t *Tx) SaveSessionAnswers(ctx context.Context, s casework.Session) error {
	b, err := json.Marshal(s.Answers)
	if err != nil {
		return err
	}
	_, err = t.tx.Exec(ctx, `UPDATE screening_sessions SET answers = $2, updated_at = $3 WHERE id = $1`,
		s.ID, t.seal(b, "screening_sessions", "answers", s.ID), t.c.now().UTC())
	t.Detail(map[string]any{"instruments": len(s.Answers)})
	return err
}

// MarkSessionSubmitted closes a session; its kiosk token stops working.
func (t *Tx) MarkSessionSubmitted(ctx context.Context, id string) error {
	_, err := t.tx.Exec(ctx, `UPDATE screening_sessions SET status = 'submitted', submitted_at = $2, updated_at = $2, kiosk_token_hash = NULL WHERE id = $1`,
		id, t.c.now().UTC())
	return err
}

// KioskPrincipal resolves a kiosk token to a principal that can reach only
// its session; auth.ErrUnauthorized when the token is unknown, expired or
// its session is no longer open.
func (c *Cases) KioskPrincipal(ctx context.Context, token string) (auth.Principal, error) {
	if !auth.WellFormed(token, auth.KioskPrefix) {
		return auth.Principal{}, fmt.Errorf("malformed kiosk token: %w", auth.ErrUnauthorized)
	}
	var id uuid.UUID
	err := c.db.withConn(ctx, func(conn *pgxpool.Conn) error {
		return conn.QueryRow(ctx, `SELECT id FROM screening_sessions WHERE kiosk_token_hash = $1 AND status = 'open'
			AND kiosk_expires_at > now() AND expires_at > now()`, auth.HashToken(token)).Scan(&id)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.Principal{}, fmt.Errorf("kiosk token: %w", auth.ErrUnauthorized)
	}
	if err != nil {
		return auth.Principal{}, err
	}
	return auth.Principal{Kind: auth.KindKiosk, Name: id.String(), Role: auth.RoleKiosk}, nil
}

// OpenSessions lists the open, unexpired sessions the principal may see,
// of one subject (by case-system id) or of all when subject is "", newest
// first. Answers are not read.
func (t *Tx) OpenSessions(ctx context.Context, subject string, limit int) ([]casework.Session, error) {
	role, name, scope := t.scopeArgs()
	rows, err := t.tx.Query(ctx, `SELECT x.id, s.external_id, x.instruments, x.language, x.status, x.created_by, x.created_at, x.updated_at,
		x.expires_at, x.kiosk_expires_at FROM screening_sessions x JOIN subjects s ON s.id = x.subject_id
		WHERE x.status = 'open' AND x.expires_at > $5 AND subject_visible(s.unit, s.counselor, s.agency, $1, $2, $3) AND `+scopeHint(t.p, "s")+`
		  AND ($4 = '' OR s.external_id = $4)
		ORDER BY x.updated_at DESC LIMIT $6`, role, name, scope, subject, t.c.now(), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []casework.Session{}
	for rows.Next() {
		var s casework.Session
		var id uuid.UUID
		if err := rows.Scan(&id, &s.SubjectID, &s.Instruments, &s.Language, &s.Status, &s.CreatedBy, &s.CreatedAt, &s.UpdatedAt,
			&s.ExpiresAt, &s.KioskExpiresAt); err != nil {
			return nil, err
		}
		s.ID = id.String()
		out = append(out, s)
	}
	return out, rows.Err()
}
