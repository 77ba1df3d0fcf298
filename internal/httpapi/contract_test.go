package httpapi

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"net/http"

	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	verrors "github.com/pb33f/libopenapi-validator/errors"
	"go.yaml.in/yaml/v3"

	"github.com/sunpath/sunpath/internal/fhir/fhirtest"
)

// The contract check: every request the HTTP tests make and every answer
// they get is validated against the server's own /openapi.json. An answer
// must always match the document (status, headers, media type, body, no
// undeclared property or header); a request the server accepted (2xx) must
// match it too. A request the server refused may be anything: the tests
// send malformed ones on purpose.

var contract struct {
	once                sync.Once
	strict, lax         validator.Validator
	err                 error
	exchanges, failures atomic.Int64
	maps                map[[2]int]bool // line, column of every map schema in the document
}

// mapSchemas finds the schemas of maps (additionalProperties a schema, no
// properties): strict mode reports every key of a map as undeclared, yet a
// map declares its keys by their values' schema.
func mapSchemas(doc []byte) map[[2]int]bool {
	out := map[[2]int]bool{}
	var root yaml.Node
	if yaml.Unmarshal(doc, &root) != nil {
		return out
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			hasProps := false
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == "properties" {
					hasProps = true
				}
			}
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == "additionalProperties" && n.Content[i+1].Kind == yaml.MappingNode && !hasProps {
					out[[2]int{n.Line, n.Column}] = true
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&root)
	return out
}

// tolerated reports a strict-mode finding that is not a mismatch: a key of
// a map, or the session cookie (declared as a security scheme).
func tolerated(e *verrors.ValidationError) bool {
	if e.ValidationType != "strict" && !strings.Contains(e.Reason, "Strict mode") {
		return false
	}
	if strings.Contains(e.Message, "cookie '"+sessionCookie+"'") {
		return true
	}
	return contract.maps[[2]int{e.SpecLine, e.SpecCol}]
}

// contractIgnoredHeaders are transport and security headers set on every
// answer, or sent by browsers and proxies, that the document does not list
// per operation (X-Request-ID is not among them: it is declared).
var contractIgnoredHeaders = []string{
	"content-type", "content-length", "accept", "authorization", "user-agent", "host", "connection",
	"accept-encoding", "accept-language", "cache-control", "pragma", "origin", "referer", "cookie", "date",
	"vary", "transfer-encoding", "x-forwarded-for", "x-real-ip", "sec-fetch-site", "sec-fetch-mode",
	"x-content-type-options", "x-frame-options", "referrer-policy", "content-security-policy",
	"strict-transport-security", "set-cookie",
}

func contractValidators() (validator.Validator, validator.Validator, error) {
	contract.once.Do(func() {
		s := &Server{cfg: Config{Version: "test"}}
		s.routes = s.table()
		b, err := s.OpenAPI()
		if err != nil {
			contract.err = err
			return
		}
		contract.maps = mapSchemas(b)
		mk := func(strict bool) validator.Validator {
			doc, err := libopenapi.NewDocument(b)
			if err != nil {
				contract.err = err
				return nil
			}
			opts := []config.Option{config.WithStrictIgnoredHeaders(contractIgnoredHeaders...)}
			if strict {
				opts = append(opts, config.WithStrictMode())
			}
			v, errs := validator.NewValidator(doc, opts...)
			if len(errs) > 0 {
				contract.err = fmt.Errorf("validator: %v", errs)
			}
			return v
		}
		contract.strict, contract.lax = mk(true), mk(false)
		if contract.err == nil {
			if ok, errs := contract.strict.ValidateDocument(); !ok {
				contract.err = fmt.Errorf("the document is not valid OpenAPI: %s", describe(errs))
			}
		}
	})
	return contract.strict, contract.lax, contract.err
}

// contractRecorder tees the answer to the client and keeps a copy.
type contractRecorder struct {
	http.ResponseWriter
	code int
	body bytes.Buffer
}

func (r *contractRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *contractRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

func (r *contractRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// checkContract wraps h so that every /v1 exchange is validated; a mismatch
// fails t.
func checkContract(t *testing.T, h http.Handler) http.Handler {
	strict, lax, err := contractValidators()
	if err != nil {
		t.Fatalf("contract: %v", err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v1/") {
			h.ServeHTTP(w, r)
			return
		}
		// Keep what the server reads, never read more than it does: some
		// tests send bodies that must be refused unread.
		var got bytes.Buffer
		if r.ContentLength <= DefaultConfig().MaxBodyBytes {
			r.Body = struct {
				io.Reader
				io.Closer
			}{io.TeeReader(r.Body, &got), r.Body}
		}
		rec := &contractRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		reqBody := got.Bytes()
		if rec.code == 0 {
			rec.code = http.StatusOK
		}
		if rec.code == http.StatusMethodNotAllowed || rec.code == statusClientClosed || !knownRoute(r) {
			return // no operation: answered by the router itself
		}
		v := strict
		if isFHIR(r.Header.Get("Content-Type")) || isFHIR(rec.Header().Get("Content-Type")) {
			v = lax // FHIR resources are open; validated against the FHIR R4 schema instead
		}
		req := r.Clone(r.Context())
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
		req.URL.Scheme, req.URL.Host = "http", r.Host
		resp := &http.Response{StatusCode: rec.code, Header: rec.Header().Clone(), Body: io.NopCloser(bytes.NewReader(rec.body.Bytes())), Request: req}
		var errs []*verrors.ValidationError
		if rec.code < 300 {
			if ok, es := v.ValidateHttpRequest(req); !ok {
				errs = append(errs, es...)
			}
			req.Body = io.NopCloser(bytes.NewReader(reqBody))
		}
		if ok, es := v.ValidateHttpResponse(req, resp); !ok {
			errs = append(errs, es...)
		}
		errs = slices.DeleteFunc(errs, tolerated)
		if isFHIR(rec.Header().Get("Content-Type")) && rec.code < 300 {
			if err := fhirtest.Validate(rec.body.Bytes()); err != nil {
				errs = append(errs, &verrors.ValidationError{Message: "the FHIR answer is not valid against the R4 schema", Reason: err.Error()})
			}
		}
		contract.exchanges.Add(1)
		if len(errs) > 0 {
			contract.failures.Add(1)
			t.Errorf("contract: %s %s → %d does not match /openapi.json: %s\nbody: %.400s", r.Method, r.URL.Path, rec.code, describe(errs), rec.body.String())
		}
	})
}

func isFHIR(ct string) bool {
	mt, _, _ := mime.ParseMediaType(ct)
	return mt == mediaFHIR
}

// knownRoute reports whether r names an operation of the route table.
func knownRoute(r *http.Request) bool {
	s := &Server{}
	for _, rt := range s.table() {
		if rt.Method == r.Method && matchPattern(rt.Path, r.URL.Path) {
			return true
		}
	}
	return false
}

func describe(errs []*verrors.ValidationError) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "\n  - %s: %s", e.Message, e.Reason)
		for _, se := range e.SchemaValidationErrors {
			fmt.Fprintf(&b, "\n      %s: %s", se.FieldPath, se.Reason)
		}
	}
	return b.String()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if n := contract.exchanges.Load(); n > 0 {
		fmt.Fprintf(os.Stderr, "contract: %d exchanges validated against /openapi.json, %d mismatches\n", n, contract.failures.Load())
	}
	os.Exit(code)
}
