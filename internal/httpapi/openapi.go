package httpapi

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	openapi "github.com/swaggest/openapi-go"
	"github.com/swaggest/openapi-go/openapi31"

	"github.com/sunpath/sunpath/internal/problem"
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

// OpenAPI builds the OpenAPI 3.1 document of every /v1 operation from the
// route table, so that the document cannot drift from the router.
func (s *Server) OpenAPI() ([]byte, error) {
	r := openapi31.NewReflector()
	r.Spec.SetTitle("Sunpath API")
	r.Spec.SetVersion(s.cfg.Version)
	r.Spec.SetDescription("Psychological screening and risk scoring for community corrections. " +
		"Every error is an RFC 9457 application/problem+json body carrying request_id. " +
		"Machine clients authenticate with `Authorization: Bearer <api key>`; people sign in with " +
		"POST /v1/auth/login and then send the session cookie.")
	r.Spec.SetHTTPBearerTokenSecurity("apiKey", "opaque", "An API key created with `sunpath apikey create`.")
	r.Spec.SetAPIKeySecurity("session", sessionCookie, openapi.InCookie, "The session cookie set by POST /v1/auth/login.")
	for _, rt := range s.routes {
		oc, err := r.NewOperationContext(rt.Method, OpenAPIPath(rt.Path))
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", rt.Method, rt.Path, err)
		}
		oc.SetSummary(rt.Summary)
		oc.SetID(operationID(rt.Method, rt.Path))
		if rt.Tag != "" {
			oc.SetTags(rt.Tag)
		}
		if rt.Request != nil {
			oc.AddReqStructure(rt.Request)
		}
		st := rt.Status
		if st == 0 {
			st = http.StatusOK
		}
		oc.AddRespStructure(rt.Response, openapi.WithHTTPStatus(st))
		codes := []int{http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusInternalServerError, http.StatusServiceUnavailable}
		if policy[rt.Method+" "+rt.Path].Scope != scopePublic {
			oc.AddSecurity("apiKey")
			oc.AddSecurity("session")
			codes = append(codes, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound)
		}
		for _, code := range codes {
			oc.AddRespStructure(problem.Problem{}, openapi.WithHTTPStatus(code), openapi.WithContentType(problem.ContentType))
		}
		if err := r.AddOperation(oc); err != nil {
			return nil, fmt.Errorf("%s %s: %w", rt.Method, rt.Path, err)
		}
	}
	return r.Spec.MarshalJSON()
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
