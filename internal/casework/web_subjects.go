package casework

import (
	"context"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/problem"
)

// RegisterSubject registers a person or edits their record from the pages,
// for offices without a case-system feed. Admins and supervisors follow
// PutSubject's rules (a supervisor registers into their own unit). A
// counselor may register people into their own unit with themselves as
// counselor, and edit the people on their caseload: Unit and Counselor are
// theirs whatever in says. An edit keeps the stored model profile (the
// form does not show it) unless in.Profile is set.
func (s *Service) RegisterSubject(ctx context.Context, c Call, id string, in SubjectInput) (Subject, bool, error) {
	p := c.Principal
	own := p.Role == auth.RoleCounselor
	switch {
	case !p.IsPerson() || (p.Role != auth.RoleCounselor && p.Role != auth.RoleSupervisor && p.Role != auth.RoleAdmin):
		return Subject{}, false, ErrForbidden
	case own && p.Unit == "":
		return Subject{}, false, ErrForbidden
	case own:
		in.Unit, in.Counselor = p.Unit, p.Name
	case p.Role == auth.RoleSupervisor && in.Unit == "":
		in.Unit = p.Unit
	}
	in.DisplayName = strings.TrimSpace(in.DisplayName)
	if err := s.validSubject(id, in); err != nil {
		return Subject{}, false, err
	}
	type put struct {
		S       Subject
		Created bool
	}
	in.KeepProfile = in.Profile == nil // the form does not show the profile
	out, _, err := run(ctx, s, c, unit{action: "subject.put"}, func(tx Tx) (put, error) {
		subj, created, err := s.putSubject(ctx, tx, id, in, own)
		return put{subj, created}, err
	})
	return out.S, out.Created, err
}

// SearchLimit bounds how many visible people a search looks through.
const SearchLimit = 5000

// SubjectSearch narrows a search of the caller's caseload.
type SubjectSearch struct {
	// Text matches the name or the case number, ignoring case, width and
	// spaces ("张 三" finds 张三, "p-1" finds P-100).
	Text            string
	SupervisionType string
	Tier            string
	Overdue         bool
}

// SearchResult is what a search found; Truncated says the caller sees more
// than SearchLimit people and only the first (by case number) were searched.
type SearchResult struct {
	Subjects  []Subject
	Truncated bool
}

// SearchSubjects finds people on the caller's caseload by name, case number
// and supervision type. Names are sealed at rest, so the search opens the
// names of the people the caller may see (at most SearchLimit) and filters
// them here; nothing about the names is stored for searching.
func (s *Service) SearchSubjects(ctx context.Context, c Call, q SubjectSearch) (SearchResult, error) {
	inv := &problem.Invalid{}
	if utf8.RuneCountInString(q.Text) > 100 || strings.ContainsRune(q.Text, 0) {
		inv.Add("q", "at most 100 characters")
	}
	if q.SupervisionType != "" && !oneOf(q.SupervisionType, SupervisionTypes) {
		inv.Add("supervision_type", "must be one of "+strings.Join(SupervisionTypes, ", "))
	}
	if q.Tier != "" && !Tier(q.Tier).Valid() {
		inv.Add("tier", "must be lenient, ordinary or strict")
	}
	if err := inv.Err(); err != nil {
		return SearchResult{}, err
	}
	needle := normalize(q.Text)
	return read(ctx, s, c, "subject.search", "", func(tx Tx) (SearchResult, error) {
		tx.Resource("subjects", "", "")
		// The search text is never audited: it may be a name.
		tx.Detail(map[string]any{"text": needle != "", "supervision_type": q.SupervisionType, "tier": q.Tier, "overdue": q.Overdue})
		subs, err := tx.Subjects(ctx, SubjectFilter{Tier: q.Tier, OverdueOnly: q.Overdue, Schedule: s.policy.Schedule, Now: s.now(), Limit: SearchLimit + 1})
		if err != nil {
			return SearchResult{}, err
		}
		var out SearchResult
		if len(subs) > SearchLimit {
			subs, out.Truncated = subs[:SearchLimit], true
		}
		out.Subjects = []Subject{}
		for _, x := range subs {
			if q.SupervisionType != "" && x.SupervisionType != q.SupervisionType {
				continue
			}
			if needle != "" && !strings.Contains(normalize(x.DisplayName), needle) && !strings.Contains(normalize(x.ID), needle) {
				continue
			}
			out.Subjects = append(out.Subjects, x)
		}
		return out, nil
	})
}

// normalize folds full-width forms (Ｐ－１ is P-1) and case, and drops
// spaces and name dots, so that a search matches however the name or
// number was typed.
func normalize(v string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case unicode.IsSpace(r) || r == '·' || r == '•' || r == '・':
			return -1
		case r >= 0xFF01 && r <= 0xFF5E:
			r -= 0xFEE0
		}
		return unicode.ToLower(r)
	}, v)
}

// UnitName returns the name of a unit for headers and printed reports, or
// the code when the unit is unknown.
func (s *Service) UnitName(ctx context.Context, c Call, code string) (string, error) {
	if code == "" {
		return "", nil
	}
	u, err := read(ctx, s, c, "unit.read", "", func(tx Tx) (Unit, error) {
		tx.Resource("unit", code, "")
		return tx.Unit(ctx, code)
	})
	if errors.Is(err, ErrNotFound) {
		return code, nil
	}
	return u.Name, err
}
