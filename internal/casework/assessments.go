package casework

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/problem"
	"github.com/sunpath/sunpath/internal/screening"
)

// KioskAdministrator is recorded as who administered a self-administered session.
const KioskAdministrator = "kiosk (self-administered)"

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

// AssessmentInput is one administration entered in full: by a case system,
// or from paper (CompletedAt is when the paper was filled in).
type AssessmentInput struct {
	Instrument     string
	Answers        json.RawMessage
	Language       string
	Population     string
	StartedAt      *time.Time
	CompletedAt    *time.Time
	AdministeredBy string
}

// SubmitAssessment scores and stores one administration of subject id with
// the flags it raises. Concurrent submissions may share one transaction.
func (s *Service) SubmitAssessment(ctx context.Context, c Call, id string, in AssessmentInput) (Assessment, Outcome, error) {
	now := s.now().UTC()
	inv := &problem.Invalid{}
	if in.Instrument == "" {
		inv.Add("instrument", "required")
	}
	if len(in.Answers) == 0 {
		inv.Add("answers", "required: an object of item id → value")
	}
	if in.Language == "" {
		inv.Add("language", "required: zh-CN or en")
	}
	if utf8.RuneCountInString(in.AdministeredBy) > 100 {
		inv.Add("administered_by", "at most 100 characters")
	}
	completed := now
	if in.CompletedAt != nil {
		completed = in.CompletedAt.UTC()
		switch {
		case completed.After(now.Add(5 * time.Minute)):
			inv.Add("completed_at", "must not be in the future")
		case completed.Before(now.Add(-s.policy.MaxBackdate)):
			inv.Add("completed_at", "must be within "+days(s.policy.MaxBackdate)+" days before now")
		}
	}
	if in.StartedAt != nil && in.StartedAt.After(completed) {
		inv.Add("started_at", "must not be after completed_at")
	}
	if err := inv.Err(); err != nil {
		return Assessment{}, Outcome{}, err
	}
	opt := screening.ScoreOptions{Language: in.Language, Population: in.Population, CompletedAt: completed}
	if in.StartedAt != nil {
		opt.StartedAt = *in.StartedAt
	}
	sc, err := s.Score(in.Instrument, in.Answers, opt)
	if err != nil {
		return Assessment{}, Outcome{}, err
	}
	a, out, err := run(ctx, s, c, unit{action: "assessment.create", subject: id, ref: true, grouped: true, idempotent: true, history: s.historyReads(sc)},
		func(tx Tx) (Assessment, error) {
			subj, err := tx.SubjectRef(ctx, id)
			if err != nil {
				return Assessment{}, err
			}
			return s.store1(ctx, tx, c, subj, sc, in.AdministeredBy, in.StartedAt, completed, "")
		})
	if err == nil && !out.Replayed {
		s.count(func(m Metrics) { m.AssessmentStored(a) })
	}
	return a, out, err
}

func days(d time.Duration) string {
	return strings.TrimSuffix(time.Duration(d/(24*time.Hour)).String(), "ns")
}

// store1 records a scored administration of subj in tx: the assessment,
// the flags its rules and the cross-instrument rules raise, with deadlines
// from the policy. Critical flags carry the crisis protocol in the
// administration's language. administeredBy defaults to the caller.
func (s *Service) store1(ctx context.Context, tx Tx, c Call, subj Subject, sc Scored, administeredBy string,
	started *time.Time, completed time.Time, session string) (Assessment, error) {
	now := s.now().UTC()
	var flags []Flag
	for _, f := range sc.Result.Flags {
		flags = append(flags, Flag{Source: "instrument", Code: f.Code, Level: f.Level, Item: f.Item})
	}
	// The rules read earlier results, so they run before this one is
	// queued for insertion with the rest of the unit of work.
	for _, r := range s.policy.Rules {
		fired, err := s.consecutive(ctx, tx, subj, r, sc)
		if err != nil {
			return Assessment{}, err
		}
		if fired {
			flags = append(flags, Flag{Source: "rule", Code: r.Code, Level: r.Level})
		}
	}
	for i := range flags {
		flags[i].RaisedAt, flags[i].Deadline = now, s.policy.Flags.Deadline(string(flags[i].Level), now)
		flags[i].Status, flags[i].SubjectID, flags[i].Unit, flags[i].Counselor = "open", subj.ID, subj.Unit, subj.Counselor
	}
	if administeredBy == "" {
		administeredBy = c.Principal.Actor()
	}
	a, err := tx.AddAssessment(ctx, subj, NewAssessment{
		Instrument: sc.Def.ID, Version: sc.Def.Version, ContentHash: sc.Def.ContentHash, EngineVersion: screening.EngineVersion,
		Language: sc.Result.Language, Answers: sc.Answers, Result: sc.Result.AppendJSON(nil), Total: sc.Result.Total,
		Severity: sc.Result.Severity, Flags: flags, AdministeredBy: administeredBy, StartedAt: started, CompletedAt: completed, SessionID: session,
	})
	if err != nil {
		return a, err
	}
	s.withProtocol(a.Flags, sc.Result.Language)
	return a, nil
}

// historyReads are the reads of earlier results consecutive will make for
// sc: one per rule the new result qualifies for.
func (s *Service) historyReads(sc Scored) []HistoryRead {
	var hs []HistoryRead
	for _, r := range s.policy.Rules {
		if r.qualifies(sc) && r.Count > 1 {
			hs = append(hs, HistoryRead{Instrument: r.Instrument, N: r.Count - 1, Code: r.Code})
		}
	}
	return hs
}

// qualifies reports whether sc is a result r counts: of its instrument,
// with one of its severities.
func (r ConsecutiveRule) qualifies(sc Scored) bool {
	return sc.Def.ID == r.Instrument && slices.Contains(r.Severities, sc.Result.Severity)
}

// consecutive reports whether the new result and the r.Count−1 results of
// r.Instrument before it all have one of r.Severities, with no flag of the
// rule unresolved. It asks the store only when the new result qualifies.
func (s *Service) consecutive(ctx context.Context, tx Tx, subj Subject, r ConsecutiveRule, sc Scored) (bool, error) {
	if !r.qualifies(sc) {
		return false, nil
	}
	if r.Count <= 1 {
		return true, nil
	}
	sev, unresolved, err := tx.RecentSeverities(ctx, subj, r.Instrument, r.Count-1, r.Code)
	if err != nil || unresolved || len(sev) < r.Count-1 {
		return false, err
	}
	for _, v := range sev {
		if !slices.Contains(r.Severities, v) {
			return false, nil
		}
	}
	return true, nil
}

// Protocol returns the crisis protocol in lang, or in Chinese.
func (s *Service) Protocol(lang string) string {
	if t := s.policy.CrisisProtocol[lang]; t != "" {
		return t
	}
	return s.policy.CrisisProtocol["zh-CN"]
}

// withProtocol adds the crisis protocol to every critical flag.
func (s *Service) withProtocol(flags []Flag, lang string) {
	for i := range flags {
		if flags[i].Level == screening.LevelCritical {
			flags[i].CrisisProtocol = s.Protocol(lang)
		}
	}
}

// Assessments lists a person's assessments, newest first; answers only for
// staff who ask.
func (s *Service) Assessments(ctx context.Context, c Call, id string, f AssessmentFilter) ([]Assessment, error) {
	f.IncludeAnswers = f.IncludeAnswers && mayReadAnswers(c.Principal)
	return read(ctx, s, c, "assessment.list", id, func(tx Tx) ([]Assessment, error) {
		subj, err := tx.Subject(ctx, id)
		if err != nil {
			return nil, err
		}
		as, err := tx.Assessments(ctx, subj, f)
		if as == nil {
			as = []Assessment{}
		}
		return as, err
	})
}

// Assessment returns one assessment with its answers (for staff) and flags.
func (s *Service) Assessment(ctx context.Context, c Call, id string) (Assessment, error) {
	return read(ctx, s, c, "assessment.read", "", func(tx Tx) (Assessment, error) {
		return tx.Assessment(ctx, id, mayReadAnswers(c.Principal))
	})
}

// Trend is a person's series of one instrument with reliable-change marks.
type Trend struct {
	SubjectID      string       `json:"subject_id"`
	Instrument     string       `json:"instrument"`
	ReliableChange *int         `json:"reliable_change_points"`
	Points         []TrendPoint `json:"points"`
}

// Trend returns a person's results for an instrument, oldest first, each
// change of at least the instrument's reliable-change points marked.
func (s *Service) Trend(ctx context.Context, c Call, id, instrument string) (Trend, error) {
	if _, ok := s.catalog.Get(instrument); !ok {
		return Trend{}, &problem.Invalid{Errors: []problem.FieldError{{Field: "instrument", Detail: "unknown instrument"}}}
	}
	return read(ctx, s, c, "trend.read", id, func(tx Tx) (Trend, error) {
		subj, err := tx.Subject(ctx, id)
		if err != nil {
			return Trend{}, err
		}
		return s.trend(ctx, tx, subj, instrument)
	})
}

func (s *Service) trend(ctx context.Context, tx Tx, subj Subject, instrument string) (Trend, error) {
	pts, err := tx.Trend(ctx, subj, instrument)
	if err != nil {
		return Trend{}, err
	}
	out := Trend{SubjectID: subj.ID, Instrument: instrument, Points: MarkReliableChange(pts, s.policy.ReliableChange[instrument])}
	if t := s.policy.ReliableChange[instrument]; t > 0 {
		out.ReliableChange = &t
	}
	tx.Resource("trend", instrument, subj.ID)
	return out, nil
}

// MarkReliableChange sets each point's change since the previous total and
// whether it is reliable (threshold points or more; 0: not defined).
func MarkReliableChange(pts []TrendPoint, threshold int) []TrendPoint {
	var prev *int
	for i := range pts {
		p := &pts[i]
		p.Change, p.ReliableChange = nil, ""
		if prev != nil && p.Total != nil {
			d := *p.Total - *prev
			p.Change = &d
			p.ReliableChange = ReliableChangeOf(d, threshold)
		}
		if p.Total != nil {
			prev = p.Total
		}
	}
	if pts == nil {
		pts = []TrendPoint{}
	}
	return pts
}

// ReliableChangeOf classifies a change in total (lower is better).
func ReliableChangeOf(change, threshold int) string {
	switch {
	case threshold <= 0:
		return ""
	case change <= -threshold:
		return Improved
	case change >= threshold:
		return Deteriorated
	}
	return NoChange
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

// mayReadAnswers: staff read answers; case systems and kiosks never do.
func mayReadAnswers(p auth.Principal) bool {
	return p.Role != auth.RoleCaseSystem && p.Kind != auth.KindKiosk
}

func errorsIsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
