// Package screenflow is the one place where an administration becomes a
// stored assessment: answers are validated and scored by the instrument's
// definition, the result is stored with its flags in the caller's unit of
// work, critical flags carry the crisis protocol, and stored assessments are
// counted. The JSON API and the web pages both go through it.
package screenflow

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/instrument"
	"github.com/sunpath/sunpath/internal/postgres"
	"github.com/sunpath/sunpath/internal/problem"
	"github.com/sunpath/sunpath/internal/screening"
)

// KioskAdministrator is recorded as who administered a self-administered session.
const KioskAdministrator = "kiosk (self-administered)"

// Service scores, stores and counts administrations.
type Service struct {
	catalog     *instrument.Catalog
	rules       []postgres.ConsecutiveRule
	crisis      map[string]string
	assessments *prometheus.CounterVec
	flags       *prometheus.CounterVec
}

// New returns the service and registers its counters with reg.
func New(cat *instrument.Catalog, rules []postgres.ConsecutiveRule, crisisProtocol map[string]string, reg prometheus.Registerer) *Service {
	f := promauto.With(reg)
	return &Service{
		catalog: cat, rules: rules, crisis: crisisProtocol,
		assessments: f.NewCounterVec(prometheus.CounterOpts{
			Name: "sunpath_assessments_total", Help: "Assessments stored, by instrument.",
		}, []string{"instrument"}),
		flags: f.NewCounterVec(prometheus.CounterOpts{
			Name: "sunpath_flags_raised_total", Help: "Flags raised, by level and code.",
		}, []string{"level", "code"}),
	}
}

// Scored is an administration validated and scored, ready to store.
type Scored struct {
	Def     *screening.Definition
	Answers []byte // canonical JSON, sealed at rest
	Result  screening.Result
}

// Score validates raw answers (a JSON object of item id → value) for the
// instrument and language, and scores them as the manual says. Failures are
// *problem.Invalid naming the field or every offending item.
func (s *Service) Score(instrumentID string, raw []byte, opt screening.ScoreOptions) (Scored, error) {
	def, ok := s.catalog.Get(instrumentID)
	if !ok {
		return Scored{}, invalid("instrument", "unknown instrument; GET /v1/instruments lists them")
	}
	if !slices.Contains(def.Languages, opt.Language) {
		return Scored{}, invalid("language", "the instrument is not available in this language")
	}
	answers, err := screening.DecodeAnswers(raw)
	if err != nil {
		return Scored{}, err
	}
	res, err := def.Score(answers, opt)
	if err != nil {
		return Scored{}, err
	}
	canon, err := json.Marshal(answers)
	if err != nil {
		return Scored{}, err
	}
	return Scored{Def: def, Answers: canon, Result: res}, nil
}

func invalid(field, detail string) error {
	inv := &problem.Invalid{}
	inv.Add(field, detail)
	return inv
}

// Store records a scored administration of subj in tx: the assessment, the
// flags its rules and the cross-instrument rules raise, their notifications.
// Critical flags carry the crisis protocol in the administration's language.
// administeredBy defaults to the principal.
func (s *Service) Store(ctx context.Context, tx *postgres.Tx, p auth.Principal, subj casework.Subject, sc Scored,
	administeredBy string, started *time.Time, completed time.Time, session *uuid.UUID) (casework.Assessment, error) {
	var flags []postgres.FlagSpec
	for _, f := range sc.Result.Flags {
		flags = append(flags, postgres.FlagSpec{Code: f.Code, Level: string(f.Level), Item: f.Item})
	}
	if administeredBy == "" {
		administeredBy = p.Actor()
	}
	a, err := tx.AddAssessment(ctx, subj, postgres.NewAssessment{
		Instrument: sc.Def.ID, Version: sc.Def.Version, ContentHash: sc.Def.ContentHash, EngineVersion: screening.EngineVersion,
		Language: sc.Result.Language, Answers: sc.Answers, Result: sc.Result.AppendJSON(nil), Total: sc.Result.Total,
		Severity: sc.Result.Severity, Flags: flags, AdministeredBy: administeredBy, StartedAt: started, CompletedAt: completed, SessionID: session,
	}, s.rules)
	if err != nil {
		return a, err
	}
	s.WithProtocol(a.Flags, sc.Result.Language)
	return a, nil
}

// Refusal is the engine's refusal of a session's answers, by instrument.
type Refusal struct {
	ByInstrument map[string]*problem.Invalid
}

func (r *Refusal) Error() string { return "the answers of the session cannot be scored" }

// Invalid flattens the refusal into one list, each error's field prefixed
// with its instrument.
func (r *Refusal) Invalid() *problem.Invalid {
	out := &problem.Invalid{}
	ids := make([]string, 0, len(r.ByInstrument))
	for id := range r.ByInstrument {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		for _, fe := range r.ByInstrument[id].Errors {
			fe.Field = strings.TrimSuffix(id+"."+fe.Field, ".")
			out.Errors = append(out.Errors, fe)
		}
	}
	return out
}

// Submit scores every instrument of an open session, stores each result in
// tx and closes the session; a *Refusal when any answers cannot be scored
// (then nothing is stored). A kiosk submission is recorded as
// self-administered.
func (s *Service) Submit(ctx context.Context, tx *postgres.Tx, p auth.Principal, sess casework.Session, subj casework.Subject) ([]casework.Assessment, error) {
	now := time.Now().UTC()
	ref := &Refusal{ByInstrument: map[string]*problem.Invalid{}}
	var all []Scored
	for _, inst := range sess.Instruments {
		raw := []byte("{}")
		if sess.Answers[inst] != nil {
			raw, _ = json.Marshal(sess.Answers[inst])
		}
		sc, err := s.Score(inst, raw, screening.ScoreOptions{Language: sess.Language, StartedAt: sess.CreatedAt, CompletedAt: now})
		var inv *problem.Invalid
		if errors.As(err, &inv) {
			ref.ByInstrument[inst] = inv
			continue
		}
		if err != nil {
			return nil, err
		}
		all = append(all, sc)
	}
	if len(ref.ByInstrument) > 0 {
		return nil, ref
	}
	by := sess.CreatedBy
	if p.Kind == auth.KindKiosk {
		by = KioskAdministrator
	}
	sid, _ := uuid.Parse(sess.ID)
	started := sess.CreatedAt
	out := make([]casework.Assessment, 0, len(all))
	for _, sc := range all {
		a, err := s.Store(ctx, tx, p, subj, sc, by, &started, now, &sid)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	if err := tx.MarkSessionSubmitted(ctx, sess.ID); err != nil {
		return nil, err
	}
	tx.Resource("session", sess.ID, subj.ID)
	return out, nil
}

// Protocol returns the crisis protocol in lang, or in Chinese.
func (s *Service) Protocol(lang string) string {
	if t := s.crisis[lang]; t != "" {
		return t
	}
	return s.crisis["zh-CN"]
}

// WithProtocol adds the crisis protocol to every critical flag.
func (s *Service) WithProtocol(flags []casework.Flag, lang string) {
	for i := range flags {
		if flags[i].Level == "critical" {
			flags[i].CrisisProtocol = s.Protocol(lang)
		}
	}
}

// Count records stored assessments and their flags in the metrics; call it
// after the unit of work committed.
func (s *Service) Count(as ...casework.Assessment) {
	for _, a := range as {
		s.assessments.WithLabelValues(a.Instrument).Inc()
		for _, f := range a.Flags {
			s.flags.WithLabelValues(f.Level, f.Code).Inc()
		}
	}
}
