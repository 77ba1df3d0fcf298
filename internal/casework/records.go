package casework

import (
	"encoding/json"
	"time"
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
	NextDue          *time.Time     `json:"next_reassessment_due,omitempty"`
	Overdue          bool           `json:"reassessment_overdue"`
	CreatedAt        time.Time      `json:"created_at"`
	UpdatedAt        time.Time      `json:"updated_at"`
	internalID       string
}

// InternalID is the storage key; it never leaves the service.
func (s Subject) InternalID() string { return s.internalID }

// WithInternalID sets the storage key.
func (s Subject) WithInternalID(id string) Subject { s.internalID = id; return s }

// Flag is a raised flag as the API shows it.
type Flag struct {
	ID              string     `json:"id"`
	SubjectID       string     `json:"subject_id"`
	AssessmentID    string     `json:"assessment_id,omitempty"`
	Source          string     `json:"source"`
	Code            string     `json:"code"`
	Level           string     `json:"level"`
	Item            string     `json:"item,omitempty"`
	Status          string     `json:"status"`
	RaisedAt        time.Time  `json:"raised_at"`
	Deadline        time.Time  `json:"deadline"`
	Overdue         bool       `json:"overdue"`
	AcknowledgedBy  string     `json:"acknowledged_by,omitempty"`
	AcknowledgedAt  *time.Time `json:"acknowledged_at,omitempty"`
	ResolvedBy      string     `json:"resolved_by,omitempty"`
	ResolvedAt      *time.Time `json:"resolved_at,omitempty"`
	ResolutionCode  string     `json:"resolution_code,omitempty"`
	ResolutionNote  string     `json:"resolution_note,omitempty"`
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
	ID           string          `json:"id"`
	SubjectID    string          `json:"subject_id"`
	Model        ModelRef        `json:"model"`
	Probability  float64         `json:"probability"`
	Tier         Tier            `json:"tier"`
	Explanation  json.RawMessage `json:"explanation"`
	InputsDigest string          `json:"inputs_digest"`
	CreatedBy    string          `json:"created_by"`
	CreatedAt    time.Time       `json:"created_at"`
	Advisory     string          `json:"advisory"`
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
