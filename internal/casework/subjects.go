package casework

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sunpath/sunpath/internal/problem"
)

// PutSubject registers a person or updates their record. Profile fields are
// checked against the models that read them. created says which.
func (s *Service) PutSubject(ctx context.Context, c Call, id string, in SubjectInput) (Subject, bool, error) {
	if err := s.validSubject(id, in); err != nil {
		return Subject{}, false, err
	}
	type put struct {
		S       Subject
		Created bool
	}
	out, _, err := run(ctx, s, c, unit{action: "subject.put"}, func(tx Tx) (put, error) {
		subj, created, err := s.putSubject(ctx, tx, id, in, false)
		return put{subj, created}, err
	})
	return out.S, out.Created, err
}

// validSubject checks a record's id, fields and profile, listing every
// problem.
func (s *Service) validSubject(id string, in SubjectInput) error {
	inv := &problem.Invalid{}
	if !IDPattern.MatchString(id) {
		inv.Add("subject_id", "must be 1-64 letters, digits, '.', '_' or '-'")
	}
	if err := in.Validate(s.now()); err != nil {
		inv.Errors = append(inv.Errors, err.(*problem.Invalid).Errors...)
	}
	inv.Errors = append(inv.Errors, s.checkProfile(in.Profile)...)
	return inv.Err()
}

// putSubject writes a person's record after the placement rules: the unit
// is one the caller may place people in (own: the counselor's own unit, as
// RegisterSubject forces it), and the counselor is an active counselor of
// the person's unit.
func (s *Service) putSubject(ctx context.Context, tx Tx, id string, in SubjectInput, own bool) (Subject, bool, error) {
	inv := &problem.Invalid{}
	ok := own
	if !own {
		var err error
		if ok, err = tx.UnitWritable(ctx, in.Unit); err != nil {
			return Subject{}, false, err
		}
	}
	if !ok {
		inv.Add("unit", "unknown unit, or one you may not assign")
	}
	if in.Counselor != "" {
		cu, active, err := tx.Counselor(ctx, in.Counselor)
		switch {
		case err != nil:
			return Subject{}, false, err
		case !active:
			inv.Add("counselor", "must be the username of an active counselor")
		case ok && cu != in.Unit:
			inv.Add("counselor", "must be a counselor of unit "+in.Unit)
		}
	}
	if err := inv.Err(); err != nil {
		return Subject{}, false, err
	}
	return tx.PutSubject(ctx, id, in)
}

// checkProfile checks each profile field against the models that read it:
// an unknown field or a value no model can encode is named.
func (s *Service) checkProfile(profile map[string]any) []problem.FieldError {
	var errs []problem.FieldError
	all := s.registry.snapshot().all
	keys := make([]string, 0, len(profile))
	for k := range profile {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		known := false
		for _, m := range all {
			for _, f := range m.InputFields() {
				if f.Name != k {
					continue
				}
				known = true
				if msg := checkValue(f.Type, f.Levels, profile[k]); msg != "" {
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

func checkValue(typ string, levels []string, v any) string {
	if v == nil || len(levels) == 0 {
		return ""
	}
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
	return ""
}

// Subject returns one person with their next due screening.
func (s *Service) Subject(ctx context.Context, c Call, id string) (Subject, error) {
	return read(ctx, s, c, "subject.read", id, func(tx Tx) (Subject, error) {
		subj, err := tx.Subject(ctx, id)
		if err != nil {
			return subj, err
		}
		return s.withNextDue(ctx, tx, subj)
	})
}

func (s *Service) withNextDue(ctx context.Context, tx Tx, subj Subject) (Subject, error) {
	due, err := tx.Due(ctx, DueFilter{Schedule: s.policy.Schedule, Subjects: []string{subj.ID}, Now: s.now(), Limit: 1})
	if err != nil {
		return subj, err
	}
	if len(due) > 0 {
		subj.NextDue, subj.Overdue = &due[0].Due, due[0].Overdue
	}
	tx.Resource("subject", subj.ID, subj.ID)
	return subj, nil
}

// SubjectQuery narrows a subject listing.
type SubjectQuery struct {
	Unit, Counselor string
	Tier            string
	Overdue         bool // only people with an overdue screening
	Limit           int
	After           string
}

// SubjectPage is one page of a subject listing; Next continues it.
type SubjectPage struct {
	Subjects []Subject `json:"subjects"`
	Next     string    `json:"next,omitempty"`
}

// Subjects lists the people the caller may see, by id, each with their
// next due screening; the overdue filter and the limit apply in the store.
func (s *Service) Subjects(ctx context.Context, c Call, q SubjectQuery) (SubjectPage, error) {
	inv := &problem.Invalid{}
	if q.Tier != "" && !Tier(q.Tier).Valid() {
		inv.Add("tier", "must be lenient, ordinary or strict")
	}
	if q.Limit < 1 || q.Limit > 1000 {
		inv.Add("limit", "must be a whole number from 1 to 1000")
	}
	for _, v := range []struct{ name, val string }{{"unit", q.Unit}, {"counselor", q.Counselor}, {"after", q.After}} {
		if utf8.RuneCountInString(v.val) > 100 || strings.ContainsRune(v.val, 0) {
			inv.Add(v.name, "at most 100 characters")
		}
	}
	if err := inv.Err(); err != nil {
		return SubjectPage{}, err
	}
	return oversightRead(ctx, s, c, "subject.list", func(tx Tx) (SubjectPage, error) {
		tx.Resource("subjects", "", "")
		subs, err := tx.Subjects(ctx, SubjectFilter{Unit: q.Unit, Counselor: q.Counselor, Tier: q.Tier, OverdueOnly: q.Overdue,
			Schedule: s.policy.Schedule, Now: s.now(), Limit: q.Limit + 1, After: q.After})
		if err != nil {
			return SubjectPage{}, err
		}
		out := SubjectPage{Subjects: subs}
		if len(subs) > q.Limit {
			out.Subjects = subs[:q.Limit]
			out.Next = out.Subjects[q.Limit-1].ID
		}
		if out.Subjects == nil {
			out.Subjects = []Subject{}
		}
		return out, nil
	})
}

// UnitInput creates or renames a unit. An empty Agency keeps the unit's
// agency (or "default" for a new unit): an agency change must be asked for.
type UnitInput struct {
	Code, Name, Agency string
}

// PutUnit creates or renames a unit; created says which.
func (s *Service) PutUnit(ctx context.Context, c Call, in UnitInput) (Unit, bool, error) {
	inv := &problem.Invalid{}
	if !IDPattern.MatchString(in.Code) {
		inv.Add("code", "must be 1-64 letters, digits, '.', '_' or '-'")
	}
	if n := utf8.RuneCountInString(strings.TrimSpace(in.Name)); n == 0 || n > 200 || strings.ContainsRune(in.Name, 0) {
		inv.Add("name", "required, at most 200 characters")
	}
	if in.Agency != "" && !IDPattern.MatchString(in.Agency) {
		inv.Add("agency", "must be 1-64 letters, digits, '.', '_' or '-'")
	}
	if err := inv.Err(); err != nil {
		return Unit{}, false, err
	}
	type put struct {
		U       Unit
		Created bool
	}
	out, _, err := run(ctx, s, c, unit{action: "unit.put"}, func(tx Tx) (put, error) {
		old, err := tx.Unit(ctx, in.Code)
		created := errorsIsNotFound(err)
		if err != nil && !created {
			return put{}, err
		}
		u := Unit{Code: in.Code, Name: strings.TrimSpace(in.Name), Agency: in.Agency}
		if u.Agency == "" {
			u.Agency = old.Agency
			if created {
				u.Agency = "default"
			}
		}
		if err := tx.PutUnit(ctx, u); err != nil {
			return put{}, err
		}
		tx.Resource("unit", u.Code, "")
		d := map[string]any{"created": created}
		if !created && old.Agency != u.Agency {
			d["agency_from"], d["agency_to"] = old.Agency, u.Agency
		}
		tx.Detail(d)
		return put{u, created}, nil
	})
	return out.U, out.Created, err
}

// Units lists every unit.
func (s *Service) Units(ctx context.Context, c Call) ([]Unit, error) {
	return read(ctx, s, c, "unit.list", "", func(tx Tx) ([]Unit, error) {
		tx.Resource("units", "", "")
		return tx.Units(ctx)
	})
}
