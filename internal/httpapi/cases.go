package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/fhir"
	"github.com/sunpath/sunpath/internal/riskmodel"
	"github.com/sunpath/sunpath/internal/screening"
)

type subjectPath struct {
	SubjectID string `path:"subject_id" pattern:"^[A-Za-z0-9._-]{1,64}$" description:"the case-management system's own id"`
}

type subjectRequest struct {
	SubjectID        string         `path:"subject_id" json:"-" pattern:"^[A-Za-z0-9._-]{1,64}$" description:"the case-management system's own id"`
	DisplayName      string         `json:"display_name" required:"true"`
	Sex              string         `json:"sex" required:"true"`
	BirthYear        *int           `json:"birth_year,omitempty"`
	SupervisionType  string         `json:"supervision_type" required:"true"`
	Unit             string         `json:"unit" required:"true"`
	Counselor        string         `json:"counselor,omitempty" description:"username of the responsible counselor"`
	SupervisionStart string         `json:"supervision_start,omitempty" format:"date"`
	SupervisionEnd   string         `json:"supervision_end,omitempty" format:"date"`
	Profile          map[string]any `json:"profile,omitempty" description:"model input fields by the names GET /v1/models declares; omitted: the stored profile is kept"`
}

type subjectList casework.SubjectPage

type subjectQuery struct {
	Unit      string `query:"unit"`
	Counselor string `query:"counselor"`
	Tier      string `query:"tier"`
	Overdue   bool   `query:"overdue" description:"only subjects with an overdue reassessment"`
	Limit     int    `query:"limit" minimum:"1" maximum:"500"`
	After     string `query:"after" description:"continue after this subject id"`
}

func (s *Server) subjectID(c *gin.Context) (string, bool) {
	id := c.Param("subject_id")
	if !casework.IDPattern.MatchString(id) {
		s.fail(c, fieldError("subject_id", "must be 1-64 letters, digits, '.', '_' or '-'"))
		return "", false
	}
	return id, true
}

func (s *Server) putSubject(c *gin.Context) {
	id, ok := s.subjectID(c)
	if !ok {
		return
	}
	var req subjectRequest
	if err := decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	cl, ok := s.call(c)
	if !ok {
		return
	}
	in := casework.SubjectInput{DisplayName: req.DisplayName, Sex: req.Sex, BirthYear: req.BirthYear, SupervisionType: req.SupervisionType,
		Unit: req.Unit, Counselor: req.Counselor, SupervisionStart: req.SupervisionStart, SupervisionEnd: req.SupervisionEnd, Profile: req.Profile,
		KeepProfile: req.Profile == nil, IfMatch: c.GetHeader("If-Match")}
	out, created, err := s.deps.Casework.PutSubject(c.Request.Context(), cl, id, in)
	st := http.StatusOK
	if created {
		st = http.StatusCreated
	}
	if err == nil {
		c.Header("ETag", out.ETag())
	}
	s.reply(c, st, out, casework.Outcome{}, err)
}

func (s *Server) getSubject(c *gin.Context) {
	id, ok := s.subjectID(c)
	if !ok {
		return
	}
	cl, _ := s.call(c)
	out, err := s.deps.Casework.Subject(c.Request.Context(), cl, id)
	if err == nil {
		c.Header("ETag", out.ETag())
	}
	s.answer(c, out, err)
}

func queryInt(c *gin.Context, name string, def, lo, hi int) (int, error) {
	v := c.Query(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fieldError(name, fmt.Sprintf("must be a whole number from %d to %d", lo, hi))
	}
	return n, nil
}

func (s *Server) listSubjects(c *gin.Context) {
	limit, err := queryInt(c, "limit", 100, 1, 500)
	if err != nil {
		s.fail(c, err)
		return
	}
	cl, _ := s.call(c)
	out, err := s.deps.Casework.Subjects(c.Request.Context(), cl, casework.SubjectQuery{Unit: c.Query("unit"), Counselor: c.Query("counselor"),
		Tier: c.Query("tier"), Overdue: c.Query("overdue") == "true", Limit: limit, After: c.Query("after")})
	s.answer(c, subjectList(out), err)
}

// assessmentRequest is both the documented and the decoded body: answers
// stay raw for the engine.
type assessmentRequest struct {
	SubjectID      string          `path:"subject_id" json:"-" pattern:"^[A-Za-z0-9._-]{1,64}$"`
	Instrument     string          `json:"instrument" required:"true"`
	Answers        json.RawMessage `json:"answers" required:"true" docType:"object" description:"item id → option value (number, or the option's code)"`
	Language       string          `json:"language" required:"true" enum:"zh-CN,en"`
	Population     string          `json:"population,omitempty"`
	StartedAt      *time.Time      `json:"started_at,omitempty"`
	CompletedAt    *time.Time      `json:"completed_at,omitempty" description:"when the person answered (a paper form's date); within a year before now"`
	AdministeredBy string          `json:"administered_by,omitempty" description:"who administered it; the caller when omitted"`
}

// assessmentDoc documents casework.Assessment with its typed result.
type assessmentDoc struct {
	casework.Assessment
	Answers map[string]any   `json:"answers,omitempty" description:"staff only: item id → answer as stored"`
	Result  screening.Result `json:"result"`
}

// recommendationDoc documents casework.Recommendation with its typed
// explanation.
type recommendationDoc struct {
	casework.Recommendation
	Explanation []riskmodel.Contribution `json:"explanation" description:"each input's signed contribution to the log-odds, largest magnitude first"`
}

// submittedDoc documents casework.Submitted with typed assessments.
type submittedDoc struct {
	casework.Submitted
	Assessments []assessmentDoc `json:"assessments,omitempty"`
}

func (s *Server) createAssessment(c *gin.Context) {
	id, ok := s.subjectID(c)
	if !ok {
		return
	}
	var req assessmentRequest
	if err := decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	cl, ok := s.call(c)
	if !ok {
		return
	}
	out, o, err := s.deps.Casework.SubmitAssessment(c.Request.Context(), cl, id, casework.AssessmentInput{Instrument: req.Instrument,
		Answers: req.Answers, Language: req.Language, Population: req.Population, StartedAt: req.StartedAt, CompletedAt: req.CompletedAt,
		AdministeredBy: req.AdministeredBy})
	s.replyEncoded(c, http.StatusCreated, out, o, err)
}

type assessmentList struct {
	Assessments []assessmentDoc `json:"assessments"`
}

type assessmentQuery struct {
	SubjectID      string `path:"subject_id" pattern:"^[A-Za-z0-9._-]{1,64}$"`
	Instrument     string `query:"instrument"`
	IncludeAnswers bool   `query:"include_answers" description:"staff only: include the answers"`
	Limit          int    `query:"limit" minimum:"1" maximum:"500"`
}

func (s *Server) listAssessments(c *gin.Context) {
	id, ok := s.subjectID(c)
	if !ok {
		return
	}
	limit, err := queryInt(c, "limit", 100, 1, 500)
	if err != nil {
		s.fail(c, err)
		return
	}
	cl, _ := s.call(c)
	as, err := s.deps.Casework.Assessments(c.Request.Context(), cl, id, casework.AssessmentFilter{Instrument: c.Query("instrument"),
		IncludeAnswers: c.Query("include_answers") == "true", Limit: limit})
	s.answer(c, struct {
		Assessments []casework.Assessment `json:"assessments"`
	}{as}, err)
}

type assessmentPath struct {
	ID string `path:"id"`
}

func (s *Server) getAssessment(c *gin.Context) {
	cl, _ := s.call(c)
	a, err := s.deps.Casework.Assessment(c.Request.Context(), cl, c.Param("id"))
	s.answer(c, a, err)
}

// assessmentFHIR answers a stored assessment as a FHIR Bundle of its
// QuestionnaireResponse (answers for staff only, as GET /v1/assessments/{id})
// and its Observation.
func (s *Server) assessmentFHIR(c *gin.Context) {
	cl, _ := s.call(c)
	a, err := s.deps.Casework.Assessment(c.Request.Context(), cl, c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	d, ok := s.deps.Catalog.Get(a.Instrument)
	var res screening.Result
	if ok {
		err = json.Unmarshal(a.Result, &res)
	}
	if !ok || err != nil || res.Version != d.Version {
		s.fail(c, fmt.Errorf("assessment scored with %s %s, which this server no longer serves: %w", a.Instrument, a.InstrumentVersion, casework.ErrConflict))
		return
	}
	b, err := fhir.Bundle(d, fhir.Stored{ID: a.ID, Subject: a.SubjectID, Answers: a.Answers, Result: res,
		Authored: a.CompletedAt, Issued: a.CreatedAt, Author: a.AdministeredBy})
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Set(ctxAudited, true)
	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusOK, fhir.MediaType+"; charset=utf-8", b)
}

type trendPath struct {
	SubjectID  string `path:"subject_id" pattern:"^[A-Za-z0-9._-]{1,64}$"`
	Instrument string `path:"instrument"`
}

func (s *Server) trend(c *gin.Context) {
	id, ok := s.subjectID(c)
	if !ok {
		return
	}
	inst := c.Param("instrument")
	if _, ok := s.deps.Catalog.Get(inst); !ok {
		s.fail(c, fmt.Errorf("instrument: %w", errNotFound))
		return
	}
	cl, _ := s.call(c)
	out, err := s.deps.Casework.Trend(c.Request.Context(), cl, id, inst)
	s.answer(c, out, err)
}

type recommendationRequest struct {
	SubjectID string `path:"subject_id" json:"-" pattern:"^[A-Za-z0-9._-]{1,64}$"`
	Model     string `json:"model,omitempty" description:"model name; the configured default when empty"`
}

type recommendationList struct {
	Recommendations []recommendationDoc `json:"recommendations"`
}

func (s *Server) createRecommendation(c *gin.Context) {
	id, ok := s.subjectID(c)
	if !ok {
		return
	}
	var req recommendationRequest
	if body, _ := readBody(c); len(body) > 0 {
		if err := decodeJSON(c, &req); err != nil {
			s.fail(c, err)
			return
		}
	}
	cl, ok := s.call(c)
	if !ok {
		return
	}
	out, o, err := s.deps.Casework.Recommend(c.Request.Context(), cl, id, req.Model)
	s.reply(c, http.StatusCreated, out, o, err)
}

func (s *Server) listRecommendations(c *gin.Context) {
	id, ok := s.subjectID(c)
	if !ok {
		return
	}
	cl, _ := s.call(c)
	rs, err := s.deps.Casework.Recommendations(c.Request.Context(), cl, id)
	s.answer(c, struct {
		Recommendations []casework.Recommendation `json:"recommendations"`
	}{rs}, err)
}

type acceptRequest struct {
	ID   string `path:"id" json:"-" description:"the recommendation"`
	Note string `json:"note,omitempty" maxLength:"4000"`
}

func (s *Server) acceptRecommendation(c *gin.Context) {
	var req acceptRequest
	if body, _ := readBody(c); len(body) > 0 {
		if err := decodeJSON(c, &req); err != nil {
			s.fail(c, err)
			return
		}
	}
	cl, ok := s.call(c)
	if !ok {
		return
	}
	out, o, err := s.deps.Casework.AcceptRecommendation(c.Request.Context(), cl, c.Param("id"), casework.AcceptInput{Note: req.Note})
	s.reply(c, http.StatusCreated, out, o, err)
}

type levelRequest struct {
	SubjectID  string     `path:"subject_id" json:"-" pattern:"^[A-Za-z0-9._-]{1,64}$"`
	Tier       string     `json:"tier" required:"true"`
	ReasonCode string     `json:"reason_code" required:"true"`
	Note       string     `json:"note" required:"true" maxLength:"4000"`
	DecidedBy  string     `json:"decided_by,omitempty" description:"case systems only: the name of the person who decided"`
	DecidedAt  *time.Time `json:"decided_at,omitempty" description:"case systems only: when it was decided"`
}

func (s *Server) adjustLevel(c *gin.Context) {
	id, ok := s.subjectID(c)
	if !ok {
		return
	}
	var req levelRequest
	if err := decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	cl, ok := s.call(c)
	if !ok {
		return
	}
	out, o, err := s.deps.Casework.AdjustLevel(c.Request.Context(), cl, id, casework.AdjustInput{Tier: casework.Tier(req.Tier),
		ReasonCode: req.ReasonCode, Note: req.Note, DecidedBy: req.DecidedBy, DecidedAt: req.DecidedAt})
	s.reply(c, http.StatusCreated, out, o, err)
}

type levelHistory struct {
	Decisions []casework.Decision `json:"decisions"`
}

func (s *Server) levelHistory(c *gin.Context) {
	id, ok := s.subjectID(c)
	if !ok {
		return
	}
	cl, _ := s.call(c)
	ds, err := s.deps.Casework.LevelHistory(c.Request.Context(), cl, id)
	s.answer(c, levelHistory{Decisions: ds}, err)
}

type outcomeRequest struct {
	SubjectID  string `path:"subject_id"`
	Kind       string `json:"kind" required:"true" enum:"completed,warning,reprimand,public_security_penalty,revocation,new_offence,absconding"`
	OccurredOn string `json:"occurred_on" required:"true" format:"date"`
	Note       string `json:"note,omitempty" maxLength:"4000"`
}

type outcomeList struct {
	Outcomes []casework.SupervisionOutcome `json:"outcomes"`
}

func (s *Server) recordOutcome(c *gin.Context) {
	id, ok := s.subjectID(c)
	if !ok {
		return
	}
	var req outcomeRequest
	if err := decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	cl, ok := s.call(c)
	if !ok {
		return
	}
	out, o, err := s.deps.Casework.RecordOutcome(c.Request.Context(), cl, id, casework.OutcomeInput{Kind: req.Kind, OccurredOn: req.OccurredOn, Note: req.Note})
	s.reply(c, http.StatusCreated, out, o, err)
}

func (s *Server) listOutcomes(c *gin.Context) {
	id, ok := s.subjectID(c)
	if !ok {
		return
	}
	cl, _ := s.call(c)
	os, err := s.deps.Casework.Outcomes(c.Request.Context(), cl, id)
	s.answer(c, outcomeList{Outcomes: os}, err)
}
