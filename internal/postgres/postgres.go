// Package postgres is Sunpath's system of record: a pgx pool with explicit
// timeouts, embedded forward-only migrations and the stores of every domain.
// pgx types never leave this package.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"

	"github.com/sunpath/sunpath/internal/postgres/migrations"
)

// Config says how to reach PostgreSQL and how long to wait for it.
type Config struct {
	URL string
	// ReadURL, when set, names a streaming replica that serves the
	// oversight reads (Cases.Read); the pool to it is built from the same
	// settings.
	ReadURL          string
	MaxConns         int32
	ConnectTimeout   time.Duration // establishing one connection
	AcquireTimeout   time.Duration // waiting for a free connection from the pool
	StatementTimeout time.Duration // server-side limit on any one statement
}

// DefaultConfig returns the defaults used when a setting is not given.
func DefaultConfig() Config {
	return Config{
		MaxConns:         16,
		ConnectTimeout:   5 * time.Second,
		AcquireTimeout:   3 * time.Second,
		StatementTimeout: 10 * time.Second,
	}
}

// ErrUnavailable means the database could not be reached in time.
var ErrUnavailable = errors.New("database unavailable")

// DB is a connection pool with Sunpath's timeouts.
type DB struct {
	pool *pgxpool.Pool
	cfg  Config
}

// ParseURL checks a database URL without connecting.
func ParseURL(url string) error {
	_, err := pgxpool.ParseConfig(url)
	return err
}

// Open builds a pool and pings the database once. New pools do not connect,
// so the ping is what proves the URL and credentials work.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	db, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := db.Ping(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// New builds a pool without connecting; the server uses it so that it can
// start, and report not-ready, while the database is down.
func New(cfg Config) (*DB, error) {
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	if cfg.MaxConns > 0 {
		pc.MaxConns = cfg.MaxConns
	}
	pc.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	if cfg.StatementTimeout > 0 {
		pc.ConnConfig.RuntimeParams["statement_timeout"] = fmt.Sprint(cfg.StatementTimeout.Milliseconds())
		// A transaction left open by a crashed request must not hold locks forever.
		pc.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = fmt.Sprint((3 * cfg.StatementTimeout).Milliseconds())
	}
	pc.ConnConfig.RuntimeParams["application_name"] = "sunpath"
	pc.HealthCheckPeriod = 10 * time.Second
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		return nil, fmt.Errorf("create pool: %w", err)
	}
	return &DB{pool: pool, cfg: cfg}, nil
}

// Close closes every connection.
func (db *DB) Close() { db.pool.Close() }

// Stat reports the pool's statistics for metrics.
func (db *DB) Stat() PoolStat {
	s := db.pool.Stat()
	return PoolStat{
		Acquired:        s.AcquiredConns(),
		Idle:            s.IdleConns(),
		Total:           s.TotalConns(),
		Max:             s.MaxConns(),
		AcquireCount:    s.AcquireCount(),
		AcquireDuration: s.AcquireDuration(),
		EmptyAcquire:    s.EmptyAcquireCount(),
		Canceled:        s.CanceledAcquireCount(),
	}
}

// PoolStat is a snapshot of the pool.
type PoolStat struct {
	Acquired, Idle, Total, Max int32
	AcquireCount               int64
	AcquireDuration            time.Duration
	EmptyAcquire, Canceled     int64
}

// acquire takes a connection, waiting at most the acquire timeout.
func (db *DB) acquire(ctx context.Context) (*pgxpool.Conn, error) {
	actx := ctx
	if db.cfg.AcquireTimeout > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, db.cfg.AcquireTimeout)
		defer cancel()
	}
	c, err := db.pool.Acquire(actx)
	if err != nil {
		if ctx.Err() == nil && actx.Err() != nil {
			return nil, fmt.Errorf("acquire connection: timed out after %s: %w", db.cfg.AcquireTimeout, ErrUnavailable)
		}
		return nil, translate(fmt.Errorf("acquire connection: %w", err))
	}
	return c, nil
}

// inTx runs fn in a transaction on a connection acquired within the acquire
// timeout; it commits when fn returns nil and rolls back otherwise.
func (db *DB) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	c, err := db.acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	return translate(pgx.BeginFunc(ctx, c, fn))
}

// withConn runs fn on a connection acquired within the acquire timeout.
func (db *DB) withConn(ctx context.Context, fn func(*pgxpool.Conn) error) error {
	c, err := db.acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	return translate(fn(c))
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	return db.withConn(ctx, func(c *pgxpool.Conn) error { return c.Ping(ctx) })
}

// ErrUnsafe means the server is configured so that an acknowledged write
// could be lost.
var ErrUnsafe = errors.New("unsafe database configuration")

// SelfCheck refuses a server on which a committed transaction may not survive
// a crash: fsync and synchronous_commit must both be on.
func (db *DB) SelfCheck(ctx context.Context) error {
	return db.withConn(ctx, func(c *pgxpool.Conn) error {
		for _, name := range []string{"fsync", "synchronous_commit"} {
			var v string
			if err := c.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v); err != nil {
				return fmt.Errorf("read %s: %w", name, err)
			}
			if v == "off" {
				return fmt.Errorf("PostgreSQL has %s=off, so acknowledged writes could be lost on a crash: %w", name, ErrUnsafe)
			}
		}
		return nil
	})
}

const versionTable = "public.schema_version"

// Migrate applies every pending migration and returns the schema version.
func (db *DB) Migrate(ctx context.Context) (int32, error) {
	var version int32
	err := db.withConn(ctx, func(c *pgxpool.Conn) error {
		m, err := migrate.NewMigrator(ctx, c.Conn(), versionTable)
		if err != nil {
			return fmt.Errorf("migrator: %w", err)
		}
		if err := m.LoadMigrations(migrations.FS); err != nil {
			return fmt.Errorf("load migrations: %w", err)
		}
		if err := m.Migrate(ctx); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		version, err = m.GetCurrentVersion(ctx)
		return err
	})
	return version, err
}

// LatestVersion is the number of embedded migrations.
func LatestVersion() int32 {
	names, err := migrate.FindMigrations(migrations.FS)
	if err != nil {
		panic("postgres: embedded migrations unreadable: " + err.Error())
	}
	return int32(len(names))
}

// ErrSchemaBehind means migrations are pending.
var ErrSchemaBehind = errors.New("database schema is behind; run 'sunpath migrate'")

// CheckSchema returns nil when the database is at the latest migration.
func (db *DB) CheckSchema(ctx context.Context) error {
	return db.withConn(ctx, func(c *pgxpool.Conn) error {
		var v int32
		err := c.QueryRow(ctx, "SELECT version FROM "+versionTable).Scan(&v)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
			return fmt.Errorf("no schema: %w", ErrSchemaBehind)
		}
		if err != nil {
			return err
		}
		if latest := LatestVersion(); v < latest {
			return fmt.Errorf("schema version %d, latest %d: %w", v, latest, ErrSchemaBehind)
		} else if v > latest {
			return fmt.Errorf("schema version %d is newer than this binary knows (%d)", v, latest)
		}
		return nil
	})
}

// translate maps driver errors to the errors callers can act on.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrUnavailable) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57014": // query_canceled: statement_timeout
			return fmt.Errorf("%w: statement timed out", ErrUnavailable)
		case "57P01", "57P02", "57P03", "53300": // shutting down, too many connections
			return fmt.Errorf("%w: %s", ErrUnavailable, pgErr.Code)
		}
		return err
	}
	if pgconn.SafeToRetry(err) || pgconn.Timeout(err) || isConnectError(err) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

func isConnectError(err error) bool {
	var ce *pgconn.ConnectError
	return errors.As(err, &ce)
}
