package postgres

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sunpath/sunpath/internal/audit"
	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/casework"
)

// Group commit. Under load, many submissions arrive at once, each a small
// unit of work: read the subject, queue a few inserts, commit. WriteGrouped
// lets concurrent units share one transaction: one BEGIN, one round trip
// for all their subject reads, one for all their writes and one COMMIT (one
// WAL flush). Each unit keeps its own audit event and idempotency record,
// and is answered only after the shared COMMIT succeeded. A unit's own
// refusal (not found, out of scope, invalid) drops only its writes. Any
// database error that leaves nothing committed drops the whole group, and
// every unit in it is then run again on its own by Write, so a unit's outcome
// never depends on the others it happened to be grouped with. (An error of
// unknown outcome at COMMIT is reported to each unit, as Write reports it.)

const (
	maxGroup      = 32               // units per shared transaction
	groupTimeout  = 15 * time.Second // bound on one shared transaction
	defaultGroups = 2                // shared transactions in flight at once
)

type groupItem struct {
	ctx      context.Context
	op       Op
	fn       func(casework.Tx) (Reply, error)
	rep      Reply
	replayed bool // rep is the reply stored with the unit's Idempotency-Key
	err      error
	alone    bool // its group was not committed: run it by itself
	done     chan struct{}
}

// grouper queues units and runs them in groups on up to limit goroutines,
// started when work arrives and gone when the queue is empty.
type grouper struct {
	mu     sync.Mutex
	queue  []*groupItem
	active int
	limit  int
	// keys holds the Idempotency-Keys of units queued or in a group, each
	// closed when its unit is answered. A duplicate waits for it and then
	// runs alone (and is replayed), so one key is never in two open
	// transactions at once: two groups can no longer deadlock on each
	// other's idempotency records, and a repeat no longer loses its group.
	keys    map[string]chan struct{}
	waiting int // duplicates waiting for their key
}

// WriteGrouped is Write for units of work that only read before they write
// and queue every write with Tx.later (assessment submissions): concurrent
// calls share one transaction. The result is what Write would have given.
func (c *Cases) WriteGrouped(ctx context.Context, op Op, fn func(casework.Tx) (Reply, error)) (Reply, bool, error) {
	it := &groupItem{ctx: ctx, op: op, fn: fn, done: make(chan struct{})}
	b := &c.groups
	b.mu.Lock()
	if op.Idem != nil {
		k := op.Idem.Client + "\x00" + op.Idem.Key
		if busy, ok := b.keys[k]; ok {
			b.waiting++
			b.mu.Unlock()
			defer func() { b.mu.Lock(); b.waiting--; b.mu.Unlock() }()
			select {
			case <-busy:
			case <-ctx.Done():
				return Reply{}, false, ctx.Err()
			}
			return c.Write(ctx, op, fn)
		}
		if b.keys == nil {
			b.keys = map[string]chan struct{}{}
		}
		mine := make(chan struct{})
		b.keys[k] = mine
		defer func() {
			b.mu.Lock()
			delete(b.keys, k)
			b.mu.Unlock()
			close(mine)
		}()
	}
	b.queue = append(b.queue, it)
	if b.active < b.limit {
		b.active++
		go c.drain()
	}
	b.mu.Unlock()
	<-it.done
	if it.alone {
		return c.Write(ctx, op, fn)
	}
	return it.rep, it.replayed, it.err
}

// QueuedUnits is the number of units waiting for a group transaction (or
// for a unit with the same Idempotency-Key to be answered).
func (c *Cases) QueuedUnits() int {
	c.groups.mu.Lock()
	defer c.groups.mu.Unlock()
	return len(c.groups.queue) + c.groups.waiting
}

func (c *Cases) drain() {
	b := &c.groups
	for {
		b.mu.Lock()
		if len(b.queue) == 0 {
			b.active--
			b.mu.Unlock()
			return
		}
		n := min(len(b.queue), maxGroup)
		items := make([]*groupItem, n)
		copy(items, b.queue)
		b.queue = append(b.queue[:0], b.queue[n:]...)
		b.mu.Unlock()

		live := items[:0:0]
		for _, it := range items {
			if err := it.ctx.Err(); err != nil {
				it.err = err
				close(it.done)
				continue
			}
			live = append(live, it)
		}
		if len(live) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(live[0].ctx), groupTimeout)
		err := c.writeGroup(ctx, live)
		if err != nil {
			for _, it := range live {
				it.alone = true
			}
		}
		if c.onGroup != nil {
			c.onGroup(len(live), err == nil)
		}
		cancel()
		for _, it := range live {
			close(it.done)
		}
	}
}

// writeGroup runs items in one transaction and sets each item's reply or
// refusal. An error means nothing was committed and each item may run again.
func (c *Cases) writeGroup(ctx context.Context, items []*groupItem) (err error) {
	conn, release, err := c.handConn(ctx)
	if err != nil {
		return err
	}
	done := false
	defer release(&done)

	// One round trip: BEGIN, every distinct subject read and the history
	// reads of the rules (Op.History).
	begin := &pgx.Batch{}
	begin.Queue("BEGIN")
	type subjKey struct {
		subject, role, name, scope string
		ref                        bool
	}
	pres := make([]*prefetched, len(items))
	var order []*prefetched
	var principals []auth.Principal
	seen := map[subjKey]*prefetched{}
	for i, it := range items {
		if it.op.Subject == "" {
			continue
		}
		role, name, scope := scopeOf(it.op.Principal)
		k := subjKey{it.op.Subject, role, name, scope, it.op.SubjectRef}
		p, ok := seen[k]
		if !ok {
			p = &prefetched{id: it.op.Subject, ref: it.op.SubjectRef}
			seen[k] = p
			order, principals = append(order, p), append(principals, it.op.Principal)
		}
		pres[i] = p
		p.want(it.op.History)
	}
	for j, p := range order {
		p.queue(begin, principals[j])
	}
	// And which of the group's Idempotency-Keys are stored already: those
	// units are retries of committed requests, answered with the stored
	// reply (inserting their keys again would lose the whole group).
	var clients, keys []string
	for _, it := range items {
		if it.op.Idem != nil {
			clients, keys = append(clients, it.op.Idem.Client), append(keys, it.op.Idem.Key)
		}
	}
	if len(keys) > 0 {
		// One index probe per key, whatever the statistics say: as an IN
		// (subquery), a plan cached while the table was small scanned the
		// whole table for every group (measured: 3.8 ms a group, the
		// costliest statement of the load test).
		begin.Queue(`SELECT u.client, u.key, k.request_hash, k.status, k.body, k.expires_at < now() FROM unnest($1::text[], $2::text[]) AS u (client, key)
			CROSS JOIN LATERAL (SELECT request_hash, status, body, expires_at FROM idempotency_keys k WHERE k.client = u.client AND k.key = u.key LIMIT 1) k`, clients, keys)
	}
	type storedKey struct {
		storedIdem
		expired bool
	}
	stored := map[[2]string]*storedKey{}
	br := conn.SendBatch(ctx, begin)
	_, err = br.Exec()
	for _, p := range order {
		if err != nil {
			break
		}
		p.scan(br)
	}
	if err == nil && len(keys) > 0 {
		var rows pgx.Rows
		if rows, err = br.Query(); err == nil {
			var k [2]string
			var r storedKey
			_, err = pgx.ForEachRow(rows, []any{&k[0], &k[1], &r.hash, &r.Status, &r.Body, &r.expired}, func() error {
				found := r
				stored[k] = &found
				return nil
			})
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}

	w := &groupConn{ctx: ctx, conn: conn, pending: &pgx.Batch{}}
	wrote := map[uuid.UUID]bool{}
	for i, it := range items {
		if it.op.Idem != nil {
			if r := stored[[2]string{it.op.Idem.Client, it.op.Idem.Key}]; r != nil {
				it.rep, it.replayed, it.err, it.alone = c.replay(it.op, pres[i], r.storedIdem, r.expired)
				continue
			}
		}
		ev := it.op.Audit
		ev.Outcome = audit.Success
		t := &Tx{c: c, tx: w, p: it.op.Principal, ev: &ev, pre: pres[i], shared: w.pending, wrote: wrote}
		w.mark, w.tainted = len(w.pending.QueuedQueries), false
		rep, ferr, panicked := runUnit(it.fn, t)
		if panicked || w.failed || w.tainted && ferr != nil || conn.IsClosed() || conn.PgConn().TxStatus() != 'T' {
			return errGroupLost // nothing is committed: everyone runs alone
		}
		if ferr != nil {
			// A refusal of this unit alone: drop the writes it queued.
			w.pending.QueuedQueries = w.pending.QueuedQueries[:w.mark]
			it.rep, it.err = rep, translate(ferr)
			continue
		}
		t.later(insertAuditSQL, auditArgs(ev)...)
		if it.op.Idem != nil {
			t.later(insertIdemSQL, it.op.Idem.Client, it.op.Idem.Key, it.op.Idem.Hash, rep.Status, c.sealReply(it.op.Idem, rep.Body), it.op.Idem.TTL.Seconds())
		}
		it.rep, it.err = rep, nil
	}
	w.pending.Queue("COMMIT")
	final := coalesce(w.pending)
	br = conn.SendBatch(ctx, final)
	var tag pgconn.CommandTag
	for range final.QueuedQueries {
		if tag, err = br.Exec(); err != nil {
			break
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr):
		return err // the server refused a statement: the transaction rolled back
	case err != nil:
		// The outcome of COMMIT is unknown, as it would be for Write: every
		// unit reports the error (a retry with its Idempotency-Key is safe).
		for _, it := range items {
			if it.err == nil {
				it.rep, it.err = Reply{}, translate(err)
			}
		}
		return nil
	case tag.String() != "COMMIT":
		return errGroupLost
	}
	done = true
	c.committed(w.pending)
	return nil
}

// replay answers a unit whose Idempotency-Key is stored, as Write would:
// with the stored reply, or ErrIdempotencyMismatch for another request
// under the key. It runs alone (alone = true) when Write must decide: the
// record has expired, the reply cannot be opened, or the unit names no
// subject it may still see (a replay never reaches past the caller's
// current scope: Write answers with the refusal).
func (c *Cases) replay(op Op, pre *prefetched, r storedIdem, expired bool) (rep Reply, replayed bool, err error, alone bool) {
	if expired || pre == nil || pre.err != nil || !pre.visible {
		return Reply{}, false, nil, true
	}
	if !bytes.Equal(r.hash, op.Idem.Hash) {
		return Reply{}, false, ErrIdempotencyMismatch, false
	}
	if len(r.Body) > 0 {
		b, err := c.keys.Open(r.Body, idemAD(op.Idem))
		if err != nil {
			return Reply{}, false, nil, true
		}
		r.Body = b
	}
	return r.Reply, true, nil, false
}

// runUnit calls fn, turning a panic into a lost group: the unit then runs
// alone in its request's goroutine, where the server's recovery answers it.
func runUnit(fn func(casework.Tx) (Reply, error), t *Tx) (rep Reply, err error, panicked bool) {
	defer func() {
		if recover() != nil {
			panicked = true
		}
	}()
	rep, err = fn(t)
	return rep, err, false
}

// errGroupLost means a shared transaction was not committed.
var errGroupLost = errors.New("group transaction not committed")

// groupConn is the shared transaction as one unit of work sees it: before a
// read it sends the writes queued so far, so every unit reads the writes of
// the units before it, exactly as if they had committed one after another.
// Every statement runs under the group's context, not the unit's: a client
// that goes away must not cancel a query the whole group depends on.
type groupConn struct {
	ctx     context.Context
	conn    *pgx.Conn
	pending *pgx.Batch
	mark    int  // where the current unit's queued writes begin
	tainted bool // some of the current unit's writes were sent
	failed  bool // a send failed: the transaction is lost
}

func (g *groupConn) flush() error {
	if len(g.pending.QueuedQueries) == 0 {
		return nil
	}
	if len(g.pending.QueuedQueries) > g.mark {
		g.tainted = true
	}
	err := g.conn.SendBatch(g.ctx, g.pending).Close()
	g.pending.QueuedQueries, g.mark = g.pending.QueuedQueries[:0], 0
	if err != nil {
		g.failed = true
	}
	return err
}

func (g *groupConn) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if err := g.flush(); err != nil {
		return pgconn.CommandTag{}, err
	}
	return g.conn.Exec(g.ctx, sql, args...)
}

func (g *groupConn) Query(_ context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := g.flush(); err != nil {
		return nil, err
	}
	return g.conn.Query(g.ctx, sql, args...)
}

func (g *groupConn) QueryRow(_ context.Context, sql string, args ...any) pgx.Row {
	if err := g.flush(); err != nil {
		return errRow{err}
	}
	return g.conn.QueryRow(g.ctx, sql, args...)
}

func (g *groupConn) SendBatch(_ context.Context, b *pgx.Batch) pgx.BatchResults {
	g.flush() // on failure the group is lost, and b fails in the aborted transaction
	return g.conn.SendBatch(g.ctx, b)
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
