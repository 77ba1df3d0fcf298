package casework

import (
	"context"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sunpath/sunpath/internal/auth"
)

// MaxStaffNameRunes bounds a staff member's name.
const MaxStaffNameRunes = 64

// SetStaffName records the name a staff account is shown by (an admin's
// audited act; the name is sealed at rest).
func (s *Service) SetStaffName(ctx context.Context, c Call, username, name string) error {
	name = strings.TrimSpace(name)
	if n := utf8.RuneCountInString(name); n == 0 || n > MaxStaffNameRunes || strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return invalid("display_name", fmt.Sprintf("must be 1 to %d characters, without control characters", MaxStaffNameRunes))
	}
	if c.Principal.Role != auth.RoleAdmin {
		return fmt.Errorf("only an admin names staff accounts: %w", ErrForbidden)
	}
	_, _, err := run(ctx, s, c, unit{action: "user.name.set"}, func(tx Tx) (struct{}, error) {
		tx.Resource("user", username, "")
		return struct{}{}, tx.PutStaffName(ctx, username, name)
	})
	return err
}

// StaffNames returns staff accounts' names by username, for naming who
// acted on a page the caller already reads.
func (s *Service) StaffNames(ctx context.Context) (map[string]string, error) {
	return s.store.StaffNames(ctx)
}
