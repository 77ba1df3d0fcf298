package casework

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/problem"
	"github.com/sunpath/sunpath/internal/screening"
)

// SessionInput opens a screening session.
type SessionInput struct {
	Instruments []string
	Language    string
	Kiosk       bool // issue a one-time kiosk link for self-administration
}

// OpenedSession is a new session; KioskToken is shown once.
type OpenedSession struct {
	Session
	KioskToken string `json:"kiosk_token,omitempty"`
	KioskURL   string `json:"kiosk_url,omitempty"`
	// KioskTokenWithheld is set on a replay: the token is shown once and
	// never stored, so a lost answer means a new session.
	KioskTokenWithheld bool `json:"kiosk_token_withheld,omitempty"`
}

// OpenSession opens a screening session of subject id for instruments whose
// every item has its text in the language.
func (s *Service) OpenSession(ctx context.Context, c Call, id string, in SessionInput) (OpenedSession, Outcome, error) {
	inv := &problem.Invalid{}
	if len(in.Instruments) == 0 || len(in.Instruments) > 10 {
		inv.Add("instruments", "1 to 10 instrument ids")
	}
	if in.Language != "zh-CN" && in.Language != "en" {
		inv.Add("language", "must be zh-CN or en")
	}
	for i, inst := range in.Instruments {
		d, ok := s.catalog.Get(inst)
		field := fmt.Sprintf("instruments[%d]", i)
		switch {
		case !ok:
			inv.Add(field, "unknown instrument")
		case !slices.Contains(d.Languages, in.Language):
			inv.Add(field, "not available in the requested language")
		case !d.TextComplete[in.Language]:
			inv.Add(field, "the item text is not installed in this language (licensed text: see instruments.overlay_dir)")
		case slices.Index(in.Instruments, inst) != i:
			inv.Add(field, "listed twice")
		}
	}
	if err := inv.Err(); err != nil {
		return OpenedSession{}, Outcome{}, err
	}
	kioskTTL := s.policy.KioskTTL
	if !in.Kiosk {
		kioskTTL = 0
	}
	withhold := func(v any) any {
		o := v.(OpenedSession)
		if o.KioskToken != "" {
			o.KioskToken, o.KioskURL, o.KioskTokenWithheld = "", "", true
		}
		return o
	}
	return run(ctx, s, c, unit{action: "session.create", subject: id, idempotent: true, persist: withhold}, func(tx Tx) (OpenedSession, error) {
		subj, err := tx.Subject(ctx, id)
		if err != nil {
			return OpenedSession{}, err
		}
		sess, token, err := tx.CreateSession(ctx, subj, in.Instruments, in.Language, s.policy.SessionTTL, kioskTTL)
		out := OpenedSession{Session: sess, KioskToken: token}
		if token != "" {
			out.KioskURL = "/kiosk#" + token
		}
		return out, err
	})
}

// SessionView is a session with its subject and, for a kiosk, the items
// to show (a kiosk never sees who created it or any score).
type SessionView struct {
	Session
	Subject Subject                     `json:"-"`
	Items   map[string][]screening.Item `json:"items,omitempty"`
}

// Session returns a session the caller may see.
func (s *Service) Session(ctx context.Context, c Call, id string) (SessionView, error) {
	return read(ctx, s, c, "session.read", "", func(tx Tx) (SessionView, error) {
		sess, subj, err := tx.Session(ctx, id)
		if err != nil {
			return SessionView{}, err
		}
		return s.sessionView(c, sess, subj), nil
	})
}

func (s *Service) sessionView(c Call, sess Session, subj Subject) SessionView {
	v := SessionView{Session: sess, Subject: subj}
	if c.Principal.Kind == auth.KindKiosk {
		v.CreatedBy = ""
		v.Items = map[string][]screening.Item{}
		for _, inst := range sess.Instruments {
			if d, ok := s.catalog.Get(inst); ok {
				v.Items[inst] = d.Items
			}
		}
	}
	return v
}

// OpenSessions lists unfinished screenings the caller may resume: of one
// person, or every visible one when subject is "".
func (s *Service) OpenSessions(ctx context.Context, c Call, subject string) ([]Session, error) {
	return read(ctx, s, c, "session.list", subject, func(tx Tx) ([]Session, error) {
		if subject != "" {
			if _, err := tx.SubjectRef(ctx, subject); err != nil {
				return nil, err
			}
		}
		tx.Resource("sessions", "", subject)
		return tx.OpenSessions(ctx, subject, 200)
	})
}

// ErrSessionClosed means a session is no longer open (submitted, cancelled
// or expired).
var ErrSessionClosed = fmt.Errorf("the screening session is no longer open: %w", ErrConflict)

// SaveAnswers merges answers (instrument → item → value; null clears one)
// into an open session after checking each given answer against its
// instrument, and returns the session as saved; ErrSessionClosed when it is
// not open. The web pages and the API store answers through it alike.
func (s *Service) SaveAnswers(ctx context.Context, c Call, id string, answers map[string]map[string]json.RawMessage) (SessionView, error) {
	return read(ctx, s, c, "session.save", "", func(tx Tx) (SessionView, error) {
		sess, subj, err := tx.Session(ctx, id)
		if err != nil {
			return SessionView{}, err
		}
		if sess.Status != "open" {
			return SessionView{}, ErrSessionClosed
		}
		if sess.Answers == nil {
			sess.Answers = map[string]map[string]json.RawMessage{}
		}
		for instrument, given := range answers {
			if !slices.Contains(sess.Instruments, instrument) {
				return SessionView{}, invalid("instrument", "not part of this session")
			}
			def, _ := s.catalog.Get(instrument)
			merged := map[string]json.RawMessage{}
			for k, v := range sess.Answers[instrument] {
				merged[k] = v
			}
			for k, v := range given {
				if string(v) == "null" {
					delete(merged, k)
				} else {
					merged[k] = v
				}
			}
			if err := CheckPartial(def, merged); err != nil {
				return SessionView{}, err
			}
			sess.Answers[instrument] = merged
		}
		if err := tx.SaveSessionAnswers(ctx, sess); err != nil {
			return SessionView{}, err
		}
		return s.sessionView(c, sess, subj), nil
	})
}

// SessionResult is a session with the assessments it stored.
type SessionResult struct {
	SessionView
	Assessments []Assessment
}

// SessionResult returns a session with the assessments it stored, for the
// staff member's result page.
func (s *Service) SessionResult(ctx context.Context, c Call, id string) (SessionResult, error) {
	return read(ctx, s, c, "session.read", "", func(tx Tx) (SessionResult, error) {
		sess, subj, err := tx.Session(ctx, id)
		if err != nil {
			return SessionResult{}, err
		}
		out := SessionResult{SessionView: s.sessionView(c, sess, subj)}
		if len(sess.AssessmentIDs) == 0 {
			return out, nil
		}
		as, err := tx.Assessments(ctx, subj, AssessmentFilter{Limit: 500})
		if err != nil {
			return out, err
		}
		for _, a := range as {
			if slices.Contains(sess.AssessmentIDs, a.ID) {
				s.withProtocol(a.Flags, sess.Language)
				out.Assessments = append(out.Assessments, a)
			}
		}
		tx.Resource("session", sess.ID, subj.ID)
		return out, nil
	})
}

// CheckPartial checks the answers given so far: each given answer must be
// valid; rules about the whole instrument (too many missing) wait for
// submission.
func CheckPartial(def *screening.Definition, answers map[string]json.RawMessage) error {
	b, _ := json.Marshal(answers)
	parsed, err := screening.DecodeAnswers(b)
	if err != nil {
		return err
	}
	_, err = def.Score(parsed, screening.ScoreOptions{})
	var inv *problem.Invalid
	if err == nil || !errors.As(err, &inv) {
		return err
	}
	keep := &problem.Invalid{}
	for _, fe := range inv.Errors {
		if fe.Item == "" {
			continue
		}
		if _, given := answers[fe.Item]; !given {
			continue
		}
		keep.Errors = append(keep.Errors, fe)
	}
	return keep.Err()
}

// Submitted is a submitted session; staff see the assessments, a kiosk
// only that it was received.
type Submitted struct {
	SessionID   string       `json:"session_id"`
	Status      string       `json:"status"`
	Language    string       `json:"language"`
	Assessments []Assessment `json:"assessments,omitempty"`
}

// SubmitSession scores every instrument of an open session and stores each
// result with its flags, once; a *Refusal when any answers cannot be
// scored (then nothing is stored), ErrSessionClosed when it is not open. A
// kiosk submission is recorded as self-administered.
func (s *Service) SubmitSession(ctx context.Context, c Call, id string) (Submitted, Outcome, error) {
	var stored []Assessment
	out, o, err := run(ctx, s, c, unit{action: "session.submit", idempotent: true}, func(tx Tx) (Submitted, error) {
		sess, subj, err := tx.Session(ctx, id)
		if err != nil {
			return Submitted{}, err
		}
		if sess.Status != "open" {
			return Submitted{}, ErrSessionClosed
		}
		if stored, err = s.submit(ctx, tx, c, sess, subj); err != nil {
			return Submitted{}, err
		}
		res := Submitted{SessionID: sess.ID, Status: "submitted", Language: sess.Language}
		if c.Principal.Kind != auth.KindKiosk {
			res.Assessments = stored
		}
		return res, nil
	})
	if err == nil && !o.Replayed {
		s.count(func(m Metrics) {
			for _, a := range stored {
				m.AssessmentStored(a)
			}
		})
	}
	return out, o, err
}

func (s *Service) submit(ctx context.Context, tx Tx, c Call, sess Session, subj Subject) ([]Assessment, error) {
	now := s.now().UTC()
	ref := &Refusal{ByInstrument: map[string]*problem.Invalid{}}
	var all []Scored
	for _, inst := range sess.Instruments {
		raw := []byte("{}")
		if sess.Answers[inst] != nil {
			raw, _ = json.Marshal(sess.Answers[inst])
		}
		sc, err := s.Score(inst, raw, screening.ScoreOptions{Language: sess.Language, StartedAt: sess.CreatedAt, CompletedAt: now})
		var inv *problem.Invalid
		if errors.As(err, &inv) {
			ref.ByInstrument[inst] = inv
			continue
		}
		if err != nil {
			return nil, err
		}
		all = append(all, sc)
	}
	if len(ref.ByInstrument) > 0 {
		return nil, ref
	}
	by := sess.CreatedBy
	if c.Principal.Kind == auth.KindKiosk {
		by = KioskAdministrator
	}
	started := sess.CreatedAt
	out := make([]Assessment, 0, len(all))
	for _, sc := range all {
		a, err := s.store1(ctx, tx, c, subj, sc, by, &started, now, sess.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	if err := tx.MarkSessionSubmitted(ctx, sess.ID); err != nil {
		return nil, err
	}
	tx.Resource("session", sess.ID, subj.ID)
	return out, nil
}
