package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sunpath/sunpath/internal/casework"
)

const bumpGenerationSQL = `UPDATE model_registry SET generation = generation + 1`

// AddModelVersion stores a version with its files and moves the generation.
func (t *Tx) AddModelVersion(ctx context.Context, v casework.ModelVersion, files map[string][]byte) (casework.ModelVersion, error) {
	id := uuid.New()
	var exists bool
	if err := t.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM model_versions WHERE name = $1 AND version = $2)`, v.Name, v.Version).Scan(&exists); err != nil {
		return v, err
	}
	if exists {
		return v, fmt.Errorf("model %s version %s is stored already: %w", v.Name, v.Version, casework.ErrConflict)
	}
	if _, err := t.tx.Exec(ctx, `INSERT INTO model_versions (id, name, version, sha256, state, uploaded_by, uploaded_at, changed_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`, id, v.Name, v.Version, v.SHA256, v.State, v.UploadedBy, v.UploadedAt); err != nil {
		return v, uniqueConflict(err, "model version")
	}
	for _, f := range v.Files {
		t.later(`INSERT INTO model_files (version_id, path, sha256, content) VALUES ($1, $2, $3, $4)`, id, f.Path, f.SHA256, files[f.Path])
	}
	t.later(bumpGenerationSQL)
	v.ID = id.String()
	return v, nil
}

func uniqueConflict(err error, what string) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return fmt.Errorf("%s: %w", what, casework.ErrConflict)
	}
	return err
}

const versionCols = `v.id, v.name, v.version, v.sha256, v.state, v.uploaded_by, v.uploaded_at, v.activated_at`

func scanVersion(row pgx.Row) (casework.ModelVersion, error) {
	var v casework.ModelVersion
	var id uuid.UUID
	var up time.Time
	err := row.Scan(&id, &v.Name, &v.Version, &v.SHA256, &v.State, &v.UploadedBy, &up, &v.ActivatedAt)
	up = up.UTC()
	v.ID, v.UploadedAt = id.String(), &up
	if v.ActivatedAt != nil {
		a := v.ActivatedAt.UTC()
		v.ActivatedAt = &a
	}
	return v, err
}

// StoredModelVersions lists the stored versions of name, newest first, with
// their files' names, digests and sizes.
func (t *Tx) StoredModelVersions(ctx context.Context, name string) ([]casework.ModelVersion, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+versionCols+` FROM model_versions v WHERE v.name = $1 ORDER BY v.uploaded_at DESC, v.version DESC`, name)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (casework.ModelVersion, error) { return scanVersion(r) })
	if err != nil {
		return nil, err
	}
	for i := range out {
		frows, err := t.tx.Query(ctx, `SELECT path, sha256, length(content) FROM model_files WHERE version_id = $1 ORDER BY path`, out[i].ID)
		if err != nil {
			return nil, err
		}
		out[i].Files, err = pgx.CollectRows(frows, func(r pgx.CollectableRow) (casework.ModelFileInfo, error) {
			var f casework.ModelFileInfo
			return f, r.Scan(&f.Path, &f.SHA256, &f.Bytes)
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// StoredModelVersion returns one version, locked for update.
func (t *Tx) StoredModelVersion(ctx context.Context, name, version string) (casework.ModelVersion, error) {
	v, err := scanVersion(t.tx.QueryRow(ctx, `SELECT `+versionCols+` FROM model_versions v WHERE v.name = $1 AND v.version = $2 FOR UPDATE`, name, version))
	if errors.Is(err, pgx.ErrNoRows) {
		return v, fmt.Errorf("model %s version %s: %w", name, version, casework.ErrNotFound)
	}
	return v, err
}

// SetModelState changes a version's state and moves the generation.
func (t *Tx) SetModelState(ctx context.Context, versionID, state string) error {
	now := t.c.now().UTC()
	// The active version changes in two steps within one transaction;
	// retiring first keeps the one-active index satisfied.
	if _, err := t.tx.Exec(ctx, `UPDATE model_versions SET state = $2, changed_at = $3,
		activated_at = CASE WHEN $2 = 'active' THEN $3 ELSE activated_at END WHERE id = $1`, versionID, state, now); err != nil {
		return uniqueConflict(err, "model version state")
	}
	t.later(bumpGenerationSQL)
	return nil
}

// AddModelChange stores a pending promotion or rollback.
func (t *Tx) AddModelChange(ctx context.Context, ch casework.ModelChange) (string, error) {
	id := uuid.New()
	_, err := t.tx.Exec(ctx, `INSERT INTO model_promotions (id, name, kind, version_id, from_version_id, reason, status, requested_by, requested_at)
		VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8)`, id, ch.Name, ch.Kind, nullUUID(ch.VersionID), nullUUID(ch.FromVersionID),
		t.seal([]byte(ch.Reason), "model_promotions", "reason", id.String()), ch.RequestedBy, ch.RequestedAt)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			return "", fmt.Errorf("a change of model %s is already pending: %w", ch.Name, casework.ErrConflict)
		}
		return "", err
	}
	return id.String(), nil
}

func nullUUID(s string) *uuid.UUID {
	if s == "" {
		return nil
	}
	id, err := uuid.Parse(s)
	if err != nil {
		return nil
	}
	return &id
}

const changeCols = `p.id, p.name, p.kind, p.version_id, coalesce(v.version, ''), p.from_version_id, coalesce(f.version, ''), p.reason,
	p.status, p.requested_by, p.requested_at, coalesce(p.decided_by, ''), p.decided_at, p.decision_note
	FROM model_promotions p LEFT JOIN model_versions v ON v.id = p.version_id LEFT JOIN model_versions f ON f.id = p.from_version_id`

func (t *Tx) scanChange(row pgx.Row) (casework.ModelChange, error) {
	var ch casework.ModelChange
	var id uuid.UUID
	var vid, fid *uuid.UUID
	var reason, note []byte
	if err := row.Scan(&id, &ch.Name, &ch.Kind, &vid, &ch.Version, &fid, &ch.FromVersion, &reason, &ch.Status, &ch.RequestedBy,
		&ch.RequestedAt, &ch.DecidedBy, &ch.DecidedAt, &note); err != nil {
		return ch, err
	}
	ch.ID, ch.RequestedAt = id.String(), ch.RequestedAt.UTC()
	if vid != nil {
		ch.VersionID = vid.String()
	}
	if fid != nil {
		ch.FromVersionID = fid.String()
	}
	if ch.DecidedAt != nil {
		d := ch.DecidedAt.UTC()
		ch.DecidedAt = &d
	}
	pt, err := t.open(reason, "model_promotions", "reason", ch.ID)
	if err != nil {
		return ch, err
	}
	ch.Reason = string(pt)
	if note != nil {
		pt, err := t.open(note, "model_promotions", "decision_note", ch.ID)
		if err != nil {
			return ch, err
		}
		ch.DecisionNote = string(pt)
	}
	return ch, nil
}

// ModelChange returns one change, locked for update.
func (t *Tx) ModelChange(ctx context.Context, id string) (casework.ModelChange, error) {
	pid, err := uuid.Parse(id)
	if err != nil {
		return casework.ModelChange{}, fmt.Errorf("model change: %w", casework.ErrNotFound)
	}
	ch, err := t.scanChange(t.tx.QueryRow(ctx, `SELECT `+changeCols+` WHERE p.id = $1 FOR UPDATE OF p`, pid))
	if errors.Is(err, pgx.ErrNoRows) {
		return ch, fmt.Errorf("model change: %w", casework.ErrNotFound)
	}
	return ch, err
}

// DecideModelChange writes a change's decision.
func (t *Tx) DecideModelChange(ctx context.Context, ch casework.ModelChange) error {
	var note []byte
	if ch.DecisionNote != "" {
		note = t.seal([]byte(ch.DecisionNote), "model_promotions", "decision_note", ch.ID)
	}
	_, err := t.tx.Exec(ctx, `UPDATE model_promotions SET status = $2, decided_by = $3, decided_at = $4, decision_note = $5 WHERE id = $1`,
		ch.ID, ch.Status, ch.DecidedBy, ch.DecidedAt, note)
	return err
}

// ModelChanges lists the changes of name, newest first.
func (t *Tx) ModelChanges(ctx context.Context, name string) ([]casework.ModelChange, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+changeCols+` WHERE p.name = $1 ORDER BY p.requested_at DESC, p.id`, name)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (casework.ModelChange, error) { return t.scanChange(r) })
	if out == nil {
		out = []casework.ModelChange{}
	}
	return out, err
}

// LastModelChange returns the newest approved change of name.
func (t *Tx) LastModelChange(ctx context.Context, name string) (casework.ModelChange, bool, error) {
	ch, err := t.scanChange(t.tx.QueryRow(ctx, `SELECT `+changeCols+` WHERE p.name = $1 AND p.status = 'approved'
		ORDER BY p.decided_at DESC, p.id LIMIT 1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return ch, false, nil
	}
	return ch, err == nil, err
}

// AddShadowScore queues a shadow version's score of a recommendation.
func (t *Tx) AddShadowScore(ctx context.Context, recommendationID, versionID string, p float64, tier casework.Tier) error {
	t.later(`INSERT INTO shadow_scores (recommendation_id, version_id, probability, tier, created_at) VALUES ($1, $2, $3, $4, $5)`,
		recommendationID, versionID, p, string(tier), t.c.now().UTC())
	return nil
}

// ShadowPairs lists, per shadow version and person, the first
// recommendation of active that the version scored, with the outcome label.
func (t *Tx) ShadowPairs(ctx context.Context, versionIDs []string, active casework.ModelRef, q casework.OutcomeQuery) ([]casework.ShadowPair, error) {
	ids := make([]uuid.UUID, 0, len(versionIDs))
	for _, s := range versionIDs {
		if id, err := uuid.Parse(s); err == nil {
			ids = append(ids, id)
		}
	}
	rows, err := t.tx.Query(ctx, `SELECT DISTINCT ON (ss.version_id, r.subject_id) ss.version_id, r.probability, r.tier, ss.probability, ss.tier,
			s.sex, r.created_at,
			EXISTS (SELECT 1 FROM outcomes o WHERE o.subject_id = r.subject_id AND o.kind = ANY($5)
			          AND o.occurred_on >= r.created_at::date AND o.occurred_on <= (r.created_at + make_interval(secs => $6))::date)
		FROM shadow_scores ss JOIN recommendations r ON r.id = ss.recommendation_id JOIN subjects s ON s.id = r.subject_id
		WHERE ss.version_id = ANY($1) AND r.model_name = $2 AND r.model_version = $3 AND r.model_sha256 = $4
		ORDER BY ss.version_id, r.subject_id, r.created_at`, ids, active.Name, active.Version, active.SHA256, q.Kinds, q.Window.Seconds())
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (casework.ShadowPair, error) {
		var p casework.ShadowPair
		var vid uuid.UUID
		var at, st string
		if err := r.Scan(&vid, &p.Active, &at, &p.Shadow, &st, &p.Sex, &p.Recommended, &p.Positive); err != nil {
			return p, err
		}
		p.VersionID, p.ActiveTier, p.ShadowTier = vid.String(), casework.Tier(at), casework.Tier(st)
		p.Labelled = !p.Recommended.Add(q.Window).After(q.Now)
		return p, nil
	})
}

// ModelGeneration moves with every change of the stored model versions.
func (c *Cases) ModelGeneration(ctx context.Context) (int64, error) {
	var g int64
	err := c.db.withConn(ctx, func(pc *pgxpool.Conn) error {
		return pc.QueryRow(ctx, `SELECT generation FROM model_registry`).Scan(&g)
	})
	return g, translate(err)
}

// LiveModelVersions lists the versions in shadow or active.
func (c *Cases) LiveModelVersions(ctx context.Context) ([]casework.ModelVersion, error) {
	var out []casework.ModelVersion
	err := c.db.withConn(ctx, func(pc *pgxpool.Conn) error {
		rows, err := pc.Query(ctx, `SELECT `+versionCols+` FROM model_versions v WHERE v.state IN ('shadow', 'active') ORDER BY v.name, v.uploaded_at`)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (casework.ModelVersion, error) { return scanVersion(r) })
		return err
	})
	return out, translate(err)
}

// ModelFiles returns a version's files by name.
func (c *Cases) ModelFiles(ctx context.Context, versionID string) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := c.db.withConn(ctx, func(pc *pgxpool.Conn) error {
		rows, err := pc.Query(ctx, `SELECT path, content FROM model_files WHERE version_id = $1`, versionID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var p string
			var b []byte
			if err := rows.Scan(&p, &b); err != nil {
				return err
			}
			out[p] = b
		}
		return rows.Err()
	})
	return out, translate(err)
}
