package fhir

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/sunpath/sunpath/internal/screening"
)

// Reference is a FHIR Reference: a literal reference (ResourceType/id or a
// URL), a logical identifier, or just a display text.
type Reference struct {
	Reference  string      `json:"reference,omitempty"`
	Type       string      `json:"type,omitempty"`
	Identifier *Identifier `json:"identifier,omitempty"`
	Display    string      `json:"display,omitempty"`
}

// Identifier is a FHIR Identifier.
type Identifier struct {
	System string `json:"system,omitempty"`
	Value  string `json:"value"`
}

// SubjectSystem identifies people by the case-management system's own id.
const SubjectSystem = Base + "/subject-id"

// SubjectRef refers to a person by their case-management id.
func SubjectRef(id string) *Reference {
	return &Reference{Type: "Patient", Identifier: &Identifier{System: SubjectSystem, Value: id}}
}

// Context is what is known of an administration besides its result; every
// field is optional.
type Context struct {
	ID          string // the Observation's id
	Subject     *Reference
	Effective   time.Time // when the person answered
	Issued      time.Time // when the result was made
	Performer   *Reference
	DerivedFrom *Reference // the QuestionnaireResponse
}

// Meta is what a QuestionnaireResponse says about itself.
type Meta struct {
	ID       string
	Language string
	Subject  *Reference
	Authored time.Time
	Author   *Reference
}

// ResponseMeta reads a QuestionnaireResponse's id, language, subject,
// authored time and author, ignoring the ones that are absent or malformed
// (DecodeResponse judges the response itself).
func ResponseMeta(raw []byte) Meta {
	var qr qResponse
	var m Meta
	if json.Unmarshal(raw, &qr) != nil {
		return m
	}
	_ = json.Unmarshal(qr.ID, &m.ID)
	_ = json.Unmarshal(qr.Language, &m.Language)
	var ref Reference
	if json.Unmarshal(qr.Subject, &ref) == nil && ref != (Reference{}) {
		m.Subject = &ref
	}
	var author Reference
	if json.Unmarshal(qr.Author, &author) == nil && author != (Reference{}) {
		m.Author = &author
	}
	var at string
	if json.Unmarshal(qr.Authored, &at) == nil {
		if t, err := time.Parse(time.RFC3339, at); err == nil {
			m.Authored = t
		}
	}
	return m
}

// Context turns what a response says about itself into the Observation's
// context: its subject, time, author and a link back to it.
func (m Meta) Context(issued time.Time) Context {
	c := Context{Subject: m.Subject, Effective: m.Authored, Issued: issued, Performer: m.Author}
	if m.ID != "" {
		c.DerivedFrom = &Reference{Reference: "QuestionnaireResponse/" + m.ID}
	} else {
		c.DerivedFrom = &Reference{Type: "QuestionnaireResponse", Display: "the QuestionnaireResponse of this request"}
	}
	return c
}

// Language picks the language of a result: the first of the candidates the
// definition has, else its first language.
func Language(d *screening.Definition, candidates ...string) string {
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if slices.Contains(d.Languages, c) {
			return c
		}
		for _, l := range d.Languages { // "en-GB" → "en", "zh" → "zh-CN"
			base, _, _ := strings.Cut(c, "-")
			lb, _, _ := strings.Cut(l, "-")
			if strings.EqualFold(base, lb) {
				return l
			}
		}
	}
	return d.Languages[0]
}

// AcceptLanguage returns the language tags of an Accept-Language header,
// most preferred first (weights other than 0 are kept in order).
func AcceptLanguage(h string) []string {
	var out []string
	for _, part := range strings.Split(h, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if tag == "" || tag == "*" || strings.TrimSpace(params) == "q=0" {
			continue
		}
		out = append(out, tag)
	}
	return out
}

func fhirTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339)
}

func fhirInstant(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

type bundleEntry struct {
	FullURL  string `json:"fullUrl"`
	Resource any    `json:"resource"`
}

type bundle struct {
	ResourceType string        `json:"resourceType"`
	ID           string        `json:"id,omitempty"`
	Type         string        `json:"type"`
	Timestamp    string        `json:"timestamp,omitempty"`
	Entry        []bundleEntry `json:"entry"`
}

// Stored is a stored administration: its id, answers and result, and its
// context.
type Stored struct {
	ID       string
	Subject  string
	Answers  json.RawMessage // item id → JSON value, as stored; nil when withheld
	Result   screening.Result
	Authored time.Time // when the person answered
	Issued   time.Time // when it was stored
	Author   string    // who administered it
}

// Bundle returns a stored administration as a FHIR R4 Bundle (collection)
// of its QuestionnaireResponse and the Observation derived from it. The
// Observation's text is in the result's language.
func Bundle(d *screening.Definition, a Stored) ([]byte, error) {
	qrID := a.ID + "-response"
	lang := Language(d, a.Result.Language)
	qr := map[string]any{
		"resourceType":  "QuestionnaireResponse",
		"id":            qrID,
		"language":      lang,
		"questionnaire": QuestionnaireNS + d.ID + "|" + d.Version,
		"status":        "completed",
		"subject":       SubjectRef(a.Subject),
		"authored":      fhirTime(a.Authored),
	}
	if items := responseItems(d, a.Answers, lang); len(items) > 0 {
		qr["item"] = items
	}
	if a.Author != "" {
		qr["author"] = Reference{Display: a.Author}
	}
	var perf *Reference
	if a.Author != "" {
		perf = &Reference{Display: a.Author}
	}
	o, err := observationOf(d, a.Result, Context{ID: a.ID, Subject: SubjectRef(a.Subject), Effective: a.Authored, Issued: a.Issued,
		Performer: perf, DerivedFrom: &Reference{Reference: "QuestionnaireResponse/" + qrID}})
	if err != nil {
		return nil, err
	}
	return marshal(bundle{ResourceType: "Bundle", ID: a.ID, Type: "collection", Timestamp: fhirInstant(a.Issued), Entry: []bundleEntry{
		{FullURL: "urn:uuid:" + qrID, Resource: qr},
		{FullURL: "urn:uuid:" + a.ID, Resource: o},
	}})
}

// responseItems writes stored answers (item id → JSON value) as
// QuestionnaireResponse items in the definition's order: an option value or
// code as the option's coding, a boolean as valueBoolean, anything else as
// given; unanswered items are left out.
func responseItems(d *screening.Definition, raw json.RawMessage, lang string) []map[string]any {
	out := []map[string]any{}
	var as map[string]json.RawMessage
	if json.Unmarshal(raw, &as) != nil {
		return out
	}
	for _, it := range d.Items {
		v, ok := as[it.ID]
		if !ok || string(v) == "null" {
			continue
		}
		var value map[string]any
		var num float64
		var code string
		var b bool
		switch {
		case json.Unmarshal(v, &num) == nil:
			for _, o := range it.Options {
				if float64(o.Value) == num {
					value = map[string]any{"valueCoding": optionCoding(o, lang)}
				}
			}
			if value == nil {
				value = map[string]any{"valueDecimal": num}
			}
		case json.Unmarshal(v, &code) == nil:
			for _, o := range it.Options {
				if o.Code != "" && o.Code == code {
					value = map[string]any{"valueCoding": optionCoding(o, lang)}
				}
			}
			if value == nil {
				value = map[string]any{"valueString": code}
			}
		case json.Unmarshal(v, &b) == nil:
			value = map[string]any{"valueBoolean": b}
		default:
			continue
		}
		out = append(out, map[string]any{"linkId": it.ID, "answer": []any{value}})
	}
	return out
}
