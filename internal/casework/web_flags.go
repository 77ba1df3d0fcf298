package casework

import (
	"context"
	"slices"
)

// FlagQueue is a flag listing with the names of the people the flags are
// about, for the pages' queue (the API lists ids only).
type FlagQueue struct {
	Flags []Flag
	Names map[string]string // case-system id → display name
}

// FlagQueue lists the flags the caller may see, as Flags does, with the
// people's names, in one audited read.
func (s *Service) FlagQueue(ctx context.Context, c Call, q FlagQuery) (FlagQueue, error) {
	if err := q.validate(); err != nil {
		return FlagQueue{}, err
	}
	return read(ctx, s, c, "flag.list", "", func(tx Tx) (FlagQueue, error) {
		tx.Resource("flags", q.Status, q.Subject)
		fs, err := tx.Flags(ctx, q.FlagFilter)
		if err != nil {
			return FlagQueue{}, err
		}
		s.withProtocol(fs, q.Lang)
		var ids []string
		for _, f := range fs {
			if !slices.Contains(ids, f.SubjectID) {
				ids = append(ids, f.SubjectID)
			}
		}
		names, err := tx.SubjectNames(ctx, ids)
		return FlagQueue{Flags: fs, Names: names}, err
	})
}
