package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/swaggest/jsonschema-go"
	openapi "github.com/swaggest/openapi-go"
	"github.com/swaggest/openapi-go/openapi31"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/instrument"
	"github.com/sunpath/sunpath/internal/problem"
	"github.com/sunpath/sunpath/internal/riskmodel"
	"github.com/sunpath/sunpath/internal/screening"
)

// OpenAPIPath turns a gin pattern (/v1/x/:id) into an OpenAPI one (/v1/x/{id}).
func OpenAPIPath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if strings.HasPrefix(s, ":") || strings.HasPrefix(s, "*") {
			parts[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(parts, "/")
}

// Media types the API serves besides application/json.
const (
	mediaFHIR = "application/fhir+json"
	mediaJSON = "application/json"
	mediaCSV  = "text/csv"
)

// tags describes every tag of the route table, in the document's order.
var tags = []struct{ Name, Description string }{
	{"auth", "Sign-in, sign-out, the caller's own account and password."},
	{"admin", "User accounts and organisational units (admins)."},
	{"instruments", "The questionnaires (PHQ-9, GAD-7, ASQ…): definitions, FHIR Questionnaires, stateless scoring."},
	{"subjects", "People under supervision, created and updated by the agency's case system or staff."},
	{"assessments", "Stored, scored administrations of an instrument, their trends and schedule."},
	{"sessions", "Screening sessions administered in person, item by item, with autosave."},
	{"kiosk", "Self-administration on a kiosk with a one-time token."},
	{"risk", "Risk models, stateless risk scores and stored, explained recommendations (advice only)."},
	{"decisions", "Supervision-level decisions, always made by a named person."},
	{"overrides", "Requests to depart from a recommendation, their approval and analytics."},
	{"flags", "Safety flags raised by answers (e.g. PHQ-9 item 9), their handling and notifications."},
	{"dashboard", "Supervisors' overview and due reassessments."},
	{"audit", "The audit trail (auditors)."},
}

// schemaNames names the document's schemas after the API's nouns where the
// Go type's own name is not one (request DTOs, lists, records of other
// packages whose names would collide).
var schemaNames = map[reflect.Type]string{
	reflect.TypeFor[loginRequest](): "LoginInput",
	// "Option" would clash with the option types client generators emit.
	reflect.TypeFor[screening.Option]():      "AnswerOption",
	reflect.TypeFor[sessionResponse]():       "SignIn",
	reflect.TypeFor[principalResponse]():     "Principal",
	reflect.TypeFor[passwordRequest]():       "PasswordChange",
	reflect.TypeFor[userResponse]():          "User",
	reflect.TypeFor[usersResponse]():         "UserList",
	reflect.TypeFor[unitRequest]():           "UnitInput",
	reflect.TypeFor[unitList]():              "UnitList",
	reflect.TypeFor[instrumentList]():        "InstrumentList",
	reflect.TypeFor[instrument.Summary]():    "InstrumentSummary",
	reflect.TypeFor[screening.Definition]():  "Instrument",
	reflect.TypeFor[screening.Result]():      "ScoreResult",
	reflect.TypeFor[screening.Flag]():        "ResultFlag",
	reflect.TypeFor[scoreRequest]():          "ScoreInput",
	reflect.TypeFor[modelList]():             "ModelList",
	reflect.TypeFor[modelInfo]():             "Model",
	reflect.TypeFor[riskmodel.FieldSpec]():   "ModelField",
	reflect.TypeFor[riskRequest]():           "RiskScoreInput",
	reflect.TypeFor[subjectRequest]():        "SubjectInput",
	reflect.TypeFor[subjectList]():           "SubjectPage",
	reflect.TypeFor[assessmentRequest]():     "AssessmentInput",
	reflect.TypeFor[assessmentDoc]():         "Assessment",
	reflect.TypeFor[assessmentList]():        "AssessmentList",
	reflect.TypeFor[recommendationRequest](): "RecommendationInput",
	reflect.TypeFor[recommendationDoc]():     "Recommendation",
	reflect.TypeFor[recommendationList]():    "RecommendationList",
	reflect.TypeFor[levelRequest]():          "LevelInput",
	reflect.TypeFor[levelHistory]():          "DecisionList",
	reflect.TypeFor[acceptRequest]():         "AcceptInput",
	reflect.TypeFor[sessionRequest]():        "SessionInput",
	reflect.TypeFor[openSessionList]():       "SessionList",
	reflect.TypeFor[answersRequest]():        "AnswersInput",
	reflect.TypeFor[kioskAnswersRequest]():   "KioskAnswersInput",
	// The records the doc types above document with typed fields; unused.
	reflect.TypeFor[casework.Assessment]():     "AssessmentRecord",
	reflect.TypeFor[casework.Recommendation](): "RecommendationRecord",
	reflect.TypeFor[casework.Submitted]():      "SubmittedRecord",
	reflect.TypeFor[submittedDoc]():            "Submitted",
	reflect.TypeFor[flagList]():                "FlagList",
	reflect.TypeFor[resolveRequest]():          "ResolutionInput",
	reflect.TypeFor[overrideRequest]():         "OverrideInput",
	reflect.TypeFor[overrideList]():            "OverrideList",
	reflect.TypeFor[decisionRequest]():         "OverrideDecisionInput",
	reflect.TypeFor[analyticsResponse]():       "OverrideAnalytics",
	reflect.TypeFor[dueList]():                 "DueList",
	reflect.TypeFor[notificationList]():        "NotificationList",
	reflect.TypeFor[casework.OutboxEntry]():    "Notification",
	reflect.TypeFor[auditEvent]():              "AuditEvent",
	reflect.TypeFor[auditList]():               "AuditList",
	reflect.TypeFor[riskmodel.ModelRef]():      "ModelRef",
}

// enumsByType are the allowed values of record fields, from the very lists
// the use cases validate with: property name → values, per Go type.
func enumsByType() map[reflect.Type]map[string][]string {
	levels := []string{string(screening.LevelCritical), string(screening.LevelUrgent), string(screening.LevelReview)}
	return map[reflect.Type]map[string][]string{
		reflect.TypeFor[casework.Subject]():  {"sex": casework.Sexes, "supervision_type": casework.SupervisionTypes},
		reflect.TypeFor[subjectRequest]():    {"sex": casework.Sexes, "supervision_type": casework.SupervisionTypes},
		reflect.TypeFor[subjectQuery]():      {"tier": tierNames()},
		reflect.TypeFor[casework.Flag]():     {"resolution_code": casework.ResolutionCodes, "interventions": casework.Interventions},
		reflect.TypeFor[resolveRequest]():    {"resolution_code": casework.ResolutionCodes, "interventions": casework.Interventions},
		reflect.TypeFor[overrideRequest]():   {"reason_code": casework.OverrideReasons, "tier": tierNames()},
		reflect.TypeFor[casework.Override](): {"reason_code": casework.OverrideReasons},
		reflect.TypeFor[levelRequest]():      {"reason_code": casework.AdjustmentReasons, "tier": tierNames()},
		reflect.TypeFor[flagQuery]():         {"level": levels},
		reflect.TypeFor[screening.Result]():  {"quality": {screening.QualityTooFast, screening.QualityStraightLining}},
	}
}

func tierNames() []string {
	out := make([]string, len(casework.Tiers))
	for i, t := range casework.Tiers {
		out[i] = string(t)
	}
	return out
}

// OpenAPI builds the OpenAPI 3.1 document of every /v1 operation from the
// route table and the access policy, so that the document cannot drift from
// the router: every status, media type and header each operation answers,
// the roles that may call it, and schemas named for the API's nouns.
func (s *Server) OpenAPI() ([]byte, error) {
	r, names, err := s.reflector()
	if err != nil {
		return nil, err
	}
	for _, rt := range s.routes {
		if err := addOperation(r, rt); err != nil {
			return nil, fmt.Errorf("%s %s: %w", rt.Method, rt.Path, err)
		}
	}
	if dup := names.collisions(); len(dup) > 0 {
		return nil, fmt.Errorf("schema names used by more than one Go type: %s", strings.Join(dup, ", "))
	}
	raw, err := r.Spec.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	s.complete(doc)
	return json.MarshalIndent(doc, "", " ")
}

// defNames records which Go type took which schema name.
type defNames map[string][]reflect.Type

// collisions lists the names taken by unrelated types. A type and the record
// it documents (embeds) share a name, as do types mapped one to the other.
func (d defNames) collisions() []string {
	var out []string
	for name, ts := range d {
		var roots []reflect.Type
		for _, t := range ts {
			if !slices.ContainsFunc(ts, func(u reflect.Type) bool { return embeds(u, t) }) && t != reflect.TypeFor[casework.ModelRef]() {
				roots = append(roots, t)
			}
		}
		if len(roots) > 1 {
			var ss []string
			for _, t := range ts {
				ss = append(ss, t.String())
			}
			out = append(out, name+" ("+strings.Join(ss, ", ")+")")
		}
	}
	sort.Strings(out)
	return out
}

// embeds reports whether struct t embeds u.
func embeds(t, u reflect.Type) bool {
	if t.Kind() != reflect.Struct {
		return false
	}
	for i := range t.NumField() {
		if f := t.Field(i); f.Anonymous && f.Type == u {
			return true
		}
	}
	return false
}

func (s *Server) reflector() (*openapi31.Reflector, defNames, error) {
	r := openapi31.NewReflector()
	names := defNames{}
	js := r.JSONSchemaReflector()
	// casework's and riskmodel's model references are one thing on the wire.
	js.AddTypeMapping(casework.ModelRef{}, riskmodel.ModelRef{})
	// Inline, so that a nullable tier or level keeps its null.
	js.InlineDefinition(casework.Tier(""))
	js.InlineDefinition(screening.Level(""))
	enums := enumsByType()
	r.DefaultOptions = append(r.DefaultOptions,
		jsonschema.InterceptDefName(func(t reflect.Type, def string) string {
			name, ok := schemaNames[t]
			if !ok {
				if t.Name() == "" || def == "" {
					return def
				}
				name = strings.ToUpper(t.Name()[:1]) + t.Name()[1:]
			}
			if !slices.Contains(names[name], t) {
				names[name] = append(names[name], t)
			}
			return name
		}),
		jsonschema.InterceptSchema(func(p jsonschema.InterceptSchemaParams) (bool, error) {
			if !p.Processed || !p.Value.IsValid() {
				return false, nil
			}
			t := p.Value.Type()
			for t.Kind() == reflect.Pointer {
				t = t.Elem()
			}
			switch t {
			case reflect.TypeFor[casework.Tier]():
				p.Schema.Enum = anys(tierNames())
			case reflect.TypeFor[screening.Level]():
				p.Schema.Enum = anys([]string{string(screening.LevelCritical), string(screening.LevelUrgent), string(screening.LevelReview)})
			}
			if p.Schema.Enum != nil && p.Schema.HasType(jsonschema.Null) {
				p.Schema.Enum = append(p.Schema.Enum, nil)
			}
			if t.Kind() != reflect.Struct || p.Schema.Properties == nil {
				return false, nil
			}
			for prop, values := range enums[t] {
				setEnum(p.Schema, prop, values)
			}
			// screening.Result writes an empty severity as null.
			if t == reflect.TypeFor[screening.Result]() {
				if ps, ok := p.Schema.Properties["severity"]; ok && ps.TypeObject != nil {
					ps.TypeObject.AddType(jsonschema.Null)
				}
			}
			oc, ok := openapi.OperationCtx(p.Context)
			if !ok {
				return false, nil
			}
			if oc.IsProcessingResponse() {
				// A property the JSON encoder always writes is required.
				for _, name := range alwaysWritten(t) {
					if _, ok := p.Schema.Properties[name]; ok && !slices.Contains(p.Schema.Required, name) {
						p.Schema.Required = append(p.Schema.Required, name)
					}
				}
				sort.Strings(p.Schema.Required)
			} else if oc.ProcessingIn() == openapi.InBody {
				// decodeJSON refuses unknown fields.
				p.Schema.WithAdditionalProperties(jsonschema.SchemaOrBool{TypeBoolean: new(false)})
			}
			return false, nil
		}),
		jsonschema.InterceptProp(func(p jsonschema.InterceptPropParams) error {
			if !p.Processed {
				return nil
			}
			// Raw JSON kept as is by the handler; its documented shape.
			// Go decodes a JSON null into a map or slice of a request body.
			if oc, ok := openapi.OperationCtx(p.Context); ok && !oc.IsProcessingResponse() {
				if k := p.Field.Type.Kind(); (k == reflect.Map || k == reflect.Slice) && p.Field.Type != reflect.TypeFor[json.RawMessage]() {
					p.PropertySchema.AddType(jsonschema.Null)
				}
			}
			// Raw or free-form JSON documented as an object of any members.
			if p.Field.Tag.Get("docType") == "object" {
				p.PropertySchema.WithType(jsonschema.Object.Type())
				p.PropertySchema.WithAdditionalProperties(jsonschema.SchemaOrBool{TypeObject: &jsonschema.Schema{}})
			}
			return nil
		}),
	)
	return r, names, nil
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// setEnum sets the values of a string property, or of the items of an
// array property.
func setEnum(s *jsonschema.Schema, prop string, values []string) {
	ps, ok := s.Properties[prop]
	if !ok || ps.TypeObject == nil {
		return
	}
	if ps.TypeObject.Items != nil && ps.TypeObject.Items.SchemaOrBool != nil && ps.TypeObject.Items.SchemaOrBool.TypeObject != nil {
		ps.TypeObject.Items.SchemaOrBool.TypeObject.Enum = anys(values)
		return
	}
	ps.TypeObject.Enum = anys(values)
	if ps.TypeObject.HasType(jsonschema.Null) {
		ps.TypeObject.Enum = append(ps.TypeObject.Enum, nil)
	}
}

// alwaysWritten lists the JSON names of t's fields that encoding/json always
// writes: exported, not "-", not omitempty; through embedded structs.
func alwaysWritten(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				out = append(out, alwaysWritten(ft)...)
			}
			continue
		}
		if !f.IsExported() || name == "-" || strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero") {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	return out
}

func addOperation(r *openapi31.Reflector, rt route) error {
	oc, err := r.NewOperationContext(rt.Method, OpenAPIPath(rt.Path))
	if err != nil {
		return err
	}
	oc.SetSummary(rt.Summary)
	oc.SetID(operationID(rt.Method, rt.Path))
	if rt.Tag != "" {
		oc.SetTags(rt.Tag)
	}
	if rt.Request != nil {
		oc.AddReqStructure(rt.Request)
	}
	if rt.FHIRIn != "" {
		oc.AddReqStructure(nil, openapi.WithContentType(mediaFHIR))
	}
	st := rt.status()
	if !rt.FHIROnly {
		oc.AddRespStructure(rt.Response, openapi.WithHTTPStatus(st))
	}
	for _, code := range rt.problems() {
		oc.AddRespStructure(problem.Problem{}, openapi.WithHTTPStatus(code), openapi.WithContentType(problem.ContentType))
	}
	return r.AddOperation(oc)
}

func (rt route) status() int {
	if rt.Status == 0 {
		return http.StatusOK
	}
	return rt.Status
}

// hasBody reports whether the route decodes a JSON request body.
func (rt route) hasBody() bool {
	if rt.Request == nil {
		return rt.FHIRIn != ""
	}
	t := reflect.TypeOf(rt.Request)
	return t.Kind() == reflect.Struct && hasJSONField(t)
}

func hasJSONField(t reflect.Type) bool {
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct && hasJSONField(f.Type) {
			return true
		}
		if n := f.Tag.Get("json"); n != "" && n != "-" {
			return true
		}
	}
	return false
}

// problems lists the error statuses a route can answer, from what its
// middleware and handler do:
//
//   - every /v1 request: 401 (a bad credential is refused even where none is
//     needed), 429 (per address and per caller, with Retry-After), 500, 503
//     (the database is down, with Retry-After) and 504 (the deadline);
//   - state-changing methods: 400 (malformed or empty body), 403 (the
//     cross-origin protection), 413 (body size), 415 (media type), 409 (the
//     record's state or an Idempotency-Key in use) but for the stateless
//     scoring and the sign-in/out;
//   - 403 on routes with roles; 404 on routes with a path parameter or
//     reaching a person's records; 422 on every route with inputs.
func (rt route) problems() []int {
	pol := policy[rt.Method+" "+rt.Path]
	codes := []int{http.StatusUnauthorized, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout}
	mutating := rt.Method != http.MethodGet
	if mutating {
		codes = append(codes, http.StatusBadRequest, http.StatusForbidden, http.StatusRequestEntityTooLarge)
		if rt.hasBody() {
			codes = append(codes, http.StatusUnsupportedMediaType)
		}
		if !rt.Stateless {
			codes = append(codes, http.StatusConflict)
		}
	}
	if pol.Scope != scopePublic && !slices.Contains(codes, http.StatusForbidden) {
		codes = append(codes, http.StatusForbidden)
	}
	if strings.Contains(rt.Path, ":") || pol.Scope == scopeSubject || pol.Scope == scopeKioskSession {
		codes = append(codes, http.StatusNotFound)
	}
	if rt.Request != nil || mutating || rt.Idempotent {
		codes = append(codes, http.StatusUnprocessableEntity)
	}
	for _, x := range rt.Extra {
		if !slices.Contains(codes, x) {
			codes = append(codes, x)
		}
	}
	sort.Ints(codes)
	return codes
}

// securityOf names the credentials that can carry one of the roles.
func securityOf(pol access) []any {
	if pol.Scope == scopePublic {
		return []any{}
	}
	var out []any
	people, keys := false, false
	for _, r := range pol.Roles {
		switch r {
		case auth.RoleKiosk:
			out = append(out, map[string]any{"kioskToken": []any{}})
		case auth.RoleCaseSystem:
			keys = true
		default:
			people, keys = true, true
		}
	}
	if pol.Scope == scopeSelf {
		keys = false
	}
	if keys {
		out = append(out, map[string]any{"apiKey": []any{}})
	}
	if people {
		out = append(out, map[string]any{"sessionCookie": []any{}})
	}
	return out
}

var scopeText = map[scope]string{
	scopePublic:       "No credentials needed.",
	scopeNone:         "Reaches no person's records.",
	scopeSelf:         "Only a person signed in with a session, for their own account.",
	scopeSubject:      "Reaches only the people the caller may see (admins everyone, supervisors their unit, counselors their caseload, case systems their agency's units); others answer 404.",
	scopeKioskSession: "Reaches only the kiosk token's own session.",
}

func ref(kind, name string) map[string]any {
	return map[string]any{"$ref": "#/components/" + kind + "/" + name}
}

// complete adds what the reflector does not know: servers, security
// schemes, roles, headers, problem responses by reference, FHIR media
// types, tags and descriptions.
func (s *Server) complete(doc map[string]any) {
	info := doc["info"].(map[string]any)
	info["title"] = "Sunpath API"
	info["version"] = s.cfg.Version
	info["description"] = "Psychological screening and risk scoring for community corrections. " +
		"Every error is an RFC 9457 application/problem+json body carrying request_id, which is also the X-Request-ID response header. " +
		"Machine clients authenticate with `Authorization: Bearer <api key>`; kiosks with `Authorization: Bearer <kiosk token>`; " +
		"people sign in with POST /v1/auth/login and then send the session cookie. " +
		"Each operation lists the roles that may call it in `x-roles`. " +
		"Licence: the repository carries no LICENSE file and the README states none; no licence is granted by this document."
	doc["servers"] = []any{map[string]any{"url": "/", "description": "this server"}}
	var ts []any
	for _, t := range tags {
		ts = append(ts, map[string]any{"name": t.Name, "description": t.Description})
	}
	doc["tags"] = ts

	comp, _ := doc["components"].(map[string]any)
	if comp == nil {
		comp = map[string]any{}
		doc["components"] = comp
	}
	comp["securitySchemes"] = map[string]any{
		"apiKey":        map[string]any{"type": "http", "scheme": "bearer", "bearerFormat": "opaque", "description": "An API key created with `sunpath apikey create`; carries one role (and a case system its agency)."},
		"kioskToken":    map[string]any{"type": "http", "scheme": "bearer", "bearerFormat": auth.KioskPrefix + "…", "description": "The one-time kiosk token of a screening session (POST /v1/subjects/{subject_id}/sessions with kiosk: true)."},
		"sessionCookie": map[string]any{"type": "apiKey", "in": "cookie", "name": sessionCookie, "description": "The session cookie set by POST /v1/auth/login."},
	}
	str := map[string]any{"type": "string"}
	comp["headers"] = map[string]any{
		"X-Request-ID":        map[string]any{"description": "The request's id: the caller's X-Request-ID when short and plain, else a new one; also the problem's request_id.", "required": true, "schema": str},
		"Idempotent-Replayed": map[string]any{"description": "`true` when this is the stored answer of an earlier request with the same Idempotency-Key.", "schema": map[string]any{"type": "string", "enum": []any{"true"}}},
		"Retry-After":         map[string]any{"description": "Seconds to wait before retrying.", "schema": map[string]any{"type": "string", "pattern": "^[0-9]+$"}},
		"WWW-Authenticate":    map[string]any{"description": "The Bearer challenge.", "schema": str},
		"Set-Cookie":          map[string]any{"description": "The session cookie " + sessionCookie + " (HttpOnly, SameSite=Strict).", "schema": str},
		"ETag":                map[string]any{"description": "The record's version; send it as If-Match with an update.", "schema": str},
	}
	comp["parameters"] = map[string]any{
		"IdempotencyKey": map[string]any{"name": "Idempotency-Key", "in": "header", "required": false,
			"description": "Makes a retry safe: the same key with the same request answers the stored result (Idempotent-Replayed: true); with another request 422; while the first is in flight 409.",
			"schema":      map[string]any{"type": "string", "pattern": `^[\x21-\x7e]{1,255}$`}},
		"IfMatch": map[string]any{"name": "If-Match", "in": "header", "required": false,
			"description": "The ETag of the record as last read: the update is refused with 412 if the record changed since.", "schema": str},
		"XRequestID": map[string]any{"name": headerRequestID, "in": "header", "required": false,
			"description": "The caller's request id, echoed when it matches the pattern.", "schema": map[string]any{"type": "string"}},
	}
	responses := map[string]any{}
	for code := 400; code < 600; code++ {
		text := http.StatusText(code)
		if text == "" {
			continue
		}
		h := map[string]any{"X-Request-ID": ref("headers", "X-Request-ID")}
		switch code {
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			h["Retry-After"] = ref("headers", "Retry-After")
		case http.StatusUnauthorized:
			h["WWW-Authenticate"] = ref("headers", "WWW-Authenticate")
		}
		responses[problemName(code)] = map[string]any{"description": text, "headers": h,
			"content": map[string]any{problem.ContentType: map[string]any{"schema": ref("schemas", "Problem")}}}
	}
	comp["responses"] = responses
	schemas, _ := comp["schemas"].(map[string]any)
	for name, res := range map[string]string{"FHIRQuestionnaire": "Questionnaire", "FHIRQuestionnaireResponse": "QuestionnaireResponse",
		"FHIRObservation": "Observation", "FHIRBundle": "Bundle"} {
		schemas[name] = map[string]any{"type": "object", "required": []any{"resourceType"},
			"description":  "A FHIR R4 " + res + " resource (http://hl7.org/fhir/R4/" + strings.ToLower(res) + ".html).",
			"properties":   map[string]any{"resourceType": map[string]any{"type": "string", "enum": []any{res}}},
			"externalDocs": map[string]any{"url": "http://hl7.org/fhir/R4/" + strings.ToLower(res) + ".html"}}
	}

	used := map[string]bool{}
	paths := doc["paths"].(map[string]any)
	for _, rt := range s.routes {
		op := paths[OpenAPIPath(rt.Path)].(map[string]any)[strings.ToLower(rt.Method)].(map[string]any)
		pol := policy[rt.Method+" "+rt.Path]
		op["security"] = securityOf(pol)
		roles := []any{}
		for _, r := range pol.Roles {
			roles = append(roles, string(r))
		}
		op["x-roles"] = roles
		desc := rt.Summary + ". "
		if len(roles) > 0 {
			desc += "Roles: " + joinRoles(pol.Roles) + ". "
		}
		desc += scopeText[pol.Scope]
		if rt.Idempotent {
			desc += " Honours Idempotency-Key."
		}
		op["description"] = desc
		params, _ := op["parameters"].([]any)
		params = append(params, ref("parameters", "XRequestID"))
		if rt.Idempotent {
			params = append(params, ref("parameters", "IdempotencyKey"))
		}
		if rt.ETag && rt.Method == http.MethodPut {
			params = append(params, ref("parameters", "IfMatch"))
		}
		op["parameters"] = params
		resps := op["responses"].(map[string]any)
		for code := range resps {
			n, _ := strconv.Atoi(code)
			if n >= 400 {
				resps[code] = ref("responses", problemName(n))
				used[problemName(n)] = true
			}
		}
		st := strconv.Itoa(rt.status())
		if rt.FHIROnly {
			resps[st] = map[string]any{"description": http.StatusText(rt.status()),
				"content": map[string]any{mediaFHIR: map[string]any{"schema": ref("schemas", "FHIR"+rt.FHIROut)}}}
		}
		if rt.CSV {
			resps[st] = map[string]any{"description": http.StatusText(rt.status()),
				"content": map[string]any{mediaCSV: map[string]any{"schema": map[string]any{"type": "string"}}}}
		}
		ok, _ := resps[st].(map[string]any)
		if ok != nil {
			h := map[string]any{"X-Request-ID": ref("headers", "X-Request-ID")}
			if rt.Idempotent {
				h["Idempotent-Replayed"] = ref("headers", "Idempotent-Replayed")
			}
			if rt.ETag {
				h["ETag"] = ref("headers", "ETag")
			}
			if rt.Method == http.MethodPost && rt.Path == "/v1/auth/login" {
				h["Set-Cookie"] = ref("headers", "Set-Cookie")
			}
			ok["headers"] = h
			if ct, _ := ok["content"].(map[string]any); ct != nil && rt.FHIROut != "" && !rt.FHIROnly {
				ct[mediaFHIR] = map[string]any{"schema": ref("schemas", "FHIR"+rt.FHIROut)}
			}
			if rt.Upsert {
				created := map[string]any{}
				for k, v := range ok {
					created[k] = v
				}
				ok["description"] = "Updated"
				created["description"] = "Created"
				resps["201"] = created
			}
		}
		if rt.FHIRIn != "" {
			if rb, _ := op["requestBody"].(map[string]any); rb != nil {
				if ct, _ := rb["content"].(map[string]any); ct != nil {
					ct[mediaFHIR] = map[string]any{"schema": ref("schemas", "FHIR"+rt.FHIRIn)}
				}
			}
		}
	}
	for name := range responses {
		if !used[name] {
			delete(responses, name)
		}
	}
	// Drop the schemas nothing refers to (the records the doc types shadow).
	reach := map[string]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if r, ok := x["$ref"].(string); ok {
				if name, ok := strings.CutPrefix(r, "#/components/schemas/"); ok && !reach[name] {
					reach[name] = true
					walk(schemas[name])
				}
			}
			for _, y := range x {
				walk(y)
			}
		case []any:
			for _, y := range x {
				walk(y)
			}
		}
	}
	walk(doc["paths"])
	walk(comp["responses"])
	for name := range schemas {
		if !reach[name] {
			delete(schemas, name)
		}
	}
}

func problemName(code int) string {
	return strings.ReplaceAll(strings.ReplaceAll(http.StatusText(code), " ", ""), "-", "")
}

func joinRoles(rs []auth.Role) string {
	ss := make([]string, len(rs))
	for i, r := range rs {
		ss[i] = string(r)
	}
	return strings.Join(ss, ", ")
}

func operationID(method, path string) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(method))
	for _, part := range strings.Split(strings.TrimPrefix(path, "/v1"), "/") {
		part = strings.TrimLeft(part, ":*")
		if part == "" {
			continue
		}
		b.WriteString(strings.ToUpper(part[:1]))
		b.WriteString(strings.ReplaceAll(part[1:], "-", "_"))
	}
	return b.String()
}

func (s *Server) openapi(c *gin.Context) {
	doc, err := s.OpenAPI()
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Data(http.StatusOK, "application/json", doc)
}
