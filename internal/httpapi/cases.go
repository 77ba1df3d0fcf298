package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/postgres"
	"github.com/sunpath/sunpath/internal/problem"
	"github.com/sunpath/sunpath/internal/screening"
)

type subjectPath struct {
	SubjectID string `path:"subject_id" pattern:"^[A-Za-z0-9._-]{1,64}$" description:"the case-management system's own id"`
}

type subjectRequest struct {
	SubjectID        string         `path:"subject_id"`
	DisplayName      string         `json:"display_name" required:"true"`
	Sex              string         `json:"sex" required:"true" enum:"female,male,other,unknown"`
	BirthYear        *int           `json:"birth_year,omitempty"`
	SupervisionType  string         `json:"supervision_type" required:"true" enum:"control,probation,parole,temporary_outside_prison,other"`
	Unit             string         `json:"unit" required:"true"`
	Counselor        string         `json:"counselor,omitempty" description:"username of the responsible counselor"`
	SupervisionStart string         `json:"supervision_start,omitempty" format:"date"`
	SupervisionEnd   string         `json:"supervision_end,omitempty" format:"date"`
	Profile          map[string]any `json:"profile,omitempty" description:"model input fields by the names GET /v1/models declares"`
}

type subjectList struct {
	Subjects []casework.Subject `json:"subjects"`
	Next     string             `json:"next,omitempty"`
}

type subjectQuery struct {
	Unit      string `query:"unit"`
	Counselor string `query:"counselor"`
	Tier      string `query:"tier" enum:"lenient,ordinary,strict"`
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
	in := casework.SubjectInput{DisplayName: req.DisplayName, Sex: req.Sex, BirthYear: req.BirthYear, SupervisionType: req.SupervisionType,
		Unit: req.Unit, Counselor: req.Counselor, SupervisionStart: req.SupervisionStart, SupervisionEnd: req.SupervisionEnd, Profile: req.Profile}
	inv := &problem.Invalid{}
	if err := in.Validate(time.Now()); err != nil {
		inv = err.(*problem.Invalid)
	}
	inv.Errors = append(inv.Errors, s.checkProfile(req.Profile)...)
	if err := inv.Err(); err != nil {
		s.fail(c, err)
		return
	}
	s.work(c, "subject.put", http.StatusOK, false, func(tx *postgres.Tx) (any, error) {
		out, created, err := tx.PutSubject(c.Request.Context(), id, in)
		if err != nil {
			return nil, err
		}
		if created {
			return withStatus{http.StatusCreated, out}, nil
		}
		return out, nil
	})
}

// checkProfile checks each profile field against the models that read it:
// an unknown field or a value no model can encode is named.
func (s *Server) checkProfile(profile map[string]any) []problem.FieldError {
	var errs []problem.FieldError
	for _, k := range sortedKeys(profile) {
		known := false
		for _, name := range sortedKeys(s.deps.Models) {
			for _, f := range s.deps.Models[name].InputFields() {
				if f.Name != k {
					continue
				}
				known = true
				if msg := checkValue(f.Type, f.Levels, f.Range, profile[k]); msg != "" {
					errs = append(errs, problem.FieldError{Field: "profile." + k, Detail: msg})
				}
			}
			if known {
				break
			}
		}
		if !known {
			errs = append(errs, problem.FieldError{Field: "profile." + k, Detail: "no model reads this field; GET /v1/models lists the input fields"})
		}
	}
	return errs
}

func checkValue(typ string, levels []string, rng []float64, v any) string {
	if v == nil {
		return ""
	}
	if len(levels) > 0 {
		str := fmt.Sprint(v)
		if b, ok := v.(bool); ok {
			str = strconv.FormatBool(b)
		}
		for _, l := range levels {
			if l == str {
				return ""
			}
		}
		if typ == "categorical" || typ == "category" {
			return "not one of the model's levels; GET /v1/models lists them"
		}
	}
	return ""
}

func (s *Server) getSubject(c *gin.Context) {
	id, ok := s.subjectID(c)
	if !ok {
		return
	}
	s.work(c, "subject.read", http.StatusOK, false, func(tx *postgres.Tx) (any, error) {
		subj, err := tx.Subject(c.Request.Context(), id)
		if err != nil {
			return nil, err
		}
		one := []casework.Subject{subj}
		if err := s.withSchedule(c, tx, one); err != nil {
			return nil, err
		}
		return one[0], nil
	})
}

// withSchedule adds each subject's next reassessment due date, in one query.
func (s *Server) withSchedule(c *gin.Context, tx *postgres.Tx, subjs []casework.Subject) error {
	if len(subjs) == 0 {
		return nil
	}
	ids := make([]string, len(subjs))
	for i, subj := range subjs {
		ids[i] = subj.ID
	}
	due, err := tx.Schedule(c.Request.Context(), s.deps.Workflow.Schedule, false, ids, 1<<30)
	if err != nil {
		return err
	}
	first := map[string]postgres.Due{} // due dates come soonest first
	for _, d := range due {
		if _, ok := first[d.SubjectID]; !ok {
			first[d.SubjectID] = d
		}
	}
	for i := range subjs {
		if d, ok := first[subjs[i].ID]; ok {
			subjs[i].NextDue, subjs[i].Overdue = &d.Due, d.Overdue
		}
	}
	return nil
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
	tier := c.Query("tier")
	if tier != "" && !casework.Tier(tier).Valid() {
		s.fail(c, fieldError("tier", "must be lenient, ordinary or strict"))
		return
	}
	overdue := c.Query("overdue") == "true"
	s.work(c, "subject.list", http.StatusOK, false, func(tx *postgres.Tx) (any, error) {
		f := postgres.SubjectFilter{Unit: c.Query("unit"), Counselor: c.Query("counselor"), Tier: tier, Limit: limit, After: c.Query("after")}
		out := subjectList{Subjects: []casework.Subject{}}
		for len(out.Subjects) < limit {
			page, err := tx.Subjects(c.Request.Context(), f)
			if err != nil {
				return nil, err
			}
			if err := s.withSchedule(c, tx, page); err != nil {
				return nil, err
			}
			for _, subj := range page {
				if !overdue || subj.Overdue {
					out.Subjects = append(out.Subjects, subj)
				}
				f.After = subj.ID
			}
			if len(page) < f.Limit {
				f.After = ""
				break
			}
		}
		out.Next = f.After
		return out, nil
	})
}

type assessmentRequest struct {
	SubjectID      string         `path:"subject_id"`
	Instrument     string         `json:"instrument" required:"true"`
	Answers        map[string]any `json:"answers" required:"true"`
	Language       string         `json:"language" required:"true" enum:"zh-CN,en"`
	Population     string         `json:"population,omitempty"`
	StartedAt      *time.Time     `json:"started_at,omitempty"`
	CompletedAt    *time.Time     `json:"completed_at,omitempty"`
	AdministeredBy string         `json:"administered_by,omitempty" description:"who administered it; the caller when omitted"`
}

// assessmentBody is decoded by hand: answers stay raw for the engine.
type assessmentBody struct {
	Instrument     string          `json:"instrument"`
	Answers        json.RawMessage `json:"answers"`
	Language       string          `json:"language"`
	Population     string          `json:"population"`
	StartedAt      *time.Time      `json:"started_at"`
	CompletedAt    *time.Time      `json:"completed_at"`
	AdministeredBy string          `json:"administered_by"`
}

func (s *Server) createAssessment(c *gin.Context) {
	id, ok := s.subjectID(c)
	if !ok {
		return
	}
	var req assessmentBody
	if err := decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	inv := &problem.Invalid{}
	if req.Instrument == "" {
		inv.Add("instrument", "required")
	}
	if len(req.Answers) == 0 {
		inv.Add("answers", "required: an object of item id → value")
	}
	if req.Language == "" {
		inv.Add("language", "required: zh-CN or en")
	}
	if utf8Len(req.AdministeredBy) > 100 {
		inv.Add("administered_by", "at most 100 characters")
	}
	if err := inv.Err(); err != nil {
		s.fail(c, err)
		return
	}
	now := time.Now().UTC()
	completed := now
	if req.CompletedAt != nil {
		if req.CompletedAt.After(now.Add(5 * time.Minute)) {
			s.fail(c, fieldError("completed_at", "must not be in the future"))
			return
		}
		completed = req.CompletedAt.UTC()
	}
	if req.StartedAt != nil && req.StartedAt.After(completed) {
		s.fail(c, fieldError("started_at", "must not be after completed_at"))
		return
	}
	opt := screening.ScoreOptions{Language: req.Language, Population: req.Population, CompletedAt: completed}
	if req.StartedAt != nil {
		opt.StartedAt = *req.StartedAt
	}
	sc, err := s.deps.Flow.Score(req.Instrument, req.Answers, opt)
	if err != nil {
		s.fail(c, err)
		return
	}
	p, _ := principal(c)
	var out casework.Assessment
	s.workGrouped(c, "assessment.create", http.StatusCreated, true, func(tx *postgres.Tx) (any, error) {
		subj, err := tx.SubjectRef(c.Request.Context(), id)
		if err != nil {
			return nil, err
		}
		out, err = s.deps.Flow.Store(c.Request.Context(), tx, p, subj, sc, req.AdministeredBy, req.StartedAt, completed, nil)
		return out, err
	})
	if c.Writer.Status() == http.StatusCreated && c.Writer.Header().Get("Idempotent-Replayed") == "" {
		s.deps.Flow.Count(out)
	}
}

func utf8Len(s string) int { return len([]rune(s)) }

type assessmentList struct {
	Assessments []casework.Assessment `json:"assessments"`
}

type assessmentQuery struct {
	SubjectID      string `path:"subject_id"`
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
	p, _ := principal(c)
	withAnswers := c.Query("include_answers") == "true" && p.Role != auth.RoleCaseSystem
	s.work(c, "assessment.list", http.StatusOK, false, func(tx *postgres.Tx) (any, error) {
		subj, err := tx.Subject(c.Request.Context(), id)
		if err != nil {
			return nil, err
		}
		as, err := tx.Assessments(c.Request.Context(), subj, postgres.AssessmentFilter{Instrument: c.Query("instrument"), IncludeAnswers: withAnswers, Limit: limit})
		if as == nil {
			as = []casework.Assessment{}
		}
		return assessmentList{Assessments: as}, err
	})
}

type trendResponse struct {
	SubjectID      string                `json:"subject_id"`
	Instrument     string                `json:"instrument"`
	ReliableChange *int                  `json:"reliable_change_points"`
	Points         []postgres.TrendPoint `json:"points"`
}

type trendPath struct {
	SubjectID  string `path:"subject_id"`
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
	threshold := s.deps.Workflow.ReliableChange[inst]
	s.work(c, "trend.read", http.StatusOK, false, func(tx *postgres.Tx) (any, error) {
		subj, err := tx.Subject(c.Request.Context(), id)
		if err != nil {
			return nil, err
		}
		pts, err := tx.Trend(c.Request.Context(), subj, inst, threshold)
		out := trendResponse{SubjectID: id, Instrument: inst, Points: pts}
		if threshold > 0 {
			out.ReliableChange = &threshold
		}
		return out, err
	})
}

type recommendationRequest struct {
	SubjectID string `path:"subject_id"`
	Model     string `json:"model,omitempty" description:"model name; the configured default when empty"`
}

type recommendationList struct {
	Recommendations []casework.Recommendation `json:"recommendations"`
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
	m, err := s.model(req.Model)
	if err != nil {
		s.fail(c, err)
		return
	}
	var prob float64
	s.work(c, "recommendation.create", http.StatusCreated, true, func(tx *postgres.Tx) (any, error) {
		subj, err := tx.Subject(c.Request.Context(), id)
		if err != nil {
			return nil, err
		}
		features := map[string]any{}
		var missing []problem.FieldError
		for _, f := range m.InputFields() {
			// Every field the model reads must be in the profile: a value, or
			// an explicit null ("unknown") where the model allows one. A
			// recommendation is never made on a record that was simply not
			// filled in.
			v, ok := subj.Profile[f.Name]
			switch {
			case !ok:
				missing = append(missing, problem.FieldError{Field: "profile." + f.Name, Detail: "required by model " + m.Ref().Name + " (null if unknown); set it with PUT /v1/subjects/{subject_id}"})
				continue
			case v == nil && f.Required:
				missing = append(missing, problem.FieldError{Field: "profile." + f.Name, Detail: "model " + m.Ref().Name + " needs a value; unknown is not allowed"})
				continue
			}
			features[f.Name] = v
		}
		if len(missing) > 0 {
			return nil, &problem.Invalid{Errors: missing}
		}
		pred, err := m.Score(features)
		if err != nil {
			return nil, prefixFields(err, "profile.")
		}
		expl, err := json.Marshal(pred.Explanation)
		if err != nil {
			return nil, err
		}
		ref := m.Ref()
		prob = pred.Probability
		return tx.AddRecommendation(c.Request.Context(), subj, casework.Recommendation{
			Model: casework.ModelRef{Name: ref.Name, Version: ref.Version, SHA256: ref.SHA256}, Probability: pred.Probability,
			Tier: casework.Tier(pred.Tier), Explanation: expl, InputsDigest: postgres.InputsDigest(features),
		})
	})
	if c.Writer.Status() == http.StatusCreated && s.deps.RiskMetrics != nil && c.Writer.Header().Get("Idempotent-Replayed") == "" {
		s.deps.RiskMetrics.Observe(m.Ref().Name, prob)
	}
}

func (s *Server) listRecommendations(c *gin.Context) {
	id, ok := s.subjectID(c)
	if !ok {
		return
	}
	s.work(c, "recommendation.list", http.StatusOK, false, func(tx *postgres.Tx) (any, error) {
		subj, err := tx.Subject(c.Request.Context(), id)
		if err != nil {
			return nil, err
		}
		rs, err := tx.Recommendations(c.Request.Context(), subj, 100)
		return recommendationList{Recommendations: rs}, err
	})
}
