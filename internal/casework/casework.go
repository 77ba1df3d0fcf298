// Package casework holds the rules of the case workflow that do not depend
// on storage or transport: what a valid subject record is, supervision
// tiers, flag deadlines, override reasons and the reassessment schedule.
package casework

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sunpath/sunpath/internal/problem"
)

// Errors callers act on.
var (
	ErrNotFound  = errors.New("not found")
	ErrConflict  = errors.New("conflict")
	ErrForbidden = errors.New("forbidden")
	// ErrPrecondition means the record changed since the caller read it
	// (If-Match): their update would overwrite someone else's.
	ErrPrecondition = errors.New("the record changed since it was read; read it again and reapply the change")
	ErrOutOfScope   = fmt.Errorf("outside the caller's caseload, unit or agency: %w", ErrNotFound)
)

// Tier is a supervision level. Recommendations are advisory.
type Tier string

// The tiers, from least to most restrictive.
const (
	Lenient  Tier = "lenient"  // 宽管
	Ordinary Tier = "ordinary" // 普管
	Strict   Tier = "strict"   // 严管
)

// Tiers lists the tiers from least to most restrictive.
var Tiers = []Tier{Lenient, Ordinary, Strict}

// Rank orders tiers: lenient 0, ordinary 1, strict 2, unknown -1.
func (t Tier) Rank() int {
	for i, x := range Tiers {
		if x == t {
			return i
		}
	}
	return -1
}

// Valid reports whether t is a tier.
func (t Tier) Valid() bool { return t.Rank() >= 0 }

// Direction of an override relative to the recommendation.
func Direction(recommended, requested Tier) string {
	switch d := requested.Rank() - recommended.Rank(); {
	case d > 0:
		return "stricter"
	case d < 0:
		return "more_lenient"
	}
	return "same"
}

// SupervisionTypes are the forms of community supervision (社区矫正):
// 管制 control, 缓刑 probation, 假释 parole, 暂予监外执行 temporary
// execution outside prison.
var SupervisionTypes = []string{"control", "probation", "parole", "temporary_outside_prison", "other"}

// Sexes are the recorded values of sex.
var Sexes = []string{"female", "male", "other", "unknown"}

// IDPattern constrains identifiers chosen by clients (subject and unit ids).
var IDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Date is a calendar date, "2006-01-02" in JSON.
const DateLayout = "2006-01-02"

// SubjectInput is a create-or-update of a person under supervision.
type SubjectInput struct {
	DisplayName      string
	Sex              string
	BirthYear        *int
	SupervisionType  string
	Unit             string
	Counselor        string
	SupervisionStart string
	SupervisionEnd   string
	Profile          map[string]any
	// KeepProfile leaves a stored profile as it is: an update that sends
	// no profile never erases the model inputs recorded before.
	KeepProfile bool
	// IfMatch, when set, is the ETag of the record as the caller last read
	// it; if it has changed since, the update is refused (ErrPrecondition).
	IfMatch string
}

// Validate checks every field and lists all problems; now bounds birth years.
func (in SubjectInput) Validate(now time.Time) error {
	inv := &problem.Invalid{}
	name := strings.TrimSpace(in.DisplayName)
	if name == "" || utf8.RuneCountInString(name) > 200 {
		inv.Add("display_name", "required, at most 200 characters")
	}
	if !oneOf(in.Sex, Sexes) {
		inv.Add("sex", "must be one of "+strings.Join(Sexes, ", "))
	}
	if in.BirthYear != nil && (*in.BirthYear < 1900 || *in.BirthYear > now.Year()) {
		inv.Add("birth_year", fmt.Sprintf("must be a year from 1900 to %d", now.Year()))
	}
	if !oneOf(in.SupervisionType, SupervisionTypes) {
		inv.Add("supervision_type", "must be one of "+strings.Join(SupervisionTypes, ", "))
	}
	if !IDPattern.MatchString(in.Unit) {
		inv.Add("unit", "required: a unit code of 1-64 letters, digits, '.', '_' or '-'")
	}
	var start, end time.Time
	var err error
	if in.SupervisionStart != "" {
		if start, err = time.Parse(DateLayout, in.SupervisionStart); err != nil {
			inv.Add("supervision_start", "must be a date YYYY-MM-DD")
		}
	}
	if in.SupervisionEnd != "" {
		if end, err = time.Parse(DateLayout, in.SupervisionEnd); err != nil {
			inv.Add("supervision_end", "must be a date YYYY-MM-DD")
		}
	}
	if !start.IsZero() && !end.IsZero() && end.Before(start) {
		inv.Add("supervision_end", "must not be before supervision_start")
	}
	if len(in.Profile) > 200 {
		inv.Add("profile", "at most 200 fields")
	}
	for k, v := range in.Profile {
		switch v.(type) {
		case string, float64, bool, nil:
		default:
			inv.Add("profile."+k, "must be a string, number, boolean or null")
		}
		if len(k) > 100 {
			inv.Add("profile", "field names are at most 100 characters")
		}
	}
	return inv.Err()
}

func oneOf(s string, set []string) bool {
	for _, x := range set {
		if s == x {
			return true
		}
	}
	return false
}

// FlagPolicy gives the acknowledgement deadline of each flag level.
type FlagPolicy struct {
	Critical, Urgent, Review time.Duration
}

// DefaultFlagPolicy: critical 15 minutes, urgent 24 hours, review 7 days.
var DefaultFlagPolicy = FlagPolicy{Critical: 15 * time.Minute, Urgent: 24 * time.Hour, Review: 7 * 24 * time.Hour}

// Deadline returns when a flag of level raised at must be acknowledged.
func (p FlagPolicy) Deadline(level string, raised time.Time) time.Time {
	switch level {
	case "critical":
		return raised.Add(p.Critical)
	case "urgent":
		return raised.Add(p.Urgent)
	}
	return raised.Add(p.Review)
}

// ResolutionCodes close a flag; a note is always required with them.
var ResolutionCodes = []string{
	"safety_plan_made",     // a safety plan was made with the person
	"referred_to_services", // referred to mental-health or crisis services
	"emergency_services",   // emergency services were involved
	"false_positive",       // on review the answer did not indicate risk
	"no_action_needed",
	"other",
}

// OverrideReasons justify a professional override of a recommendation.
var OverrideReasons = []string{"new_information", "clinical_judgement", "mitigating_circumstances", "aggravating_circumstances", "policy_requirement", "other"}

// ValidResolution reports whether code closes a flag.
func ValidResolution(code string) bool { return oneOf(code, ResolutionCodes) }

// ValidOverrideReason reports whether code justifies an override.
func ValidOverrideReason(code string) bool { return oneOf(code, OverrideReasons) }

// MaxNoteRunes bounds free-text notes.
const MaxNoteRunes = 4000

// ValidNote checks a required free-text note.
func ValidNote(note string) bool {
	n := utf8.RuneCountInString(strings.TrimSpace(note))
	return n > 0 && n <= MaxNoteRunes
}

// Schedule is the reassessment policy: how often each tier is rescreened and
// how soon a new entrant must first be screened.
type Schedule struct {
	Instruments []string // screened at intake and at every reassessment
	Every       map[Tier]time.Duration
	Unassigned  time.Duration // interval for subjects with no tier yet
	NewEntrant  time.Duration // first screening within this long of supervision start
}

// DefaultSchedule: strict monthly, ordinary every two months, lenient
// quarterly; new entrants within a week, as Zhejiang screens every entrant.
var DefaultSchedule = Schedule{
	Instruments: []string{"phq9", "gad7", "asq"},
	Every:       map[Tier]time.Duration{Strict: 30 * 24 * time.Hour, Ordinary: 60 * 24 * time.Hour, Lenient: 90 * 24 * time.Hour},
	Unassigned:  30 * 24 * time.Hour,
	NewEntrant:  7 * 24 * time.Hour,
}

// Interval returns how often a subject of tier t is reassessed.
func (s Schedule) Interval(t Tier) time.Duration {
	if d, ok := s.Every[t]; ok {
		return d
	}
	return s.Unassigned
}

// Due returns when a subject must next take instrument: first within
// NewEntrant of the supervision start (or of the record's creation), then
// one interval after the last time it was taken.
func (s Schedule) Due(t Tier, start time.Time, last *time.Time) time.Time {
	if last == nil {
		return start.Add(s.NewEntrant)
	}
	return last.Add(s.Interval(t))
}
