package postgres

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
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

// The schedule is kept as rows (migration 0010): screening_schedule holds,
// per subject under supervision and schedule instrument, when it was last
// taken (NULL: never), with the subject's scope, tier and supervision dates;
// follow_ups holds the follow-ups set when a flag was resolved, until the
// flag's instrument is taken again. A row is due one new-entrant period
// after the start when never taken, else one tier interval after last_at;
// within a tier that is monotonic in last_at, so each tier's rows are read
// in due order from an index and the streams merged: a due list costs its
// limit, not the caseload.
//
// The queries' parameters are scheduleArgs: $1-$3 the principal, $4 the
// instruments, $5-$9 the intervals in seconds (new entrant, strict,
// ordinary, lenient, unassigned), $10 now.

// scheduleTiers pairs each stored tier with its interval's parameter.
var scheduleTiers = []struct{ tier, secs string }{{"strict", "$6"}, {"ordinary", "$7"}, {"lenient", "$8"}, {"", "$9"}}

// scheduleArgs are the schedule queries' first ten parameters.
func scheduleArgs(p auth.Principal, s casework.Schedule, now time.Time) []any {
	role, name, scope := scopeOf(p)
	secs := func(d time.Duration) float64 { return d.Seconds() }
	return []any{role, name, scope, s.Instruments, secs(s.NewEntrant), secs(s.Interval(casework.Strict)), secs(s.Interval(casework.Ordinary)),
		secs(s.Interval(casework.Lenient)), secs(s.Unassigned), now}
}

// scopeHint is subject_visible for p's role written so that an index on
// the scope column can serve it: the same rows, for a table aliased a with
// unit, counselor and agency columns. Queries keep subject_visible beside
// it as the definition.
func scopeHint(p auth.Principal, a string) string {
	switch p.Role {
	case auth.RoleAdmin:
		return "true"
	case auth.RoleSupervisor:
		return a + ".unit = $3"
	case auth.RoleCounselor:
		return a + ".counselor = $2"
	case auth.RoleCaseSystem:
		return a + ".agency = $3"
	}
	return "false"
}

// scheduleVisible restricts screening_schedule c to visible subjects under
// supervision and the schedule's instruments.
func scheduleVisible(p auth.Principal) string {
	return `subject_visible(c.unit, c.counselor, c.agency, $1, $2, $3) AND ` + scopeHint(p, "c") +
		` AND c.instrument = ANY($4) AND (c.ends IS NULL OR c.ends >= ($10::timestamptz)::date)`
}

// followUpVisible restricts follow_ups u likewise (a follow-up carries its
// person's scope and end of supervision, migration 0018).
func followUpVisible(p auth.Principal) string {
	return `subject_visible(u.unit, u.counselor, u.agency, $1, $2, $3) AND ` + scopeHint(p, "u") +
		` AND (u.ends IS NULL OR u.ends >= ($10::timestamptz)::date)`
}

const dueCols = `external_id, unit, counselor, tier, instrument, reason, flag_id, last, due`

// dueStreamsSQL is the due rows of every visible subject as index-ordered
// streams, each limited to $limit rows (only overdue ones when $overdue):
// the first $limit rows of their merge in (due, external_id, instrument)
// order are the first $limit due rows.
func dueStreamsSQL(p auth.Principal, overdue, limit string) string {
	vis := scheduleVisible(p)
	var parts []string
	for _, t := range scheduleTiers {
		parts = append(parts, fmt.Sprintf(`(SELECT c.external_id, c.unit, c.counselor, nullif(c.tier, '') AS tier, c.instrument,
			'reassessment' AS reason, NULL::uuid AS flag_id, c.last_at AS last, c.last_at + make_interval(secs => %[1]s::float8) AS due
			FROM screening_schedule c
			WHERE c.tier = '%[2]s' AND c.last_at IS NOT NULL AND %[3]s
			  AND (NOT %[4]s OR c.last_at < $10::timestamptz - make_interval(secs => %[1]s::float8))
			ORDER BY c.last_at, c.external_id, c.instrument LIMIT %[5]s)`, t.secs, t.tier, vis, overdue, limit))
	}
	parts = append(parts, fmt.Sprintf(`(SELECT c.external_id, c.unit, c.counselor, nullif(c.tier, ''), c.instrument,
			'entry', NULL::uuid, NULL::timestamptz, c.start + make_interval(secs => $5::float8)
			FROM screening_schedule c
			WHERE c.last_at IS NULL AND %[1]s AND (NOT %[2]s OR c.start < $10::timestamptz - make_interval(secs => $5::float8))
			ORDER BY c.start, c.external_id, c.instrument LIMIT %[3]s)`, vis, overdue, limit),
		fmt.Sprintf(`(SELECT u.external_id, u.unit, u.counselor, u.tier, u.instrument, 'follow_up', u.flag_id, u.last_at, u.due
			FROM follow_ups u
			WHERE %[1]s AND (NOT %[2]s OR u.due < $10)
			ORDER BY u.due, u.external_id, u.instrument LIMIT %[3]s)`, followUpVisible(p), overdue, limit))
	return strings.Join(parts, "\n\t\tUNION ALL ")
}

// subjectDueSQL is every due row of the visible subjects with the internal
// ids in $11, computed from their schedule rows (a few per subject).
func subjectDueSQL(p auth.Principal) string {
	return `SELECT c.external_id, c.unit, c.counselor, nullif(c.tier, '') AS tier, c.instrument,
			CASE WHEN c.last_at IS NULL THEN 'entry' ELSE 'reassessment' END AS reason, NULL::uuid AS flag_id, c.last_at AS last,
			` + nextDueExpr + ` AS due
		  FROM screening_schedule c WHERE c.subject_id = ANY($11::uuid[]) AND ` + scheduleVisible(p) + `
		UNION ALL
		SELECT u.external_id, u.unit, u.counselor, u.tier, u.instrument, 'follow_up', u.flag_id, u.last_at, u.due
		  FROM follow_ups u WHERE u.subject_id = ANY($11::uuid[]) AND ` + followUpVisible(p)
}

// nextDueExpr is when schedule row c is due.
const nextDueExpr = `CASE WHEN c.last_at IS NULL THEN c.start + make_interval(secs => $5::float8)
	ELSE c.last_at + make_interval(secs => CASE c.tier WHEN 'strict' THEN $6::float8 WHEN 'ordinary' THEN $7::float8
	                                                   WHEN 'lenient' THEN $8::float8 ELSE $9::float8 END) END`

// Due lists the due screenings of the visible subjects under supervision
// (those with the given case-system ids, or all), soonest first, limited
// and filtered in the query.
func (t *Tx) Due(ctx context.Context, f casework.DueFilter) ([]casework.Due, error) {
	args := scheduleArgs(t.p, f.Schedule, f.Now)
	var sql string
	if len(f.Subjects) > 0 {
		var ids []uuid.UUID
		if err := t.tx.QueryRow(ctx, `SELECT coalesce(array_agg(id), '{}') FROM subjects WHERE external_id = ANY($1)`, f.Subjects).Scan(&ids); err != nil {
			return nil, err
		}
		args = append(args, ids, f.OverdueOnly, f.Limit)
		sql = `SELECT ` + dueCols + ` FROM (` + subjectDueSQL(t.p) + `) d WHERE NOT $12 OR due < $10 ORDER BY due, external_id, instrument LIMIT $13`
	} else {
		args = append(args, f.OverdueOnly, f.Limit)
		sql = `SELECT ` + dueCols + ` FROM (` + dueStreamsSQL(t.p, "$11", "$12") + `) d ORDER BY due, external_id, instrument LIMIT $12`
	}
	// The plan is the same whatever the parameters (the streams each walk
	// their index in due order to the limit), but planned afresh for each call
	// PostgreSQL probed the indexes' ends to estimate the time bounds: 1.2 ms
	// a call at 20,000 people (more than the query itself), growing with the
	// schedule. The plan prepared once is used instead, in this statement
	// only.
	var out []casework.Due
	err := withSetting(ctx, t.tx, "plan_cache_mode = force_generic_plan", "plan_cache_mode = auto", sql, args, func(rows pgx.Rows) (err error) {
		out, err = scanDue(rows, f.Now)
		return err
	})
	return out, err
}

// scanDue reads due rows, marking those overdue at now.
func scanDue(rows pgx.Rows, now time.Time) ([]casework.Due, error) {
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
		d.Overdue = now.After(d.Due)
		out = append(out, d)
	}
	return out, rows.Err()
}

// overdueCountSQL counts the overdue due rows and the subjects they are
// of (by their case-system ids, which the schedule indexes hold), each
// stream an index-only range scan over the overdue rows only.
func overdueCountSQL(p auth.Principal) string {
	vis := scheduleVisible(p)
	var parts []string
	for _, t := range scheduleTiers {
		parts = append(parts, fmt.Sprintf(`SELECT c.external_id FROM screening_schedule c
			WHERE c.tier = '%s' AND c.last_at IS NOT NULL AND c.last_at < $10::timestamptz - make_interval(secs => %s::float8) AND %s`, t.tier, t.secs, vis))
	}
	parts = append(parts, `SELECT c.external_id FROM screening_schedule c
			WHERE c.last_at IS NULL AND c.start < $10::timestamptz - make_interval(secs => $5::float8) AND `+vis,
		`SELECT u.external_id FROM follow_ups u WHERE u.due < $10 AND `+followUpVisible(p))
	return `SELECT count(*), count(DISTINCT external_id) FROM (` + strings.Join(parts, "\n\t\tUNION ALL ") + `) o`
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
		WHERE subject_visible(s.unit, s.counselor, s.agency, $1, $2, $3) AND `+scopeHint(t.p, "s")+` AND (s.supervision_end IS NULL OR s.supervision_end >= ($4::timestamptz)::date) GROUP BY 1`,
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
	b.Queue(overdueCountSQL(t.p), scheduleArgs(t.p, f.Schedule, f.Now)...).
		QueryRow(func(r pgx.Row) error { return r.Scan(&d.OverdueScreenings, &d.OverdueSubjects) })
	b.Queue(`SELECT count(*), count(*) FILTER (WHERE EXISTS (
			SELECT 1 FROM assessments a WHERE a.subject_id = s.id AND a.instrument = ANY($5)
			   AND a.completed_at <= coalesce(s.supervision_start::timestamptz, s.created_at) + make_interval(secs => $6::float8)))
		FROM subjects s WHERE subject_visible(s.unit, s.counselor, s.agency, $1, $2, $3) AND `+scopeHint(t.p, "s")+`
		  AND coalesce(s.supervision_start::timestamptz, s.created_at) >= $7::timestamptz - make_interval(days => $4::int)
		  -- the same rows, in a form indexes on the two columns serve
		  AND (s.supervision_start >= ($7::timestamptz - make_interval(days => $4::int + 1))::date
		       OR s.supervision_start IS NULL AND s.created_at >= $7::timestamptz - make_interval(days => $4::int))`,
		role, name, scope, f.WindowDays, f.Schedule.Instruments, f.Schedule.NewEntrant.Seconds(), f.Now).
		QueryRow(func(r pgx.Row) error { return r.Scan(&d.NewEntrants, &d.NewEntrantsScreened) })
	b.Queue(`SELECT f.level, count(*), count(*) FILTER (WHERE f.status = 'open' AND f.deadline < $4)
		FROM flags f JOIN subjects s ON s.id = f.subject_id
		WHERE f.status <> 'resolved' AND subject_visible(s.unit, s.counselor, s.agency, $1, $2, $3) AND `+scopeHint(t.p, "s")+` GROUP BY 1`, role, name, scope, f.Now).
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
		WHERE o.status = 'pending' AND subject_visible(s.unit, s.counselor, s.agency, $1, $2, $3) AND `+scopeHint(t.p, "s"), role, name, scope).
		QueryRow(func(r pgx.Row) error { return r.Scan(&d.PendingOverrides) })
	// A person's newest recommendation that disagrees with their level (or
	// finds them without one) asks for a review.
	b.Queue(`SELECT count(*) FROM subjects s JOIN LATERAL (SELECT r.tier FROM recommendations r WHERE r.subject_id = s.id
			ORDER BY r.created_at DESC LIMIT 1) r ON true
		WHERE subject_visible(s.unit, s.counselor, s.agency, $1, $2, $3) AND `+scopeHint(t.p, "s")+` AND s.tier IS DISTINCT FROM r.tier
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
			 WHERE subject_visible(s.unit, s.counselor, s.agency, $1, $2, $3) AND `+scopeHint(t.p, "s")+`
			   AND coalesce(s.supervision_start::timestamptz, s.created_at) < $5
			   AND (s.supervision_end IS NULL OR s.supervision_end >= ($4::timestamptz)::date)),
		scr AS (SELECT DISTINCT a.subject_id FROM assessments a JOIN vis ON vis.id = a.subject_id
		         WHERE a.completed_at >= $4 AND a.completed_at < $5),
		flg AS (SELECT DISTINCT f.subject_id FROM flags f JOIN vis ON vis.id = f.subject_id
		         WHERE f.raised_at >= $4 AND f.raised_at < $5),
		itv AS (SELECT DISTINCT f.subject_id FROM flags f JOIN vis ON vis.id = f.subject_id
		         WHERE f.resolved_at >= $4 AND f.resolved_at < $5 AND cardinality(f.interventions) > 0),
		-- Each person re-screened in the period: their latest result in it
		-- against the one before (an index probe), not a window over all
		-- history.
		chg AS (SELECT DISTINCT ON (a.subject_id) a.subject_id, a.total - p.total AS change, th.points
		          FROM assessments a JOIN vis ON vis.id = a.subject_id
		          JOIN unnest($6::text[], $7::int[]) AS th(instrument, points) ON th.instrument = a.instrument
		          JOIN LATERAL (SELECT b.total FROM assessments b
		                         WHERE b.subject_id = a.subject_id AND b.instrument = a.instrument AND b.total IS NOT NULL
		                           AND (b.completed_at, b.created_at) < (a.completed_at, a.created_at)
		                         ORDER BY b.completed_at DESC, b.created_at DESC LIMIT 1) p ON true
		         WHERE a.total IS NOT NULL AND a.completed_at >= $4 AND a.completed_at < $5
		         ORDER BY a.subject_id, a.completed_at DESC, a.created_at DESC)
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

// SyncSchedule makes the schedule's instruments those given: a new one
// gets a row for every subject (in the same transaction), a dropped one
// loses its rows. The server calls it at startup with schedule.instruments;
// it is a no-op when they have not changed.
func (c *Cases) SyncSchedule(ctx context.Context, instruments []string) error {
	return c.db.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM schedule_instruments WHERE instrument <> ALL($1)`, instruments); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO schedule_instruments SELECT DISTINCT unnest($1::text[]) ON CONFLICT DO NOTHING`, instruments)
		return err
	})
}

// DrainSchedule applies the schedule times that submissions left pending
// because another transaction in flight held the person's schedule row
// (migration 0012), and returns how many it applied.
func (c *Cases) DrainSchedule(ctx context.Context) (int64, error) {
	var n int64
	err := c.db.inTx(ctx, func(tx pgx.Tx) error {
		// Taken out first, so that an empty queue (nearly always) costs one
		// index-less scan of an empty table and the update reads the
		// schedule by its key, not a join over the whole schedule.
		var ids []uuid.UUID
		var insts []string
		var ats []time.Time
		if err := tx.QueryRow(ctx, `WITH d AS (DELETE FROM schedule_pending RETURNING subject_id, instrument, at),
				m AS (SELECT subject_id, instrument, max(at) AS at FROM d GROUP BY 1, 2)
			SELECT coalesce(array_agg(subject_id), '{}'), coalesce(array_agg(instrument), '{}'), coalesce(array_agg(at), '{}') FROM m`).
			Scan(&ids, &insts, &ats); err != nil || len(ids) == 0 {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE screening_schedule c SET last_at = m.at
			  FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) AS m (subject_id, instrument, at)
			 WHERE c.subject_id = m.subject_id AND c.instrument = m.instrument AND (c.last_at IS NULL OR c.last_at < m.at)`, ids, insts, ats)
		n = tag.RowsAffected()
		return err
	})
	return n, err
}
