package web

import (
	"encoding/json"
	"net/http"

	"github.com/google/uuid"

	"github.com/sunpath/sunpath/internal/casework"
)

// answerRow is one question of an assessment with the answer given.
type answerRow struct {
	Pos      int
	Text     string
	Answer   string
	Answered bool
}

type assessmentData struct {
	V        assessmentView
	S        casework.Subject
	UnitName string
	Answers  []answerRow
	Version  string
	Hash     string
	Engine   string
	Lang     string
	Started  any
	Protocol string
}

// assessmentPage shows one assessment in full: answers with the questions
// as they were asked, scoring, flags, who, when and the instrument's
// version. It prints as an A4 report with the unit's name and the advisory
// notice (print stylesheet in app.css).
func (s *server) assessmentPage(rq *request) {
	id := rq.r.PathValue("id")
	if _, err := uuid.Parse(id); err != nil {
		rq.notFound()
		return
	}
	rep, err := s.d.Casework.AssessmentReport(rq.ctx, rq.call(), id)
	if err := rq.check("assessment.read", err); err != nil {
		rq.fail(err)
		return
	}
	a := rep.Assessment
	d := assessmentData{V: s.assessmentView(rq, a), S: rep.Subject, UnitName: rep.UnitName, Version: a.InstrumentVersion,
		Hash: a.ContentHash, Engine: a.EngineVersion, Lang: a.Language}
	if a.StartedAt != nil {
		d.Started = a.StartedAt
	}
	var answers map[string]json.RawMessage
	_ = json.Unmarshal(a.Answers, &answers)
	if def, ok := s.d.Catalog.Get(a.Instrument); ok && answers != nil {
		for i, it := range def.Items {
			row := answerRow{Pos: i + 1, Text: textIn(it.Text, a.Language)}
			raw, given := answers[it.ID]
			if v, ok := selected(it, raw); given && ok {
				row.Answered = true
				for _, o := range it.Options {
					if o.Value == v {
						row.Answer = textIn(o.Label, a.Language)
					}
				}
			}
			d.Answers = append(d.Answers, row)
		}
	}
	for _, f := range d.V.Flags {
		if f.Protocol != "" {
			d.Protocol = f.Protocol
		}
	}
	rq.render(http.StatusOK, "assessment", d)
}
