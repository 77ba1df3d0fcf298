package web

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/problem"
)

// outcomesView is a person's outcomes of supervision and the form that
// records one.
type outcomesView struct {
	ID       string
	Outcomes []casework.SupervisionOutcome
	Kinds    []string
	Form     casework.OutcomeInput
	Errors   []problem.FieldError
	Done     bool
}

// outcomesPage lists a person's recorded outcomes (one audited read).
func (s *server) outcomesPage(rq *request) {
	id := rq.r.PathValue("id")
	if !casework.IDPattern.MatchString(id) {
		rq.notFound()
		return
	}
	s.renderOutcomes(rq, outcomesView{ID: id, Done: rq.r.URL.Query().Get("done") == "recorded"}, http.StatusOK)
}

func (s *server) renderOutcomes(rq *request, v outcomesView, status int) {
	os, err := s.d.Casework.Outcomes(rq.ctx, rq.call(), v.ID)
	if err := rq.check("outcome.list", err); err != nil {
		rq.fail(err)
		return
	}
	v.Outcomes, v.Kinds = os, casework.OutcomeKinds
	if v.Form.OccurredOn == "" {
		v.Form.OccurredOn = time.Now().In(s.loc).Format(casework.DateLayout)
	}
	rq.render(status, "outcomes", v)
}

// recordOutcome records an outcome from the form, through the same use
// case as POST /v1/subjects/{id}/outcomes; a refused form is shown again
// with what to correct.
func (s *server) recordOutcome(rq *request) {
	id := rq.r.PathValue("id")
	if !casework.IDPattern.MatchString(id) {
		rq.notFound()
		return
	}
	in := casework.OutcomeInput{Kind: rq.r.PostFormValue("kind"), OccurredOn: strings.TrimSpace(rq.r.PostFormValue("occurred_on")),
		Note: rq.r.PostFormValue("note")}
	_, _, err := s.d.Casework.RecordOutcome(rq.ctx, rq.call(), id, in)
	var inv *problem.Invalid
	switch err := rq.check("outcome.record", err); {
	case errors.As(err, &inv):
		s.renderOutcomes(rq, outcomesView{ID: id, Form: in, Errors: inv.Errors}, http.StatusUnprocessableEntity)
	case err != nil:
		rq.fail(err)
	default:
		rq.redirect("/subjects/" + id + "/outcomes?done=recorded")
	}
}
