package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/postgres"
	"github.com/sunpath/sunpath/internal/problem"
	"github.com/sunpath/sunpath/internal/screenflow"
	"github.com/sunpath/sunpath/internal/screening"
)

type sessionRequest struct {
	SubjectID   string   `path:"subject_id"`
	Instruments []string `json:"instruments" required:"true" minItems:"1"`
	Language    string   `json:"language" required:"true" enum:"zh-CN,en"`
	Kiosk       bool     `json:"kiosk,omitempty" description:"issue a one-time kiosk link for self-administration"`
}

type sessionCreated struct {
	casework.Session
	KioskToken string `json:"kiosk_token,omitempty" description:"shown once; the kiosk sends it as a bearer token"`
	KioskURL   string `json:"kiosk_url,omitempty"`
}

func (s *Server) createSession(c *gin.Context) {
	id, ok := s.subjectID(c)
	if !ok {
		return
	}
	var req sessionRequest
	if err := decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	inv := &problem.Invalid{}
	if len(req.Instruments) == 0 || len(req.Instruments) > 10 {
		inv.Add("instruments", "1 to 10 instrument ids")
	}
	for i, inst := range req.Instruments {
		d, ok := s.deps.Catalog.Get(inst)
		switch {
		case !ok:
			inv.Add(fmt.Sprintf("instruments[%d]", i), "unknown instrument")
		case !slices.Contains(d.Languages, req.Language):
			inv.Add(fmt.Sprintf("instruments[%d]", i), "not available in the requested language")
		case slices.Index(req.Instruments, inst) != i:
			inv.Add(fmt.Sprintf("instruments[%d]", i), "listed twice")
		}
	}
	if req.Language != "zh-CN" && req.Language != "en" {
		inv.Add("language", "must be zh-CN or en")
	}
	if err := inv.Err(); err != nil {
		s.fail(c, err)
		return
	}
	kioskTTL := time.Duration(0)
	if req.Kiosk {
		kioskTTL = s.deps.Workflow.KioskTTL
	}
	s.work(c, "session.create", http.StatusCreated, true, func(tx *postgres.Tx) (any, error) {
		subj, err := tx.Subject(c.Request.Context(), id)
		if err != nil {
			return nil, err
		}
		sess, token, err := tx.CreateSession(c.Request.Context(), subj, req.Instruments, req.Language, s.deps.Workflow.SessionTTL, kioskTTL)
		out := sessionCreated{Session: sess, KioskToken: token}
		if token != "" {
			out.KioskURL = "/kiosk#" + token
		}
		return out, err
	})
}

func (s *Server) sessionID(c *gin.Context) string {
	p, _ := principal(c)
	if p.Kind == auth.KindKiosk {
		return p.Name
	}
	return c.Param("id")
}

func (s *Server) getSession(c *gin.Context) {
	s.work(c, "session.read", http.StatusOK, false, func(tx *postgres.Tx) (any, error) {
		sess, _, err := tx.Session(c.Request.Context(), s.sessionID(c))
		if err != nil {
			return nil, err
		}
		return s.sessionView(c, sess), nil
	})
}

// kioskView is what the person at a kiosk sees: the questions, their own
// saved answers, never scores.
type kioskView struct {
	casework.Session
	Items map[string][]screening.Item `json:"items"`
}

func (s *Server) sessionView(c *gin.Context, sess casework.Session) any {
	p, _ := principal(c)
	if p.Kind != auth.KindKiosk {
		return sess
	}
	v := kioskView{Session: sess, Items: map[string][]screening.Item{}}
	v.CreatedBy = ""
	for _, inst := range sess.Instruments {
		if d, ok := s.deps.Catalog.Get(inst); ok {
			v.Items[inst] = d.Items
		}
	}
	return v
}

type answersRequest struct {
	ID string `path:"id"`
	kioskAnswersRequest
}

type kioskAnswersRequest struct {
	Instrument string                     `json:"instrument" required:"true"`
	Answers    map[string]json.RawMessage `json:"answers" required:"true" description:"item id → value; null clears an answer"`
}

// saveAnswers merges answers into an open session (autosave). Each item must
// belong to the instrument and each value must be one of its options, so a
// resumed session never holds an answer that cannot be scored.
func (s *Server) saveAnswers(c *gin.Context) {
	var req kioskAnswersRequest
	if err := decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	s.work(c, "session.save", http.StatusOK, false, func(tx *postgres.Tx) (any, error) {
		sess, _, err := tx.Session(c.Request.Context(), s.sessionID(c))
		if err != nil {
			return nil, err
		}
		if sess.Status != "open" {
			return nil, fmt.Errorf("session is %s: %w", sess.Status, casework.ErrConflict)
		}
		if !slices.Contains(sess.Instruments, req.Instrument) {
			return nil, fieldError("instrument", "not part of this session")
		}
		def, _ := s.deps.Catalog.Get(req.Instrument)
		merged := map[string]json.RawMessage{}
		for k, v := range sess.Answers[req.Instrument] {
			merged[k] = v
		}
		for k, v := range req.Answers {
			if string(v) == "null" {
				delete(merged, k)
			} else {
				merged[k] = v
			}
		}
		if err := checkPartial(def, merged); err != nil {
			return nil, err
		}
		sess.Answers[req.Instrument] = merged
		if err := tx.SaveSessionAnswers(c.Request.Context(), sess); err != nil {
			return nil, err
		}
		return s.sessionView(c, sess), nil
	})
}

// checkPartial checks answers that may still be incomplete: every given
// item must exist and have a valid value.
func checkPartial(def *screening.Definition, answers map[string]json.RawMessage) error {
	b, _ := json.Marshal(answers)
	parsed, err := screening.DecodeAnswers(b)
	if err != nil {
		return err
	}
	_, err = def.Score(parsed, screening.ScoreOptions{})
	var inv *problem.Invalid
	if err == nil || !asInvalid(err, &inv) {
		return err
	}
	// Missing items are expected while the session is in progress.
	keep := &problem.Invalid{}
	for _, fe := range inv.Errors {
		if fe.Item != "" {
			if _, given := answers[fe.Item]; !given {
				continue
			}
		}
		if fe.Item == "" && fe.Field == "" {
			continue
		}
		if fe.Item == "" {
			continue // whole-instrument rules (too many missing) wait for submit
		}
		keep.Errors = append(keep.Errors, fe)
	}
	return keep.Err()
}

type submitResponse struct {
	SessionID   string                `json:"session_id"`
	Status      string                `json:"status"`
	Assessments []casework.Assessment `json:"assessments,omitempty"`
}

type submitRequest struct {
	ID string `path:"id"`
}

// submitSession scores and stores every instrument of the session in one
// transaction and closes it. A kiosk sees only that it was submitted.
func (s *Server) submitSession(c *gin.Context) {
	p, _ := principal(c)
	var created []casework.Assessment
	s.work(c, "session.submit", http.StatusCreated, true, func(tx *postgres.Tx) (any, error) {
		sess, subj, err := tx.Session(c.Request.Context(), s.sessionID(c))
		if err != nil {
			return nil, err
		}
		if sess.Status != "open" {
			return nil, fmt.Errorf("session is %s: %w", sess.Status, casework.ErrConflict)
		}
		created, err = s.deps.Flow.Submit(c.Request.Context(), tx, p, sess, subj)
		var ref *screenflow.Refusal
		if errors.As(err, &ref) {
			return nil, ref.Invalid()
		}
		if err != nil {
			return nil, err
		}
		out := submitResponse{SessionID: sess.ID, Status: "submitted"}
		if p.Kind != auth.KindKiosk {
			out.Assessments = created
		}
		return out, nil
	})
	if c.Writer.Status() == http.StatusCreated && c.Writer.Header().Get("Idempotent-Replayed") == "" {
		s.deps.Flow.Count(created...)
	}
}
