package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/sunpath/sunpath/internal/audit"
	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/postgres"
)

// TestStaffNamesSealed: a staff name is stored sealed (the column holds no
// plaintext), read back by StaffNames, and refused for an unknown account.
func TestStaffNamesSealed(t *testing.T) {
	t.Parallel()
	cases, conn := groupEnv(t)
	ctx := context.Background()
	put := func(user, name string) error {
		_, _, err := cases.Write(ctx, postgres.Op{Principal: admin, Audit: audit.Event{Actor: admin.Actor(), Role: "admin", Action: "user.name.set"}},
			func(tx casework.Tx) (postgres.Reply, error) {
				return postgres.Reply{}, tx.PutStaffName(ctx, user, name)
			})
		return err
	}
	if err := put("carol", "王丽"); err != nil {
		t.Fatal(err)
	}
	if err := put("nobody", "某人"); !errors.Is(err, casework.ErrNotFound) {
		t.Errorf("naming an unknown account: %v, want ErrNotFound", err)
	}
	if n := count(t, conn, `SELECT count(*) FROM staff_names WHERE position(convert_to('王丽', 'UTF8') in name) > 0`); n != 0 {
		t.Error("the name is stored in plaintext")
	}
	names, err := cases.StaffNames(ctx)
	if err != nil || names["carol"] != "王丽" || len(names) != 1 {
		t.Errorf("StaffNames = %v, %v; want carol: 王丽", names, err)
	}
}
