// Package problem defines the RFC 9457 problem details body that every 4xx and
// 5xx answer of Sunpath carries, and the validation error that names each
// offending field or item. It imports only the standard library so that the
// domain packages can return *Invalid without knowing about HTTP.
package problem

import (
	"fmt"
	"strings"
)

// ContentType is the media type of a problem body.
const ContentType = "application/problem+json"

// Problem is an RFC 9457 problem details object. It never carries SQL, stack
// traces, versions or personal data: Detail is written for the caller and
// names fields, not their values.
type Problem struct {
	Type      string       `json:"type"`
	Title     string       `json:"title"`
	Status    int          `json:"status"`
	Detail    string       `json:"detail,omitempty"`
	Instance  string       `json:"instance,omitempty"`
	RequestID string       `json:"request_id,omitempty"`
	Errors    []FieldError `json:"errors,omitempty"`
}

// FieldError names one offending request field (a JSON pointer-like dotted
// path such as "profile.Age_at_Release") or questionnaire item, and says what
// is wrong with it. Detail must not repeat the submitted value.
type FieldError struct {
	Field  string `json:"field,omitempty"`
	Item   string `json:"item,omitempty"`
	Detail string `json:"detail"`
}

// Invalid is a validation failure that lists every offending field or item.
// Handlers answer it with 422 and the list in Problem.Errors.
type Invalid struct {
	Errors []FieldError
}

// Error joins the field errors; it is for logs of developers, not callers.
func (e *Invalid) Error() string {
	parts := make([]string, 0, len(e.Errors))
	for _, fe := range e.Errors {
		name := fe.Field
		if name == "" {
			name = fe.Item
		}
		parts = append(parts, fmt.Sprintf("%s: %s", name, fe.Detail))
	}
	return "invalid: " + strings.Join(parts, "; ")
}

// Add appends a field error.
func (e *Invalid) Add(field, detail string) {
	e.Errors = append(e.Errors, FieldError{Field: field, Detail: detail})
}

// AddItem appends a questionnaire item error.
func (e *Invalid) AddItem(item, detail string) {
	e.Errors = append(e.Errors, FieldError{Item: item, Detail: detail})
}

// Err returns e when it holds at least one error and nil otherwise, so that a
// validator can collect errors and finish with `return inv.Err()`.
func (e *Invalid) Err() error {
	if e == nil || len(e.Errors) == 0 {
		return nil
	}
	return e
}
