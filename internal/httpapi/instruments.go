package httpapi

import (
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sunpath/sunpath/internal/fhir"
	"github.com/sunpath/sunpath/internal/instrument"
	"github.com/sunpath/sunpath/internal/riskmodel"
	"github.com/sunpath/sunpath/internal/screening"
)

type idPath struct {
	ID string `path:"id"`
}

type instrumentList struct {
	Instruments []instrument.Summary `json:"instruments"`
}

type langQuery struct {
	ID   string `path:"id"`
	Lang string `query:"lang" enum:"zh-CN,en"`
}

func (s *Server) listInstruments(c *gin.Context) {
	c.JSON(http.StatusOK, instrumentList{Instruments: instrument.Summaries(s.deps.Catalog)})
}

func (s *Server) definition(c *gin.Context) (*screening.Definition, bool) {
	d, ok := s.deps.Catalog.Get(c.Param("id"))
	if !ok {
		s.fail(c, fmt.Errorf("instrument: %w", errNotFound))
	}
	return d, ok
}

func (s *Server) getInstrument(c *gin.Context) {
	if d, ok := s.definition(c); ok {
		c.JSON(http.StatusOK, d)
	}
}

func (s *Server) instrumentFHIR(c *gin.Context) {
	d, ok := s.definition(c)
	if !ok {
		return
	}
	b, err := fhir.Questionnaire(d, c.Query("lang"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Data(http.StatusOK, "application/fhir+json; charset=utf-8", b)
}

// scoreRequest documents the stateless score body.
type scoreRequest struct {
	ID          string         `path:"id"`
	Lang        string         `query:"lang" enum:"zh-CN,en" description:"the language of a FHIR QuestionnaireResponse's result and Observation (default: its language, else the Accept-Language)"`
	Answers     map[string]any `json:"answers" required:"true" description:"item id → option value (number, or the option's code)"`
	Language    string         `json:"language,omitempty" enum:"zh-CN,en"`
	Population  string         `json:"population,omitempty"`
	DurationSec float64        `json:"duration_seconds,omitempty"`
	StartedAt   *time.Time     `json:"started_at,omitempty"`
	CompletedAt *time.Time     `json:"completed_at,omitempty"`
}

// scoreInstrument scores answers without storing anything. It accepts the
// Sunpath JSON body or a FHIR QuestionnaireResponse, and answers with a FHIR
// Observation when the client accepts only application/fhir+json.
func (s *Server) scoreInstrument(c *gin.Context) {
	d, ok := s.definition(c)
	if !ok {
		return
	}
	body, err := readBody(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	var res screening.Result
	oc := fhir.Context{Issued: time.Now()}
	mt, _, _ := mime.ParseMediaType(c.GetHeader("Content-Type"))
	switch mt {
	case "application/fhir+json":
		answers, err := fhir.DecodeResponse(d, body)
		if err != nil {
			s.fail(c, err)
			return
		}
		// The language asked for, else the response's own, else the
		// caller's Accept-Language.
		meta := fhir.ResponseMeta(body)
		oc = meta.Context(oc.Issued)
		lang := fhir.Language(d, append([]string{c.Query("lang"), meta.Language}, fhir.AcceptLanguage(c.GetHeader("Accept-Language"))...)...)
		res, err = d.Score(answers, screening.ScoreOptions{Language: lang})
		if err != nil {
			s.fail(c, err)
			return
		}
	case "application/json", "":
		if depth(body) > maxJSONDepth {
			s.fail(c, fmt.Errorf("JSON nested deeper than %d levels: %w", maxJSONDepth, errBadRequest))
			return
		}
		if res, err = d.ScoreJSON(body, screening.ScoreOptions{}); err != nil {
			s.fail(c, err)
			return
		}
	default:
		s.fail(c, fmt.Errorf("content type must be application/json or application/fhir+json: %w", errUnsupported))
		return
	}
	if wantsFHIR(c.GetHeader("Accept")) {
		b, err := fhir.ObservationWith(d, res, oc)
		if err != nil {
			s.fail(c, err)
			return
		}
		c.Data(http.StatusOK, "application/fhir+json; charset=utf-8", b)
		return
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", res.AppendJSON(nil))
}

func wantsFHIR(accept string) bool {
	return strings.Contains(accept, "application/fhir+json") && !strings.Contains(accept, "application/json")
}

// riskRequest is a stateless risk score request.
type riskRequest struct {
	Model    string         `json:"model,omitempty" description:"model name; the configured default when empty"`
	Features map[string]any `json:"features" description:"model input fields by the names GET /v1/models declares; a missing one counts as missing where the model allows it"`
}

func (s *Server) model(name string) (*riskmodel.Model, error) {
	if name == "" {
		name = s.deps.DefaultModel
	}
	m, ok := s.activeModels()[name]
	if !ok {
		return nil, fieldError("model", "unknown model; GET /v1/models lists them")
	}
	return m, nil
}

func (s *Server) riskScore(c *gin.Context) {
	var req riskRequest
	if err := decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	m, err := s.model(req.Model)
	if err != nil {
		s.fail(c, err)
		return
	}
	pred, err := m.Score(req.Features)
	if err != nil {
		s.fail(c, prefixFields(err, "features."))
		return
	}
	if s.deps.RiskMetrics != nil {
		s.deps.RiskMetrics.Observe(m.Ref().Name, pred.Probability)
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, pred)
}

type modelInfo struct {
	Name        string                `json:"name"`
	Version     string                `json:"version"`
	SHA256      string                `json:"sha256"`
	Default     bool                  `json:"default"`
	InputFields []riskmodel.FieldSpec `json:"input_fields"`
	// MinKnownInputs is how many input fields must be recorded (not null,
	// not absent) for a recommendation; fields marked required always must.
	MinKnownInputs int `json:"min_known_inputs"`
}

type modelList struct {
	Models []modelInfo `json:"models"`
}

func (s *Server) listModels(c *gin.Context) {
	out := modelList{Models: []modelInfo{}}
	models := s.activeModels()
	for _, name := range sortedKeys(models) {
		m := models[name]
		ref := m.Ref()
		out.Models = append(out.Models, modelInfo{Name: name, Version: ref.Version, SHA256: ref.SHA256, Default: name == s.deps.DefaultModel,
			InputFields: m.InputFields(), MinKnownInputs: s.deps.Casework.MinKnownInputs(m)})
	}
	c.JSON(http.StatusOK, out)
}
