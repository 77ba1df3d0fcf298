package httpapi

import "github.com/sunpath/sunpath/internal/auth"

// scope says which records of a route a permitted role reaches. The rule
// itself lives in one SQL function, subject_visible (migrations 0004, 0005): admins
// everyone, supervisors their unit, counselors their caseload, case systems
// their agency's units. Out-of-scope records answer 404, never 200, and the
// denial is audited.
type scope string

const (
	scopePublic       scope = "public"        // no credentials (sign-in)
	scopeNone         scope = "none"          // no personal data: catalogue, own account, admin
	scopeSelf         scope = "self"          // the caller's own account, people with a session only (requirePerson)
	scopeSubject      scope = "subject"       // a person's records, through subject_visible
	scopeKioskSession scope = "kiosk_session" // the kiosk token's own session only
)

// access is one row of the policy: who may call a route, and what it reaches.
type access struct {
	Roles []auth.Role // nil only for scopePublic
	Scope scope
}

var (
	allRoles    = auth.Roles
	staffRoles  = []auth.Role{auth.RoleAdmin, auth.RoleSupervisor, auth.RoleCounselor}
	caseRoles   = []auth.Role{auth.RoleAdmin, auth.RoleSupervisor, auth.RoleCounselor, auth.RoleCaseSystem}
	writerRoles = []auth.Role{auth.RoleAdmin, auth.RoleSupervisor, auth.RoleCaseSystem}
	supervisors = []auth.Role{auth.RoleSupervisor}
	leads       = []auth.Role{auth.RoleAdmin, auth.RoleSupervisor}
	kiosk       = []auth.Role{auth.RoleKiosk}
	auditors    = []auth.Role{auth.RoleAuditor}
	admins      = []auth.Role{auth.RoleAdmin}
)

// policy is the access policy of every /v1 route, by "METHOD /path". The
// router refuses to start with a route missing from it, and the matrix test
// walks every route against every kind of caller.
var policy = map[string]access{
	"POST /v1/auth/login":                             {nil, scopePublic},
	"POST /v1/auth/logout":                            {allRoles, scopeNone},
	"POST /v1/auth/password":                          {allRoles, scopeSelf},
	"GET /v1/auth/me":                                 {allRoles, scopeNone},
	"GET /v1/users":                                   {admins, scopeNone},
	"GET /v1/units":                                   {caseRoles, scopeNone},
	"PUT /v1/units/:code":                             {admins, scopeNone},
	"GET /v1/instruments":                             {allRoles, scopeNone},
	"GET /v1/instruments/:id":                         {allRoles, scopeNone},
	"GET /v1/instruments/:id/fhir":                    {allRoles, scopeNone},
	"POST /v1/instruments/:id/score":                  {caseRoles, scopeNone},
	"GET /v1/models":                                  {caseRoles, scopeNone},
	"GET /v1/models/:name":                            {caseRoles, scopeNone},
	"POST /v1/risk/score":                             {caseRoles, scopeNone},
	"GET /v1/models/:name/versions":                   {leads, scopeNone},
	"POST /v1/models/:name/versions":                  {admins, scopeNone},
	"GET /v1/models/:name/comparison":                 {leads, scopeNone},
	"POST /v1/models/:name/changes":                   {admins, scopeSelf},
	"POST /v1/model-changes/:id/approve":              {admins, scopeSelf},
	"POST /v1/model-changes/:id/reject":               {admins, scopeSelf},
	"GET /v1/training-export":                         {admins, scopeNone},
	"GET /v1/subjects":                                {caseRoles, scopeSubject},
	"PUT /v1/subjects/:subject_id":                    {writerRoles, scopeSubject},
	"GET /v1/subjects/:subject_id":                    {caseRoles, scopeSubject},
	"POST /v1/subjects/:subject_id/assessments":       {caseRoles, scopeSubject},
	"GET /v1/subjects/:subject_id/assessments":        {caseRoles, scopeSubject},
	"GET /v1/subjects/:subject_id/trends/:instrument": {caseRoles, scopeSubject},
	"GET /v1/subjects/:subject_id/schedule":           {caseRoles, scopeSubject},
	"POST /v1/subjects/:subject_id/sessions":          {staffRoles, scopeSubject},
	"POST /v1/subjects/:subject_id/recommendations":   {caseRoles, scopeSubject},
	"GET /v1/subjects/:subject_id/recommendations":    {caseRoles, scopeSubject},
	"POST /v1/subjects/:subject_id/level":             {[]auth.Role{auth.RoleSupervisor, auth.RoleCaseSystem}, scopeSubject},
	"GET /v1/subjects/:subject_id/level-history":      {caseRoles, scopeSubject},
	"POST /v1/subjects/:subject_id/outcomes":          {caseRoles, scopeSubject},
	"GET /v1/subjects/:subject_id/outcomes":           {caseRoles, scopeSubject},
	"GET /v1/assessments/:id":                         {caseRoles, scopeSubject},
	"GET /v1/assessments/:id/fhir":                    {caseRoles, scopeSubject},
	"GET /v1/sessions":                                {staffRoles, scopeSubject},
	"POST /v1/recommendations/:id/accept":             {[]auth.Role{auth.RoleCounselor, auth.RoleSupervisor}, scopeSubject},
	"GET /v1/sessions/:id":                            {staffRoles, scopeSubject},
	"PUT /v1/sessions/:id/answers":                    {staffRoles, scopeSubject},
	"POST /v1/sessions/:id/submit":                    {staffRoles, scopeSubject},
	"GET /v1/kiosk/session":                           {kiosk, scopeKioskSession},
	"PUT /v1/kiosk/session/answers":                   {kiosk, scopeKioskSession},
	"POST /v1/kiosk/session/submit":                   {kiosk, scopeKioskSession},
	"GET /v1/flags":                                   {staffRoles, scopeSubject},
	"GET /v1/flags/:id":                               {staffRoles, scopeSubject},
	"POST /v1/flags/:id/acknowledge":                  {staffRoles, scopeSubject},
	"POST /v1/flags/:id/resolve":                      {staffRoles, scopeSubject},
	"POST /v1/recommendations/:id/overrides":          {[]auth.Role{auth.RoleCounselor, auth.RoleSupervisor}, scopeSubject},
	"GET /v1/overrides":                               {staffRoles, scopeSubject},
	"POST /v1/overrides/:id/approve":                  {supervisors, scopeSubject},
	"POST /v1/overrides/:id/reject":                   {supervisors, scopeSubject},
	"GET /v1/analytics/overrides":                     {leads, scopeSubject},
	"GET /v1/reassessments":                           {caseRoles, scopeSubject},
	"GET /v1/dashboard":                               {staffRoles, scopeSubject},
	"GET /v1/notifications":                           {leads, scopeNone},
	"GET /v1/audit":                                   {auditors, scopeNone},
}
