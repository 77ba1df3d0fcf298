package casework

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/sunpath/sunpath/internal/audit"
	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/screening"
)

// Errors of the store that callers act on.
var (
	// ErrUnavailable means the system of record could not be reached in time.
	ErrUnavailable = errors.New("database unavailable")
	// ErrIdempotencyMismatch means a key was reused with a different request.
	ErrIdempotencyMismatch = errors.New("Idempotency-Key was already used with a different request")
)

// Store is the system of record as the use cases need it: every use case is
// one unit of work, committed with its audit event and idempotency record.
// postgres.Cases implements it.
type Store interface {
	// Write runs fn in one transaction with op's audit event and, with
	// op.Idem set, the idempotency record holding the reply. A duplicate
	// of a committed request is answered with the stored reply
	// (replayed = true) unless fn refuses it for scope (ErrNotFound,
	// ErrForbidden): a replay never reaches past the caller's current scope.
	Write(ctx context.Context, op Op, fn func(Tx) (Reply, error)) (rep Reply, replayed bool, err error)
	// WriteGrouped is Write for units of work that read only the route
	// subject's identity and scope (Tx.SubjectRef) and queue their writes:
	// concurrent ones may share one transaction and one commit.
	WriteGrouped(ctx context.Context, op Op, fn func(Tx) (Reply, error)) (rep Reply, replayed bool, err error)
	// Read runs fn, which only reads, as one audited unit of work: on a
	// read replica when one is configured (its audit event then committed
	// on the primary in a transaction of its own once the read succeeded:
	// no answer without its audit event), as Write otherwise. The replica
	// may lag the primary by its replication delay.
	Read(ctx context.Context, op Op, fn func(Tx) (Reply, error)) (Reply, error)
	// Outbox lists webhook deliveries, newest first.
	Outbox(ctx context.Context, status string, limit int) ([]OutboxEntry, error)
	// KioskPrincipal resolves a kiosk token to the principal of its session.
	KioskPrincipal(ctx context.Context, token string) (auth.Principal, error)
	// OpenAlerts counts the open critical and urgent flags p may see,
	// outside a unit of work and unaudited: it reads no personal data.
	OpenAlerts(ctx context.Context, p auth.Principal) (Alerts, error)
	// Figures runs fn as p in one read-only snapshot (on the read replica
	// when one is configured), outside a unit of work and unaudited: only
	// for figures that hold no person's data (the dashboard rollups).
	Figures(ctx context.Context, p auth.Principal, fn func(Tx) error) error
	// PutRollups replaces every stored dashboard rollup at once.
	PutRollups(ctx context.Context, rs []Rollup) error
	// StaffNames returns staff accounts' names by username, outside a unit
	// of work (the UI names who acted).
	StaffNames(ctx context.Context) (map[string]string, error)
}

// AuditLog records and lists audit events outside a unit of work (sign-ins,
// denied requests, audit reads). postgres.AuditStore implements it.
type AuditLog interface {
	Record(ctx context.Context, ev audit.Event) error
	List(ctx context.Context, f audit.Filter) ([]audit.Event, error)
}

// Op is one audited unit of work: Audit carries who and what; the work fills
// in the resource and the outcome is success when it commits.
type Op struct {
	Principal auth.Principal
	Audit     audit.Event
	Idem      *Idem
	// Subject, when the unit of work is about one person, is read in the
	// same round trip as BEGIN; Tx.Subject then answers without a query.
	Subject string
	// SubjectRef says the unit of work needs only the subject's identity
	// and scope (Tx.SubjectRef): the read skips the sealed name and profile.
	SubjectRef bool
	// History names the Tx.RecentSeverities reads of Subject the unit of
	// work may make, read in the same round trip as BEGIN: Tx.RecentSeverities
	// then answers without a query of its own (in a shared transaction, one
	// round trip fewer inside the group), unless the transaction has written
	// an assessment or flag of the subject since.
	History []HistoryRead
}

// HistoryRead is one Tx.RecentSeverities read: the severities of the last N
// results of Instrument and whether a flag with Code is unresolved.
type HistoryRead struct {
	Instrument string
	N          int
	Code       string
}

// Idem identifies a request under the Idempotency-Key protocol.
type Idem struct {
	Client string // the authenticated caller: keys are scoped per client
	Key    string
	Hash   []byte // SHA-256 of the request (method, path and body)
	TTL    time.Duration
}

// Reply is a use case's result as stored for idempotent replay (sealed at
// rest: it can hold names and notes).
type Reply struct {
	Status int
	Body   []byte
}

// Tx is the store within one unit of work. Its methods read and write data
// in the principal's scope; the rules of the case work (who may decide,
// which transitions are allowed, which flags a result raises, what changes
// a person's level) are the use cases', not the store's.
type Tx interface {
	ModelTx // model versions, promotions and shadow scores (models_versions.go)

	// Resource records which resource the unit of work touched, for its
	// audit event; Detail records codes (never free text) with it.
	Resource(typ, id, subject string)
	Detail(v map[string]any)

	// Subject returns the visible subject with the case system's id:
	// ErrNotFound when there is none, ErrOutOfScope when it is outside
	// the principal's scope. SubjectRef reads only identity and scope.
	Subject(ctx context.Context, id string) (Subject, error)
	SubjectRef(ctx context.Context, id string) (Subject, error)
	// PutSubject creates or updates a subject; created reports which.
	PutSubject(ctx context.Context, id string, in SubjectInput) (s Subject, created bool, err error)
	// UnitWritable reports whether the principal may place people in unit.
	UnitWritable(ctx context.Context, unit string) (bool, error)
	// Counselor returns the unit of the active counselor with username;
	// ok is false when there is none.
	Counselor(ctx context.Context, username string) (unit string, ok bool, err error)
	// Subjects lists visible subjects by id, each with its next due date.
	Subjects(ctx context.Context, f SubjectFilter) ([]Subject, error)

	// AddAssessment stores a scored administration of subj with the flags
	// given (deadlines set), and queues their notifications.
	AddAssessment(ctx context.Context, subj Subject, a NewAssessment) (Assessment, error)
	// Assessments lists subj's assessments, newest first, with their flags.
	Assessments(ctx context.Context, subj Subject, f AssessmentFilter) ([]Assessment, error)
	// Assessment returns one visible assessment with its flags.
	Assessment(ctx context.Context, id string, withAnswers bool) (Assessment, error)
	// RecentSeverities returns the severities of subj's last n results of
	// instrument, newest first, and whether a flag with code is unresolved.
	RecentSeverities(ctx context.Context, subj Subject, instrument string, n int, code string) (sev []string, unresolved bool, err error)
	// Trend returns subj's totals for instrument, oldest first.
	Trend(ctx context.Context, subj Subject, instrument string) ([]TrendPoint, error)

	// Flags lists visible flags, most urgent first.
	Flags(ctx context.Context, f FlagFilter) ([]Flag, error)
	// Flag returns a visible flag, locked for update.
	Flag(ctx context.Context, id string) (Flag, error)
	// UpdateFlag writes a flag's status, acknowledgement, resolution and
	// follow-up, and queues a notification of topic.
	UpdateFlag(ctx context.Context, f Flag, topic string) error

	// AddRecommendation stores advice; it never changes a level.
	AddRecommendation(ctx context.Context, subj Subject, r Recommendation) (Recommendation, error)
	Recommendations(ctx context.Context, subj Subject, limit int) ([]Recommendation, error)
	// Recommendation returns a visible recommendation.
	Recommendation(ctx context.Context, id string) (Recommendation, error)

	// AddOverride stores a request and returns its id.
	AddOverride(ctx context.Context, o Override) (string, error)
	// PendingOverride reports whether a request on the recommendation waits.
	PendingOverride(ctx context.Context, recommendationID string) (bool, error)
	// Override returns a visible override, locked for update.
	Override(ctx context.Context, id string) (Override, error)
	DecideOverride(ctx context.Context, o Override) error
	Overrides(ctx context.Context, status string, limit int) ([]Override, error)
	OverrideAnalytics(ctx context.Context, by string, since time.Time) ([]OverrideStat, error)

	// AddDecision records a person's decision of a supervision level and
	// makes it the subject's level; it returns the decision's id.
	AddDecision(ctx context.Context, subj Subject, d Decision) (string, error)
	// Decisions is subj's level history, newest first.
	Decisions(ctx context.Context, subj Subject, limit int) ([]Decision, error)

	CreateSession(ctx context.Context, subj Subject, instruments []string, lang string, ttl, kioskTTL time.Duration) (Session, string, error)
	// Session returns a session the principal may see, locked, with its subject.
	Session(ctx context.Context, id string) (Session, Subject, error)
	// Sessions lists subj's open sessions (every visible one when subj is
	// nil), newest first.
	OpenSessions(ctx context.Context, subject string, limit int) ([]Session, error)
	SaveSessionAnswers(ctx context.Context, s Session) error
	MarkSessionSubmitted(ctx context.Context, id string) error

	// Due lists the due screenings of visible subjects, soonest first,
	// computed and limited in the database.
	Due(ctx context.Context, f DueFilter) ([]Due, error)
	// Dashboard counts the visible caseload.
	Dashboard(ctx context.Context, f DashboardFilter) (Dashboard, error)
	// Rollup returns the stored dashboard rollup of a scope (found false
	// when there is none).
	//
	// With have set to the AsOf of a copy the caller holds, a rollup of that
	// same moment comes without its Body (the caller's copy is current).
	Rollup(ctx context.Context, scope string, have time.Time) (r Rollup, found bool, err error)
	// PutStaffName sets a staff account's name (ErrNotFound: no account).
	PutStaffName(ctx context.Context, username, name string) error
	// Outcomes counts, per unit, screening and intervention in a period.
	Outcomes(ctx context.Context, f DashboardFilter) ([]UnitOutcome, error)

	// AddSupervisionOutcome stores an outcome of subj's supervision and returns its id.
	AddSupervisionOutcome(ctx context.Context, subj Subject, o SupervisionOutcome) (string, error)
	// SupervisionOutcomes lists subj's outcomes, oldest first.
	SupervisionOutcomes(ctx context.Context, subj Subject) ([]SupervisionOutcome, error)

	// Unit returns one unit; ErrNotFound when there is none.
	Unit(ctx context.Context, code string) (Unit, error)
	PutUnit(ctx context.Context, u Unit) error
	Units(ctx context.Context) ([]Unit, error)

	// SubjectNames returns the display names of the visible subjects among
	// ids (case-system ids); ids out of scope or unknown are left out.
	SubjectNames(ctx context.Context, ids []string) (map[string]string, error)
}

// SubjectFilter narrows a subject listing.
type SubjectFilter struct {
	Unit, Counselor string
	Tier            string
	OverdueOnly     bool
	Schedule        Schedule
	Now             time.Time
	Limit           int
	After           string // id to continue after
}

// AssessmentFilter narrows a listing of a subject's assessments.
type AssessmentFilter struct {
	Instrument     string
	IncludeAnswers bool
	Limit          int
}

// FlagFilter narrows a flag listing.
type FlagFilter struct {
	Status  string // open, acknowledged, resolved, or "" for unresolved
	Level   screening.Level
	Subject string
	Overdue bool
	Limit   int
}

// DueFilter narrows a listing of due screenings.
type DueFilter struct {
	Schedule    Schedule
	Subjects    []string // case-system ids; every visible subject when empty
	OverdueOnly bool
	Now         time.Time
	Limit       int
}

// DashboardFilter is the scope and period of the oversight figures.
type DashboardFilter struct {
	Schedule    Schedule
	Now         time.Time
	WindowDays  int            // new-entrant coverage window
	From, To    time.Time      // the reporting period
	Reliable    map[string]int // instrument → points of reliable change
	Instruments []string       // re-screening outcomes are computed for these
}

// NewAssessment is a scored administration to store.
type NewAssessment struct {
	Instrument, Version, ContentHash, EngineVersion, Language string
	Answers                                                   []byte // canonical JSON, sealed at rest
	Result                                                    []byte // JSON of the scored result
	Total                                                     *int
	Severity                                                  string
	Flags                                                     []Flag // Source, Code, Level, Item, RaisedAt, Deadline set
	AdministeredBy                                            string
	StartedAt                                                 *time.Time
	CompletedAt                                               time.Time
	SessionID                                                 string
}

// OutboxEntry is one webhook delivery as listed for operators.
type OutboxEntry struct {
	DeliveryID  string     `json:"delivery_id"`
	Endpoint    string     `json:"endpoint"`
	Topic       string     `json:"topic"`
	Status      string     `json:"status"`
	Attempts    int        `json:"attempts"`
	CreatedAt   time.Time  `json:"created_at"`
	NextAt      time.Time  `json:"next_attempt_at"`
	DeliveredAt *time.Time `json:"delivered_at,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
}

// InputsDigest is the SHA-256 of a canonical JSON encoding of model inputs,
// stored with every recommendation so that its inputs can be proven later.
func InputsDigest(features map[string]any) string {
	b, _ := json.Marshal(features) // map keys are sorted by encoding/json
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
