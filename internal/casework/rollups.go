package casework

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/sunpath/sunpath/internal/auth"
)

// Dashboard rollups keep the oversight figures flat with history. Computed
// live, a provincial dashboard scans every visible person and their
// history; the rollups hold, per scope that reads dashboards at that scale
// — everyone (admins), each agency (case systems), each unit
// (supervisors) — the figures of the default window and period, computed
// by RefreshDashboards every dashboard.refresh with the same code as a
// live read, so a dashboard read is one row whatever the caseload. A read
// says how old its figures are (Dashboard.AsOf); a rollup older than
// Policy.DashboardMaxAge, another coverage window, or a counselor (a
// caseload is small) is computed live. The list of overdue screenings is
// always live (it costs its limit, not the caseload); the per-unit outcomes
// of the current calendar month (the web's month) are rolled up too, as of
// the refresh, and those of any other period are computed live.

// Rollup is the stored dashboard of one scope.
type Rollup struct {
	Scope string // "all", "unit:<code>" or "agency:<agency>"
	AsOf  time.Time
	Body  []byte // rollupBody as JSON: figures only, no person's data
}

// rollupBody is what a rollup keeps of an Oversight: all but the overdue
// list.
type rollupBody struct {
	Dashboard Dashboard      `json:"dashboard"`
	Responses []FlagResponse `json:"responses"`
	ByUnit    []OverrideStat `json:"by_unit"`
	ByReason  []OverrideStat `json:"by_reason"`
	// Month is the per-unit outcomes of the calendar month of the refresh
	// (Policy.Location), from its start to the refresh: a rollupMonth,
	// decoded only for a read of that month.
	Month json.RawMessage `json:"month,omitempty"`
}

type rollupMonth struct {
	From  time.Time     `json:"from"`
	To    time.Time     `json:"to"`
	Units []UnitOutcome `json:"units"`
}

// rollupCache keeps each scope's rollup decoded, as of its refresh: a
// dashboard read then fetches the body (and decodes it) only once per
// refresh and replica. The province's lists every unit: decoding it took
// about a millisecond at 20,000 people, the read's only cost that grew
// with the caseload.
type rollupCache struct {
	mu     sync.Mutex
	scopes map[string]heldRollup
}

type heldRollup struct {
	asOf  time.Time
	body  rollupBody
	month *rollupMonth // body.Month decoded, once asked for
}

// month returns the decoded month of the held rollup of scope as of asOf
// (raw: its JSON), decoding and holding it the first time; nil when the
// rollup has none.
func (c *rollupCache) month(scope string, asOf time.Time, raw json.RawMessage) (*rollupMonth, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	c.mu.Lock()
	h, ok := c.scopes[scope]
	c.mu.Unlock()
	if ok && h.asOf.Equal(asOf) && h.month != nil {
		return h.month, nil
	}
	m := &rollupMonth{}
	if err := json.Unmarshal(raw, m); err != nil {
		return nil, err
	}
	c.mu.Lock()
	if h, ok := c.scopes[scope]; ok && h.asOf.Equal(asOf) {
		h.month = m
		c.scopes[scope] = h
	}
	c.mu.Unlock()
	return m, nil
}

// get returns the held rollup of scope (zero when none is held).
func (c *rollupCache) get(scope string) heldRollup {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.scopes[scope]
}

func (c *rollupCache) put(scope string, asOf time.Time, b rollupBody) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.scopes == nil {
		c.scopes = map[string]heldRollup{}
	}
	c.scopes[scope] = heldRollup{asOf: asOf, body: b}
}

// clone copies what a reader may change (the web names the units of
// ByUnit in place), so that the held copy stays as it was decoded.
func (b rollupBody) clone() rollupBody {
	b.Dashboard.Tiers = maps.Clone(b.Dashboard.Tiers)
	b.Dashboard.OpenFlags = maps.Clone(b.Dashboard.OpenFlags)
	b.Dashboard.Units = slices.Clone(b.Dashboard.Units)
	b.Responses = slices.Clone(b.Responses)
	b.ByUnit = slices.Clone(b.ByUnit)
	b.ByReason = slices.Clone(b.ByReason)
	return b
}

// rollupScope is the rollup a principal's dashboard reads, if any.
func rollupScope(p auth.Principal) (string, bool) {
	switch p.Role {
	case auth.RoleAdmin:
		return "all", true
	case auth.RoleSupervisor:
		return "unit:" + p.Unit, p.Unit != ""
	case auth.RoleCaseSystem:
		return "agency:" + p.Unit, p.Unit != ""
	}
	return "", false
}

// rolledUp answers a dashboard from the stored rollup of scope, with the
// live overdue list; found is false when there is none fresh enough. With
// a period (from, to), the per-unit outcomes are those of the rolled-up
// month when the period is the current month up to now (shown as of the
// refresh), else computed live from f.
func (s *Service) rolledUp(ctx context.Context, tx Tx, scope string, now time.Time, period bool, f DashboardFilter) (o Oversight, found bool, err error) {
	held := s.rollups.get(scope)
	r, found, err := tx.Rollup(ctx, scope, held.asOf)
	if err != nil || !found || r.AsOf.After(now) || now.Sub(r.AsOf) > s.policy.DashboardMaxAge {
		return o, false, err
	}
	b := held.body
	if r.Body != nil { // not the rollup held (or none is)
		b = rollupBody{}
		if err := json.Unmarshal(r.Body, &b); err != nil {
			return o, false, fmt.Errorf("rollup %s: %w", scope, err)
		}
		s.rollups.put(scope, r.AsOf, b)
	}
	b = b.clone()
	o = Oversight{Dashboard: b.Dashboard, Responses: b.Responses, ByUnit: b.ByUnit, ByReason: b.ByReason}
	if period {
		m, err := s.rollups.month(scope, r.AsOf, b.Month)
		if err != nil {
			return o, false, fmt.Errorf("rollup %s: %w", scope, err)
		}
		switch {
		case m != nil && f.From.Equal(m.From) && !f.To.Before(m.To) && !f.To.After(now):
			o.From, o.To, o.Units = m.From, m.To, slices.Clone(m.Units)
		default:
			o.From, o.To = f.From, f.To
			if o.Units, err = tx.Outcomes(ctx, f); err != nil {
				return o, true, err
			}
		}
	}
	o.Overdue, err = s.overdueList(ctx, tx, now)
	return o, true, err
}

// RefreshDashboards computes and stores the rollup of every scope: all,
// each agency with units, each unit. It reads in snapshots of the figures
// only (unaudited: no person's data is read out) and replaces the stored
// rollups at once. It does nothing when the stored rollups are younger
// than fresh (another replica refreshed them). It returns how many scopes
// it stored.
func (s *Service) RefreshDashboards(ctx context.Context, fresh time.Duration) (int, error) {
	now := s.now().UTC()
	f := DashboardFilter{Schedule: s.policy.Schedule, Now: now, WindowDays: DefaultWindowDays, From: now.AddDate(0, 0, -30), To: now,
		Reliable: s.policy.ReliableChange, Instruments: s.policy.Schedule.Instruments}
	system := auth.Principal{Kind: auth.KindSystem, Name: "dashboard-rollup", Role: auth.RoleAdmin}
	var units []Unit
	var last Rollup
	var found bool
	if err := s.store.Figures(ctx, system, func(tx Tx) (err error) {
		if last, found, err = tx.Rollup(ctx, "all", time.Time{}); err != nil {
			return err
		}
		units, err = tx.Units(ctx)
		return err
	}); err != nil {
		return 0, err
	}
	if found && !last.AsOf.After(now) && now.Sub(last.AsOf) < fresh {
		return 0, nil
	}
	scopes := []auth.Principal{system}
	agencies := map[string]bool{}
	for _, u := range units {
		scopes = append(scopes, auth.Principal{Kind: auth.KindSystem, Name: system.Name, Role: auth.RoleSupervisor, Unit: u.Code})
		if u.Agency != "" && !agencies[u.Agency] {
			agencies[u.Agency] = true
			scopes = append(scopes, auth.Principal{Kind: auth.KindSystem, Name: system.Name, Role: auth.RoleCaseSystem, Unit: u.Agency})
		}
	}
	rs := make([]Rollup, 0, len(scopes))
	for _, p := range scopes {
		scope, _ := rollupScope(p)
		var o Oversight
		month := &rollupMonth{From: s.policy.MonthStart(now).UTC(), To: now}
		if err := s.store.Figures(ctx, p, func(tx Tx) (err error) {
			if o, err = s.figures(ctx, tx, f); err != nil {
				return err
			}
			mf := f
			mf.From, mf.To = month.From, month.To
			month.Units, err = tx.Outcomes(ctx, mf)
			return err
		}); err != nil {
			return 0, fmt.Errorf("rollup %s: %w", scope, err)
		}
		m, err := json.Marshal(month)
		if err != nil {
			return 0, err
		}
		body, err := json.Marshal(rollupBody{Dashboard: o.Dashboard, Responses: o.Responses, ByUnit: o.ByUnit, ByReason: o.ByReason, Month: m})
		if err != nil {
			return 0, err
		}
		rs = append(rs, Rollup{Scope: scope, AsOf: now, Body: body})
	}
	return len(rs), s.store.PutRollups(ctx, rs)
}
