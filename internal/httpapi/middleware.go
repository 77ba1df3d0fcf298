package httpapi

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"regexp"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/problem"
)

const (
	headerRequestID = "X-Request-ID"
	ctxRequestID    = "sunpath.request_id"
	ctxPrincipal    = "sunpath.principal"
	ctxRoute        = "sunpath.route" // a label for requests outside the router, e.g. "ui"
	sessionCookie   = "sunpath_session"
)

var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// requestIDs takes the caller's X-Request-ID when it is short and plain, or
// makes one, and echoes it on the response.
func requestIDs(c *gin.Context) {
	id := c.GetHeader(headerRequestID)
	if !requestIDRE.MatchString(id) {
		id = uuid.NewString()
	}
	c.Set(ctxRequestID, id)
	c.Header(headerRequestID, id)
	c.Next()
}

func requestID(c *gin.Context) string { return c.GetString(ctxRequestID) }

// recoverer turns a panic into a 500 problem and logs the stack, never the body.
func (s *Server) recoverer(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic", "request_id", requestID(c), "route", c.FullPath(), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if !c.Writer.Written() {
				c.Abort()
				writeProblem(c.Writer, c.Request, http.StatusInternalServerError, "", "", nil)
			}
		}
	}()
	c.Next()
}

// accessLog writes one line per request: no body, no query string, and the
// route pattern instead of the path, so no identifier of a person is logged.
func (s *Server) accessLog(c *gin.Context) {
	start := time.Now()
	c.Next()
	attrs := []any{
		"request_id", requestID(c),
		"method", c.Request.Method,
		"route", routeLabel(c),
		"status", c.Writer.Status(),
		"duration_ms", float64(time.Since(start).Microseconds()) / 1000,
		"bytes_out", c.Writer.Size(),
	}
	if p, ok := principal(c); ok {
		attrs = append(attrs, "actor", p.Actor())
	}
	s.log.Info("request", attrs...)
}

// instrument records duration and in-flight requests by route.
func (s *Server) instrument(c *gin.Context) {
	start := time.Now()
	s.metrics.inFlight.Inc()
	defer s.metrics.inFlight.Dec()
	c.Next()
	s.metrics.duration.WithLabelValues(routeLabel(c), methodLabel(c.Request.Method), strconv.Itoa(c.Writer.Status())).
		Observe(time.Since(start).Seconds())
}

// routeLabel names a request's route for logs and metrics: its pattern, or
// "ui" for the web pages, or "unmatched".
func routeLabel(c *gin.Context) string {
	if r := c.FullPath(); r != "" {
		return r
	}
	if r := c.GetString(ctxRoute); r != "" {
		return r
	}
	return "unmatched"
}

// deadline bounds every request's context.
func (s *Server) deadline(c *gin.Context) {
	if s.cfg.RequestTimeout <= 0 {
		c.Next()
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.RequestTimeout)
	defer cancel()
	c.Request = c.Request.WithContext(ctx)
	c.Next()
}

// limitBody refuses a declared oversized body at once and caps the rest, so
// that no body is ever read past the limit.
func (s *Server) limitBody(c *gin.Context) {
	if c.Request.ContentLength > s.cfg.MaxBodyBytes {
		s.fail(c, fmt.Errorf("body of %d bytes exceeds the limit of %d bytes: %w", c.Request.ContentLength, s.cfg.MaxBodyBytes, errTooLarge))
		c.Header("Connection", "close")
		return
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, s.cfg.MaxBodyBytes)
	c.Next()
}

// authenticate resolves the caller from a bearer API key or a session cookie.
// Routes are deny-by-default: without a principal, requireRoles answers 401.
func (s *Server) authenticate(c *gin.Context) {
	ctx := c.Request.Context()
	var (
		p   auth.Principal
		err error
		got bool
	)
	if h := c.GetHeader("Authorization"); h != "" {
		scheme, token, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			s.fail(c, fmt.Errorf("authorization scheme must be Bearer: %w", errUnauthorized))
			return
		}
		token = strings.TrimSpace(token)
		if strings.HasPrefix(token, auth.KioskPrefix) && s.deps.Casework != nil {
			p, err = s.deps.Casework.KioskPrincipal(ctx, token)
		} else {
			p, err = s.deps.Auth.APIKey(ctx, token)
		}
		got = true
	} else if ck, cerr := c.Cookie(sessionCookie); cerr == nil && ck != "" {
		p, err = s.deps.Auth.Session(ctx, ck)
		got = true
	}
	if got && err != nil {
		s.fail(c, err)
		return
	}
	if got {
		c.Set(ctxPrincipal, p)
	}
	c.Next()
}

func principal(c *gin.Context) (auth.Principal, bool) {
	v, ok := c.Get(ctxPrincipal)
	if !ok {
		return auth.Principal{}, false
	}
	p, ok := v.(auth.Principal)
	return p, ok
}

// requireRoles admits only authenticated callers with one of roles.
func (s *Server) requireRoles(roles []auth.Role) gin.HandlerFunc {
	return func(c *gin.Context) {
		p, ok := principal(c)
		if !ok {
			s.fail(c, fmt.Errorf("no credentials: %w", errUnauthorized))
			return
		}
		for _, r := range roles {
			if p.Role == r {
				c.Next()
				return
			}
		}
		s.fail(c, fmt.Errorf("role %s: %w", p.Role, errForbidden))
	}
}

// maxJSONDepth bounds nesting so that a hostile body cannot exhaust the stack.
const maxJSONDepth = 32

// decodeJSON reads the request body into v: the media type must be JSON,
// unknown fields and trailing data are refused, and nesting is bounded.
func decodeJSON(c *gin.Context, v any) error {
	if ct := c.GetHeader("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return fmt.Errorf("content type must be application/json: %w", errUnsupported)
		}
	}
	body, err := readBody(c)
	if err != nil {
		return err
	}
	return decodeJSONBytes(body, v)
}

// readBody reads the (size-limited) body once and keeps it for the
// idempotency fingerprint.
func readBody(c *gin.Context) ([]byte, error) {
	if b, ok := c.Get(ctxRawBody); ok {
		return b.([]byte), nil
	}
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fmt.Errorf("body exceeds the limit of %d bytes: %w", mbe.Limit, errTooLarge)
		}
		return nil, fmt.Errorf("read body: %w", errBadRequest)
	}
	c.Set(ctxRawBody, body)
	return body, nil
}

// fieldError is a one-field validation failure.
func fieldError(field, detail string) error {
	inv := &problem.Invalid{}
	inv.Add(field, detail)
	return inv
}

// decodeJSONBytes is decodeJSON's pure part, fuzzed on its own.
func decodeJSONBytes(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return fmt.Errorf("the body is empty; a JSON object is required: %w", errBadRequest)
	}
	if depth(body) > maxJSONDepth {
		return fmt.Errorf("JSON nested deeper than %d levels: %w", maxJSONDepth, errBadRequest)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if strings.HasPrefix(err.Error(), "json: unknown field ") {
			return unknownFields(body, v)
		}
		return jsonError(err)
	}
	if dec.More() {
		return fmt.Errorf("unexpected data after the JSON object: %w", errBadRequest)
	}
	// A NUL can only arrive escaped; PostgreSQL text cannot hold one.
	if bytes.Contains(body, []byte(`\u0000`)) {
		if field, ok := nulField(body); ok {
			return fieldError(field, errNUL)
		}
	}
	return nil
}

const errNUL = "must not contain a NUL character"

// nulField returns the path ("unit", "answers.q1", "instruments[0]") of the
// first string, or object key, holding a NUL; a key is named by its parent.
func nulField(body []byte) (string, bool) {
	var doc any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if dec.Decode(&doc) != nil {
		return "", false
	}
	var walk func(v any, path string) (string, bool)
	walk = func(v any, path string) (string, bool) {
		switch v := v.(type) {
		case string:
			return path, strings.IndexByte(v, 0) >= 0
		case []any:
			for i, e := range v {
				if p, ok := walk(e, fmt.Sprintf("%s[%d]", path, i)); ok {
					return p, true
				}
			}
		case map[string]any:
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if strings.IndexByte(k, 0) >= 0 {
					return cmp.Or(path, "(body)"), true
				}
				p := k
				if path != "" {
					p = path + "." + k
				}
				if p, ok := walk(v[k], p); ok {
					return p, true
				}
			}
		}
		return "", false
	}
	return walk(doc, "")
}

// refuseNUL answers 422 for a NUL in a path parameter or a query parameter,
// naming it, before any handler passes it to PostgreSQL (a 500 otherwise).
func (s *Server) refuseNUL(c *gin.Context) {
	for _, p := range c.Params {
		if strings.IndexByte(p.Value, 0) >= 0 {
			s.fail(c, fieldError(p.Key, errNUL))
			return
		}
	}
	q := c.Request.URL.Query()
	names := make([]string, 0, len(q))
	for k := range q {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if strings.IndexByte(k, 0) >= 0 {
			s.fail(c, fieldError("(query)", errNUL))
			return
		}
		for _, v := range q[k] {
			if strings.IndexByte(v, 0) >= 0 {
				s.fail(c, fieldError(k, errNUL))
				return
			}
		}
	}
	c.Next()
}

// unknownFields refuses a body with fields v does not have, naming how many
// (at the top level; at least one) but not what they are: a client's keys
// can hold anything, and problem bodies never echo it.
func unknownFields(body []byte, v any) error {
	n := 0
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) == nil {
		known := map[string]bool{}
		jsonNames(reflect.TypeOf(v), known)
		for k := range top {
			if !known[k] {
				n++
			}
		}
	}
	n = max(n, 1)
	word := "fields"
	if n == 1 {
		word = "field"
	}
	inv := &problem.Invalid{}
	inv.Add("(body)", fmt.Sprintf("%d unknown %s; /openapi.json lists the fields this operation accepts", n, word))
	return inv
}

// jsonNames collects the JSON names of a struct's fields, embedded ones included.
func jsonNames(t reflect.Type, into map[string]bool) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case f.Anonymous && name == "":
			jsonNames(f.Type, into)
		case name == "-":
		case name != "":
			into[name] = true
		case f.IsExported():
			into[f.Name] = true
		}
	}
}

// jsonError turns a decoding error into one that names the field, never the value.
func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("malformed JSON at byte %d: %w", syn.Offset, errBadRequest)
	case errors.As(err, &typ):
		inv := &problem.Invalid{}
		field := typ.Field
		if field == "" {
			field = "(body)"
		}
		inv.Add(field, "must be of JSON type "+jsonType(typ.Type.Kind().String()))
		return inv
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Errorf("truncated JSON: %w", errBadRequest)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		inv := &problem.Invalid{}
		inv.Add(strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`), "unknown field")
		return inv
	}
	return fmt.Errorf("malformed JSON: %w", errBadRequest)
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "map", "struct":
		return "object"
	}
	return "number"
}

// depth returns the deepest nesting of objects and arrays in a JSON text,
// ignoring brackets inside strings; it never fails, even on invalid JSON.
func depth(b []byte) int {
	d, max := 0, 0
	inStr, esc := false, false
	for _, ch := range b {
		switch {
		case esc:
			esc = false
		case inStr && ch == '\\':
			esc = true
		case ch == '"':
			inStr = !inStr
		case inStr:
		case ch == '{' || ch == '[':
			d++
			if d > max {
				max = d
			}
		case ch == '}' || ch == ']':
			d--
		}
	}
	return max
}
