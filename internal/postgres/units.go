package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/problem"
)

// Units administers organisational units outside a request: what `sunpath
// unit` does. (The API's PUT /v1/units goes through Tx.PutUnit.)
type Units struct{ db *DB }

// NewUnits returns the unit store on db.
func NewUnits(db *DB) *Units { return &Units{db: db} }

// checkUnit validates a unit's code, name and agency as PUT /v1/units does;
// a *problem.Invalid names each field at fault.
func checkUnit(u Unit) error {
	inv := &problem.Invalid{}
	if !casework.IDPattern.MatchString(u.Code) {
		inv.Add("code", "must be 1-64 letters, digits, '.', '_' or '-'")
	}
	if n := len([]rune(strings.TrimSpace(u.Name))); n == 0 || n > 200 {
		inv.Add("name", "required, at most 200 characters")
	}
	if !casework.IDPattern.MatchString(u.Agency) {
		inv.Add("agency", "must be 1-64 letters, digits, '.', '_' or '-'")
	}
	return inv.Err()
}

// Create stores a new unit; an empty agency is "default", as for PUT
// /v1/units. casework.ErrConflict when the code is taken,
// a *problem.Invalid when a field is malformed.
func (s *Units) Create(ctx context.Context, u Unit) error {
	if u.Agency == "" {
		u.Agency = "default"
	}
	if err := checkUnit(u); err != nil {
		return err
	}
	err := s.db.withConn(ctx, func(c *pgxpool.Conn) error {
		_, err := c.Exec(ctx, `INSERT INTO units (code, name, agency) VALUES ($1, $2, $3)`, u.Code, u.Name, u.Agency)
		return err
	})
	if isUniqueViolation(err) {
		return fmt.Errorf("unit %s already exists: %w", u.Code, casework.ErrConflict)
	}
	return err
}

// Rename changes a unit's name and keeps its agency; casework.ErrNotFound
// when there is no such unit.
func (s *Units) Rename(ctx context.Context, code, name string) (Unit, error) {
	u := Unit{Code: code, Name: name, Agency: "default"}
	if err := checkUnit(u); err != nil {
		return Unit{}, err
	}
	err := s.db.withConn(ctx, func(c *pgxpool.Conn) error {
		return c.QueryRow(ctx, `UPDATE units SET name = $2 WHERE code = $1 RETURNING agency`, code, name).Scan(&u.Agency)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Unit{}, fmt.Errorf("unit %s: %w", code, casework.ErrNotFound)
	}
	return u, err
}

// List returns every unit, by code.
func (s *Units) List(ctx context.Context) ([]Unit, error) {
	out := []Unit{}
	err := s.db.withConn(ctx, func(c *pgxpool.Conn) error {
		rows, err := c.Query(ctx, `SELECT code, name, agency FROM units ORDER BY code`)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowToStructByPos[Unit])
		return err
	})
	return out, err
}
