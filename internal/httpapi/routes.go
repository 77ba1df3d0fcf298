package httpapi

import (
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/riskmodel"
	"github.com/sunpath/sunpath/internal/screening"
)

// route is one operation of the API: the single table from which the router,
// the OpenAPI document and the access policy are all built.
type route struct {
	Method  string
	Path    string // gin syntax: /v1/instruments/:id
	Summary string
	Tag     string
	Handler gin.HandlerFunc
	// For the OpenAPI document: the request (path params, query, body) and
	// the success response with its status.
	Request  any
	Response any
	Status   int
	// Idempotent routes honour Idempotency-Key (and answer
	// Idempotent-Replayed); Upsert routes answer 201 on create, 200 on
	// update; Stateless routes change nothing stored (no 409).
	Idempotent, Upsert, Stateless bool
	// FHIRIn and FHIROut name the FHIR resource accepted or answered as
	// application/fhir+json; FHIROnly when it is the only media type.
	FHIRIn, FHIROut string
	FHIROnly        bool
	// CSV routes answer text/csv only.
	CSV bool
	// Extra are error statuses beyond those problems() derives.
	Extra []int
	// ETag routes answer the record's ETag; a PUT among them honours
	// If-Match (412 when the record changed since).
	ETag bool
}

// table lists every /v1 operation.
func (s *Server) table() []route {
	return []route{
		{Method: http.MethodPost, Path: "/v1/auth/login", Tag: "auth", Summary: "Sign in with a username and password; sets a session cookie",
			Handler: s.login, Request: loginRequest{}, Response: sessionResponse{}, Status: http.StatusOK, Stateless: true},
		{Method: http.MethodPost, Path: "/v1/auth/logout", Tag: "auth", Summary: "End the current session", Handler: s.logout, Status: http.StatusNoContent, Stateless: true},
		{Method: http.MethodPost, Path: "/v1/auth/password", Tag: "auth", Summary: "Change your own password (people signed in with a session); ends your other sessions",
			Handler: s.changePassword, Request: passwordRequest{}, Status: http.StatusNoContent},
		{Method: http.MethodGet, Path: "/v1/auth/me", Tag: "auth", Summary: "Who the caller is", Handler: s.me, Response: principalResponse{}, Status: http.StatusOK},
		{Method: http.MethodGet, Path: "/v1/users", Tag: "admin", Summary: "List user accounts", Handler: s.listUsers, Response: usersResponse{}},
		{Method: http.MethodGet, Path: "/v1/units", Tag: "admin", Summary: "List organisational units", Handler: s.listUnits, Response: unitList{}},
		{Method: http.MethodPut, Path: "/v1/units/:code", Tag: "admin", Summary: "Create or rename a unit", Handler: s.putUnit, Request: unitRequest{}, Response: casework.Unit{}, Upsert: true},

		{Method: http.MethodGet, Path: "/v1/instruments", Tag: "instruments", Summary: "List questionnaires", Handler: s.listInstruments, Response: instrumentList{}},
		{Method: http.MethodGet, Path: "/v1/instruments/:id", Tag: "instruments", Summary: "A questionnaire's definition: items, options, scoring, bands, citation", Handler: s.getInstrument, Request: idPath{}, Response: screening.Definition{}},
		{Method: http.MethodGet, Path: "/v1/instruments/:id/fhir", Tag: "instruments", Summary: "The questionnaire as a FHIR R4 Questionnaire", Handler: s.instrumentFHIR, Request: langQuery{}, FHIROut: "Questionnaire", FHIROnly: true},
		{Method: http.MethodPost, Path: "/v1/instruments/:id/score", Tag: "instruments", Summary: "Score answers without storing them (JSON or a FHIR QuestionnaireResponse; Accept application/fhir+json for an Observation)", Handler: s.scoreInstrument, Request: scoreRequest{}, Response: screening.Result{}, Stateless: true, FHIRIn: "QuestionnaireResponse", FHIROut: "Observation"},

		{Method: http.MethodGet, Path: "/v1/models", Tag: "risk", Summary: "The risk models and the profile fields each reads", Handler: s.listModels, Response: modelList{}},
		{Method: http.MethodGet, Path: "/v1/models/:name", Tag: "risk", Summary: "A model's card as data: intended use, limitations, cross-validated metrics with 95% intervals, calibration table, tier policy and populations, error rates by group (texts in zh-CN or en)", Handler: s.getModel, Request: modelPath{}, Response: modelCard{}},
		{Method: http.MethodGet, Path: "/v1/models/:name/versions", Tag: "risk", Summary: "A model's versions (shipped, shadow, active, retired) and the promotions and rollbacks asked and decided (admins, supervisors)", Handler: s.listModelVersions, Request: modelPath{}, Response: casework.ModelVersions{}},
		{Method: http.MethodPost, Path: "/v1/models/:name/versions", Tag: "risk", Summary: "Upload a new version of a model, in shadow: the model directory's files, base64, each checked against the manifest's sha256 (admins); loaded by every replica without a restart", Handler: s.uploadModelVersion, Request: modelUploadRequest{}, Response: casework.ModelVersion{}, Status: http.StatusCreated, Idempotent: true},
		{Method: http.MethodGet, Path: "/v1/models/:name/comparison", Tag: "risk", Summary: "Each shadow version against the active one: tier agreement, mean probabilities and, on outcomes as they arrive, AUC with a DeLong interval, Brier score, calibration and error rates at the strict threshold by group", Handler: s.modelComparison, Request: comparisonQuery{}, Response: casework.Comparison{}},
		{Method: http.MethodPost, Path: "/v1/models/:name/changes", Tag: "risk", Summary: "Ask to promote a shadow version to active, or to roll back to the version active before, with a reason (an admin, a person); another admin decides", Handler: s.requestModelChange, Request: modelChangeRequest{}, Response: casework.ModelChange{}, Status: http.StatusCreated, Idempotent: true},
		{Method: http.MethodPost, Path: "/v1/model-changes/:id/approve", Tag: "risk", Summary: "Approve a promotion or rollback: the version becomes active at once (an admin, a person, not the one who asked)", Handler: s.decideModelChange(true), Request: decisionRequest{}, Response: casework.ModelChange{}},
		{Method: http.MethodPost, Path: "/v1/model-changes/:id/reject", Tag: "risk", Summary: "Reject a promotion or rollback (an admin, a person, not the one who asked)", Handler: s.decideModelChange(false), Request: decisionRequest{}, Response: casework.ModelChange{}},
		{Method: http.MethodGet, Path: "/v1/training-export", Tag: "outcomes", Summary: "A labelled training file (CSV) of a model's recommendations: the first per person, with the inputs as they were then and whether an outcome of the given kinds followed within the window (admins; as sunpath model export-training)", Handler: s.trainingExport, Request: trainingExportQuery{}, CSV: true},
		{Method: http.MethodPost, Path: "/v1/risk/score", Tag: "risk", Summary: "Score features with a risk model without storing anything", Handler: s.riskScore, Request: riskRequest{}, Response: riskmodel.Prediction{}, Stateless: true},

		{Method: http.MethodGet, Path: "/v1/subjects", Tag: "subjects", Summary: "List the people the caller may see", Handler: s.listSubjects, Request: subjectQuery{}, Response: subjectList{}},
		{Method: http.MethodPut, Path: "/v1/subjects/:subject_id", Tag: "subjects", Summary: "Create or update a person under supervision (an update without a profile keeps the recorded one; If-Match refuses a stale update)", Handler: s.putSubject, Request: subjectRequest{}, Response: casework.Subject{}, Upsert: true, ETag: true, Extra: []int{http.StatusPreconditionFailed}},
		{Method: http.MethodGet, Path: "/v1/subjects/:subject_id", Tag: "subjects", Summary: "A person under supervision", Handler: s.getSubject, Request: subjectPath{}, Response: casework.Subject{}, ETag: true},
		{Method: http.MethodPost, Path: "/v1/subjects/:subject_id/assessments", Tag: "assessments", Summary: "Score and store an administration (honours Idempotency-Key)", Handler: s.createAssessment, Request: assessmentRequest{}, Response: assessmentDoc{}, Status: http.StatusCreated, Idempotent: true},
		{Method: http.MethodGet, Path: "/v1/subjects/:subject_id/assessments", Tag: "assessments", Summary: "A person's assessments, newest first", Handler: s.listAssessments, Request: assessmentQuery{}, Response: assessmentList{}},
		{Method: http.MethodGet, Path: "/v1/subjects/:subject_id/trends/:instrument", Tag: "assessments", Summary: "A person's results on one instrument over time, with reliable-change markers", Handler: s.trend, Request: trendPath{}, Response: casework.Trend{}},
		{Method: http.MethodGet, Path: "/v1/subjects/:subject_id/schedule", Tag: "assessments", Summary: "When each instrument is next due", Handler: s.subjectSchedule, Request: subjectPath{}, Response: dueList{}},
		{Method: http.MethodPost, Path: "/v1/subjects/:subject_id/sessions", Tag: "sessions", Summary: "Open a screening session, optionally with a one-time kiosk link", Handler: s.createSession, Request: sessionRequest{}, Response: casework.OpenedSession{}, Status: http.StatusCreated, Idempotent: true},
		{Method: http.MethodPost, Path: "/v1/subjects/:subject_id/recommendations", Tag: "risk", Summary: "Ask the model for advice on the supervision level (stored, explained; never changes the level)", Handler: s.createRecommendation, Request: recommendationRequest{}, Response: recommendationDoc{}, Status: http.StatusCreated, Idempotent: true},
		{Method: http.MethodPost, Path: "/v1/subjects/:subject_id/level", Tag: "decisions", Summary: "Decide a supervision level: a supervisor's adjustment (reward or sanction), or a case system recording the named person's decision", Handler: s.adjustLevel, Request: levelRequest{}, Response: casework.Decision{}, Status: http.StatusCreated, Idempotent: true},
		{Method: http.MethodGet, Path: "/v1/subjects/:subject_id/level-history", Tag: "decisions", Summary: "A person's supervision-level decisions: what, who, when, why, on which recommendation", Handler: s.levelHistory, Request: subjectPath{}, Response: levelHistory{}},
		{Method: http.MethodPost, Path: "/v1/subjects/:subject_id/outcomes", Tag: "outcomes", Summary: "Record an outcome of supervision (completed, warning, reprimand, public security penalty, revocation, new offence, absconding) with its date", Handler: s.recordOutcome, Request: outcomeRequest{}, Response: casework.SupervisionOutcome{}, Status: http.StatusCreated, Idempotent: true},
		{Method: http.MethodGet, Path: "/v1/subjects/:subject_id/outcomes", Tag: "outcomes", Summary: "A person's recorded outcomes of supervision, oldest first", Handler: s.listOutcomes, Request: subjectPath{}, Response: outcomeList{}},
		{Method: http.MethodGet, Path: "/v1/assessments/:id", Tag: "assessments", Summary: "One assessment with its flags (answers for staff)", Handler: s.getAssessment, Request: assessmentPath{}, Response: assessmentDoc{}},
		{Method: http.MethodGet, Path: "/v1/assessments/:id/fhir", Tag: "assessments", Summary: "One assessment as a FHIR R4 Bundle (collection) of its QuestionnaireResponse (answers for staff) and the Observation derived from it", Handler: s.assessmentFHIR, Request: assessmentPath{}, FHIROut: "Bundle", FHIROnly: true, Extra: []int{http.StatusConflict}},
		{Method: http.MethodGet, Path: "/v1/sessions", Tag: "sessions", Summary: "Unfinished screening sessions the caller may resume", Handler: s.listOpenSessions, Request: openSessionsQuery{}, Response: openSessionList{}},
		{Method: http.MethodPost, Path: "/v1/recommendations/:id/accept", Tag: "decisions", Summary: "Accept the newest recommendation's suggested tier as the person's level (a counselor or supervisor; people only)", Handler: s.acceptRecommendation, Request: acceptRequest{}, Response: casework.Decision{}, Status: http.StatusCreated, Idempotent: true},
		{Method: http.MethodGet, Path: "/v1/subjects/:subject_id/recommendations", Tag: "risk", Summary: "A person's recommendations, newest first", Handler: s.listRecommendations, Request: subjectPath{}, Response: recommendationList{}},

		{Method: http.MethodGet, Path: "/v1/sessions/:id", Tag: "sessions", Summary: "A screening session with its saved answers", Handler: s.getSession, Request: idPath{}, Response: casework.SessionView{}},
		{Method: http.MethodPut, Path: "/v1/sessions/:id/answers", Tag: "sessions", Summary: "Save answers item by item (autosave)", Handler: s.saveAnswers, Request: answersRequest{}, Response: casework.SessionView{}},
		{Method: http.MethodPost, Path: "/v1/sessions/:id/submit", Tag: "sessions", Summary: "Score and store every instrument of the session, once", Handler: s.submitSession, Request: submitRequest{}, Response: submittedDoc{}, Status: http.StatusCreated, Idempotent: true},
		{Method: http.MethodGet, Path: "/v1/kiosk/session", Tag: "kiosk", Summary: "The kiosk token's session: questions and saved answers", Handler: s.getSession, Response: casework.SessionView{}},
		{Method: http.MethodPut, Path: "/v1/kiosk/session/answers", Tag: "kiosk", Summary: "Save answers from the kiosk", Handler: s.saveAnswers, Request: kioskAnswersRequest{}, Response: casework.SessionView{}},
		{Method: http.MethodPost, Path: "/v1/kiosk/session/submit", Tag: "kiosk", Summary: "Submit the kiosk session; the link stops working", Handler: s.submitSession, Response: submittedDoc{}, Status: http.StatusCreated, Idempotent: true},

		{Method: http.MethodGet, Path: "/v1/flags", Tag: "flags", Summary: "Flags in the caller's scope, most urgent first", Handler: s.listFlags, Request: flagQuery{}, Response: flagList{}},
		{Method: http.MethodGet, Path: "/v1/flags/:id", Tag: "flags", Summary: "One flag", Handler: s.getFlag, Request: flagPath{}, Response: casework.Flag{}},
		{Method: http.MethodPost, Path: "/v1/flags/:id/acknowledge", Tag: "flags", Summary: "Acknowledge an open flag", Handler: s.acknowledgeFlag, Request: flagPath{}, Response: casework.Flag{}},
		{Method: http.MethodPost, Path: "/v1/flags/:id/resolve", Tag: "flags", Summary: "Resolve an acknowledged flag: what was done (coded interventions), a note, and the follow-up screening date", Handler: s.resolveFlag, Request: resolveRequest{}, Response: casework.Flag{}},

		{Method: http.MethodPost, Path: "/v1/recommendations/:id/overrides", Tag: "overrides", Summary: "Request a different tier than recommended (coded reason and note)", Handler: s.createOverride, Request: overrideRequest{}, Response: casework.Override{}, Status: http.StatusCreated, Idempotent: true},
		{Method: http.MethodGet, Path: "/v1/overrides", Tag: "overrides", Summary: "Overrides in the caller's scope, pending first", Handler: s.listOverrides, Request: overrideQuery{}, Response: overrideList{}},
		{Method: http.MethodPost, Path: "/v1/overrides/:id/approve", Tag: "overrides", Summary: "Approve an override: the requested tier becomes the level (a supervisor of the unit, not the requester; people only)", Handler: s.decideOverride(true), Request: decisionRequest{}, Response: casework.Override{}},
		{Method: http.MethodPost, Path: "/v1/overrides/:id/reject", Tag: "overrides", Summary: "Reject an override (a supervisor of the unit, not the requester)", Handler: s.decideOverride(false), Request: decisionRequest{}, Response: casework.Override{}},
		{Method: http.MethodGet, Path: "/v1/analytics/overrides", Tag: "overrides", Summary: "Override rate and direction by counselor, unit or reason", Handler: s.overrideAnalytics, Request: analyticsQuery{}, Response: analyticsResponse{}},

		{Method: http.MethodGet, Path: "/v1/reassessments", Tag: "dashboard", Summary: "Screenings due or overdue under the reassessment policy", Handler: s.reassessments, Request: dueQuery{}, Response: dueList{}},
		{Method: http.MethodGet, Path: "/v1/dashboard", Tag: "dashboard", Summary: "Tier distribution, overdue reassessments, new-entrant screening coverage, open flags", Handler: s.dashboard, Request: dashboardQuery{}, Response: casework.Dashboard{}},
		{Method: http.MethodGet, Path: "/v1/notifications", Tag: "flags", Summary: "Webhook deliveries and their status", Handler: s.listNotifications, Request: notificationQuery{}, Response: notificationList{}},
		{Method: http.MethodGet, Path: "/v1/audit", Tag: "audit", Summary: "The audit trail, filtered by subject, actor and time", Handler: s.listAudit, Request: auditQuery{}, Response: auditList{}},
	}
}

func (s *Server) buildRouter() error {
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.ContextWithFallback = true
	if err := e.SetTrustedProxies(s.cfg.TrustedProxies); err != nil {
		return err
	}
	e.Use(requestIDs, s.accessLog, s.instrument, s.recoverer, s.deadline)

	ops := e.Group("", securityHeaders)
	ops.GET("/healthz", s.healthz)
	ops.GET("/readyz", s.readyz)
	ops.GET("/openapi.json", s.openapi)

	s.routes = s.table()
	for _, rt := range s.routes {
		if _, ok := policy[rt.Method+" "+rt.Path]; !ok {
			return fmt.Errorf("route %s %s has no access policy (internal/httpapi/policy.go)", rt.Method, rt.Path)
		}
	}
	v1 := e.Group("", securityHeaders, s.limitBody)
	v1.Use(s.auditTrail)
	v1.Use(s.limitAddresses, s.authenticate, s.limitCallers, s.refuseNUL)
	for _, r := range s.routes {
		hs := []gin.HandlerFunc{}
		if pol := policy[r.Method+" "+r.Path]; pol.Scope != scopePublic {
			hs = append(hs, s.requireRoles(pol.Roles))
		}
		if policy[r.Method+" "+r.Path].Scope == scopeSelf {
			hs = append(hs, s.requirePerson)
		}
		v1.Handle(r.Method, r.Path, append(hs, r.Handler)...)
	}

	allowed := map[string][]string{}
	for _, ri := range e.Routes() {
		allowed[ri.Path] = append(allowed[ri.Path], ri.Method)
	}
	e.NoRoute(func(c *gin.Context) {
		if s.deps.UI != nil && !strings.HasPrefix(c.Request.URL.Path, "/v1/") {
			c.Set(ctxRoute, "ui")
			c.Status(http.StatusOK) // gin presets 404 for unmatched routes
			// The pages limit and audit sign-ins by the address the API uses.
			s.deps.UI.ServeHTTP(c.Writer, c.Request.WithContext(auth.WithClientAddr(c.Request.Context(), c.ClientIP())))
			return
		}
		writeProblem(c.Writer, c.Request, http.StatusNotFound, "", "no such resource", nil)
	})
	e.NoMethod(func(c *gin.Context) {
		securityHeaders(c)
		if ms := allowedMethods(e, c.Request.URL.Path); ms != "" {
			c.Header("Allow", ms)
		}
		writeProblem(c.Writer, c.Request, http.StatusMethodNotAllowed, "", "this resource does not support "+c.Request.Method, nil)
	})
	s.engine = e
	return nil
}

// allowedMethods lists the methods that do match path, for the Allow header.
func allowedMethods(e *gin.Engine, path string) string {
	var ms []string
	for _, ri := range e.Routes() {
		if matchPattern(ri.Path, path) {
			ms = append(ms, ri.Method)
		}
	}
	sort.Strings(ms)
	return strings.Join(ms, ", ")
}

// matchPattern reports whether a concrete path matches a gin pattern.
func matchPattern(pattern, path string) bool {
	ps := strings.Split(strings.Trim(pattern, "/"), "/")
	xs := strings.Split(strings.Trim(path, "/"), "/")
	if len(ps) != len(xs) {
		return false
	}
	for i := range ps {
		if !strings.HasPrefix(ps[i], ":") && ps[i] != xs[i] {
			return false
		}
	}
	return true
}

// RouteInfo describes one registered operation, for tests and tools.
type RouteInfo struct {
	Method, Path string
	Roles        []auth.Role
}

// Routes lists the operations of the route table.
func (s *Server) Routes() []RouteInfo {
	out := make([]RouteInfo, 0, len(s.routes))
	for _, r := range s.routes {
		out = append(out, RouteInfo{Method: r.Method, Path: r.Path, Roles: policy[r.Method+" "+r.Path].Roles})
	}
	return out
}

// EngineRoutes lists what gin actually registered.
func (s *Server) EngineRoutes() []RouteInfo {
	var out []RouteInfo
	for _, r := range s.engine.Routes() {
		out = append(out, RouteInfo{Method: r.Method, Path: r.Path})
	}
	return out
}
