package casework

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sunpath/sunpath/internal/audit"
	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/instrument"
	"github.com/sunpath/sunpath/internal/riskmodel"
)

// Service is the application layer: one method per use case of the case
// work, used alike by the JSON API and the web pages. Each use case is one
// audited unit of work in the store; the rules live here.
type Service struct {
	store        Store
	audit        AuditLog
	catalog      *instrument.Catalog
	registry     *Registry
	training     TrainingSource
	defaultModel string
	policy       Policy
	metrics      Metrics
	now          func() time.Time
	rollups      rollupCache
}

// Metrics hears of what committed use cases did, for counters; nil is a
// valid Metrics that counts nothing.
type Metrics interface {
	AssessmentStored(a Assessment)
	Recommended(model string, probability float64)
	OverrideDecided(direction, status string)
}

// Deps are what the service needs.
type Deps struct {
	Store   Store
	Audit   AuditLog
	Catalog *instrument.Catalog
	Models  map[string]*riskmodel.Model // shipped: the defaults at start
	// ModelSource, when set, holds the stored model versions (shadow and
	// active) that SyncModels loads over the shipped ones.
	ModelSource ModelSource
	// Training, when set, exports training files (ExportTraining).
	Training     TrainingSource
	DefaultModel string
	Policy       Policy
	Metrics      Metrics          // optional
	Now          func() time.Time // for tests; time.Now when nil
}

// New returns the service; it fails when a dependency is missing.
func New(d Deps) (*Service, error) {
	if d.Store == nil || d.Audit == nil || d.Catalog == nil || d.Models == nil {
		return nil, errors.New("casework: Store, Audit, Catalog and Models are required")
	}
	if d.DefaultModel != "" {
		if _, ok := d.Models[d.DefaultModel]; !ok {
			return nil, fmt.Errorf("casework: default model %q is not loaded", d.DefaultModel)
		}
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	def := DefaultPolicy()
	p := d.Policy
	if p.SessionTTL <= 0 {
		p.SessionTTL = def.SessionTTL
	}
	if p.KioskTTL <= 0 {
		p.KioskTTL = def.KioskTTL
	}
	if p.IdempotencyTTL <= 0 {
		p.IdempotencyTTL = def.IdempotencyTTL
	}
	if p.Flags == (FlagPolicy{}) {
		p.Flags = def.Flags
	}
	if p.Schedule.Every == nil {
		p.Schedule = def.Schedule
	}
	if p.FollowUp == nil {
		p.FollowUp = def.FollowUp
	}
	if p.CrisisProtocol == nil {
		p.CrisisProtocol = def.CrisisProtocol
	}
	if p.MaxBackdate <= 0 {
		p.MaxBackdate = def.MaxBackdate
	}
	return &Service{store: d.Store, audit: d.Audit, catalog: d.Catalog, registry: NewRegistry(d.Models, d.ModelSource),
		training: d.Training, defaultModel: d.DefaultModel, policy: p, metrics: d.Metrics, now: d.Now}, nil
}

// Policy returns the rules in force.
func (s *Service) Policy() Policy { return s.policy }

// Catalog returns the instruments.
func (s *Service) Catalog() *instrument.Catalog { return s.catalog }

// Models returns the active models by name, and the default's name.
func (s *Service) Models() (map[string]*riskmodel.Model, string) {
	return s.registry.Active(), s.defaultModel
}

// Call is who asks, in which request, and (for creating use cases) under
// which Idempotency-Key.
type Call struct {
	Principal auth.Principal
	RequestID string
	// IdempotencyKey and RequestHash (of method, path and body) make a
	// repeated request replay the first one's result.
	IdempotencyKey string
	RequestHash    []byte
}

// Outcome says how a creating use case was answered.
type Outcome struct {
	Replayed bool // the result is the first request's, replayed
	Created  bool // something new was stored
	// JSON, when set, is the result exactly as encoding/json encodes it
	// (an idempotent write encodes it for its stored reply): a front end
	// may send it instead of encoding the result again.
	JSON []byte
}

// unit is how a use case runs in the store.
type unit struct {
	action     string
	subject    string // prefetched with BEGIN
	ref        bool   // only the subject's identity and scope are needed
	grouped    bool   // may share a transaction (WriteGrouped)
	idempotent bool
	// persist, when set, is what of the result the idempotency record
	// keeps (e.g. never a kiosk token).
	persist func(any) any
	// readOnly units may run on a read replica (Store.Read).
	readOnly bool
	// history is read with BEGIN (Op.History).
	history []HistoryRead
}

// run executes fn as one audited unit of work. For an idempotent unit the
// result is stored with the idempotency record and a replay decodes it.
func run[T any](ctx context.Context, s *Service, c Call, u unit, fn func(Tx) (T, error)) (T, Outcome, error) {
	op := Op{Principal: c.Principal, Subject: u.subject, SubjectRef: u.ref, History: u.history,
		Audit: audit.Event{Actor: c.Principal.Actor(), Role: string(c.Principal.Role), Action: u.action, RequestID: c.RequestID}}
	if u.idempotent && c.IdempotencyKey != "" {
		op.Idem = &Idem{Client: c.Principal.Actor(), Key: c.IdempotencyKey, Hash: c.RequestHash, TTL: s.policy.IdempotencyTTL}
	}
	write := s.store.Write
	switch {
	case u.grouped:
		write = s.store.WriteGrouped
	case u.readOnly:
		write = func(ctx context.Context, op Op, fn func(Tx) (Reply, error)) (Reply, bool, error) {
			rep, err := s.store.Read(ctx, op, fn)
			return rep, false, err
		}
	}
	var out T
	rep, replayed, err := write(ctx, op, func(tx Tx) (Reply, error) {
		v, err := fn(tx)
		if err != nil {
			return Reply{}, err
		}
		out = v
		if op.Idem == nil {
			return Reply{}, nil
		}
		var keep any = v
		if u.persist != nil {
			keep = u.persist(v)
		}
		b, err := json.Marshal(keep)
		return Reply{Status: 200, Body: b}, err
	})
	if err != nil {
		var zero T
		return zero, Outcome{}, err
	}
	if replayed {
		var v T
		if err := json.Unmarshal(rep.Body, &v); err != nil {
			return v, Outcome{}, fmt.Errorf("replay stored result: %w", err)
		}
		return v, Outcome{Replayed: true}, nil
	}
	o := Outcome{Created: true}
	if u.persist == nil {
		o.JSON = rep.Body
	}
	return out, o, nil
}

// read runs fn as one audited read.
func read[T any](ctx context.Context, s *Service, c Call, action, subject string, fn func(Tx) (T, error)) (T, error) {
	v, _, err := run(ctx, s, c, unit{action: action, subject: subject}, fn)
	return v, err
}

// oversightRead runs fn as one audited read that may be served by a read
// replica: for the oversight listings and figures, which only read and can
// be a replication delay behind.
func oversightRead[T any](ctx context.Context, s *Service, c Call, action string, fn func(Tx) (T, error)) (T, error) {
	v, _, err := run(ctx, s, c, unit{action: action, readOnly: true}, fn)
	return v, err
}

// Record writes an audit event outside a unit of work.
func (s *Service) Record(ctx context.Context, ev audit.Event) error { return s.audit.Record(ctx, ev) }

// Audit lists audit events and records that they were read.
func (s *Service) Audit(ctx context.Context, c Call, f audit.Filter) ([]audit.Event, error) {
	evs, err := s.audit.List(ctx, f)
	if err != nil {
		return nil, err
	}
	if err := s.audit.Record(ctx, audit.Event{Actor: c.Principal.Actor(), Role: string(c.Principal.Role), Action: "audit.read",
		ResourceType: "audit", Subject: f.Subject, Outcome: audit.Success, RequestID: c.RequestID}); err != nil {
		return nil, err
	}
	return evs, nil
}

// Notifications lists webhook deliveries.
func (s *Service) Notifications(ctx context.Context, status string, limit int) ([]OutboxEntry, error) {
	return s.store.Outbox(ctx, status, limit)
}

// KioskPrincipal resolves a kiosk token (auth.ErrUnauthorized when it does
// not open a session).
func (s *Service) KioskPrincipal(ctx context.Context, token string) (auth.Principal, error) {
	return s.store.KioskPrincipal(ctx, token)
}

func (s *Service) count(fn func(Metrics)) {
	if s.metrics != nil {
		fn(s.metrics)
	}
}
