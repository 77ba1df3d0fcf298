package casework

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sunpath/sunpath/internal/problem"
	"github.com/sunpath/sunpath/internal/screening"
)

// Flag statuses: open → acknowledged → resolved, in that order only.
const (
	FlagOpen         = "open"
	FlagAcknowledged = "acknowledged"
	FlagResolved     = "resolved"
)

// FlagQuery narrows a flag listing; Lang is the crisis protocol's language.
type FlagQuery struct {
	FlagFilter
	Lang string
}

// Flags lists the flags the caller may see, most urgent first: level, then
// deadline. Critical flags carry the crisis protocol.
func (s *Service) Flags(ctx context.Context, c Call, q FlagQuery) ([]Flag, error) {
	if err := q.validate(); err != nil {
		return nil, err
	}
	return oversightRead(ctx, s, c, "flag.list", func(tx Tx) ([]Flag, error) {
		tx.Resource("flags", q.Status, q.Subject)
		fs, err := tx.Flags(ctx, q.FlagFilter)
		s.withProtocol(fs, q.Lang)
		return fs, err
	})
}

// validate checks a flag listing's filter.
func (q FlagQuery) validate() error {
	inv := &problem.Invalid{}
	if q.Status != "" && q.Status != FlagOpen && q.Status != FlagAcknowledged && q.Status != FlagResolved {
		inv.Add("status", "must be open, acknowledged or resolved")
	}
	if q.Level != "" && !q.Level.Valid() {
		inv.Add("level", "must be critical, urgent or review")
	}
	if q.Limit < 1 || q.Limit > 1000 {
		inv.Add("limit", "must be a whole number from 1 to 1000")
	}
	return inv.Err()
}

// Flag returns one flag the caller may see.
func (s *Service) Flag(ctx context.Context, c Call, id, lang string) (Flag, error) {
	return read(ctx, s, c, "flag.read", "", func(tx Tx) (Flag, error) {
		f, err := tx.Flag(ctx, id)
		one := []Flag{f}
		s.withProtocol(one, lang)
		return one[0], err
	})
}

// AcknowledgeFlag records that the caller has seen an open flag and acts on
// it; ErrConflict when it is not open. Late acknowledgements are recorded
// as late.
func (s *Service) AcknowledgeFlag(ctx context.Context, c Call, id, lang string) (Flag, error) {
	return read(ctx, s, c, "flag.acknowledge", "", func(tx Tx) (Flag, error) {
		f, err := tx.Flag(ctx, id)
		if err != nil {
			return f, err
		}
		if f.Status != FlagOpen {
			return f, fmt.Errorf("flag is %s, not open: %w", f.Status, ErrConflict)
		}
		now := s.now().UTC()
		f.Status, f.AcknowledgedBy, f.AcknowledgedAt, f.Overdue = FlagAcknowledged, c.Principal.Actor(), &now, false
		if err := tx.UpdateFlag(ctx, f, "flag.acknowledged"); err != nil {
			return f, err
		}
		tx.Detail(map[string]any{"level": f.Level, "code": f.Code, "late": now.After(f.Deadline)})
		one := []Flag{f}
		s.withProtocol(one, lang)
		return one[0], nil
	})
}

// ResolveInput closes a flag: how it ended (ResolutionCode), what was done
// for the person (Interventions, coded), a note, and when they are screened
// again (FollowUpDue; the policy's interval for the flag's level when nil).
type ResolveInput struct {
	ResolutionCode string
	Interventions  []string
	Note           string
	FollowUpDue    *time.Time
}

// noInterventionNeeded are resolutions after which nothing had to be done.
var noInterventionNeeded = []string{"false_positive", "no_action_needed"}

// ResolveFlag closes an acknowledged flag with what was done and schedules
// the follow-up screening, which the due list then carries; ErrConflict when
// the flag is not acknowledged.
func (s *Service) ResolveFlag(ctx context.Context, c Call, id string, in ResolveInput) (Flag, error) {
	inv := &problem.Invalid{}
	if !ValidResolution(in.ResolutionCode) {
		inv.Add("resolution_code", "must be one of "+strings.Join(ResolutionCodes, ", "))
	}
	for i, iv := range in.Interventions {
		switch {
		case !oneOf(iv, Interventions):
			inv.Add(fmt.Sprintf("interventions[%d]", i), "must be one of "+strings.Join(Interventions, ", "))
		case slices.Index(in.Interventions, iv) != i:
			inv.Add(fmt.Sprintf("interventions[%d]", i), "listed twice")
		}
	}
	if len(in.Interventions) == 0 && in.ResolutionCode != "" && !slices.Contains(noInterventionNeeded, in.ResolutionCode) {
		inv.Add("interventions", "required: what was done for the person ("+strings.Join(Interventions, ", ")+")")
	}
	if !ValidNote(in.Note) {
		inv.Add("note", fmt.Sprintf("required, at most %d characters", MaxNoteRunes))
	}
	now := s.now().UTC()
	if in.FollowUpDue != nil && (in.FollowUpDue.Before(now) || in.FollowUpDue.After(now.AddDate(1, 0, 0))) {
		inv.Add("follow_up_due", "must be between now and one year from now")
	}
	if err := inv.Err(); err != nil {
		return Flag{}, err
	}
	return read(ctx, s, c, "flag.resolve", "", func(tx Tx) (Flag, error) {
		f, err := tx.Flag(ctx, id)
		if err != nil {
			return f, err
		}
		if f.Status != FlagAcknowledged {
			return f, fmt.Errorf("flag is %s; only an acknowledged flag can be resolved: %w", f.Status, ErrConflict)
		}
		due := in.FollowUpDue
		if due == nil && !slices.Contains(noInterventionNeeded, in.ResolutionCode) {
			d := now.Add(s.followUp(f.Level))
			due = &d
		}
		if due != nil {
			d := due.UTC().Truncate(time.Microsecond) // as stored
			due = &d
		}
		f.Status, f.ResolvedBy, f.ResolvedAt, f.ResolutionCode, f.ResolutionNote = FlagResolved, c.Principal.Actor(), &now, in.ResolutionCode, in.Note
		f.Interventions, f.FollowUpDue = in.Interventions, due
		if f.Interventions == nil {
			f.Interventions = []string{}
		}
		if err := tx.UpdateFlag(ctx, f, "flag.resolved"); err != nil {
			return f, err
		}
		tx.Detail(map[string]any{"level": f.Level, "code": f.Code, "resolution": in.ResolutionCode, "interventions": f.Interventions,
			"follow_up": due != nil})
		return f, nil
	})
}

func (s *Service) followUp(l screening.Level) time.Duration {
	if d, ok := s.policy.FollowUp[l]; ok && d > 0 {
		return d
	}
	return 30 * 24 * time.Hour
}
