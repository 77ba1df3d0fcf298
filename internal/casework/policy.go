package casework

import (
	"time"

	"github.com/sunpath/sunpath/internal/screening"
)

// Policy is every configurable rule of the case work in one value: the
// schedule, the flag deadlines, the lifetimes, the cross-instrument rules,
// reliable change, the crisis protocol and what a recommendation needs.
type Policy struct {
	Schedule       Schedule
	Flags          FlagPolicy
	IdempotencyTTL time.Duration
	SessionTTL     time.Duration // how long a screening session stays open
	KioskTTL       time.Duration // how long a kiosk link works
	// ReliableChange is, per instrument, the change in points that the
	// instrument's literature treats as meaningful: PHQ-9 5 (Löwe et al.
	// 2004, Med Care 42:1194), GAD-7 4 (Toussaint et al. 2020, J Affect
	// Disord 265:395), PCL-5 10 (National Center for PTSD: 5-10 points is
	// reliable change, 10-20 clinically significant). Instruments without
	// an established figure show no marker rather than an invented one.
	ReliableChange map[string]int
	Rules          []ConsecutiveRule
	// CrisisProtocol is the local procedure returned with every critical
	// flag, by language.
	CrisisProtocol map[string]string
	// MinKnownShare is the share of a model's inputs that must be recorded
	// for a recommendation: below it the model is not asked.
	MinKnownShare float64
	// FollowUp is how soon a person is screened again after a flag was
	// resolved, by the flag's level.
	FollowUp map[screening.Level]time.Duration
	// MaxBackdate bounds how far in the past a paper administration may be
	// dated (completed_at), besides the supervision start.
	MaxBackdate time.Duration
	// DashboardMaxAge is how old a dashboard rollup may be and still be
	// shown (RefreshDashboards); 0: dashboards are always computed live.
	DashboardMaxAge time.Duration
	// Location is the time zone of calendar reports (the month of the
	// web's dashboard, rolled up as of each refresh); time.Local when nil.
	Location *time.Location
}

// location is p.Location, or time.Local.
func (p Policy) location() *time.Location {
	if p.Location == nil {
		return time.Local
	}
	return p.Location
}

// MonthStart is the first moment of t's calendar month in the policy's
// time zone.
func (p Policy) MonthStart(t time.Time) time.Time {
	t = t.In(p.location())
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, t.Location())
}

// DefaultPolicy returns the defaults used when a setting is not given.
func DefaultPolicy() Policy {
	return Policy{
		Schedule:       DefaultSchedule,
		Flags:          DefaultFlagPolicy,
		IdempotencyTTL: 24 * time.Hour,
		SessionTTL:     24 * time.Hour,
		KioskTTL:       2 * time.Hour,
		ReliableChange: map[string]int{"phq9": 5, "gad7": 4, "pcl5": 10},
		CrisisProtocol: map[string]string{"zh-CN": DefaultCrisisZH, "en": DefaultCrisisEN},
		Rules:          DefaultRules,
		MinKnownShare:  0.5,
		FollowUp: map[screening.Level]time.Duration{
			screening.LevelCritical: 7 * 24 * time.Hour,
			screening.LevelUrgent:   14 * 24 * time.Hour,
			screening.LevelReview:   30 * 24 * time.Hour,
		},
		MaxBackdate: 366 * 24 * time.Hour,
	}
}

// ConsecutiveRule raises a flag when the last Count results of an instrument
// all have one of the given severities (e.g. two severe PHQ-9 in a row).
type ConsecutiveRule struct {
	Instrument string
	Severities []string
	Count      int
	Code       string
	Level      screening.Level
}

// DefaultRules: two consecutive moderately severe or severe PHQ-9 results
// ask for a clinician's review.
var DefaultRules = []ConsecutiveRule{{
	Instrument: "phq9", Severities: []string{"moderately_severe", "severe"}, Count: 2,
	Code: "persistent_severe_depression", Level: screening.LevelUrgent,
}}

// Interventions are what was done when a flag is resolved: 个案心理咨询,
// 危机干预, 转介精神科/医院, 联系家属, 团体辅导, other (with a note).
var Interventions = []string{
	"individual_counselling", // 个案心理咨询
	"crisis_intervention",    // 危机干预
	"psychiatric_referral",   // 转介精神科/医院
	"family_contacted",       // 联系家属
	"group_counselling",      // 团体辅导
	"other",
}

// AdjustmentReasons justify a supervision-level adjustment as a reward or
// sanction (降低/提高监管等级), or a level decided in the case system.
var AdjustmentReasons = []string{
	"good_conduct",         // 表现良好
	"violation",            // 违反监督管理规定
	"periodic_review",      // 定期评估
	"risk_change",          // 风险变化
	"case_system_decision", // 案件系统中作出的决定
	"other",
}

// The crisis protocol shown with every critical flag. Agencies replace it
// with their local procedure and numbers (flags.crisis_protocol_zh / _en).
const (
	DefaultCrisisZH = "危机处置：立即确保当事人安全，不要让其独处；当面评估自杀风险；联系当地心理危机干预热线（全国心理援助热线 12356）及当事人紧急联系人；如有紧迫危险，立即拨打 120 或 110；在 15 分钟内于系统中确认此警示，并记录所采取的措施。"
	DefaultCrisisEN = "Crisis protocol: make sure the person is safe now and do not leave them alone; assess suicide risk in person; contact the local crisis line (national psychological assistance hotline 12356) and the person's emergency contact; if danger is imminent, call 120 or 110 at once; acknowledge this flag within 15 minutes and record what was done."
)
