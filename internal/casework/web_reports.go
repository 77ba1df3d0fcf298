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

// ExportLimit is the most people one caseload download lists.
const ExportLimit = 5000

// CaseloadExport is the caseload as its spreadsheet download lists it: the
// people (by case number) and the names of their units.
type CaseloadExport struct {
	Subjects  []Subject
	UnitNames map[string]string // unit code → name
	Truncated bool              // more than ExportLimit people; the first are listed
}

// ExportCaseload returns the people the caller may see, narrowed like the
// caseload (tier, overdue), with their units' names, as one audited read of
// its own ("subject.export"): a download of names is told apart from a look
// at the list.
func (s *Service) ExportCaseload(ctx context.Context, c Call, q SubjectQuery) (CaseloadExport, error) {
	if q.Tier != "" && !Tier(q.Tier).Valid() {
		return CaseloadExport{}, invalid("tier", "must be lenient, ordinary or strict")
	}
	return read(ctx, s, c, "subject.export", "", func(tx Tx) (CaseloadExport, error) {
		tx.Resource("subjects", "", "")
		tx.Detail(map[string]any{"tier": q.Tier, "overdue": q.Overdue})
		subs, err := tx.Subjects(ctx, SubjectFilter{Tier: q.Tier, OverdueOnly: q.Overdue, Schedule: s.policy.Schedule, Now: s.now(), Limit: ExportLimit + 1})
		if err != nil {
			return CaseloadExport{}, err
		}
		out := CaseloadExport{Subjects: subs, UnitNames: map[string]string{}}
		if len(subs) > ExportLimit {
			out.Subjects, out.Truncated = subs[:ExportLimit], true
		}
		units, err := tx.Units(ctx)
		if err != nil {
			return out, err
		}
		for _, u := range units {
			out.UnitNames[u.Code] = u.Name
		}
		return out, nil
	})
}
