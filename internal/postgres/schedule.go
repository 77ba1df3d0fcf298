package postgres

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/sunpath/sunpath/internal/casework"
)

// PutUnit creates or renames a unit.
func (t *Tx) PutUnit(ctx context.Context, code, name, agency string) error {
	t.Resource("unit", code, "")
	_, err := t.tx.Exec(ctx, `INSERT INTO units (code, name, agency) VALUES ($1, $2, $3)
		ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, agency = EXCLUDED.agency`, code, name, agency)
	return err
}

// Unit is an organisational unit.
type Unit struct {
	Code   string `json:"code"`
	Name   string `json:"name"`
	Agency string `json:"agency"`
}

// Units lists every unit.
func (t *Tx) Units(ctx context.Context) ([]Unit, error) {
	t.Resource("units", "", "")
	rows, err := t.tx.Query(ctx, `SELECT code, name, agency FROM units ORDER BY code`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Unit{}
	for rows.Next() {
		var u Unit
		if err := rows.Scan(&u.Code, &u.Name, &u.Agency); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// Due is one instrument a subject must take, and by when.
type Due struct {
	SubjectID  string     `json:"subject_id"`
	Unit       string     `json:"unit"`
	Counselor  string     `json:"counselor"`
	Tier       *string    `json:"tier"`
	Instrument string     `json:"instrument"`
	Last       *time.Time `json:"last_completed_at"`
	Due        time.Time  `json:"due"`
	Overdue    bool       `json:"overdue"`
}

// Schedule lists the next due screening, for every instrument of the
// policy, of the visible subjects under supervision: those with the given
// case-system ids, or all when subjects is empty. overdueOnly keeps those
// past due.
func (t *Tx) Schedule(ctx context.Context, s casework.Schedule, overdueOnly bool, subjects []string, limit int) ([]Due, error) {
	role, name, scope := t.scopeArgs()
	if len(subjects) == 1 {
		t.Resource("schedule", subjects[0], subjects[0])
	} else {
		t.Resource("schedule", "", "")
	}
	secs := func(d time.Duration) float64 { return d.Seconds() }
	rows, err := t.tx.Query(ctx, `SELECT s.external_id, s.unit, s.counselor, s.tier, i.instrument, last.at,
		CASE WHEN last.at IS NULL THEN coalesce(s.supervision_start::timestamptz, s.created_at) + make_interval(secs => $5::float8)
		     ELSE last.at + make_interval(secs => CASE s.tier WHEN 'strict' THEN $6::float8 WHEN 'ordinary' THEN $7::float8 WHEN 'lenient' THEN $8::float8 ELSE $9::float8 END)
		END AS due
		FROM subjects s CROSS JOIN unnest($4::text[]) AS i(instrument)
		LEFT JOIN LATERAL (SELECT max(a.completed_at) AS at FROM assessments a WHERE a.subject_id = s.id AND a.instrument = i.instrument) last ON true
		WHERE subject_visible(s.unit, s.counselor, s.agency, $1, $2, $3)
		  AND (s.supervision_end IS NULL OR s.supervision_end >= current_date)
		  AND (cardinality($10::text[]) = 0 OR s.external_id = ANY($10))
		ORDER BY due, s.external_id, i.instrument`,
		role, name, scope, s.Instruments, secs(s.NewEntrant), secs(s.Interval(casework.Strict)), secs(s.Interval(casework.Ordinary)),
		secs(s.Interval(casework.Lenient)), secs(s.Unassigned), subjects)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	now := t.c.now()
	out := []Due{}
	for rows.Next() {
		var d Due
		if err := rows.Scan(&d.SubjectID, &d.Unit, &d.Counselor, &d.Tier, &d.Instrument, &d.Last, &d.Due); err != nil {
			return nil, err
		}
		d.Due = d.Due.UTC()
		d.Overdue = now.After(d.Due)
		if overdueOnly && !d.Overdue {
			continue
		}
		if len(out) < limit {
			out = append(out, d)
		}
	}
	return out, rows.Err()
}

// TrendPoint is one result in a subject's series for an instrument.
type TrendPoint struct {
	AssessmentID   string    `json:"assessment_id"`
	CompletedAt    time.Time `json:"completed_at"`
	Total          *int      `json:"total"`
	Severity       *string   `json:"severity"`
	Change         *int      `json:"change"`          // since the previous result
	ReliableChange string    `json:"reliable_change"` // improved, deteriorated, none, or "" when undefined
}

// Trend returns subj's results for instrument, oldest first, marking changes
// of at least threshold points (0: not defined by the manual) as reliable.
func (t *Tx) Trend(ctx context.Context, subj casework.Subject, instrument string, threshold int) ([]TrendPoint, error) {
	sid, _ := uuid.Parse(subj.InternalID())
	t.Resource("trend", instrument, subj.ID)
	rows, err := t.tx.Query(ctx, `SELECT id, completed_at, total, severity FROM assessments
		WHERE subject_id = $1 AND instrument = $2 ORDER BY completed_at, created_at`, sid, instrument)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []TrendPoint{}
	var prev *int
	for rows.Next() {
		var p TrendPoint
		var id uuid.UUID
		if err := rows.Scan(&id, &p.CompletedAt, &p.Total, &p.Severity); err != nil {
			return nil, err
		}
		p.AssessmentID, p.CompletedAt = id.String(), p.CompletedAt.UTC()
		if prev != nil && p.Total != nil {
			d := *p.Total - *prev
			p.Change = &d
			switch {
			case threshold <= 0:
			case d <= -threshold:
				p.ReliableChange = "improved"
			case d >= threshold:
				p.ReliableChange = "deteriorated"
			default:
				p.ReliableChange = "none"
			}
		}
		if p.Total != nil {
			prev = p.Total
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Dashboard is the supervisor's overview of the visible caseload.
type Dashboard struct {
	Subjects            int            `json:"subjects"`
	Tiers               map[string]int `json:"tiers"`
	OverdueSubjects     int            `json:"overdue_subjects"`
	OverdueScreenings   int            `json:"overdue_screenings"`
	NewEntrants         int            `json:"new_entrants"`
	NewEntrantsScreened int            `json:"new_entrants_screened_in_window"`
	Coverage            *float64       `json:"new_entrant_coverage"`
	OpenFlags           map[string]int `json:"open_flags"`
	OverdueFlags        int            `json:"overdue_flags"`
	WindowDays          int            `json:"window_days"`
}

// Dashboard counts tiers, overdue reassessments, open flags and the
// screening coverage of subjects who entered supervision in the last
// windowDays: the share first screened within the policy's new-entrant window.
func (t *Tx) Dashboard(ctx context.Context, s casework.Schedule, windowDays int) (Dashboard, error) {
	role, name, scope := t.scopeArgs()
	t.Resource("dashboard", "", "")
	d := Dashboard{Tiers: map[string]int{}, OpenFlags: map[string]int{}, WindowDays: windowDays}
	rows, err := t.tx.Query(ctx, `SELECT coalesce(tier, 'unassigned'), count(*) FROM subjects s
		WHERE subject_visible(s.unit, s.counselor, s.agency, $1, $2, $3) AND (s.supervision_end IS NULL OR s.supervision_end >= current_date) GROUP BY 1`,
		role, name, scope)
	if err != nil {
		return d, err
	}
	for rows.Next() {
		var tier string
		var n int
		if err := rows.Scan(&tier, &n); err != nil {
			rows.Close()
			return d, err
		}
		d.Tiers[tier] = n
		d.Subjects += n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return d, err
	}
	due, err := t.Schedule(ctx, s, true, nil, 1<<30)
	if err != nil {
		return d, err
	}
	seen := map[string]bool{}
	for _, x := range due {
		d.OverdueScreenings++
		if !seen[x.SubjectID] {
			seen[x.SubjectID] = true
			d.OverdueSubjects++
		}
	}
	err = t.tx.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE EXISTS (
			SELECT 1 FROM assessments a WHERE a.subject_id = s.id AND a.instrument = ANY($5)
			   AND a.completed_at <= coalesce(s.supervision_start::timestamptz, s.created_at) + make_interval(secs => $6::float8)))
		FROM subjects s WHERE subject_visible(s.unit, s.counselor, s.agency, $1, $2, $3)
		  AND coalesce(s.supervision_start::timestamptz, s.created_at) >= now() - make_interval(days => $4::int)`,
		role, name, scope, windowDays, s.Instruments, s.NewEntrant.Seconds()).Scan(&d.NewEntrants, &d.NewEntrantsScreened)
	if err != nil {
		return d, err
	}
	if d.NewEntrants > 0 {
		c := float64(d.NewEntrantsScreened) / float64(d.NewEntrants)
		d.Coverage = &c
	}
	rows, err = t.tx.Query(ctx, `SELECT f.level, count(*), count(*) FILTER (WHERE f.status = 'open' AND f.deadline < $4)
		FROM flags f JOIN subjects s ON s.id = f.subject_id
		WHERE f.status <> 'resolved' AND subject_visible(s.unit, s.counselor, s.agency, $1, $2, $3) GROUP BY 1`, role, name, scope, t.c.now())
	if err != nil {
		return d, err
	}
	defer rows.Close()
	for rows.Next() {
		var level string
		var n, overdue int
		if err := rows.Scan(&level, &n, &overdue); err != nil {
			return d, err
		}
		d.OpenFlags[level] = n
		d.OverdueFlags += overdue
	}
	return d, rows.Err()
}
