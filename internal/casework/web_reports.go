package casework

import (
	"context"
	"errors"
)

// AssessmentReport is one assessment with what its detail page and printed
// report show around it: the person and the name of their unit.
type AssessmentReport struct {
	Assessment Assessment
	Subject    Subject
	UnitName   string
}

// AssessmentReport returns an assessment the caller may see with its
// answers (staff only, as Assessment), its person and the unit's name, in
// one audited read.
func (s *Service) AssessmentReport(ctx context.Context, c Call, id string) (AssessmentReport, error) {
	return read(ctx, s, c, "assessment.read", "", func(tx Tx) (AssessmentReport, error) {
		a, err := tx.Assessment(ctx, id, mayReadAnswers(c.Principal))
		if err != nil {
			return AssessmentReport{}, err
		}
		subj, err := tx.Subject(ctx, a.SubjectID)
		if err != nil {
			return AssessmentReport{}, err
		}
		tx.Resource("assessment", a.ID, subj.ID)
		out := AssessmentReport{Assessment: a, Subject: subj, UnitName: subj.Unit}
		u, err := tx.Unit(ctx, subj.Unit)
		switch {
		case err == nil:
			out.UnitName = u.Name
		case !errors.Is(err, ErrNotFound):
			return out, err
		}
		return out, nil
	})
}
