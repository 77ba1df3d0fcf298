package httpapi

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/riskmodel"
)

// activeModels are the models recommendations come from now: the shipped
// ones and the stored versions promoted since.
func (s *Server) activeModels() map[string]*riskmodel.Model {
	m, _ := s.deps.Casework.Models()
	return m
}

// modelUploadRequest is a model directory as uploaded: every file the
// manifest (model.json) lists, base64-encoded, by file name.
type modelUploadRequest struct {
	Name  string            `path:"name" json:"-"`
	Files map[string][]byte `json:"files" required:"true" description:"the model directory's files by name (model.json, scorer.json, spec.yaml and every other artifact model.json lists), base64; each is checked against the manifest's sha256"`
}

func (s *Server) uploadModelVersion(c *gin.Context) {
	var req modelUploadRequest
	if err := decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	cl, ok := s.call(c)
	if !ok {
		return
	}
	v, o, err := s.deps.Casework.UploadModelVersion(c.Request.Context(), cl, c.Param("name"), req.Files)
	s.reply(c, http.StatusCreated, v, o, err)
}

func (s *Server) listModelVersions(c *gin.Context) {
	cl, _ := s.call(c)
	vs, err := s.deps.Casework.ModelVersionList(c.Request.Context(), cl, c.Param("name"))
	s.answer(c, vs, err)
}

// modelChangeRequest asks for a promotion or a rollback.
type modelChangeRequest struct {
	Name    string `path:"name" json:"-"`
	Kind    string `json:"kind" required:"true" enum:"promote,rollback"`
	Version string `json:"version,omitempty" description:"promote: the version in shadow to make active; not given for a rollback (it returns to the version active before)"`
	Reason  string `json:"reason" required:"true" maxLength:"4000"`
}

func (s *Server) requestModelChange(c *gin.Context) {
	var req modelChangeRequest
	if err := decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	cl, ok := s.call(c)
	if !ok {
		return
	}
	ch, o, err := s.deps.Casework.RequestModelChange(c.Request.Context(), cl, c.Param("name"),
		casework.ModelChangeInput{Kind: req.Kind, Version: req.Version, Reason: req.Reason})
	s.reply(c, http.StatusCreated, ch, o, err)
}

func (s *Server) decideModelChange(approve bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		var req decisionRequest
		if body, _ := readBody(c); len(body) > 0 {
			if err := decodeJSON(c, &req); err != nil {
				s.fail(c, err)
				return
			}
		}
		cl, _ := s.call(c)
		ch, err := s.deps.Casework.DecideModelChange(c.Request.Context(), cl, c.Param("id"), approve, req.Note)
		s.answer(c, ch, err)
	}
}

// outcomeLabelQuery chooses how recommendations are labelled by outcomes.
type outcomeLabelQuery struct {
	Outcomes   string `query:"outcomes" description:"outcome kinds that make the label positive, comma-separated (default revocation,new_offence)"`
	WithinDays int    `query:"within_days" minimum:"1" maximum:"3650" description:"follow-up window after each recommendation in days (default 365)"`
}

func (q outcomeLabelQuery) toDomain() casework.ComparisonQuery {
	kinds := strings.Split(q.Outcomes, ",")
	if q.Outcomes == "" {
		kinds = []string{"revocation", "new_offence"}
	}
	if q.WithinDays == 0 {
		q.WithinDays = 365
	}
	return casework.ComparisonQuery{Kinds: kinds, WithinDays: q.WithinDays}
}

type comparisonQuery struct {
	Name string `path:"name"`
	outcomeLabelQuery
}

func bindLabel(c *gin.Context) (outcomeLabelQuery, error) {
	q := outcomeLabelQuery{Outcomes: c.Query("outcomes")}
	if d := c.Query("within_days"); d != "" {
		n, err := strconv.Atoi(d)
		if err != nil {
			return q, fieldError("within_days", "a number of days")
		}
		q.WithinDays = n
		if n == 0 {
			q.WithinDays = -1 // refused by the use case, never the default
		}
	}
	return q, nil
}

func (s *Server) modelComparison(c *gin.Context) {
	q, err := bindLabel(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	cl, _ := s.call(c)
	cmp, err := s.deps.Casework.ModelComparison(c.Request.Context(), cl, c.Param("name"), q.toDomain())
	s.answer(c, cmp, err)
}

type trainingExportQuery struct {
	Model string `query:"model" required:"true" description:"the model whose recommendations are exported"`
	outcomeLabelQuery
}

// trainingExport answers the labelled training file as CSV: one row per
// person (named by the recommendation's id), the inputs as they were then.
func (s *Server) trainingExport(c *gin.Context) {
	q, err := bindLabel(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	cl, _ := s.call(c)
	f, err := s.deps.Casework.ExportTraining(c.Request.Context(), cl, c.Query("model"), q.toDomain())
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Set(ctxAudited, true)
	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusOK, mediaCSV+"; charset=utf-8", f.CSV)
}
