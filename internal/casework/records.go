package casework

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/sunpath/sunpath/internal/screening"
)

// Subject is a person under supervision as the API shows them.
type Subject struct {
	ID               string         `json:"subject_id"`
	DisplayName      string         `json:"display_name"`
	Sex              string         `json:"sex"`
	BirthYear        *int           `json:"birth_year"`
	SupervisionType  string         `json:"supervision_type"`
	Unit             string         `json:"unit"`
	Counselor        string         `json:"counselor"`
	SupervisionStart string         `json:"supervision_start,omitempty"`
	SupervisionEnd   string         `json:"supervision_end,omitempty"`
	Profile          map[string]any `json:"profile"`
	Tier             *Tier          `json:"tier"`
	TierSource       string         `json:"tier_source,omitempty"`
	OpenFlags        int            `json:"open_flags"`
	// TopFlagLevel is the most pressing level among the open flags.
	TopFlagLevel screening.Level `json:"top_flag_level,omitempty"`
	NextDue      *time.Time      `json:"next_reassessment_due,omitempty"`
	Overdue      bool            `json:"reassessment_overdue"`
	CreatedAt    time.Time       `json:"created_at"`
	UpdatedAt    time.Time       `json:"updated_at"`
	internalID   string
}

// ETag identifies this version of the record, for If-Match.
func (s Subject) ETag() string { return ETagOf(s.UpdatedAt) }

// ETagOf is the entity tag of a record last updated at t (as stored, to
// the microsecond).
func ETagOf(t time.Time) string {
	return `"` + strconv.FormatInt(t.UTC().Truncate(time.Microsecond).UnixMicro(), 36) + `"`
}

// InternalID is the storage key; it never leaves the service.
func (s Subject) InternalID() string { return s.internalID }

// WithInternalID sets the storage key.
func (s Subject) WithInternalID(id string) Subject { s.internalID = id; return s }

// Flag is a raised flag as the API shows it.
type Flag struct {
	ID             string          `json:"id"`
	SubjectID      string          `json:"subject_id"`
	AssessmentID   string          `json:"assessment_id,omitempty"`
	Source         string          `json:"source"`
	Code           string          `json:"code"`
	Level          screening.Level `json:"level"`
	Item           string          `json:"item,omitempty"`
	Status         string          `json:"status"`
	RaisedAt       time.Time       `json:"raised_at"`
	Deadline       time.Time       `json:"deadline"`
	Overdue        bool            `json:"overdue"`
	AcknowledgedBy string          `json:"acknowledged_by,omitempty"`
	AcknowledgedAt *time.Time      `json:"acknowledged_at,omitempty"`
	ResolvedBy     string          `json:"resolved_by,omitempty"`
	ResolvedAt     *time.Time      `json:"resolved_at,omitempty"`
	ResolutionCode string          `json:"resolution_code,omitempty"`
	ResolutionNote string          `json:"resolution_note,omitempty"`
	// Interventions are what was done for the person (coded), recorded
	// when the flag is resolved; FollowUpDue is when they are screened again.
	Interventions   []string   `json:"interventions,omitempty"`
	FollowUpDue     *time.Time `json:"follow_up_due,omitempty"`
	EscalationLevel int        `json:"escalation_level"`
	Unit            string     `json:"unit"`
	Counselor       string     `json:"counselor"`
	CrisisProtocol  string     `json:"crisis_protocol,omitempty"`
}

// Assessment is a stored, scored administration of one instrument.
type Assessment struct {
	ID                string          `json:"id"`
	SubjectID         string          `json:"subject_id"`
	Instrument        string          `json:"instrument"`
	InstrumentVersion string          `json:"instrument_version"`
	ContentHash       string          `json:"content_hash"`
	EngineVersion     string          `json:"engine_version"`
	Language          string          `json:"language"`
	Answers           json.RawMessage `json:"answers,omitempty"`
	Result            json.RawMessage `json:"result"`
	AdministeredBy    string          `json:"administered_by"`
	StartedAt         *time.Time      `json:"started_at,omitempty"`
	CompletedAt       time.Time       `json:"completed_at"`
	CreatedAt         time.Time       `json:"created_at"`
	SessionID         string          `json:"session_id,omitempty"`
	Flags             []Flag          `json:"flags"`
}

// Recommendation is a stored model recommendation.
type Recommendation struct {
	ID          string   `json:"id"`
	SubjectID   string   `json:"subject_id"`
	Model       ModelRef `json:"model"`
	Probability float64  `json:"probability"`
	// Tier is the level the tier policy suggests; advice only: a person
	// decides (Decision).
	Tier        Tier            `json:"tier"`
	Explanation json.RawMessage `json:"explanation"`
	// Unknown lists the model inputs not recorded for the person; they
	// count neither for nor against them.
	Unknown []string `json:"unknown_inputs"`
	// Inputs are the model inputs the recommendation was made from; stored
	// sealed for training files, never shown.
	Inputs map[string]any `json:"-"`
	// Review is set when the suggestion differs from the person's current
	// level: a prompt to review it, never applied.
	Review       bool      `json:"review_suggested"`
	InputsDigest string    `json:"inputs_digest"`
	CreatedBy    string    `json:"created_by"`
	CreatedAt    time.Time `json:"created_at"`
	Advisory     string    `json:"advisory"`
}

// ModelRef names the exact model behind a recommendation.
type ModelRef struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	SHA256  string `json:"sha256"`
}

// Override is a professional's request to depart from a recommendation.
type Override struct {
	ID               string     `json:"id"`
	RecommendationID string     `json:"recommendation_id"`
	SubjectID        string     `json:"subject_id"`
	RecommendedTier  Tier       `json:"recommended_tier"`
	RequestedTier    Tier       `json:"tier"`
	Direction        string     `json:"direction"`
	ReasonCode       string     `json:"reason_code"`
	Note             string     `json:"note"`
	Status           string     `json:"status"`
	RequestedBy      string     `json:"requested_by"`
	RequestedAt      time.Time  `json:"requested_at"`
	DecidedBy        string     `json:"decided_by,omitempty"`
	DecidedAt        *time.Time `json:"decided_at,omitempty"`
	DecisionNote     string     `json:"decision_note,omitempty"`
	ModelName        string     `json:"model_name"`
	ModelVersion     string     `json:"model_version"`
	InputsDigest     string     `json:"inputs_digest"`
	Probability      float64    `json:"probability"`
}

// Session is a screening session administered in person or on a kiosk.
type Session struct {
	ID             string                                `json:"id"`
	SubjectID      string                                `json:"subject_id"`
	Instruments    []string                              `json:"instruments"`
	Language       string                                `json:"language"`
	Status         string                                `json:"status"`
	Answers        map[string]map[string]json.RawMessage `json:"answers"`
	CreatedBy      string                                `json:"created_by"`
	CreatedAt      time.Time                             `json:"created_at"`
	UpdatedAt      time.Time                             `json:"updated_at"`
	SubmittedAt    *time.Time                            `json:"submitted_at,omitempty"`
	ExpiresAt      time.Time                             `json:"expires_at"`
	KioskExpiresAt *time.Time                            `json:"kiosk_expires_at,omitempty"`
	AssessmentIDs  []string                              `json:"assessment_ids,omitempty"`
}

// Decision kinds: how a person's supervision level came to be.
const (
	DecisionAccepted   = "accepted"    // a counselor accepted a recommendation's suggested tier
	DecisionOverride   = "override"    // a supervisor approved an override request
	DecisionAdjustment = "adjustment"  // a reward or sanction (降低/提高监管等级), decided by a supervisor
	DecisionCaseSystem = "case_system" // decided in the agency's case system, by the person it names
)

// Decision is one change of a person's supervision level, made by a person.
type Decision struct {
	ID               string    `json:"id"`
	SubjectID        string    `json:"subject_id"`
	Kind             string    `json:"kind"`
	Tier             Tier      `json:"tier"`
	PreviousTier     *Tier     `json:"previous_tier"`
	ReasonCode       string    `json:"reason_code,omitempty"`
	Note             string    `json:"note,omitempty"`
	RecommendationID string    `json:"recommendation_id,omitempty"`
	OverrideID       string    `json:"override_id,omitempty"`
	RequestedBy      string    `json:"requested_by,omitempty"`
	DecidedBy        string    `json:"decided_by"`
	RecordedBy       string    `json:"recorded_by"`
	DecidedAt        time.Time `json:"decided_at"`
}

// Unit is an organisational unit (a 司法所 or a county bureau).
type Unit struct {
	Code   string `json:"code"`
	Name   string `json:"name"`
	Agency string `json:"agency"`
}

// Due is one instrument a subject must take, and by when.
type Due struct {
	SubjectID  string     `json:"subject_id"`
	Unit       string     `json:"unit"`
	Counselor  string     `json:"counselor"`
	Tier       *string    `json:"tier"`
	Instrument string     `json:"instrument"`
	Reason     string     `json:"reason"` // entry, reassessment or follow_up
	FlagID     string     `json:"flag_id,omitempty"`
	Last       *time.Time `json:"last_completed_at"`
	Due        time.Time  `json:"due"`
	Overdue    bool       `json:"overdue"`
}

// Due reasons.
const (
	DueEntry        = "entry"        // first screening after entering supervision
	DueReassessment = "reassessment" // the tier's interval since the last one
	DueFollowUp     = "follow_up"    // set when a flag was resolved
)

// TrendPoint is one result in a subject's series for an instrument.
type TrendPoint struct {
	AssessmentID   string    `json:"assessment_id"`
	CompletedAt    time.Time `json:"completed_at"`
	Total          *int      `json:"total"`
	Severity       *string   `json:"severity"`
	Change         *int      `json:"change"`          // since the previous result
	ReliableChange string    `json:"reliable_change"` // improved, deteriorated, none, or "" when undefined
}

// Reliable-change outcomes.
const (
	Improved     = "improved"
	Deteriorated = "deteriorated"
	NoChange     = "none"
)

// Dashboard is the supervisor's overview of the visible caseload.
type Dashboard struct {
	Subjects            int            `json:"subjects"`
	Tiers               map[string]int `json:"tiers"`
	OverdueSubjects     int            `json:"overdue_subjects"`
	OverdueScreenings   int            `json:"overdue_screenings"`
	NewEntrants         int            `json:"new_entrants"`
	NewEntrantsScreened int            `json:"new_entrants_screened_in_window"`
	Coverage            *float64       `json:"new_entrant_coverage"`
	OpenFlags           map[string]int `json:"open_flags"`
	OverdueFlags        int            `json:"overdue_flags"`
	WindowDays          int            `json:"window_days"`
	PendingOverrides    int            `json:"pending_overrides"`
	LevelReviews        int            `json:"level_reviews_suggested"`
	// AsOf is the moment the figures are of: now when computed for the
	// request, the refresh's time when read from a rollup.
	AsOf  time.Time     `json:"as_of"`
	From  time.Time     `json:"period_from"`
	To    time.Time     `json:"period_to"`
	Units []UnitOutcome `json:"units"`
}

// UnitOutcome is what a unit reports upward for a period: people under
// supervision, screened (筛查率), flagged, helped, and re-screened with a
// reliable improvement, no reliable change or a deterioration.
type UnitOutcome struct {
	Unit         string   `json:"unit"`
	Name         string   `json:"name"`
	Supervised   int      `json:"supervised"`
	Screened     int      `json:"screened"`
	ScreenedRate *float64 `json:"screening_rate"`
	Flagged      int      `json:"flagged"`
	Intervened   int      `json:"intervened"`
	Rescreened   int      `json:"rescreened"`
	Improved     int      `json:"improved"`
	NoChange     int      `json:"no_change"`
	Deteriorated int      `json:"deteriorated"`
}

// OverrideStat is one row of override analytics.
type OverrideStat struct {
	Group           string  `json:"group"`
	Recommendations int     `json:"recommendations"`
	Overrides       int     `json:"overrides"`
	Rate            float64 `json:"rate"`
	Stricter        int     `json:"stricter"`
	MoreLenient     int     `json:"more_lenient"`
	Approved        int     `json:"approved"`
	Rejected        int     `json:"rejected"`
	Pending         int     `json:"pending"`
}
