package casework

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sunpath/sunpath/internal/riskmodel"
)

// States of a stored model version.
const (
	// ModelShadow scores every recommendation of its name alongside the
	// active version; its results are stored, never shown.
	ModelShadow = "shadow"
	// ModelActive is the version recommendations of its name come from.
	ModelActive = "active"
	// ModelRetired was active once and is no longer used.
	ModelRetired = "retired"
)

// ModelVersion is one version of a model as stored (or, Shipped, the
// model directory under models/ that the server started with).
type ModelVersion struct {
	ID          string          `json:"id,omitempty"`
	Name        string          `json:"name"`
	Version     string          `json:"version"`
	SHA256      string          `json:"sha256"`
	State       string          `json:"state"`
	Shipped     bool            `json:"shipped"`
	UploadedBy  string          `json:"uploaded_by,omitempty"`
	UploadedAt  *time.Time      `json:"uploaded_at,omitempty"`
	ActivatedAt *time.Time      `json:"activated_at,omitempty"`
	Files       []ModelFileInfo `json:"files,omitempty"`
}

// ModelFileInfo is one artifact of a stored version.
type ModelFileInfo struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Bytes  int    `json:"bytes"`
}

// ModelSource is where the stored model versions are read outside a unit
// of work, by every replica; postgres.Cases implements it.
type ModelSource interface {
	// ModelGeneration moves with every change of the stored versions.
	ModelGeneration(ctx context.Context) (int64, error)
	// LiveModelVersions lists the versions in shadow or active.
	LiveModelVersions(ctx context.Context) ([]ModelVersion, error)
	// ModelFiles returns a version's artifacts by file name.
	ModelFiles(ctx context.Context, versionID string) (map[string][]byte, error)
}

// Registry holds the models the service scores with: the shipped ones and
// the stored versions, reloaded without a restart when the stored versions
// change. Readers take an immutable snapshot; Sync swaps in a new one.
type Registry struct {
	shipped map[string]*riskmodel.Model
	src     ModelSource
	cur     atomic.Pointer[models]
	mu      sync.Mutex // serialises Sync
	// parsed keeps loaded stored versions by id: a version's files never change.
	parsed map[string]*riskmodel.Model
}

// models is one snapshot of the registry.
type models struct {
	generation int64
	// active by name: a stored active version, else the shipped model.
	active map[string]*riskmodel.Model
	// activeID is the stored id of each active model ("" when shipped).
	activeID map[string]string
	shadows  map[string][]shadowModel
	// all is every loaded model, for the profile check.
	all []*riskmodel.Model
}

type shadowModel struct {
	id string
	m  *riskmodel.Model
}

// NewRegistry returns a registry of the shipped models; with src, Sync
// adds the stored versions.
func NewRegistry(shipped map[string]*riskmodel.Model, src ModelSource) *Registry {
	r := &Registry{shipped: shipped, src: src, parsed: map[string]*riskmodel.Model{}}
	r.cur.Store(r.build(-1, nil))
	return r
}

func (r *Registry) build(gen int64, live []loaded) *models {
	s := &models{generation: gen, active: maps.Clone(r.shipped), activeID: map[string]string{}, shadows: map[string][]shadowModel{}}
	for _, l := range live {
		switch l.v.State {
		case ModelActive:
			s.active[l.v.Name], s.activeID[l.v.Name] = l.m, l.v.ID
		case ModelShadow:
			s.shadows[l.v.Name] = append(s.shadows[l.v.Name], shadowModel{id: l.v.ID, m: l.m})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(s.active)) {
		s.all = append(s.all, s.active[name])
	}
	for _, name := range slices.Sorted(maps.Keys(s.shadows)) {
		for _, sm := range s.shadows[name] {
			s.all = append(s.all, sm.m)
		}
	}
	return s
}

type loaded struct {
	v ModelVersion
	m *riskmodel.Model
}

func (r *Registry) snapshot() *models { return r.cur.Load() }

// Sync loads the stored versions when they changed since the last Sync. A
// stored version that fails to load (its files no longer match their
// sha256) fails the call and leaves the registry as it was.
func (r *Registry) Sync(ctx context.Context) error {
	if r.src == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	gen, err := r.src.ModelGeneration(ctx)
	if err != nil {
		return err
	}
	if gen == r.snapshot().generation {
		return nil
	}
	vs, err := r.src.LiveModelVersions(ctx)
	if err != nil {
		return err
	}
	live := make([]loaded, 0, len(vs))
	for _, v := range vs {
		m, ok := r.parsed[v.ID]
		if !ok {
			files, err := r.src.ModelFiles(ctx, v.ID)
			if err != nil {
				return err
			}
			if m, err = riskmodel.LoadFiles(files); err != nil {
				return fmt.Errorf("stored model %s %s: %w", v.Name, v.Version, err)
			}
			if ref := m.Ref(); ref.Name != v.Name || ref.Version != v.Version || ref.SHA256 != v.SHA256 {
				return fmt.Errorf("stored model %s %s: its files are of %s %s (sha256 %s, recorded %s): %w",
					v.Name, v.Version, ref.Name, ref.Version, ref.SHA256, v.SHA256, riskmodel.ErrTampered)
			}
			r.parsed[v.ID] = m
		}
		live = append(live, loaded{v: v, m: m})
	}
	r.cur.Store(r.build(gen, live))
	return nil
}

// Poll calls Sync every interval until ctx ends, reporting failures to
// onErr: a replica picks up versions another replica stored.
func (r *Registry) Poll(ctx context.Context, every time.Duration, onErr func(error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := r.Sync(ctx); err != nil && ctx.Err() == nil && onErr != nil {
				onErr(err)
			}
		}
	}
}

// Generation is the stored generation the registry holds (-1 before the
// first Sync).
func (r *Registry) Generation() int64 { return r.snapshot().generation }

// Active returns the models recommendations come from, by name.
func (r *Registry) Active() map[string]*riskmodel.Model { return r.snapshot().active }

// Shadows returns the models in shadow of name.
func (r *Registry) Shadows(name string) []*riskmodel.Model {
	var out []*riskmodel.Model
	for _, sm := range r.snapshot().shadows[name] {
		out = append(out, sm.m)
	}
	return out
}

// Registry returns the models the service scores with (for the replicas'
// poll and for tests).
func (s *Service) Registry() *Registry { return s.registry }

// SyncModels loads stored model versions that changed (see Registry.Sync).
func (s *Service) SyncModels(ctx context.Context) error { return s.registry.Sync(ctx) }
