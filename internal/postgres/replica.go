package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/sunpath/sunpath/internal/audit"
	"github.com/sunpath/sunpath/internal/casework"
)

// Read runs fn, which only reads, as one audited unit of work. Without a
// replica it is Write. With one, fn runs in a read-only repeatable-read
// transaction on the replica, and the unit's audit event is then committed
// on the primary in a transaction of its own: the answer is returned only
// once its audit event is durable there. (A read is recorded after it
// happened rather than atomically with it, which a read, changing nothing,
// allows; a failed read records nothing, as with Write.) When the replica
// cannot be reached the read runs on the primary instead.
func (c *Cases) Read(ctx context.Context, op Op, fn func(casework.Tx) (Reply, error)) (Reply, error) {
	if c.replica == nil {
		rep, _, err := c.Write(ctx, op, fn)
		return rep, err
	}
	ev, rep, err := c.readReplica(ctx, op, fn)
	if errors.Is(err, ErrUnavailable) && ctx.Err() == nil {
		rep, _, err = c.Write(ctx, op, fn)
		return rep, err
	}
	if err != nil {
		return rep, err
	}
	if err := c.db.inTx(ctx, func(tx pgx.Tx) error {
		_, err := recordAudit(ctx, tx, ev)
		return err
	}); err != nil {
		return Reply{}, err
	}
	return rep, nil
}

// errReplicaWrite means a unit of work given to Read tried to write.
var errReplicaWrite = errors.New("a read on the replica queued a write")

func (c *Cases) readReplica(ctx context.Context, op Op, fn func(casework.Tx) (Reply, error)) (audit.Event, Reply, error) {
	ev := op.Audit
	ev.Outcome = audit.Success
	pc, err := c.replica.acquire(ctx)
	if err != nil {
		return ev, Reply{}, err
	}
	defer pc.Release()
	conn := pc.Conn()
	pre, err := begin(ctx, conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", op)
	if err != nil {
		rollback(ctx, conn)
		return ev, Reply{}, err
	}
	t := &Tx{c: c, tx: conn, p: op.Principal, ev: &ev, pre: pre}
	rep, err := fn(t)
	rollback(ctx, conn) // nothing to commit
	if err != nil {
		return ev, rep, translate(err)
	}
	if len(t.pending.QueuedQueries) > 0 {
		return ev, Reply{}, fmt.Errorf("%s: %w", ev.Action, errReplicaWrite)
	}
	return ev, rep, nil
}
