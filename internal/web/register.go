package web

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/problem"
)

// registerForm is the person form's values, as typed.
type registerForm struct {
	ID, Name, Sex, BirthYear, Type, Unit, Counselor, Start, End string
}

type registerData struct {
	Edit       bool
	F          registerForm
	Errors     []fieldProblem
	Bad        map[string]bool
	Types      []string
	Sexes      []string
	Units      []casework.Unit
	Counselors []string
	// Fixed says the unit and counselor are the caller's own (a counselor
	// registers onto their own caseload).
	Fixed     bool
	FixedUnit bool
	UnitName  string
}

// fieldProblem is one validation message, linked to its field.
type fieldProblem struct {
	Field, Message string
}

// registerFields are the form's fields in the order the page lists problems.
var registerFields = []string{"subject_id", "display_name", "sex", "birth_year", "supervision_type", "unit", "counselor", "supervision_start", "supervision_end"}

func (s *server) registerPage(rq *request) {
	s.renderRegister(rq, http.StatusOK, registerData{F: registerForm{Sex: "unknown", Type: "probation"}})
}

// editPage shows the form with a person's record (one audited read).
func (s *server) editPage(rq *request) {
	id := rq.r.PathValue("id")
	if !casework.IDPattern.MatchString(id) {
		rq.notFound()
		return
	}
	subj, err := s.d.Casework.Subject(rq.ctx, rq.call(), id)
	if err := rq.check("subject.read", err); err != nil {
		rq.fail(err)
		return
	}
	f := registerForm{ID: subj.ID, Name: subj.DisplayName, Sex: subj.Sex, Type: subj.SupervisionType, Unit: subj.Unit, Counselor: subj.Counselor,
		Start: subj.SupervisionStart, End: subj.SupervisionEnd}
	if subj.BirthYear != nil {
		f.BirthYear = strconv.Itoa(*subj.BirthYear)
	}
	s.renderRegister(rq, http.StatusOK, registerData{Edit: true, F: f})
}

func (s *server) renderRegister(rq *request, status int, d registerData) {
	d.Types, d.Sexes = casework.SupervisionTypes, casework.Sexes
	switch rq.p.Role {
	case auth.RoleCounselor:
		d.Fixed, d.F.Unit, d.F.Counselor = true, rq.p.Unit, rq.p.Name
	case auth.RoleSupervisor:
		d.FixedUnit, d.F.Unit = true, rq.p.Unit
	}
	if d.FixedUnit || d.Fixed {
		name, err := s.d.Casework.UnitName(rq.ctx, rq.call(), d.F.Unit)
		if err != nil {
			rq.fail(err)
			return
		}
		d.UnitName = name
	} else {
		units, err := s.d.Casework.Units(rq.ctx, rq.call())
		if err != nil {
			rq.fail(err)
			return
		}
		d.Units = units
	}
	if !d.Fixed {
		// Counselors of the unit (all, for an admin) to choose from.
		us, err := s.d.Auth.Users(rq.ctx)
		if err != nil {
			rq.fail(err)
			return
		}
		for _, u := range us {
			if u.Role == auth.RoleCounselor && !u.Disabled && (!d.FixedUnit || u.Unit == d.F.Unit) {
				d.Counselors = append(d.Counselors, u.Username)
			}
		}
		slices.Sort(d.Counselors)
	}
	d.Bad = map[string]bool{}
	for _, p := range d.Errors {
		d.Bad[p.Field] = true
	}
	rq.render(status, "register", d)
}

// saveSubject registers a person (POST /subjects) or saves an edit (POST
// /subjects/{id}/edit) through casework.RegisterSubject; problems are shown
// on the form, in the page's language, with what was typed kept.
func (s *server) saveSubject(rq *request) {
	edit := rq.r.PathValue("id") != ""
	v := rq.r.PostFormValue
	f := registerForm{ID: strings.TrimSpace(v("subject_id")), Name: v("display_name"), Sex: v("sex"), BirthYear: strings.TrimSpace(v("birth_year")),
		Type: v("supervision_type"), Unit: v("unit"), Counselor: v("counselor"), Start: v("supervision_start"), End: v("supervision_end")}
	if edit {
		f.ID = rq.r.PathValue("id")
	}
	in := casework.SubjectInput{DisplayName: f.Name, Sex: f.Sex, SupervisionType: f.Type, Unit: f.Unit, Counselor: f.Counselor,
		SupervisionStart: f.Start, SupervisionEnd: f.End}
	var bad []fieldProblem
	if f.BirthYear != "" {
		y, err := strconv.Atoi(f.BirthYear)
		if err != nil {
			bad = append(bad, fieldProblem{"birth_year", rq.T("register.error.birth_year")})
		} else {
			in.BirthYear = &y
		}
	}
	if !edit && len(bad) == 0 {
		// A new case number must not silently edit someone else's record.
		if _, err := s.d.Casework.Subject(rq.ctx, rq.call(), f.ID); err == nil || errors.Is(rq.check("subject.read", err), casework.ErrOutOfScope) {
			bad = append(bad, fieldProblem{"subject_id", rq.T("register.error.exists")})
		}
	}
	var subj casework.Subject
	var err error
	if len(bad) == 0 {
		subj, _, err = s.d.Casework.RegisterSubject(rq.ctx, rq.call(), f.ID, in)
	}
	var inv *problem.Invalid
	switch err := rq.check("subject.put", err); {
	case errors.As(err, &inv):
		for _, field := range registerFields {
			for _, fe := range inv.Errors {
				if fe.Field == field && !slices.ContainsFunc(bad, func(p fieldProblem) bool { return p.Field == field }) {
					bad = append(bad, fieldProblem{field, rq.T("register.error." + field)})
				}
			}
		}
		if len(bad) == 0 {
			bad = append(bad, fieldProblem{"display_name", rq.T("register.error.other")})
		}
		fallthrough
	case len(bad) > 0:
		s.renderRegister(rq, http.StatusUnprocessableEntity, registerData{Edit: edit, F: f, Errors: bad})
	case err != nil:
		rq.fail(err)
	default:
		done := "registered"
		if edit {
			done = "saved"
		}
		rq.redirect("/subjects/" + subj.ID + "?done=" + done)
	}
}
