package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/instrument"
	"github.com/sunpath/sunpath/internal/problem"
	"github.com/sunpath/sunpath/internal/ratelimit"
	"github.com/sunpath/sunpath/internal/screening"
)

// Errors the handlers raise themselves.
var (
	errForbidden    = errors.New("forbidden")
	errNotFound     = errors.New("not found")
	errTooLarge     = errors.New("request body too large")
	errBadRequest   = errors.New("bad request")
	errUnsupported  = errors.New("unsupported media type")
	errUnauthorized = auth.ErrUnauthorized
)

// statusClientClosed (nginx's 499) marks a request whose client went away
// before the answer: logged and counted as such, never as a server error.
const statusClientClosed = 499

// status maps an error to its HTTP status. It is the only place that does.
func status(err error) int {
	var inv *problem.Invalid
	switch {
	case errors.As(err, &inv):
		return http.StatusUnprocessableEntity
	case errors.Is(err, ratelimit.ErrLimited):
		return http.StatusTooManyRequests
	case errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, errBadRequest), errors.Is(err, screening.ErrMalformed):
		return http.StatusBadRequest
	case errors.Is(err, errUnsupported):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, auth.ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, errForbidden), errors.Is(err, casework.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, errNotFound), errors.Is(err, auth.ErrNotFound), errors.Is(err, casework.ErrNotFound), errors.Is(err, instrument.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, auth.ErrConflict), errors.Is(err, casework.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, casework.ErrPrecondition):
		return http.StatusPreconditionFailed
	case errors.Is(err, casework.ErrIdempotencyMismatch):
		return http.StatusUnprocessableEntity
	case errors.Is(err, auth.ErrInvalid):
		return http.StatusUnprocessableEntity
	case errors.Is(err, context.Canceled):
		return statusClientClosed
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	case errors.Is(err, casework.ErrUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// fail answers err as a problem and aborts the request. Server errors are
// logged once, here, without anything from the request body.
func (s *Server) fail(c *gin.Context, err error) {
	code := status(err)
	detail := err.Error()
	switch code {
	case http.StatusUnauthorized:
		detail = "missing, invalid or expired credentials"
	case http.StatusForbidden:
		if !errors.Is(err, casework.ErrForbidden) {
			detail = "your role may not do this"
		}
	case http.StatusNotFound:
		detail = "no such resource"
	}
	if code == statusClientClosed {
		s.log.Info("client closed request", "request_id", requestID(c), "route", c.FullPath())
		c.Set(ctxError, err)
		c.AbortWithStatus(code) // nobody is listening for a body
		return
	}
	if code >= 500 {
		s.log.Error("request failed", "request_id", requestID(c), "route", c.FullPath(), "status", code, "err", err)
		detail = ""
		if code == http.StatusServiceUnavailable {
			detail = "the database is unavailable; retry later"
		}
	}
	var fields []problem.FieldError
	var inv *problem.Invalid
	if errors.As(err, &inv) {
		fields = inv.Errors
		detail = "the request has invalid fields; see errors"
	}
	var rl *ratelimit.Error
	if errors.As(err, &rl) {
		c.Header("Retry-After", rl.RetryAfter())
	}
	c.Set(ctxError, err)
	c.Abort()
	writeProblem(c.Writer, c.Request, code, "", detail, fields)
}

// writeProblem writes an RFC 9457 body. Title defaults to the status text.
func writeProblem(w http.ResponseWriter, r *http.Request, code int, title, detail string, fields []problem.FieldError) {
	if title == "" {
		title = http.StatusText(code)
	}
	id := w.Header().Get(headerRequestID)
	instance := r.URL.Path
	if strings.IndexByte(instance, 0) >= 0 {
		instance = strings.ReplaceAll(instance, "\x00", "%00")
	}
	p := problem.Problem{
		Type:      "about:blank",
		Title:     title,
		Status:    code,
		Detail:    detail,
		Instance:  instance,
		RequestID: id,
		Errors:    fields,
	}
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="sunpath"`)
	}
	w.Header().Set("Content-Type", problem.ContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(p)
}
