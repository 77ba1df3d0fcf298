package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/casework"
)

type sessionRequest struct {
	SubjectID   string   `path:"subject_id" json:"-" pattern:"^[A-Za-z0-9._-]{1,64}$"`
	Instruments []string `json:"instruments" required:"true" minItems:"1"`
	Language    string   `json:"language" required:"true" enum:"zh-CN,en"`
	Kiosk       bool     `json:"kiosk,omitempty" description:"issue a one-time kiosk link for self-administration"`
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
	cl, ok := s.call(c)
	if !ok {
		return
	}
	out, o, err := s.deps.Casework.OpenSession(c.Request.Context(), cl, id, casework.SessionInput{Instruments: req.Instruments,
		Language: req.Language, Kiosk: req.Kiosk})
	s.reply(c, http.StatusCreated, out, o, err)
}

func (s *Server) sessionID(c *gin.Context) string {
	p, _ := principal(c)
	if p.Kind == auth.KindKiosk {
		return p.Name
	}
	return c.Param("id")
}

func (s *Server) getSession(c *gin.Context) {
	cl, _ := s.call(c)
	v, err := s.deps.Casework.Session(c.Request.Context(), cl, s.sessionID(c))
	s.answer(c, v, err)
}

type answersRequest struct {
	ID string `path:"id"`
	kioskAnswersRequest
}

type kioskAnswersRequest struct {
	Instrument string                     `json:"instrument" required:"true"`
	Answers    map[string]json.RawMessage `json:"answers" required:"true" docType:"object" description:"item id → value; null clears an answer"`
}

func (s *Server) saveAnswers(c *gin.Context) {
	var req kioskAnswersRequest
	if err := decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	cl, _ := s.call(c)
	if req.Instrument == "" {
		s.fail(c, fieldError("instrument", "required"))
		return
	}
	v, err := s.deps.Casework.SaveAnswers(c.Request.Context(), cl, s.sessionID(c), map[string]map[string]json.RawMessage{req.Instrument: req.Answers})
	s.answer(c, v, err)
}

type submitRequest struct {
	ID string `path:"id"`
}

func (s *Server) submitSession(c *gin.Context) {
	cl, ok := s.call(c)
	if !ok {
		return
	}
	out, o, err := s.deps.Casework.SubmitSession(c.Request.Context(), cl, s.sessionID(c))
	var ref *casework.Refusal
	if errors.As(err, &ref) {
		err = ref.Invalid()
	}
	s.reply(c, http.StatusCreated, out, o, err)
}

type openSessionList struct {
	Sessions []casework.Session `json:"sessions"`
}

type openSessionsQuery struct {
	Subject string `query:"subject_id" description:"only this person's"`
}

func (s *Server) listOpenSessions(c *gin.Context) {
	cl, _ := s.call(c)
	ss, err := s.deps.Casework.OpenSessions(c.Request.Context(), cl, c.Query("subject_id"))
	s.answer(c, openSessionList{Sessions: ss}, err)
}
