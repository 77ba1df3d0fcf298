package casework

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// Alerts is what a signed-in person must act on now: the open
// (unacknowledged) critical and urgent flags in their scope. It holds
// counts and the newest flag's id only, never who the flags are about.
type Alerts struct {
	Critical int
	Urgent   int
	// Latest is the id and raise time of the newest open critical or
	// urgent flag ("" and zero when there is none).
	Latest   string
	LatestAt time.Time
}

// Total is the number of open critical and urgent flags.
func (a Alerts) Total() int { return a.Critical + a.Urgent }

// State is a short fingerprint of the alerts: it changes when a flag is
// raised or acknowledged, so that a poll can answer "nothing new" cheaply.
func (a Alerts) State() string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%d/%d/%s", a.Critical, a.Urgent, a.Latest)))
	return hex.EncodeToString(h[:6])
}

// Alerts counts the open critical and urgent flags the caller may see. It
// is polled by every open page every few seconds, so it is not an audited
// unit of work: it reads counts, no personal data, and the flags themselves
// are read through Flags (audited) when the person opens them.
func (s *Service) Alerts(ctx context.Context, c Call) (Alerts, error) {
	if !c.Principal.IsPerson() {
		return Alerts{}, fmt.Errorf("alerts are for signed-in people: %w", ErrForbidden)
	}
	return s.store.OpenAlerts(ctx, c.Principal)
}
