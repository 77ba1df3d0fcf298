package httpapi

import (
	"context"
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
	"github.com/sunpath/sunpath/internal/postgres"
	"github.com/sunpath/sunpath/internal/problem"
)

const (
	ctxAudited = "sunpath.audited"
	ctxError   = "sunpath.error"
	ctxRawBody = "sunpath.raw_body"
	ctxActor   = "sunpath.actor" // for requests without a principal, e.g. a failed login
)

var idempotencyKeyRE = regexp.MustCompile(`^[\x21-\x7e]{1,255}$`)

// work runs fn as one audited unit of work in a single transaction and
// answers with what it returns, serialized as JSON with status. With
// idempotent set and an Idempotency-Key header, the first response is stored
// in the same transaction and replayed for the same key and body.
func (s *Server) work(c *gin.Context, action string, status int, idempotent bool, fn func(tx *postgres.Tx) (any, error)) {
	s.unitOfWork(c, s.deps.Cases.Write, false, action, status, idempotent, fn)
}

// workGrouped is work for units that only read before they write, queue
// their writes, and need only the route subject's identity and scope
// (tx.SubjectRef), as assessment submissions do: concurrent ones share one
// transaction and one commit (postgres.Cases.WriteGrouped).
func (s *Server) workGrouped(c *gin.Context, action string, status int, idempotent bool, fn func(tx *postgres.Tx) (any, error)) {
	s.unitOfWork(c, s.deps.Cases.WriteGrouped, true, action, status, idempotent, fn)
}

type writeFunc func(context.Context, postgres.Op, func(*postgres.Tx) (postgres.Reply, error)) (postgres.Reply, bool, error)

func (s *Server) unitOfWork(c *gin.Context, write writeFunc, subjectRef bool, action string, status int, idempotent bool, fn func(tx *postgres.Tx) (any, error)) {
	p, _ := principal(c)
	op := postgres.Op{Principal: p, Audit: audit.Event{Actor: p.Actor(), Role: string(p.Role), Action: action, RequestID: requestID(c)},
		Subject: c.Param("subject_id"), SubjectRef: subjectRef}
	if key := c.GetHeader("Idempotency-Key"); key != "" && idempotent {
		if !idempotencyKeyRE.MatchString(key) {
			s.fail(c, fieldError("Idempotency-Key", "must be 1-255 visible ASCII characters"))
			return
		}
		h := sha256.New()
		h.Write([]byte(c.Request.Method + " " + c.Request.URL.Path + "\n"))
		if b, ok := c.Get(ctxRawBody); ok {
			h.Write(b.([]byte))
		}
		op.Idem = &postgres.Idem{Client: p.Actor(), Key: key, Hash: h.Sum(nil), TTL: s.deps.Workflow.IdempotencyTTL}
	}
	rep, replayed, err := write(c.Request.Context(), op, func(tx *postgres.Tx) (postgres.Reply, error) {
		v, err := fn(tx)
		if err != nil {
			return postgres.Reply{}, err
		}
		st := status
		if ws, ok := v.(withStatus); ok {
			st, v = ws.Code, ws.V
		}
		b, err := json.Marshal(v)
		return postgres.Reply{Status: st, Body: b}, err
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Set(ctxAudited, true)
	if replayed {
		c.Header("Idempotent-Replayed", "true")
	}
	c.Header("Cache-Control", "no-store")
	c.Data(rep.Status, "application/json; charset=utf-8", rep.Body)
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
	if err := s.deps.Audit.Record(c.Request.Context(), ev); err != nil {
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

// withStatus lets a unit of work choose its status (e.g. 201 or 200 for a
// create-or-update).
type withStatus struct {
	Code int
	V    any
}

func asInvalid(err error, inv **problem.Invalid) bool { return errors.As(err, inv) }

// rawJSON embeds stored JSON text as is.
type rawJSON string

func (r rawJSON) MarshalJSON() ([]byte, error) {
	if r == "" {
		return []byte("{}"), nil
	}
	return []byte(r), nil
}
