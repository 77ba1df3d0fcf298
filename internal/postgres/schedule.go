package postgres

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/casework"
)

// Unit is an organisational unit.
type Unit = casework.Unit

// Unit returns one unit; ErrNotFound when there is none.
func (t *Tx) Unit(ctx context.Context, code string) (casework.Unit, error) {
	u := casework.Unit{Code: code}
	err := t.tx.QueryRow(ctx, `SELECT name, agency FROM units WHERE code = $1`, code).Scan(&u.Name, &u.Agency)
	if errors.Is(err, pgx.ErrNoRows) {
		return u, fmt.Errorf("unit %s: %w", code, casework.ErrNotFound)
	}
	return u, err
}

// PutUnit creates a unit or sets its name and agency.
func (t *Tx) PutUnit(ctx context.Context, u casework.Unit) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO units (code, name, agency) VALUES ($1, $2, $3)
		ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, agency = EXCLUDED.agency`, u.Code, u.Name, u.Agency)
	return err
}

// Units lists every unit.
func (t *Tx) Units(ctx context.Context) ([]casework.Unit, error) {
	rows, err := t.tx.Query(ctx, `SELECT code, name, agency FROM units ORDER BY code`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []casework.Unit{}
	for rows.Next() {
		var u casework.Unit
		if err := rows.Scan(&u.Code, &u.Name, &u.Agency); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// Due is one instrument a subject must take, and by when.
type Due = casework.Due

// dueCTE defines "due": one row per screening due for a visible subject
// under supervision: each schedule instrument (first within the new-entrant
// window of the supervision start, then one tier interval after the last
// result), and each follow-up set when a flag was resolved, until the
// flag's instrument has been taken again. Its parameters are dueArgs: $1-$3
// the principal, $4 the instruments, $5-$9 the intervals in seconds, $10
// now, $11 the case-system ids to restrict to (NULL or empty: all).
const dueCTE = `vis AS (
		SELECT s.id, s.external_id, s.unit, s.counselor, s.tier, coalesce(s.supervision_start::timestamptz, s.created_at) AS start
		  FROM subjects s
		 WHERE subject_visible(s.unit, s.counselor, s.agency, $1, $2, $3)
		   AND (s.supervision_end IS NULL OR s.supervision_end >= ($10::timestamptz)::date)
		   AND (coalesce(cardinality($11::text[]), 0) = 0 OR s.external_id = ANY($11::text[]))),
	due AS (
		SELECT v.id, v.external_id, v.unit, v.counselor, v.tier, i.instrument, last.at AS last,
		       CASE WHEN last.at IS NULL THEN v.start + make_interval(secs => $5::float8)
		            ELSE last.at + make_interval(secs => CASE v.tier WHEN 'strict' THEN $6::float8 WHEN 'ordinary' THEN $7::float8
		                                                              WHEN 'lenient' THEN $8::float8 ELSE $9::float8 END)
		       END AS due,
		       CASE WHEN last.at IS NULL THEN 'entry' ELSE 'reassessment' END AS reason, NULL::uuid AS flag_id
		  FROM vis v CROSS JOIN unnest($4::text[]) AS i(instrument)
		  LEFT JOIN LATERAL (SELECT max(a.completed_at) AS at FROM assessments a
		                      WHERE a.subject_id = v.id AND a.instrument = i.instrument) last ON true
		UNION ALL
		SELECT v.id, v.external_id, v.unit, v.counselor, v.tier, a.instrument, a.completed_at, f.follow_up_due, 'follow_up', f.id
		  FROM vis v JOIN flags f ON f.subject_id = v.id AND f.status = 'resolved' AND f.follow_up_due IS NOT NULL
		  JOIN assessments a ON a.id = f.assessment_id
		 WHERE NOT EXISTS (SELECT 1 FROM assessments b WHERE b.subject_id = v.id AND b.instrument = a.instrument
		                     AND b.completed_at > f.resolved_at))`

// dueArgs are dueCTE's parameters.
func dueArgs(p auth.Principal, s casework.Schedule, now time.Time, subjects []string) []any {
	role, name, scope := scopeOf(p)
	secs := func(d time.Duration) float64 { return d.Seconds() }
	return []any{role, name, scope, s.Instruments, secs(s.NewEntrant), secs(s.Interval(casework.Strict)), secs(s.Interval(casework.Ordinary)),
		secs(s.Interval(casework.Lenient)), secs(s.Unassigned), now, subjects}
}

// Due lists the due screenings of the visible subjects under supervision
// (those with the given case-system ids, or all), soonest first, limited
// and filtered in the query.
func (t *Tx) Due(ctx context.Context, f casework.DueFilter) ([]casework.Due, error) {
	args := append(dueArgs(t.p, f.Schedule, f.Now, f.Subjects), f.OverdueOnly, f.Limit)
	rows, err := t.tx.Query(ctx, `WITH `+dueCTE+`
		SELECT external_id, unit, counselor, tier, instrument, reason, flag_id, last, due FROM due
		 WHERE NOT $12 OR due < $10
		 ORDER BY due, external_id, instrument LIMIT $13`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []casework.Due{}
	for rows.Next() {
		var d casework.Due
		var flag *uuid.UUID
		if err := rows.Scan(&d.SubjectID, &d.Unit, &d.Counselor, &d.Tier, &d.Instrument, &d.Reason, &flag, &d.Last, &d.Due); err != nil {
			return nil, err
		}
		if flag != nil {
			d.FlagID = flag.String()
		}
		if d.Last != nil {
			l := d.Last.UTC()
			d.Last = &l
		}
		d.Due = d.Due.UTC()
		d.Overdue = f.Now.After(d.Due)
		out = append(out, d)
	}
	return out, rows.Err()
}

// TrendPoint is one result in a subject's series for an instrument.
type TrendPoint = casework.TrendPoint

// Trend returns subj's results for instrument, oldest first.
func (t *Tx) Trend(ctx context.Context, subj casework.Subject, instrument string) ([]casework.TrendPoint, error) {
	sid, _ := uuid.Parse(subj.InternalID())
	rows, err := t.tx.Query(ctx, `SELECT id, completed_at, total, severity FROM assessments
		WHERE subject_id = $1 AND instrument = $2 ORDER BY completed_at, created_at`, sid, instrument)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []casework.TrendPoint{}
	for rows.Next() {
		var p casework.TrendPoint
		var id uuid.UUID
		if err := rows.Scan(&id, &p.CompletedAt, &p.Total, &p.Severity); err != nil {
			return nil, err
		}
		p.AssessmentID, p.CompletedAt = id.String(), p.CompletedAt.UTC()
		out = append(out, p)
	}
	return out, rows.Err()
}

// Dashboard is the supervisor's overview of the visible caseload.
type Dashboard = casework.Dashboard

// Dashboard counts tiers, overdue screenings (from the same due rows as the
// overdue subject filter), open flags, pending overrides, level reviews and
// the screening coverage of subjects who entered supervision in the window.
func (t *Tx) Dashboard(ctx context.Context, f casework.DashboardFilter) (casework.Dashboard, error) {
	role, name, scope := t.scopeArgs()
	d := casework.Dashboard{Tiers: map[string]int{}, OpenFlags: map[string]int{}, WindowDays: f.WindowDays, From: f.From.UTC(), To: f.To.UTC()}
	b := &pgx.Batch{}
	b.Queue(`SELECT coalesce(tier, 'unassigned'), count(*) FROM subjects s
		WHERE subject_visible(s.unit, s.counselor, s.agency, $1, $2, $3) AND (s.supervision_end IS NULL OR s.supervision_end >= ($4::timestamptz)::date) GROUP BY 1`,
		role, name, scope, f.Now).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var tier string
			var n int
			if err := rows.Scan(&tier, &n); err != nil {
				return err
			}
			d.Tiers[tier] = n
			d.Subjects += n
		}
		return rows.Err()
	})
	b.Queue(`WITH `+dueCTE+` SELECT count(*), count(DISTINCT id) FROM due WHERE due < $10`, dueArgs(t.p, f.Schedule, f.Now, nil)...).
		QueryRow(func(r pgx.Row) error { return r.Scan(&d.OverdueScreenings, &d.OverdueSubjects) })
	b.Queue(`SELECT count(*), count(*) FILTER (WHERE EXISTS (
			SELECT 1 FROM assessments a WHERE a.subject_id = s.id AND a.instrument = ANY($5)
			   AND a.completed_at <= coalesce(s.supervision_start::timestamptz, s.created_at) + make_interval(secs => $6::float8)))
		FROM subjects s WHERE subject_visible(s.unit, s.counselor, s.agency, $1, $2, $3)
		  AND coalesce(s.supervision_start::timestamptz, s.created_at) >= $7::timestamptz - make_interval(days => $4::int)`,
		role, name, scope, f.WindowDays, f.Schedule.Instruments, f.Schedule.NewEntrant.Seconds(), f.Now).
		QueryRow(func(r pgx.Row) error { return r.Scan(&d.NewEntrants, &d.NewEntrantsScreened) })
	b.Queue(`SELECT f.level, count(*), count(*) FILTER (WHERE f.status = 'open' AND f.deadline < $4)
		FROM flags f JOIN subjects s ON s.id = f.subject_id
		WHERE f.status <> 'resolved' AND subject_visible(s.unit, s.counselor, s.agency, $1, $2, $3) GROUP BY 1`, role, name, scope, f.Now).
		Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var level string
				var n, overdue int
				if err := rows.Scan(&level, &n, &overdue); err != nil {
					return err
				}
				d.OpenFlags[level] = n
				d.OverdueFlags += overdue
			}
			return rows.Err()
		})
	b.Queue(`SELECT count(*) FROM overrides o JOIN subjects s ON s.id = o.subject_id
		WHERE o.status = 'pending' AND subject_visible(s.unit, s.counselor, s.agency, $1, $2, $3)`, role, name, scope).
		QueryRow(func(r pgx.Row) error { return r.Scan(&d.PendingOverrides) })
	// A person's newest recommendation that disagrees with their level (or
	// finds them without one) asks for a review.
	b.Queue(`SELECT count(*) FROM subjects s JOIN LATERAL (SELECT r.tier FROM recommendations r WHERE r.subject_id = s.id
			ORDER BY r.created_at DESC LIMIT 1) r ON true
		WHERE subject_visible(s.unit, s.counselor, s.agency, $1, $2, $3) AND s.tier IS DISTINCT FROM r.tier
		  AND (s.supervision_end IS NULL OR s.supervision_end >= ($4::timestamptz)::date)`, role, name, scope, f.Now).
		QueryRow(func(r pgx.Row) error { return r.Scan(&d.LevelReviews) })
	if err := t.tx.SendBatch(ctx, b).Close(); err != nil {
		return d, err
	}
	if d.NewEntrants > 0 {
		c := float64(d.NewEntrantsScreened) / float64(d.NewEntrants)
		d.Coverage = &c
	}
	return d, nil
}

// Outcomes counts, per visible unit, the people under supervision during
// [From, To), those screened, flagged and helped (a flag resolved with an
// intervention) in it, and those re-screened in it by the reliable change of
// their latest re-screen against the result before it.
func (t *Tx) Outcomes(ctx context.Context, f casework.DashboardFilter) ([]casework.UnitOutcome, error) {
	role, name, scope := t.scopeArgs()
	var insts []string
	var points []int32
	for inst, p := range f.Reliable {
		if p > 0 {
			insts = append(insts, inst)
		}
	}
	sort.Strings(insts)
	for _, inst := range insts {
		points = append(points, int32(f.Reliable[inst]))
	}
	rows, err := t.tx.Query(ctx, `WITH vis AS (
			SELECT s.id, s.unit FROM subjects s
			 WHERE subject_visible(s.unit, s.counselor, s.agency, $1, $2, $3)
			   AND coalesce(s.supervision_start::timestamptz, s.created_at) < $5
			   AND (s.supervision_end IS NULL OR s.supervision_end >= ($4::timestamptz)::date)),
		scr AS (SELECT DISTINCT a.subject_id FROM assessments a JOIN vis ON vis.id = a.subject_id
		         WHERE a.completed_at >= $4 AND a.completed_at < $5),
		flg AS (SELECT DISTINCT f.subject_id FROM flags f JOIN vis ON vis.id = f.subject_id
		         WHERE f.raised_at >= $4 AND f.raised_at < $5),
		itv AS (SELECT DISTINCT f.subject_id FROM flags f JOIN vis ON vis.id = f.subject_id
		         WHERE f.resolved_at >= $4 AND f.resolved_at < $5 AND cardinality(f.interventions) > 0),
		chg AS (SELECT DISTINCT ON (x.subject_id) x.subject_id, x.total - x.prev AS change, th.points
		          FROM (SELECT a.subject_id, a.instrument, a.total, a.completed_at, a.created_at,
		                       lag(a.total) OVER (PARTITION BY a.subject_id, a.instrument ORDER BY a.completed_at, a.created_at) AS prev
		                  FROM assessments a JOIN vis ON vis.id = a.subject_id
		                 WHERE a.total IS NOT NULL AND a.instrument = ANY($6) AND a.completed_at < $5) x
		          JOIN unnest($6::text[], $7::int[]) AS th(instrument, points) ON th.instrument = x.instrument
		         WHERE x.prev IS NOT NULL AND x.completed_at >= $4
		         ORDER BY x.subject_id, x.completed_at DESC, x.created_at DESC)
		SELECT u.code, u.name, count(*), count(scr.subject_id), count(flg.subject_id), count(itv.subject_id), count(chg.subject_id),
		       count(*) FILTER (WHERE chg.change <= -chg.points),
		       count(*) FILTER (WHERE abs(chg.change) < chg.points),
		       count(*) FILTER (WHERE chg.change >= chg.points)
		  FROM vis JOIN units u ON u.code = vis.unit
		  LEFT JOIN scr ON scr.subject_id = vis.id LEFT JOIN flg ON flg.subject_id = vis.id
		  LEFT JOIN itv ON itv.subject_id = vis.id LEFT JOIN chg ON chg.subject_id = vis.id
		 GROUP BY u.code, u.name ORDER BY u.code`, role, name, scope, f.From, f.To, insts, points)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []casework.UnitOutcome{}
	for rows.Next() {
		var u casework.UnitOutcome
		if err := rows.Scan(&u.Unit, &u.Name, &u.Supervised, &u.Screened, &u.Flagged, &u.Intervened, &u.Rescreened,
			&u.Improved, &u.NoChange, &u.Deteriorated); err != nil {
			return nil, err
		}
		if u.Supervised > 0 {
			r := float64(u.Screened) / float64(u.Supervised)
			u.ScreenedRate = &r
		}
		out = append(out, u)
	}
	return out, rows.Err()
}
