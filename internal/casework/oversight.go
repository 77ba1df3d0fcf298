package casework

import (
	"context"
	"sort"
	"time"

	"github.com/sunpath/sunpath/internal/problem"
	"github.com/sunpath/sunpath/internal/screening"
)

// DueQuery narrows the due-screening list.
type DueQuery struct {
	OverdueOnly bool
	Limit       int
}

// Due lists the screenings due for the people the caller may see, soonest
// first: a new entrant's first screening, reassessments by tier, and
// follow-ups set when a flag was resolved. Computed and limited in the store.
func (s *Service) Due(ctx context.Context, c Call, q DueQuery) ([]Due, error) {
	if q.Limit < 1 || q.Limit > 1000 {
		return nil, invalid("limit", "must be a whole number from 1 to 1000")
	}
	return oversightRead(ctx, s, c, "schedule.list", func(tx Tx) ([]Due, error) {
		tx.Resource("schedule", "", "")
		return tx.Due(ctx, DueFilter{Schedule: s.policy.Schedule, OverdueOnly: q.OverdueOnly, Now: s.now(), Limit: q.Limit})
	})
}

// SubjectSchedule lists one person's due screenings.
func (s *Service) SubjectSchedule(ctx context.Context, c Call, id string) ([]Due, error) {
	return read(ctx, s, c, "schedule.read", id, func(tx Tx) ([]Due, error) {
		subj, err := tx.Subject(ctx, id)
		if err != nil {
			return nil, err
		}
		tx.Resource("schedule", subj.ID, subj.ID)
		return tx.Due(ctx, DueFilter{Schedule: s.policy.Schedule, Subjects: []string{subj.ID}, Now: s.now(), Limit: 100})
	})
}

// DashboardQuery is the period of the oversight figures.
type DashboardQuery struct {
	WindowDays int       // new-entrant coverage window (default 90)
	From, To   time.Time // reporting period (default: the last 30 days)
}

// DefaultWindowDays is the new-entrant coverage window when none is asked.
const DefaultWindowDays = 90

// standardWindow reports whether q asks for the default coverage window:
// the figures the rollups keep (all but the per-unit outcomes depend on
// the window only, not on the reporting period).
func (q DashboardQuery) standardWindow() bool {
	return q.WindowDays == 0 || q.WindowDays == DefaultWindowDays
}

// standardPeriod reports whether q asks for the default reporting period,
// the one the rollups' per-unit outcomes are of.
func (q DashboardQuery) standardPeriod() bool { return q.From.IsZero() && q.To.IsZero() }

// FlagResponse is how flags of one level were answered against their
// deadline.
type FlagResponse struct {
	Level    screening.Level `json:"level"`
	Answered int             `json:"answered"`
	OnTime   int             `json:"on_time"`
	Late     int             `json:"late"`
	Open     int             `json:"open"`
	Overdue  int             `json:"overdue"`
	Median   time.Duration   `json:"median_ns"`
	Deadline time.Duration   `json:"deadline_ns"`
}

// Oversight is everything the supervisor's overview shows, read at once.
type Oversight struct {
	Dashboard
	Responses []FlagResponse `json:"-"`
	ByUnit    []OverrideStat `json:"-"`
	ByReason  []OverrideStat `json:"-"`
	Overdue   []Due          `json:"-"`
}

// Dashboard returns the oversight figures of the caller's scope: tiers,
// overdue screenings (the same count as the overdue caseload filter), open
// flags, new-entrant coverage, and per unit for the period: supervised,
// screened, flagged, intervened and re-screened by reliable change.
func (s *Service) Dashboard(ctx context.Context, c Call, q DashboardQuery) (Oversight, error) {
	rolled, period := q.standardWindow(), q.standardPeriod()
	if q.WindowDays == 0 {
		q.WindowDays = DefaultWindowDays
	}
	now := s.now().UTC()
	if q.To.IsZero() {
		q.To = now
	}
	if q.From.IsZero() {
		q.From = q.To.AddDate(0, 0, -30)
	}
	inv := &problem.Invalid{}
	if q.WindowDays < 1 || q.WindowDays > 3650 {
		inv.Add("days", "must be a whole number from 1 to 3650")
	}
	if !q.From.Before(q.To) {
		inv.Add("from", "must be before to")
	}
	if err := inv.Err(); err != nil {
		return Oversight{}, err
	}
	f := DashboardFilter{Schedule: s.policy.Schedule, Now: now, WindowDays: q.WindowDays, From: q.From, To: q.To,
		Reliable: s.policy.ReliableChange, Instruments: s.policy.Schedule.Instruments}
	return oversightRead(ctx, s, c, "dashboard.read", func(tx Tx) (Oversight, error) {
		tx.Resource("dashboard", "", "")
		if scope, ok := rollupScope(c.Principal); ok && rolled && s.policy.DashboardMaxAge > 0 {
			o, found, err := s.rolledUp(ctx, tx, scope, now, !period, f)
			if err != nil || found {
				return o, err
			}
		}
		return s.oversight(ctx, tx, f)
	})
}

// oversight computes the dashboard of f in tx, as of f.Now.
func (s *Service) oversight(ctx context.Context, tx Tx, f DashboardFilter) (Oversight, error) {
	o, err := s.figures(ctx, tx, f)
	if err != nil {
		return o, err
	}
	o.Overdue, err = s.overdueList(ctx, tx, f.Now)
	return o, err
}

// figures computes the dashboard of f in tx but the overdue list: what the
// rollups keep.
func (s *Service) figures(ctx context.Context, tx Tx, f DashboardFilter) (Oversight, error) {
	var o Oversight
	var err error
	if o.Dashboard, err = tx.Dashboard(ctx, f); err != nil {
		return o, err
	}
	o.AsOf = f.Now
	if o.Units, err = tx.Outcomes(ctx, f); err != nil {
		return o, err
	}
	var flags []Flag
	for _, st := range []string{"", FlagResolved} {
		fs, err := tx.Flags(ctx, FlagFilter{Status: st, Limit: 500})
		if err != nil {
			return o, err
		}
		flags = append(flags, fs...)
	}
	o.Responses = FlagResponses(flags, f.Now, s.policy.Flags)
	since := f.Now.AddDate(0, 0, -f.WindowDays)
	if o.ByUnit, err = tx.OverrideAnalytics(ctx, "unit", since); err != nil {
		return o, err
	}
	o.ByReason, err = tx.OverrideAnalytics(ctx, "reason", since)
	return o, err
}

// overdueList is the dashboard's list of the 50 most overdue screenings.
func (s *Service) overdueList(ctx context.Context, tx Tx, now time.Time) ([]Due, error) {
	return tx.Due(ctx, DueFilter{Schedule: s.policy.Schedule, OverdueOnly: true, Now: now, Limit: 50})
}

// FlagResponses measures, per level, how long acknowledgement took against
// the deadline, over the flags given.
func FlagResponses(flags []Flag, now time.Time, p FlagPolicy) []FlagResponse {
	var out []FlagResponse
	for _, lvl := range []screening.Level{screening.LevelCritical, screening.LevelUrgent, screening.LevelReview} {
		r := FlagResponse{Level: lvl, Deadline: p.Deadline(string(lvl), now).Sub(now)}
		var times []time.Duration
		for _, f := range flags {
			if f.Level != lvl {
				continue
			}
			if f.AcknowledgedAt == nil {
				r.Open++
				if now.After(f.Deadline) {
					r.Overdue++
				}
				continue
			}
			r.Answered++
			times = append(times, f.AcknowledgedAt.Sub(f.RaisedAt))
			if f.AcknowledgedAt.After(f.Deadline) {
				r.Late++
			} else {
				r.OnTime++
			}
		}
		if len(times) > 0 {
			sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
			r.Median = times[len(times)/2]
		}
		out = append(out, r)
	}
	return out
}

// Overview is everything a person's page shows, read at once.
type Overview struct {
	Subject         Subject
	Due             []Due
	Flags           []Flag
	Assessments     []Assessment
	Trends          map[string]Trend
	Recommendations []Recommendation
	Decisions       []Decision
	Sessions        []Session // unfinished, resumable
}

// SubjectOverview reads a person's record, due screenings, flags,
// assessments with trends, recommendations, level history and unfinished
// screenings in one audited read.
func (s *Service) SubjectOverview(ctx context.Context, c Call, id, lang string) (Overview, error) {
	return read(ctx, s, c, "subject.read", id, func(tx Tx) (Overview, error) {
		var o Overview
		subj, err := tx.Subject(ctx, id)
		if err != nil {
			return o, err
		}
		o.Subject = subj
		if o.Due, err = tx.Due(ctx, DueFilter{Schedule: s.policy.Schedule, Subjects: []string{subj.ID}, Now: s.now(), Limit: 100}); err != nil {
			return o, err
		}
		if len(o.Due) > 0 {
			o.Subject.NextDue, o.Subject.Overdue = &o.Due[0].Due, o.Due[0].Overdue
		}
		if o.Flags, err = tx.Flags(ctx, FlagFilter{Subject: subj.ID, Limit: 100}); err != nil {
			return o, err
		}
		s.withProtocol(o.Flags, lang)
		if o.Assessments, err = tx.Assessments(ctx, subj, AssessmentFilter{Limit: 200}); err != nil {
			return o, err
		}
		o.Trends = map[string]Trend{}
		for _, a := range o.Assessments {
			if def, ok := s.catalog.Get(a.Instrument); !ok || !def.HasTotal() {
				continue
			}
			if _, done := o.Trends[a.Instrument]; done {
				continue
			}
			if o.Trends[a.Instrument], err = s.trend(ctx, tx, subj, a.Instrument); err != nil {
				return o, err
			}
		}
		if o.Recommendations, err = tx.Recommendations(ctx, subj, 20); err != nil {
			return o, err
		}
		markReview(o.Recommendations, subj)
		if o.Decisions, err = tx.Decisions(ctx, subj, 50); err != nil {
			return o, err
		}
		if o.Sessions, err = tx.OpenSessions(ctx, subj.ID, 20); err != nil {
			return o, err
		}
		tx.Resource("subject", subj.ID, subj.ID)
		return o, nil
	})
}
