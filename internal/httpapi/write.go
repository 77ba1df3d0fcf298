package httpapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"sort"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/sunpath/sunpath/internal/audit"
	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/problem"
)

const (
	ctxAudited = "sunpath.audited"
	ctxError   = "sunpath.error"
	ctxRawBody = "sunpath.raw_body"
	ctxActor   = "sunpath.actor" // for requests without a principal, e.g. a failed login
)

var idempotencyKeyRE = regexp.MustCompile(`^[\x21-\x7e]{1,255}$`)

// call is the use-case call of a request: who asks, the request id and,
// with an Idempotency-Key, the key and the request's hash (method, path and
// body). ok is false when the key is malformed (answered already).
func (s *Server) call(c *gin.Context) (casework.Call, bool) {
	p, _ := principal(c)
	cl := casework.Call{Principal: p, RequestID: requestID(c)}
	if key := c.GetHeader("Idempotency-Key"); key != "" {
		if !idempotencyKeyRE.MatchString(key) {
			s.fail(c, fieldError("Idempotency-Key", "must be 1-255 visible ASCII characters"))
			return cl, false
		}
		h := sha256.New()
		h.Write([]byte(c.Request.Method + " " + c.Request.URL.Path + "\n"))
		if b, ok := c.Get(ctxRawBody); ok {
			h.Write(canonicalJSON(b.([]byte)))
		}
		cl.IdempotencyKey, cl.RequestHash = key, h.Sum(nil)
	}
	return cl, true
}

// reply answers a use case's result: err as a problem, else v as JSON with
// status. The use case wrote its own audit event.
func (s *Server) reply(c *gin.Context, status int, v any, out casework.Outcome, err error) {
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Set(ctxAudited, true)
	if out.Replayed {
		c.Header("Idempotent-Replayed", "true")
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(status, v)
}

// replyEncoded is reply for a handler that sends the use case's result as
// it is: the JSON the use case already encoded (Outcome.JSON) is sent
// instead of encoding it again.
func (s *Server) replyEncoded(c *gin.Context, status int, v any, out casework.Outcome, err error) {
	if err != nil || len(out.JSON) == 0 {
		s.reply(c, status, v, out, err)
		return
	}
	c.Set(ctxAudited, true)
	c.Header("Cache-Control", "no-store")
	c.Data(status, "application/json; charset=utf-8", out.JSON)
}

// answer is reply for reads and updates (no replay).
func (s *Server) answer(c *gin.Context, v any, err error) {
	s.reply(c, http.StatusOK, v, casework.Outcome{}, err)
}

// auditTrail writes one audit event for every request that did not write its
// own in its transaction and that changed, or tried to change, something, or
// was denied. Its outcome follows the status.
func (s *Server) auditTrail(c *gin.Context) {
	c.Next()
	if c.GetBool(ctxAudited) || c.FullPath() == "" {
		return
	}
	code := c.Writer.Status()
	if s.refused(c, code) {
		return // audited as a per-minute count (refusals.go)
	}
	mutating := c.Request.Method != http.MethodGet && c.Request.Method != http.MethodHead
	e, _ := c.Get(ctxError)
	err, _ := e.(error)
	outOfScope := errors.Is(err, casework.ErrOutOfScope)
	if !mutating && code != http.StatusUnauthorized && code != http.StatusForbidden && !outOfScope {
		return
	}
	outcome := audit.Success
	switch {
	case code == http.StatusUnauthorized || code == http.StatusForbidden || outOfScope:
		outcome = audit.Denied
	case code >= 500:
		outcome = audit.Failed
	case code >= 400:
		outcome = audit.Rejected
	}
	ev := audit.Event{
		Action:       actionOf(c),
		ResourceType: resourceOf(c.FullPath()),
		ResourceID:   firstParam(c, "id", "code", "name"),
		Subject:      c.Param("subject_id"),
		Outcome:      outcome,
		RequestID:    requestID(c),
	}
	if p, ok := principal(c); ok {
		ev.Actor, ev.Role = p.Actor(), string(p.Role)
	} else if a := c.GetString(ctxActor); a != "" {
		ev.Actor, ev.Role = a, "anonymous"
	} else {
		ev.Actor, ev.Role = "anonymous", "anonymous"
	}
	if b, _ := json.Marshal(map[string]any{"status": code}); b != nil {
		ev.Detail = string(b)
	}
	if err := s.deps.Casework.Record(c.Request.Context(), ev); err != nil {
		s.log.Error("audit event not written", "request_id", requestID(c), "action", ev.Action, "err", err)
	}
}

// actionOf names an action after its route: "POST /v1/flags/:id/acknowledge"
// becomes "POST flags.acknowledge".
func actionOf(c *gin.Context) string {
	var parts []string
	for _, seg := range strings.Split(strings.TrimPrefix(c.FullPath(), "/v1/"), "/") {
		if !strings.HasPrefix(seg, ":") {
			parts = append(parts, seg)
		}
	}
	return c.Request.Method + " " + strings.Join(parts, ".")
}

func resourceOf(path string) string {
	segs := strings.Split(strings.TrimPrefix(path, "/v1/"), "/")
	for i := len(segs) - 1; i >= 0; i-- {
		if !strings.HasPrefix(segs[i], ":") {
			return segs[i]
		}
	}
	return ""
}

func firstParam(c *gin.Context, names ...string) string {
	for _, n := range names {
		if v := c.Param(n); v != "" {
			return v
		}
	}
	return ""
}

// prefixFields prefixes the field names of a validation error, so that a
// model's feature errors name "features.X" or "profile.X".
func prefixFields(err error, prefix string) error {
	var inv *problem.Invalid
	if !errors.As(err, &inv) {
		return err
	}
	out := &problem.Invalid{}
	for _, fe := range inv.Errors {
		if fe.Field != "" {
			fe.Field = prefix + fe.Field
		}
		out.Errors = append(out.Errors, fe)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// rawJSON embeds stored JSON text as is.
type rawJSON string

func (r rawJSON) MarshalJSON() ([]byte, error) {
	if r == "" {
		return []byte("{}"), nil
	}
	return []byte(r), nil
}

// canonicalJSON is body with object keys sorted and insignificant space
// dropped, so that the same request sent with its keys in another order
// (as clients that encode maps do) is the same request for its
// Idempotency-Key. A body that is not JSON is used as it is.
func canonicalJSON(body []byte) []byte {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return body
	}
	b, err := json.Marshal(v)
	if err != nil {
		return body
	}
	return b
}
