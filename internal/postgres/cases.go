package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sunpath/sunpath/internal/audit"
	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/sealed"
)

// Cases stores the case workflow. Every method runs inside Write, so that
// the change, its audit event and its idempotency record commit together.
type Cases struct {
	db        *DB
	keys      *sealed.Keyring
	flags     casework.FlagPolicy
	endpoints []string // webhook endpoint names notified of flags
	now       func() time.Time
	groups    grouper
	onGroup   func(units int, committed bool)
	replica   *DB           // serves Read when set
	queued    chan struct{} // OutboxQueued
	audited   chan struct{} // AuditQueued
}

// CasesConfig configures the case store.
type CasesConfig struct {
	Keys      *sealed.Keyring
	Flags     casework.FlagPolicy
	Endpoints []string
	Now       func() time.Time // for tests; time.Now when nil
	// Groups bounds the group transactions of WriteGrouped in flight at
	// once (default 2: the next group runs while one waits for its commit).
	Groups int
	// OnGroup, when set, hears of every group transaction: how many units
	// it held and whether it committed (if not, they ran alone).
	OnGroup func(units int, committed bool)
	// Replica, when set, is a streaming replica of db that serves Read
	// (database.read_url).
	Replica *DB
}

// NewCases returns the case store.
func NewCases(db *DB, cfg CasesConfig) *Cases {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Groups <= 0 {
		cfg.Groups = defaultGroups
	}
	return &Cases{db: db, keys: cfg.Keys, flags: cfg.Flags, endpoints: cfg.Endpoints, now: cfg.Now,
		groups: grouper{limit: cfg.Groups}, onGroup: cfg.OnGroup, replica: cfg.Replica,
		queued: make(chan struct{}, 1), audited: make(chan struct{}, 1)}
}

// OutboxQueued receives after a transaction of this store committed
// notifications (one receive stands for any number of commits since the
// last), so that they are delivered as they are queued rather than when
// the delivery job next polls.
func (c *Cases) OutboxQueued() <-chan struct{} { return c.queued }

// AuditQueued receives after a transaction of this store committed audit
// events (every write does), for the sealer, as OutboxQueued.
func (c *Cases) AuditQueued() <-chan struct{} { return c.audited }

// committed tells OutboxQueued's and AuditQueued's receivers that the batch
// b just committed.
func (c *Cases) committed(b *pgx.Batch) {
	audited, queued := false, false
	for _, q := range b.QueuedQueries {
		audited = audited || q.SQL == insertAuditSQL
		queued = queued || q.SQL == insertOutboxSQL
	}
	if audited {
		wake(c.audited)
	}
	if queued {
		wake(c.queued)
	}
}

// wake sends on ch unless a send is waiting there already.
func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// The unit-of-work types are the application layer's (casework declares
// what it needs of the store).
type (
	Op    = casework.Op
	Idem  = casework.Idem
	Reply = casework.Reply
)

// ErrIdempotencyMismatch means a key was reused with a different request.
var ErrIdempotencyMismatch = casework.ErrIdempotencyMismatch

// Tx is the case store within one transaction.
type Tx struct {
	c  *Cases
	tx dbtx
	p  auth.Principal
	ev *audit.Event
	// pending holds writes that nothing later in the unit of work reads;
	// Write sends them with the audit event and the idempotency record in
	// one pipelined round trip just before COMMIT.
	pending pgx.Batch
	// pre is the subject read with BEGIN, when Op.Subject named one.
	pre *prefetched
	// shared, in a group transaction (WriteGrouped), takes the writes
	// instead of pending.
	shared *pgx.Batch
	// wrote, in a group transaction, holds the subjects whose assessments
	// or flags the units so far have written: their prefetched history is
	// out of date.
	wrote map[uuid.UUID]bool
}

type prefetched struct {
	id      string
	ref     bool // only identity and scope were read (subjectRefSQL)
	row     subjectRow
	visible bool
	err     error
	hist    []*history // Op.History, read with the subject
}

// history is one prefetched Tx.RecentSeverities read.
type history struct {
	casework.HistoryRead
	sev        []string
	unresolved bool
	err        error
}

// want adds the history reads hs to p (once each).
func (p *prefetched) want(hs []casework.HistoryRead) {
	for _, h := range hs {
		if p.history(h) == nil {
			p.hist = append(p.hist, &history{HistoryRead: h})
		}
	}
}

// history returns the prefetched read h, or nil.
func (p *prefetched) history(h casework.HistoryRead) *history {
	for _, x := range p.hist {
		if x.HistoryRead == h {
			return x
		}
	}
	return nil
}

// queue adds the read of subject p.id, as principal pr sees it, and of its
// history reads to b.
func (p *prefetched) queue(b *pgx.Batch, pr auth.Principal) {
	role, name, scope := scopeOf(pr)
	sql := subjectByExternalSQL
	if p.ref {
		sql = subjectRefSQL
	}
	b.Queue(sql, p.id, role, name, scope)
	for _, h := range p.hist {
		b.Queue(historyByExternalSQL, p.id, h.Instrument, h.N, h.Code)
	}
}

// scan reads the results of the queries queue added.
func (p *prefetched) scan(br pgx.BatchResults) {
	if p.ref {
		p.err = br.QueryRow().Scan(&p.row.id, &p.row.s.ID, &p.row.s.Unit, &p.row.s.Counselor, &p.visible)
	} else {
		p.err = br.QueryRow().Scan(append(p.row.targets(), &p.visible)...)
	}
	for _, h := range p.hist {
		h.err = br.QueryRow().Scan(&h.sev, &h.unresolved)
	}
}

// dbtx is a connection inside a transaction: a pgx.Tx, or a *pgx.Conn on
// which Write has sent BEGIN.
type dbtx interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// later queues a write for the end of the unit of work.
func (t *Tx) later(sql string, args ...any) {
	if t.shared != nil {
		t.shared.Queue(sql, args...)
		return
	}
	t.pending.Queue(sql, args...)
}

// Resource records which resource the operation touched, for its audit event.
func (t *Tx) Resource(typ, id, subject string) {
	t.ev.ResourceType, t.ev.ResourceID, t.ev.Subject = typ, id, subject
}

// Detail records codes (never free text) with the audit event.
func (t *Tx) Detail(v map[string]any) {
	b, _ := json.Marshal(v)
	t.ev.Detail = string(b)
}

// Write runs fn in one transaction with its audit event and, with op.Idem
// set, the idempotency record holding the reply. The record is written once,
// with the reply, in the same pipelined batch as COMMIT: a duplicate that
// races the first (or arrives after it) either meets the record's primary
// key and rolls back whole, or fails on the first's effects; either way it is
// answered by replaying the stored reply (replayed = true). The audit event
// is written in the same transaction: if it cannot be written, nothing is.
func (c *Cases) Write(ctx context.Context, op Op, fn func(casework.Tx) (Reply, error)) (rep Reply, replayed bool, err error) {
	for attempt := 0; ; attempt++ {
		rep, err = c.write(ctx, op, fn)
		if err == nil || op.Idem == nil {
			return rep, false, err
		}
		// A replay never reaches past the caller's current scope: a unit
		// of work refused for scope is answered with its refusal.
		if errors.Is(err, casework.ErrNotFound) || errors.Is(err, casework.ErrForbidden) {
			return rep, false, err
		}
		stored, found, expired, lerr := c.storedReply(ctx, op.Idem)
		switch {
		case lerr != nil:
			return rep, false, err
		case found && !expired && !bytes.Equal(stored.hash, op.Idem.Hash):
			return Reply{}, false, ErrIdempotencyMismatch
		case found && !expired:
			return stored.Reply, true, nil
		case found && expired && attempt == 0:
			if derr := c.db.withConn(ctx, func(pc *pgxpool.Conn) error {
				_, err := pc.Exec(ctx, `DELETE FROM idempotency_keys WHERE client = $1 AND key = $2 AND expires_at < now()`, op.Idem.Client, op.Idem.Key)
				return err
			}); derr != nil {
				return rep, false, err
			}
			continue // the key had expired: this is a new request
		}
		return rep, false, err
	}
}

type storedIdem struct {
	Reply
	hash []byte
}

// storedReply reads a committed idempotency record.
func (c *Cases) storedReply(ctx context.Context, k *Idem) (r storedIdem, found, expired bool, err error) {
	err = c.db.withConn(ctx, func(pc *pgxpool.Conn) error {
		return pc.QueryRow(ctx, `SELECT request_hash, status, body, expires_at < now() FROM idempotency_keys WHERE client = $1 AND key = $2`,
			k.Client, k.Key).Scan(&r.hash, &r.Status, &r.Body, &expired)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return r, false, false, nil
	}
	if err == nil && len(r.Body) > 0 {
		r.Body, err = c.keys.Open(r.Body, idemAD(k))
	}
	return r, err == nil, expired, err
}

// sealReply seals a stored reply to its client and key: replies can hold
// names and notes, which are never stored in the clear.
func (c *Cases) sealReply(k *Idem, body []byte) []byte {
	if len(body) == 0 {
		return body
	}
	return c.keys.Seal(body, idemAD(k))
}

func idemAD(k *Idem) []byte { return sealed.AD("idempotency_keys", "body", k.Client+"\x00"+k.Key) }

// write is one attempt of Write. The transaction is driven by hand so that
// BEGIN travels with the read of the route's subject, and COMMIT with the
// queued writes: two round trips for a typical submission.
func (c *Cases) write(ctx context.Context, op Op, fn func(casework.Tx) (Reply, error)) (rep Reply, err error) {
	conn, release, err := c.handConn(ctx)
	if err != nil {
		return rep, err
	}
	done := false
	defer release(&done)
	pre, err := begin(ctx, conn, "BEGIN", op)
	if err != nil {
		return rep, err
	}
	ev := op.Audit
	ev.Outcome = audit.Success
	t := &Tx{c: c, tx: conn, p: op.Principal, ev: &ev, pre: pre}
	if rep, err = fn(t); err != nil {
		return rep, translate(err)
	}
	t.later(insertAuditSQL, auditArgs(ev)...)
	if op.Idem != nil {
		t.later(insertIdemSQL, op.Idem.Client, op.Idem.Key, op.Idem.Hash, rep.Status, c.sealReply(op.Idem, rep.Body), op.Idem.TTL.Seconds())
	}
	t.later("COMMIT")

	if err := conn.SendBatch(ctx, &t.pending).Close(); err != nil {
		return rep, translate(fmt.Errorf("write %s: %w", ev.Action, err))
	}
	done = true
	c.committed(&t.pending)
	return rep, nil
}

// begin sends the statement that opens a transaction by hand, together with
// the read of op's subject when it names one: one round trip.
func begin(ctx context.Context, conn *pgx.Conn, stmt string, op Op) (*prefetched, error) {
	b := &pgx.Batch{}
	b.Queue(stmt)
	var pre *prefetched
	if op.Subject != "" {
		pre = &prefetched{id: op.Subject, ref: op.SubjectRef}
		pre.want(op.History)
		pre.queue(b, op.Principal)
	}
	br := conn.SendBatch(ctx, b)
	_, err := br.Exec()
	if err == nil && pre != nil {
		pre.scan(br)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return pre, translate(err)
}

var insertIdemSQL = coalescable(`INSERT INTO idempotency_keys (client, key, request_hash, status, body, expires_at)
	VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))`)

// handConn acquires a connection for a transaction driven by hand (BEGIN
// and COMMIT sent in batches of their own). Defer release with whether the
// transaction committed: if not, it is rolled back before the connection
// goes back to the pool.
func (c *Cases) handConn(ctx context.Context) (conn *pgx.Conn, release func(committed *bool), err error) {
	pc, err := c.db.acquire(ctx)
	if err != nil {
		return nil, nil, err
	}
	conn = pc.Conn()
	return conn, func(committed *bool) {
		if !*committed {
			rollback(ctx, conn)
		}
		pc.Release()
	}, nil
}

// rollback ends a transaction driven by hand that did not commit. A
// connection that cannot roll back is closed, and the pool drops it.
func rollback(ctx context.Context, conn *pgx.Conn) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := conn.Exec(rctx, "ROLLBACK"); err != nil {
		conn.Close(rctx)
	}
}

// PurgeIdempotency deletes expired idempotency records.
func (c *Cases) PurgeIdempotency(ctx context.Context) (int64, error) {
	var n int64
	err := c.db.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM idempotency_keys WHERE expires_at < now()`)
		n = tag.RowsAffected()
		return err
	})
	return n, err
}

func (t *Tx) seal(plain []byte, table, column, row string) []byte {
	return t.c.keys.Seal(plain, sealed.AD(table, column, row))
}

func (t *Tx) open(v []byte, table, column, row string) ([]byte, error) {
	return t.c.keys.Open(v, sealed.AD(table, column, row))
}

// scopeArgs are the principal's parameters to subject_visible.
func (t *Tx) scopeArgs() (string, string, string) { return scopeOf(t.p) }

// scopeOf is a principal's role, name and scope, as subject_visible takes them.
func scopeOf(p auth.Principal) (string, string, string) { return string(p.Role), p.Name, p.Unit }

const subjectCols = `s.id, s.external_id, s.display_name, s.sex, s.birth_year, s.supervision_type, s.unit, s.counselor,
	to_char(s.supervision_start, 'YYYY-MM-DD'), to_char(s.supervision_end, 'YYYY-MM-DD'), s.profile, s.tier, s.tier_source,
	s.created_at, s.updated_at,
	(SELECT count(*) FROM flags f WHERE f.subject_id = s.id AND f.status <> 'resolved'),
	coalesce((SELECT ('{critical,urgent,review}'::text[])[min(CASE f.level WHEN 'critical' THEN 1 WHEN 'urgent' THEN 2 ELSE 3 END)]
		FROM flags f WHERE f.subject_id = s.id AND f.status <> 'resolved'), '')`

// subjectRow is a subjects row as scanned, before decryption.
type subjectRow struct {
	id                        uuid.UUID
	s                         casework.Subject
	name, profile             []byte
	start, end, tier, tierSrc *string
}

func (r *subjectRow) targets() []any {
	return []any{&r.id, &r.s.ID, &r.name, &r.s.Sex, &r.s.BirthYear, &r.s.SupervisionType, &r.s.Unit, &r.s.Counselor,
		&r.start, &r.end, &r.profile, &r.tier, &r.tierSrc, &r.s.CreatedAt, &r.s.UpdatedAt, &r.s.OpenFlags, &r.s.TopFlagLevel}
}

// decode opens the sealed columns.
func (t *Tx) decode(r subjectRow) (casework.Subject, error) {
	s := r.s.WithInternalID(r.id.String())
	name, err := t.open(r.name, "subjects", "display_name", r.id.String())
	if err != nil {
		return s, fmt.Errorf("subject display name: %w", err)
	}
	s.DisplayName = string(name)
	profile, err := t.open(r.profile, "subjects", "profile", r.id.String())
	if err != nil {
		return s, fmt.Errorf("subject profile: %w", err)
	}
	if err := json.Unmarshal(profile, &s.Profile); err != nil {
		return s, err
	}
	if r.start != nil {
		s.SupervisionStart = *r.start
	}
	if r.end != nil {
		s.SupervisionEnd = *r.end
	}
	if r.tier != nil {
		tt := casework.Tier(*r.tier)
		s.Tier = &tt
	}
	if r.tierSrc != nil {
		s.TierSource = *r.tierSrc
	}
	s.CreatedAt, s.UpdatedAt = s.CreatedAt.UTC(), s.UpdatedAt.UTC()
	return s, nil
}

// Subject returns the subject with the case system's id when the principal
// may see it: ErrNotFound when there is none, ErrOutOfScope when it exists
// outside the caller's scope (both answer 404).
func (t *Tx) Subject(ctx context.Context, externalID string) (casework.Subject, error) {
	p, err := t.readSubject(ctx, externalID, false)
	if err != nil {
		return casework.Subject{}, err
	}
	return t.decode(p.row)
}

// SubjectRef is Subject for units of work that only need to know who the
// subject is and that the principal may see them: the subject carries its
// case-system id, internal id, unit and counselor, and nothing else (no
// name, no profile: nothing sealed is read or opened).
func (t *Tx) SubjectRef(ctx context.Context, externalID string) (casework.Subject, error) {
	p, err := t.readSubject(ctx, externalID, true)
	if err != nil {
		return casework.Subject{}, err
	}
	return casework.Subject{ID: p.row.s.ID, Unit: p.row.s.Unit, Counselor: p.row.s.Counselor}.WithInternalID(p.row.id.String()), nil
}

// readSubject reads a subject (only identity and scope when ref) unless the
// unit of work's prefetch already holds it, and checks the principal may
// see it.
func (t *Tx) readSubject(ctx context.Context, externalID string, ref bool) (*prefetched, error) {
	p := t.pre
	if p == nil || p.id != externalID || p.ref && !ref {
		p = &prefetched{id: externalID, ref: ref}
		b := &pgx.Batch{}
		p.queue(b, t.p)
		br := t.tx.SendBatch(ctx, b)
		p.scan(br)
		if err := br.Close(); p.err == nil {
			p.err = err
		}
	}
	if errors.Is(p.err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("subject: %w", casework.ErrNotFound)
	}
	if p.err != nil {
		return nil, p.err
	}
	t.Resource("subject", externalID, externalID)
	if !p.visible {
		return nil, casework.ErrOutOfScope
	}
	return p, nil
}

// subjectRefSQL reads a subject's identity and scope, with whether the
// principal ($2 role, $3 name, $4 scope) may see it.
const subjectRefSQL = `SELECT s.id, s.external_id, s.unit, s.counselor, subject_visible(s.unit, s.counselor, s.agency, $2, $3, $4)
	FROM subjects s WHERE s.external_id = $1`

// subjectByExternalSQL reads a subject by the case system's id, with
// whether the principal ($2 role, $3 name, $4 scope) may see it.
const subjectByExternalSQL = `SELECT ` + subjectCols + `, subject_visible(s.unit, s.counselor, s.agency, $2, $3, $4)
	FROM subjects s WHERE s.external_id = $1`

func (t *Tx) subjectByID(ctx context.Context, id uuid.UUID) (casework.Subject, error) {
	var r subjectRow
	if err := t.tx.QueryRow(ctx, `SELECT `+subjectCols+` FROM subjects s WHERE s.id = $1`, id).Scan(r.targets()...); err != nil {
		return casework.Subject{}, err
	}
	return t.decode(r)
}

// UnitWritable reports whether the principal may place people in unit
// (unit_writable: the one SQL definition beside subject_visible).
func (t *Tx) UnitWritable(ctx context.Context, unit string) (bool, error) {
	role, _, scope := t.scopeArgs()
	var ok bool
	err := t.tx.QueryRow(ctx, `SELECT unit_writable($1, $2, $3)`, unit, role, scope).Scan(&ok)
	return ok, err
}

// Counselor returns the unit of the active counselor with username; ok is
// false when there is no such active counselor.
func (t *Tx) Counselor(ctx context.Context, username string) (unit string, ok bool, err error) {
	err = t.tx.QueryRow(ctx, `SELECT unit FROM users WHERE username = $1 AND role = 'counselor' AND NOT disabled`, username).Scan(&unit)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	return unit, err == nil, err
}

// PutSubject creates or updates a subject. A new subject's unit must be
// one the caller may place people in; a counselor must be a counselor user.
func (t *Tx) PutSubject(ctx context.Context, externalID string, in casework.SubjectInput) (casework.Subject, bool, error) {
	t.Resource("subject", externalID, externalID)
	role, name, scope := t.scopeArgs()
	var id uuid.UUID
	var visible bool
	var updated time.Time
	err := t.tx.QueryRow(ctx, `SELECT id, subject_visible(unit, counselor, agency, $2, $3, $4), updated_at FROM subjects WHERE external_id = $1 FOR UPDATE`,
		externalID, role, name, scope).Scan(&id, &visible, &updated)
	created := errors.Is(err, pgx.ErrNoRows)
	if err != nil && !created {
		return casework.Subject{}, false, err
	}
	if !created && !visible {
		return casework.Subject{}, false, casework.ErrOutOfScope
	}
	if in.IfMatch != "" && (created || in.IfMatch != casework.ETagOf(updated)) {
		return casework.Subject{}, false, casework.ErrPrecondition
	}
	if created {
		id = uuid.New()
	}
	profile, err := json.Marshal(in.Profile)
	if err != nil {
		return casework.Subject{}, false, err
	}
	if in.Profile == nil {
		profile = []byte("{}")
	}
	args := []any{id, externalID, t.seal([]byte(in.DisplayName), "subjects", "display_name", id.String()), in.Sex, in.BirthYear,
		in.SupervisionType, in.Unit, in.Counselor, nullDate(in.SupervisionStart), nullDate(in.SupervisionEnd),
		t.seal(profile, "subjects", "profile", id.String())}
	if created {
		_, err = t.tx.Exec(ctx, `INSERT INTO subjects (id, external_id, display_name, sex, birth_year, supervision_type, unit, counselor,
			supervision_start, supervision_end, profile) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, args...)
	} else {
		_, err = t.tx.Exec(ctx, `UPDATE subjects SET display_name = $3, sex = $4, birth_year = $5, supervision_type = $6, unit = $7,
			counselor = $8, supervision_start = $9, supervision_end = $10, profile = CASE WHEN $12 THEN profile ELSE $11 END, updated_at = clock_timestamp()
			WHERE id = $1 AND external_id = $2`, append(args, in.KeepProfile)...)
	}
	if err != nil {
		return casework.Subject{}, false, err
	}
	// Read back as the caller sees it; a caller who moved the subject out of
	// their own scope gets the record they wrote, not a 404.
	s, err := t.subjectByID(ctx, id)
	return s, created, err
}

// equalUnlessEmpty is the filter col = param when v (the parameter's
// value) is set, and a test of the parameter alone when it is not: a
// filter the planner can serve from an index only when it is written only
// when it applies.
func equalUnlessEmpty(v, col, param string) string {
	if v == "" {
		return param + "::text = ''"
	}
	return col + " = " + param
}

func nullDate(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// SubjectFilter narrows a subject listing.
type SubjectFilter = casework.SubjectFilter

// Subjects lists the subjects the principal may see, by external id, each
// with its next due screening; the overdue filter applies in the query.
func (t *Tx) Subjects(ctx context.Context, f casework.SubjectFilter) ([]casework.Subject, error) {
	args := scheduleArgs(t.p, f.Schedule, f.Now)
	args = append(args, f.Unit, f.Counselor, f.Tier, f.After, f.OverdueOnly, f.Limit)
	// Subjects are read in id order within the scope's index, each with
	// the minimum of its few schedule rows: the overdue filter costs the
	// rows read until the page is full, not the caseload. With sorting
	// allowed, the planner read a small caseload (2,000 people) whole and
	// sorted it: 31 ms a page where 20,000 people took 1.8 ms.
	var out []casework.Subject
	err := withSetting(ctx, t.tx, "enable_sort = off", "enable_sort = on", subjectsSQL(t.p, f), args, func(rows pgx.Rows) (err error) {
		out, err = t.scanSubjects(rows, f.Now)
		return err
	})
	return out, err
}

// withSetting runs sql with a planner setting (SET LOCAL set, then reset)
// in one round trip, its rows read by scan.
func withSetting(ctx context.Context, tx dbtx, set, reset, sql string, args []any, scan func(pgx.Rows) error) error {
	b := &pgx.Batch{}
	b.Queue(`SET LOCAL ` + set)
	b.Queue(sql, args...)
	b.Queue(`SET LOCAL ` + reset)
	br := tx.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return err
	}
	rows, err := br.Query()
	if err != nil {
		return err
	}
	if err := scan(rows); err != nil {
		return err
	}
	if _, err := br.Exec(); err != nil {
		return err
	}
	return br.Close()
}

// subjectsSQL is Subjects' query for p and f; its parameters are
// scheduleArgs then f's unit, counselor, tier, after, overdue and limit.
func subjectsSQL(p auth.Principal, f casework.SubjectFilter) string {
	return `SELECT ` + subjectCols + `, n.due FROM subjects s
		LEFT JOIN LATERAL (SELECT min(d.due) AS due FROM (
			SELECT ` + nextDueExpr + ` AS due FROM screening_schedule c WHERE c.subject_id = s.id AND c.instrument = ANY($4)
			   AND (c.ends IS NULL OR c.ends >= ($10::timestamptz)::date)
			UNION ALL
			SELECT u.due FROM follow_ups u WHERE u.subject_id = s.id AND (s.supervision_end IS NULL OR s.supervision_end >= ($10::timestamptz)::date)) d) n ON true
		WHERE subject_visible(s.unit, s.counselor, s.agency, $1, $2, $3) AND ` + scopeHint(p, "s") + `
		  AND ` + equalUnlessEmpty(f.Unit, "s.unit", "$11") + ` AND ` + equalUnlessEmpty(f.Counselor, "s.counselor", "$12") + ` AND ($13 = '' OR s.tier = $13)
		  AND s.external_id > $14 AND (NOT $15 OR n.due < $10)
		ORDER BY s.external_id LIMIT $16`
}

// scanSubjects reads Subjects' rows.
func (t *Tx) scanSubjects(rows pgx.Rows, now time.Time) ([]casework.Subject, error) {
	defer rows.Close()
	var out []casework.Subject
	for rows.Next() {
		var r subjectRow
		var due *time.Time
		if err := rows.Scan(append(r.targets(), &due)...); err != nil {
			return nil, err
		}
		sub, err := t.decode(r)
		if err != nil {
			return nil, err
		}
		if due != nil {
			d := due.UTC()
			sub.NextDue, sub.Overdue = &d, now.After(d)
		}
		out = append(out, sub)
	}
	return out, rows.Err()
}
