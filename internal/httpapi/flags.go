package httpapi

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sunpath/sunpath/internal/audit"
	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/postgres"
	"github.com/sunpath/sunpath/internal/problem"
)

type flagList struct {
	Flags []casework.Flag `json:"flags"`
}

type flagQuery struct {
	Status  string `query:"status" enum:"open,acknowledged,resolved" description:"default: every unresolved flag"`
	Level   string `query:"level" enum:"critical,urgent,review"`
	Subject string `query:"subject_id"`
	Overdue bool   `query:"overdue"`
	Limit   int    `query:"limit" minimum:"1" maximum:"500"`
}

func (s *Server) listFlags(c *gin.Context) {
	st, lvl := c.Query("status"), c.Query("level")
	inv := &problem.Invalid{}
	if st != "" && st != "open" && st != "acknowledged" && st != "resolved" {
		inv.Add("status", "must be open, acknowledged or resolved")
	}
	if lvl != "" && lvl != "critical" && lvl != "urgent" && lvl != "review" {
		inv.Add("level", "must be critical, urgent or review")
	}
	limit, err := queryInt(c, "limit", 200, 1, 500)
	if err != nil {
		inv.Errors = append(inv.Errors, err.(*problem.Invalid).Errors...)
	}
	if err := inv.Err(); err != nil {
		s.fail(c, err)
		return
	}
	s.work(c, "flag.list", http.StatusOK, false, func(tx *postgres.Tx) (any, error) {
		fs, err := tx.Flags(c.Request.Context(), postgres.FlagFilter{Status: st, Level: lvl, Subject: c.Query("subject_id"), Overdue: c.Query("overdue") == "true", Limit: limit})
		s.deps.Flow.WithProtocol(fs, c.Query("lang"))
		return flagList{Flags: fs}, err
	})
}

func (s *Server) getFlag(c *gin.Context) {
	s.work(c, "flag.read", http.StatusOK, false, func(tx *postgres.Tx) (any, error) {
		fl, err := tx.Flag(c.Request.Context(), c.Param("id"))
		if err != nil {
			return nil, err
		}
		one := []casework.Flag{fl}
		s.deps.Flow.WithProtocol(one, c.Query("lang"))
		return one[0], nil
	})
}

func (s *Server) acknowledgeFlag(c *gin.Context) {
	s.work(c, "flag.acknowledge", http.StatusOK, false, func(tx *postgres.Tx) (any, error) {
		fl, err := tx.AcknowledgeFlag(c.Request.Context(), c.Param("id"))
		one := []casework.Flag{fl}
		s.deps.Flow.WithProtocol(one, c.Query("lang"))
		return one[0], err
	})
}

type resolveRequest struct {
	ID             string `path:"id"`
	ResolutionCode string `json:"resolution_code" required:"true" enum:"safety_plan_made,referred_to_services,emergency_services,false_positive,no_action_needed,other"`
	Note           string `json:"note" required:"true" maxLength:"4000"`
}

func (s *Server) resolveFlag(c *gin.Context) {
	var req resolveRequest
	if err := decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	inv := &problem.Invalid{}
	if !casework.ValidResolution(req.ResolutionCode) {
		inv.Add("resolution_code", "must be one of "+strings.Join(casework.ResolutionCodes, ", "))
	}
	if !casework.ValidNote(req.Note) {
		inv.Add("note", fmt.Sprintf("required, at most %d characters", casework.MaxNoteRunes))
	}
	if err := inv.Err(); err != nil {
		s.fail(c, err)
		return
	}
	s.work(c, "flag.resolve", http.StatusOK, false, func(tx *postgres.Tx) (any, error) {
		return tx.ResolveFlag(c.Request.Context(), c.Param("id"), req.ResolutionCode, req.Note)
	})
}

type overrideRequest struct {
	ID         string `path:"id" description:"the recommendation"`
	Tier       string `json:"tier" required:"true" enum:"lenient,ordinary,strict"`
	ReasonCode string `json:"reason_code" required:"true" enum:"new_information,clinical_judgement,mitigating_circumstances,aggravating_circumstances,policy_requirement,other"`
	Note       string `json:"note" required:"true" maxLength:"4000"`
}

func (s *Server) createOverride(c *gin.Context) {
	var req overrideRequest
	if err := decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	inv := &problem.Invalid{}
	if !casework.Tier(req.Tier).Valid() {
		inv.Add("tier", "must be lenient, ordinary or strict")
	}
	if !casework.ValidOverrideReason(req.ReasonCode) {
		inv.Add("reason_code", "must be one of "+strings.Join(casework.OverrideReasons, ", "))
	}
	if !casework.ValidNote(req.Note) {
		inv.Add("note", fmt.Sprintf("required, at most %d characters", casework.MaxNoteRunes))
	}
	if err := inv.Err(); err != nil {
		s.fail(c, err)
		return
	}
	var out casework.Override
	s.work(c, "override.request", http.StatusCreated, true, func(tx *postgres.Tx) (any, error) {
		var err error
		out, err = tx.AddOverride(c.Request.Context(), c.Param("id"), casework.Tier(req.Tier), req.ReasonCode, req.Note)
		return out, err
	})
	if c.Writer.Status() == http.StatusCreated && c.Writer.Header().Get("Idempotent-Replayed") == "" {
		s.metrics.overrides.WithLabelValues(out.Direction, "requested").Inc()
	}
}

type decisionRequest struct {
	ID   string `path:"id"`
	Note string `json:"note,omitempty" maxLength:"4000"`
}

func (s *Server) decideOverride(approve bool) gin.HandlerFunc {
	action := "override.reject"
	if approve {
		action = "override.approve"
	}
	return func(c *gin.Context) {
		var req decisionRequest
		if body, _ := readBody(c); len(body) > 0 {
			if err := decodeJSON(c, &req); err != nil {
				s.fail(c, err)
				return
			}
		}
		if len([]rune(req.Note)) > casework.MaxNoteRunes {
			s.fail(c, fieldError("note", fmt.Sprintf("at most %d characters", casework.MaxNoteRunes)))
			return
		}
		var out casework.Override
		s.work(c, action, http.StatusOK, false, func(tx *postgres.Tx) (any, error) {
			var err error
			out, err = tx.DecideOverride(c.Request.Context(), c.Param("id"), approve, req.Note)
			return out, err
		})
		if c.Writer.Status() == http.StatusOK {
			s.metrics.overrides.WithLabelValues(out.Direction, out.Status).Inc()
		}
	}
}

type overrideList struct {
	Overrides []casework.Override `json:"overrides"`
}

func (s *Server) listOverrides(c *gin.Context) {
	st := c.Query("status")
	if st != "" && st != "pending" && st != "approved" && st != "rejected" {
		s.fail(c, fieldError("status", "must be pending, approved or rejected"))
		return
	}
	s.work(c, "override.list", http.StatusOK, false, func(tx *postgres.Tx) (any, error) {
		os, err := tx.Overrides(c.Request.Context(), st, 200)
		return overrideList{Overrides: os}, err
	})
}

type analyticsResponse struct {
	By     string                  `json:"by"`
	Since  time.Time               `json:"since"`
	Groups []postgres.OverrideStat `json:"groups"`
}

type analyticsQuery struct {
	By   string `query:"by" enum:"counselor,unit,reason"`
	Days int    `query:"days" minimum:"1" maximum:"3650"`
}

func (s *Server) overrideAnalytics(c *gin.Context) {
	by := c.DefaultQuery("by", "counselor")
	if by != "counselor" && by != "unit" && by != "reason" {
		s.fail(c, fieldError("by", "must be counselor, unit or reason"))
		return
	}
	days, err := queryInt(c, "days", 90, 1, 3650)
	if err != nil {
		s.fail(c, err)
		return
	}
	since := time.Now().UTC().AddDate(0, 0, -days)
	s.work(c, "override.analytics", http.StatusOK, false, func(tx *postgres.Tx) (any, error) {
		g, err := tx.OverrideAnalytics(c.Request.Context(), by, since)
		return analyticsResponse{By: by, Since: since, Groups: g}, err
	})
}

type dueList struct {
	Due []postgres.Due `json:"due"`
}

type dueQuery struct {
	Overdue bool `query:"overdue" description:"only overdue screenings (default true)"`
	Limit   int  `query:"limit" minimum:"1" maximum:"1000"`
}

func (s *Server) reassessments(c *gin.Context) {
	limit, err := queryInt(c, "limit", 200, 1, 1000)
	if err != nil {
		s.fail(c, err)
		return
	}
	overdue := c.DefaultQuery("overdue", "true") == "true"
	s.work(c, "schedule.list", http.StatusOK, false, func(tx *postgres.Tx) (any, error) {
		d, err := tx.Schedule(c.Request.Context(), s.deps.Workflow.Schedule, overdue, nil, limit)
		return dueList{Due: d}, err
	})
}

func (s *Server) subjectSchedule(c *gin.Context) {
	id, ok := s.subjectID(c)
	if !ok {
		return
	}
	s.work(c, "schedule.read", http.StatusOK, false, func(tx *postgres.Tx) (any, error) {
		subj, err := tx.Subject(c.Request.Context(), id)
		if err != nil {
			return nil, err
		}
		d, err := tx.Schedule(c.Request.Context(), s.deps.Workflow.Schedule, false, []string{subj.ID}, 100)
		return dueList{Due: d}, err
	})
}

type dashboardQuery struct {
	Days int `query:"days" minimum:"1" maximum:"3650" description:"new-entrant window for coverage (default 90)"`
}

func (s *Server) dashboard(c *gin.Context) {
	days, err := queryInt(c, "days", 90, 1, 3650)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.work(c, "dashboard.read", http.StatusOK, false, func(tx *postgres.Tx) (any, error) {
		return tx.Dashboard(c.Request.Context(), s.deps.Workflow.Schedule, days)
	})
}

type unitRequest struct {
	Code   string `path:"code"`
	Name   string `json:"name" required:"true"`
	Agency string `json:"agency,omitempty" description:"the agency whose case system sees this unit (default: default)"`
}

type unitList struct {
	Units []postgres.Unit `json:"units"`
}

func (s *Server) putUnit(c *gin.Context) {
	var req unitRequest
	if err := decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	code := c.Param("code")
	inv := &problem.Invalid{}
	if !casework.IDPattern.MatchString(code) {
		inv.Add("code", "must be 1-64 letters, digits, '.', '_' or '-'")
	}
	if n := len([]rune(strings.TrimSpace(req.Name))); n == 0 || n > 200 {
		inv.Add("name", "required, at most 200 characters")
	}
	if req.Agency == "" {
		req.Agency = "default"
	}
	if !casework.IDPattern.MatchString(req.Agency) {
		inv.Add("agency", "must be 1-64 letters, digits, '.', '_' or '-'")
	}
	if err := inv.Err(); err != nil {
		s.fail(c, err)
		return
	}
	s.work(c, "unit.put", http.StatusOK, false, func(tx *postgres.Tx) (any, error) {
		return postgres.Unit{Code: code, Name: req.Name, Agency: req.Agency}, tx.PutUnit(c.Request.Context(), code, req.Name, req.Agency)
	})
}

func (s *Server) listUnits(c *gin.Context) {
	s.work(c, "unit.list", http.StatusOK, false, func(tx *postgres.Tx) (any, error) {
		us, err := tx.Units(c.Request.Context())
		return unitList{Units: us}, err
	})
}

type auditEvent struct {
	ID           int64     `json:"id"`
	At           time.Time `json:"at"`
	Actor        string    `json:"actor"`
	Role         string    `json:"role"`
	Action       string    `json:"action"`
	ResourceType string    `json:"resource_type"`
	ResourceID   string    `json:"resource_id"`
	Subject      string    `json:"subject_id"`
	Outcome      string    `json:"outcome"`
	RequestID    string    `json:"request_id"`
	Detail       any       `json:"detail"`
}

type auditList struct {
	Events []auditEvent `json:"events"`
	Next   string       `json:"next,omitempty"`
}

type auditQuery struct {
	Subject string    `query:"subject_id"`
	Actor   string    `query:"actor" description:"e.g. user:alice or api_key:cms"`
	From    time.Time `query:"from"`
	To      time.Time `query:"to"`
	Before  int64     `query:"before" description:"page: events older than this id"`
	Limit   int       `query:"limit" minimum:"1" maximum:"1000"`
}

// listAudit serves the audit trail to auditors; the read itself is audited.
func (s *Server) listAudit(c *gin.Context) {
	inv := &problem.Invalid{}
	var f postgres.AuditFilter
	f.Subject, f.Actor = c.Query("subject_id"), c.Query("actor")
	for _, q := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v := c.Query(q.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				inv.Add(q.name, "must be an RFC 3339 time")
			}
			*q.dst = t
		}
	}
	if v := c.Query("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			inv.Add("before", "must be an event id")
		}
		f.BeforeID = n
	}
	limit, err := queryInt(c, "limit", 200, 1, 1000)
	if err != nil {
		inv.Errors = append(inv.Errors, err.(*problem.Invalid).Errors...)
	}
	f.Limit = limit
	if err := inv.Err(); err != nil {
		s.fail(c, err)
		return
	}
	evs, err := s.deps.Audit.List(c.Request.Context(), f)
	if err != nil {
		s.fail(c, err)
		return
	}
	p, _ := principal(c)
	if err := s.deps.Audit.Record(c.Request.Context(), audit.Event{Actor: p.Actor(), Role: string(p.Role), Action: "audit.read",
		ResourceType: "audit", Subject: f.Subject, Outcome: audit.Success, RequestID: requestID(c)}); err != nil {
		s.fail(c, err)
		return
	}
	c.Set(ctxAudited, true)
	out := auditList{Events: []auditEvent{}}
	for _, e := range evs {
		out.Events = append(out.Events, auditEvent{ID: e.ID, At: e.At, Actor: e.Actor, Role: e.Role, Action: e.Action, ResourceType: e.ResourceType,
			ResourceID: e.ResourceID, Subject: e.Subject, Outcome: string(e.Outcome), RequestID: e.RequestID, Detail: rawJSON(e.Detail)})
	}
	if len(evs) == limit {
		out.Next = strconv.FormatInt(evs[len(evs)-1].ID, 10)
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, out)
}

type notificationList struct {
	Deliveries []postgres.OutboxEntry `json:"deliveries"`
}

func (s *Server) listNotifications(c *gin.Context) {
	st := c.Query("status")
	if st != "" && st != "pending" && st != "delivered" && st != "failed" {
		s.fail(c, fieldError("status", "must be pending, delivered or failed"))
		return
	}
	out, err := s.deps.Cases.Outbox(c.Request.Context(), st, 200)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, notificationList{Deliveries: out})
}
