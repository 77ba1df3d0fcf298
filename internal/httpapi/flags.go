package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sunpath/sunpath/internal/audit"
	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/problem"
	"github.com/sunpath/sunpath/internal/screening"
)

type flagList struct {
	Flags []casework.Flag `json:"flags"`
}

type flagQuery struct {
	Status  string `query:"status" enum:"open,acknowledged,resolved" description:"default: every unresolved flag"`
	Level   string `query:"level"`
	Subject string `query:"subject_id"`
	Overdue bool   `query:"overdue"`
	Limit   int    `query:"limit" minimum:"1" maximum:"500"`
	Lang    string `query:"lang" enum:"zh-CN,en" description:"the language of the crisis protocol"`
}

type flagPath struct {
	ID   string `path:"id"`
	Lang string `query:"lang" enum:"zh-CN,en" description:"the language of the crisis protocol"`
}

func (s *Server) listFlags(c *gin.Context) {
	limit, err := queryInt(c, "limit", 200, 1, 500)
	if err != nil {
		s.fail(c, err)
		return
	}
	cl, _ := s.call(c)
	fs, err := s.deps.Casework.Flags(c.Request.Context(), cl, casework.FlagQuery{Lang: c.Query("lang"), FlagFilter: casework.FlagFilter{
		Status: c.Query("status"), Level: screening.Level(c.Query("level")), Subject: c.Query("subject_id"),
		Overdue: c.Query("overdue") == "true", Limit: limit}})
	s.answer(c, flagList{Flags: fs}, err)
}

func (s *Server) getFlag(c *gin.Context) {
	cl, _ := s.call(c)
	f, err := s.deps.Casework.Flag(c.Request.Context(), cl, c.Param("id"), c.Query("lang"))
	s.answer(c, f, err)
}

func (s *Server) acknowledgeFlag(c *gin.Context) {
	cl, _ := s.call(c)
	f, err := s.deps.Casework.AcknowledgeFlag(c.Request.Context(), cl, c.Param("id"), c.Query("lang"))
	s.answer(c, f, err)
}

type resolveRequest struct {
	ID             string     `path:"id" json:"-"`
	Lang           string     `query:"lang" json:"-" enum:"zh-CN,en" description:"the language of the crisis protocol"`
	ResolutionCode string     `json:"resolution_code" required:"true"`
	Interventions  []string   `json:"interventions,omitempty" description:"what was done for the person; required unless false_positive or no_action_needed"`
	Note           string     `json:"note" required:"true" maxLength:"4000"`
	FollowUpDue    *time.Time `json:"follow_up_due,omitempty" description:"when to screen again; by default after the policy's interval for the flag's level"`
}

func (s *Server) resolveFlag(c *gin.Context) {
	var req resolveRequest
	if err := decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	cl, _ := s.call(c)
	f, err := s.deps.Casework.ResolveFlag(c.Request.Context(), cl, c.Param("id"), casework.ResolveInput{ResolutionCode: req.ResolutionCode,
		Interventions: req.Interventions, Note: req.Note, FollowUpDue: req.FollowUpDue})
	s.answer(c, f, err)
}

type overrideRequest struct {
	ID         string `path:"id" json:"-" description:"the recommendation"`
	Tier       string `json:"tier" required:"true"`
	ReasonCode string `json:"reason_code" required:"true"`
	Note       string `json:"note" required:"true" maxLength:"4000"`
}

func (s *Server) createOverride(c *gin.Context) {
	var req overrideRequest
	if err := decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	cl, ok := s.call(c)
	if !ok {
		return
	}
	out, o, err := s.deps.Casework.RequestOverride(c.Request.Context(), cl, c.Param("id"),
		casework.OverrideInput{Tier: casework.Tier(req.Tier), ReasonCode: req.ReasonCode, Note: req.Note})
	s.reply(c, http.StatusCreated, out, o, err)
}

type decisionRequest struct {
	ID   string `path:"id" json:"-"`
	Note string `json:"note,omitempty" maxLength:"4000"`
}

func (s *Server) decideOverride(approve bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		var req decisionRequest
		if body, _ := readBody(c); len(body) > 0 {
			if err := decodeJSON(c, &req); err != nil {
				s.fail(c, err)
				return
			}
		}
		cl, _ := s.call(c)
		out, err := s.deps.Casework.DecideOverride(c.Request.Context(), cl, c.Param("id"), approve, req.Note)
		s.answer(c, out, err)
	}
}

type overrideQuery struct {
	Status string `query:"status" enum:"pending,approved,rejected"`
}

type notificationQuery struct {
	Status string `query:"status" enum:"pending,delivered,failed"`
}

type overrideList struct {
	Overrides []casework.Override `json:"overrides"`
}

func (s *Server) listOverrides(c *gin.Context) {
	cl, _ := s.call(c)
	os, err := s.deps.Casework.Overrides(c.Request.Context(), cl, c.Query("status"))
	s.answer(c, overrideList{Overrides: os}, err)
}

type analyticsResponse struct {
	By     string                  `json:"by"`
	Since  time.Time               `json:"since"`
	Groups []casework.OverrideStat `json:"groups"`
}

type analyticsQuery struct {
	By   string `query:"by" enum:"counselor,unit,reason"`
	Days int    `query:"days" minimum:"1" maximum:"3650"`
}

func (s *Server) overrideAnalytics(c *gin.Context) {
	days, err := queryInt(c, "days", 90, 1, 3650)
	if err != nil {
		s.fail(c, err)
		return
	}
	cl, _ := s.call(c)
	by := c.DefaultQuery("by", "counselor")
	g, since, err := s.deps.Casework.OverrideAnalytics(c.Request.Context(), cl, by, days)
	s.answer(c, analyticsResponse{By: by, Since: since, Groups: g}, err)
}

type dueList struct {
	Due []casework.Due `json:"due"`
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
	cl, _ := s.call(c)
	d, err := s.deps.Casework.Due(c.Request.Context(), cl, casework.DueQuery{OverdueOnly: c.DefaultQuery("overdue", "true") == "true", Limit: limit})
	s.answer(c, dueList{Due: d}, err)
}

func (s *Server) subjectSchedule(c *gin.Context) {
	id, ok := s.subjectID(c)
	if !ok {
		return
	}
	cl, _ := s.call(c)
	d, err := s.deps.Casework.SubjectSchedule(c.Request.Context(), cl, id)
	s.answer(c, dueList{Due: d}, err)
}

type dashboardQuery struct {
	Days int       `query:"days" minimum:"1" maximum:"3650" description:"new-entrant window for coverage (default 90)"`
	From time.Time `query:"from" description:"start of the reporting period (default: 30 days before to)"`
	To   time.Time `query:"to" description:"end of the reporting period (default: now)"`
}

func (s *Server) dashboard(c *gin.Context) {
	days, err := queryInt(c, "days", 90, 1, 3650)
	inv := &problem.Invalid{}
	if err != nil {
		inv.Errors = append(inv.Errors, err.(*problem.Invalid).Errors...)
	}
	q := casework.DashboardQuery{WindowDays: days}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		if v := c.Query(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				inv.Add(p.name, "must be an RFC 3339 time")
			}
			*p.dst = t
		}
	}
	if err := inv.Err(); err != nil {
		s.fail(c, err)
		return
	}
	cl, _ := s.call(c)
	d, err := s.deps.Casework.Dashboard(c.Request.Context(), cl, q)
	s.answer(c, d.Dashboard, err)
}

type unitRequest struct {
	Code   string `path:"code" json:"-"`
	Name   string `json:"name" required:"true"`
	Agency string `json:"agency,omitempty" description:"the agency whose case system sees this unit; omitted: kept (default for a new unit); a change is audited"`
}

type unitList struct {
	Units []casework.Unit `json:"units"`
}

func (s *Server) putUnit(c *gin.Context) {
	var req unitRequest
	if err := decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	cl, _ := s.call(c)
	u, created, err := s.deps.Casework.PutUnit(c.Request.Context(), cl, casework.UnitInput{Code: c.Param("code"), Name: req.Name, Agency: req.Agency})
	st := http.StatusOK
	if created {
		st = http.StatusCreated
	}
	s.reply(c, st, u, casework.Outcome{}, err)
}

func (s *Server) listUnits(c *gin.Context) {
	cl, _ := s.call(c)
	us, err := s.deps.Casework.Units(c.Request.Context(), cl)
	s.answer(c, unitList{Units: us}, err)
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
	Detail       any       `json:"detail" docType:"object" description:"what the event records besides its columns; never personal data"`
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
	var f audit.Filter
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
	cl, _ := s.call(c)
	evs, err := s.deps.Casework.Audit(c.Request.Context(), cl, f)
	if err != nil {
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
	Deliveries []casework.OutboxEntry `json:"deliveries"`
}

func (s *Server) listNotifications(c *gin.Context) {
	st := c.Query("status")
	if st != "" && st != "pending" && st != "delivered" && st != "failed" {
		s.fail(c, fieldError("status", "must be pending, delivered or failed"))
		return
	}
	out, err := s.deps.Casework.Notifications(c.Request.Context(), st, 200)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, notificationList{Deliveries: out})
}
