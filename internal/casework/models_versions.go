package casework

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/problem"
	"github.com/sunpath/sunpath/internal/riskmodel"
)

// ModelTx is what the model use cases need of a unit of work; Tx embeds it.
type ModelTx interface {
	// AddModelVersion stores a version with its files (ErrConflict when
	// the name and version are stored already) and moves the generation.
	AddModelVersion(ctx context.Context, v ModelVersion, files map[string][]byte) (ModelVersion, error)
	// StoredModelVersions lists the stored versions of name, newest first.
	StoredModelVersions(ctx context.Context, name string) ([]ModelVersion, error)
	// StoredModelVersion returns one version (ErrNotFound), locked.
	StoredModelVersion(ctx context.Context, name, version string) (ModelVersion, error)
	// SetModelState changes a version's state and moves the generation.
	SetModelState(ctx context.Context, versionID, state string) error
	// AddModelChange stores a pending promotion or rollback (ErrConflict
	// when one of the name is pending already).
	AddModelChange(ctx context.Context, ch ModelChange) (string, error)
	// ModelChange returns one change, locked (ErrNotFound).
	ModelChange(ctx context.Context, id string) (ModelChange, error)
	// DecideModelChange writes a change's decision.
	DecideModelChange(ctx context.Context, ch ModelChange) error
	// ModelChanges lists the changes of name, newest first.
	ModelChanges(ctx context.Context, name string) ([]ModelChange, error)
	// LastModelChange returns the newest approved change of name; ok is
	// false when there is none.
	LastModelChange(ctx context.Context, name string) (ch ModelChange, ok bool, err error)
	// AddShadowScore queues a shadow version's score of a recommendation.
	AddShadowScore(ctx context.Context, recommendationID, versionID string, p float64, tier Tier) error
	// ShadowPairs lists, for each shadow score of the versions given, the
	// recommendation's score beside it (recommendations of active only),
	// labelled by the outcomes of q.
	ShadowPairs(ctx context.Context, versionIDs []string, active ModelRef, q OutcomeQuery) ([]ShadowPair, error)
}

// ModelChange is a promotion of a shadow version to active, or a rollback
// to the version active before, requested by one admin and decided by
// another.
type ModelChange struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Kind string `json:"kind"` // promote or rollback
	// Version becomes active; VersionID is "" for the shipped model.
	Version   string `json:"version"`
	VersionID string `json:"-"`
	// FromVersion was active when the change was asked ("" for none).
	FromVersion   string     `json:"from_version,omitempty"`
	FromVersionID string     `json:"-"`
	Reason        string     `json:"reason"`
	Status        string     `json:"status"`
	RequestedBy   string     `json:"requested_by"`
	RequestedAt   time.Time  `json:"requested_at"`
	DecidedBy     string     `json:"decided_by,omitempty"`
	DecidedAt     *time.Time `json:"decided_at,omitempty"`
	DecisionNote  string     `json:"decision_note,omitempty"`
}

// Kinds of model change.
const (
	ChangePromote  = "promote"
	ChangeRollback = "rollback"
)

// ModelVersions is a model's versions: the shipped one, those stored, and
// the promotions and rollbacks asked and decided.
type ModelVersions struct {
	Name     string         `json:"name"`
	Active   string         `json:"active_version,omitempty"`
	Versions []ModelVersion `json:"versions"`
	Changes  []ModelChange  `json:"changes"`
}

// MaxModelBytes bounds the files of one uploaded version.
const MaxModelBytes = 4 << 20

var modelName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// ErrNotAdmin means a model use case was asked by someone else than an admin.
var ErrNotAdmin = fmt.Errorf("only an admin manages model versions: %w", ErrForbidden)

// UploadModelVersion stores a model directory's files as a new version of
// name, in shadow, audited: every file the manifest lists must be there
// with its sha256 (the error names the file), and the model must load.
func (s *Service) UploadModelVersion(ctx context.Context, c Call, name string, files map[string][]byte) (ModelVersion, Outcome, error) {
	if c.Principal.Role != auth.RoleAdmin {
		return ModelVersion{}, Outcome{}, ErrNotAdmin
	}
	if !modelName.MatchString(name) {
		return ModelVersion{}, Outcome{}, invalid("name", "lowercase letters, digits, '.', '_' or '-', at most 64")
	}
	total := 0
	for _, b := range files {
		total += len(b)
	}
	if total > MaxModelBytes {
		return ModelVersion{}, Outcome{}, invalid("files", fmt.Sprintf("at most %d bytes in all", MaxModelBytes))
	}
	m, err := riskmodel.LoadFiles(files)
	if err != nil {
		return ModelVersion{}, Outcome{}, fileError(err)
	}
	ref := m.Ref()
	if ref.Name != name {
		return ModelVersion{}, Outcome{}, invalid("files.model.json", fmt.Sprintf("the files are of model %q, not %q", ref.Name, name))
	}
	if sh, ok := s.registry.shipped[name]; ok && sh.Ref().Version == ref.Version {
		return ModelVersion{}, Outcome{}, fmt.Errorf("version %s of %s is the shipped one: %w", ref.Version, name, ErrConflict)
	}
	now := s.now().UTC()
	v := ModelVersion{Name: name, Version: ref.Version, SHA256: ref.SHA256, State: ModelShadow, UploadedBy: c.Principal.Actor(), UploadedAt: &now}
	for _, p := range slices.Sorted(maps.Keys(files)) {
		v.Files = append(v.Files, ModelFileInfo{Path: p, SHA256: riskmodel.SHA256(files[p]), Bytes: len(files[p])})
	}
	v, out, err := run(ctx, s, c, unit{action: "model.upload", idempotent: true}, func(tx Tx) (ModelVersion, error) {
		v, err := tx.AddModelVersion(ctx, v, files)
		if err != nil {
			return v, err
		}
		tx.Resource("model_version", v.ID, "")
		tx.Detail(map[string]any{"model": name, "version": v.Version, "sha256": v.SHA256, "state": v.State})
		return v, nil
	})
	if err == nil {
		err = s.syncAfter(ctx)
	}
	return v, out, err
}

// fileError names the file a load error is about as files.<name>.
func fileError(err error) error {
	msg := err.Error()
	name, rest, ok := strings.Cut(msg, ": ")
	if !ok || strings.ContainsAny(name, " /") {
		return invalid("files", msg)
	}
	if errors.Is(err, riskmodel.ErrTampered) {
		return invalid("files."+name, rest)
	}
	return invalid("files."+name, strings.TrimSuffix(rest, ": "+riskmodel.ErrInvalid.Error()))
}

// syncAfter reloads this replica's registry after a change it committed;
// the others pick it up when they poll.
func (s *Service) syncAfter(ctx context.Context) error {
	if err := s.registry.Sync(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("stored, but the models were not reloaded (the next poll retries): %w", err)
	}
	return nil
}

// ModelVersionList lists a model's versions and changes, audited.
func (s *Service) ModelVersionList(ctx context.Context, c Call, name string) (ModelVersions, error) {
	if c.Principal.Role != auth.RoleAdmin && c.Principal.Role != auth.RoleSupervisor {
		return ModelVersions{}, fmt.Errorf("only admins and supervisors see model versions: %w", ErrForbidden)
	}
	snap := s.registry.snapshot()
	return read(ctx, s, c, "model.versions", "", func(tx Tx) (ModelVersions, error) {
		out := ModelVersions{Name: name, Versions: []ModelVersion{}}
		if m, ok := snap.active[name]; ok {
			out.Active = m.Ref().Version
		}
		if sh, ok := s.registry.shipped[name]; ok {
			st := ModelRetired
			if snap.activeID[name] == "" {
				st = ModelActive
			}
			out.Versions = append(out.Versions, ModelVersion{Name: name, Version: sh.Ref().Version, SHA256: sh.Ref().SHA256, State: st, Shipped: true})
		}
		vs, err := tx.StoredModelVersions(ctx, name)
		if err != nil {
			return out, err
		}
		out.Versions = append(out.Versions, vs...)
		if len(out.Versions) == 0 {
			return out, fmt.Errorf("model %s: %w", name, ErrNotFound)
		}
		if out.Changes, err = tx.ModelChanges(ctx, name); err != nil {
			return out, err
		}
		s.nameShipped(out.Changes)
		tx.Resource("model", name, "")
		return out, nil
	})
}

func (s *Service) nameShipped(chs []ModelChange) {
	for i := range chs {
		sh, ok := s.registry.shipped[chs[i].Name]
		if !ok {
			continue
		}
		if chs[i].VersionID == "" {
			chs[i].Version = sh.Ref().Version
		}
		if chs[i].FromVersionID == "" && chs[i].FromVersion == "" {
			chs[i].FromVersion = sh.Ref().Version
		}
	}
}

// ModelChangeInput asks for a promotion (of Version, in shadow) or a
// rollback (to the version active before the current one).
type ModelChangeInput struct {
	Kind    string
	Version string // promote only
	Reason  string
}

// RequestModelChange asks for a change of a model's active version. An
// admin (a person) asks with a reason; another admin decides
// (DecideModelChange). Only one change per model may wait.
func (s *Service) RequestModelChange(ctx context.Context, c Call, name string, in ModelChangeInput) (ModelChange, Outcome, error) {
	inv := &problem.Invalid{}
	if in.Kind != ChangePromote && in.Kind != ChangeRollback {
		inv.Add("kind", "must be promote or rollback")
	}
	if in.Kind == ChangePromote && in.Version == "" {
		inv.Add("version", "required: the shadow version to promote")
	}
	if in.Kind == ChangeRollback && in.Version != "" {
		inv.Add("version", "not given for a rollback: it returns to the version active before")
	}
	if !ValidNote(in.Reason) {
		inv.Add("reason", fmt.Sprintf("required, at most %d characters", MaxNoteRunes))
	}
	if err := inv.Err(); err != nil {
		return ModelChange{}, Outcome{}, err
	}
	if c.Principal.Role != auth.RoleAdmin || !c.Principal.IsPerson() {
		return ModelChange{}, Outcome{}, fmt.Errorf("only an admin, signed in as a person, asks to change a model's active version: %w", ErrForbidden)
	}
	action := "model.promotion.request"
	if in.Kind == ChangeRollback {
		action = "model.rollback.request"
	}
	return run(ctx, s, c, unit{action: action, idempotent: true}, func(tx Tx) (ModelChange, error) {
		ch := ModelChange{Name: name, Kind: in.Kind, Reason: strings.TrimSpace(in.Reason), Status: "pending",
			RequestedBy: c.Principal.Actor(), RequestedAt: s.now().UTC()}
		cur, curOK, err := s.activeStored(ctx, tx, name)
		if err != nil {
			return ch, err
		}
		if curOK {
			ch.FromVersion, ch.FromVersionID = cur.Version, cur.ID
		} else if sh, ok := s.registry.shipped[name]; ok {
			ch.FromVersion = sh.Ref().Version
		}
		switch in.Kind {
		case ChangePromote:
			v, err := tx.StoredModelVersion(ctx, name, in.Version)
			if err != nil {
				return ch, err
			}
			if v.State != ModelShadow {
				return ch, fmt.Errorf("version %s is %s; only a version in shadow is promoted: %w", v.Version, v.State, ErrConflict)
			}
			ch.Version, ch.VersionID = v.Version, v.ID
		case ChangeRollback:
			if !curOK {
				return ch, fmt.Errorf("model %s runs its shipped version: nothing to roll back: %w", name, ErrConflict)
			}
			last, ok, err := tx.LastModelChange(ctx, name)
			if err != nil {
				return ch, err
			}
			if !ok || last.VersionID != cur.ID {
				return ch, fmt.Errorf("model %s: the version active before is not known: %w", name, ErrConflict)
			}
			if last.FromVersionID == "" {
				sh, ok := s.registry.shipped[name]
				if !ok {
					return ch, fmt.Errorf("model %s had no version active before %s: %w", name, cur.Version, ErrConflict)
				}
				ch.Version = sh.Ref().Version
			} else {
				ch.Version, ch.VersionID = last.FromVersion, last.FromVersionID
			}
		}
		if ch.ID, err = tx.AddModelChange(ctx, ch); err != nil {
			return ch, err
		}
		tx.Resource("model_change", ch.ID, "")
		tx.Detail(map[string]any{"model": name, "kind": ch.Kind, "version": ch.Version, "from_version": ch.FromVersion})
		return ch, nil
	})
}

// activeStored returns the stored active version of name, if any.
func (s *Service) activeStored(ctx context.Context, tx Tx, name string) (ModelVersion, bool, error) {
	vs, err := tx.StoredModelVersions(ctx, name)
	if err != nil {
		return ModelVersion{}, false, err
	}
	for _, v := range vs {
		if v.State == ModelActive {
			return v, true, nil
		}
	}
	return ModelVersion{}, false, nil
}

// DecideModelChange approves or rejects a pending change. Only an admin,
// signed in as a person, who did not ask may decide; approval makes the
// version active at once on this replica (the others on their next poll):
// on promotion the version active before is retired, on rollback the
// version rolled back returns to shadow.
func (s *Service) DecideModelChange(ctx context.Context, c Call, id string, approve bool, note string) (ModelChange, error) {
	if utf8.RuneCountInString(note) > MaxNoteRunes {
		return ModelChange{}, invalid("note", fmt.Sprintf("at most %d characters", MaxNoteRunes))
	}
	if c.Principal.Role != auth.RoleAdmin || !c.Principal.IsPerson() {
		return ModelChange{}, fmt.Errorf("only an admin, signed in as a person, decides a change of a model's active version: %w", ErrForbidden)
	}
	action := "model.change.reject"
	if approve {
		action = "model.change.approve"
	}
	ch, _, err := run(ctx, s, c, unit{action: action}, func(tx Tx) (ModelChange, error) {
		ch, err := tx.ModelChange(ctx, id)
		if err != nil {
			return ch, err
		}
		tx.Resource("model_change", ch.ID, "")
		if ch.RequestedBy == c.Principal.Actor() {
			return ch, fmt.Errorf("the admin who asked for a model change may not decide it: %w", ErrForbidden)
		}
		if ch.Status != "pending" {
			return ch, fmt.Errorf("model change is already %s: %w", ch.Status, ErrConflict)
		}
		now := s.now().UTC()
		ch.Status, ch.DecidedBy, ch.DecidedAt, ch.DecisionNote = "rejected", c.Principal.Actor(), &now, strings.TrimSpace(note)
		if approve {
			ch.Status = "approved"
			cur, curOK, err := s.activeStored(ctx, tx, ch.Name)
			if err != nil {
				return ch, err
			}
			if cur.ID != ch.FromVersionID || !curOK && ch.FromVersionID != "" {
				return ch, fmt.Errorf("the active version changed since the request: %w", ErrConflict)
			}
			if curOK {
				st := ModelRetired
				if ch.Kind == ChangeRollback {
					st = ModelShadow
				}
				if err := tx.SetModelState(ctx, cur.ID, st); err != nil {
					return ch, err
				}
			}
			if ch.VersionID != "" {
				if err := tx.SetModelState(ctx, ch.VersionID, ModelActive); err != nil {
					return ch, err
				}
			}
		}
		if err := tx.DecideModelChange(ctx, ch); err != nil {
			return ch, err
		}
		tx.Detail(map[string]any{"model": ch.Name, "kind": ch.Kind, "decision": ch.Status, "version": ch.Version,
			"from_version": ch.FromVersion, "requested_by": ch.RequestedBy})
		return ch, nil
	})
	if err == nil && approve {
		err = s.syncAfter(ctx)
	}
	return ch, err
}

// scoreShadows has every shadow version of the recommendation's model score
// the person's profile, storing each result with the recommendation. A
// shadow version that cannot score the profile is left out: nothing about
// the recommendation depends on it.
func (s *Service) scoreShadows(ctx context.Context, tx Tx, shadows []shadowModel, subj Subject, rec Recommendation) error {
	for _, sm := range shadows {
		features, _, err := s.Features(sm.m, subj.Profile)
		if err != nil {
			continue
		}
		pred, err := Predict(sm.m, features)
		if err != nil || !Tier(pred.Tier).Valid() {
			continue
		}
		if err := tx.AddShadowScore(ctx, rec.ID, sm.id, pred.Probability, Tier(pred.Tier)); err != nil {
			return err
		}
	}
	return nil
}
