// Package fhir maps Sunpath's instruments and results to and from HL7 FHIR R4
// resources: a definition to a Questionnaire, a QuestionnaireResponse to
// answers (with item-level errors), and a Result to an Observation. The
// functions are pure and use only the standard library; LOINC codes come
// from the definition files, where LOINC has them.
package fhir

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/sunpath/sunpath/internal/problem"
	"github.com/sunpath/sunpath/internal/screening"
)

// MediaType is the FHIR JSON media type.
const MediaType = "application/fhir+json"

// Identifiers Sunpath uses where no standard code system fits. They live
// under the project's own URL, as FHIR recommends for local code systems.
const (
	Base            = "https://github.com/sunpath/sunpath/fhir"
	QuestionnaireNS = Base + "/Questionnaire/"              // + instrument id
	OptionSystem    = Base + "/CodeSystem/option"           // option values as codes
	SeveritySystem  = Base + "/CodeSystem/severity"         // severity band codes
	ResultSystem    = Base + "/CodeSystem/screening-result" // ASQ-style outcome codes
	FlagSystem      = Base + "/CodeSystem/flag"             // flag codes
	LevelSystem     = Base + "/CodeSystem/flag-level"       // critical, urgent, review
	ScoreSystem     = Base + "/CodeSystem/score"            // instrument.total, instrument.subscale
	ContentHashExt  = Base + "/StructureDefinition/content-hash"
	EngineExt       = Base + "/StructureDefinition/engine-version"
	ProratedExt     = Base + "/StructureDefinition/prorated"
	MissingExt      = Base + "/StructureDefinition/missing-item"
	QualityExt      = Base + "/StructureDefinition/quality-signal"

	loincSystem       = "http://loinc.org"
	ordinalValueExt   = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
	translationExt    = "http://hl7.org/fhir/StructureDefinition/translation"
	observationCatSys = "http://terminology.hl7.org/CodeSystem/observation-category"
)

// Generic FHIR JSON shapes, just what the mapping needs.
type (
	coding struct {
		System  string `json:"system,omitempty"`
		Code    string `json:"code,omitempty"`
		Display string `json:"display,omitempty"`
	}
	concept struct {
		Coding []coding `json:"coding,omitempty"`
		Text   string   `json:"text,omitempty"`
	}
	extension struct {
		URL          string      `json:"url"`
		ValueString  *string     `json:"valueString,omitempty"`
		ValueDecimal *float64    `json:"valueDecimal,omitempty"`
		ValueBoolean *bool       `json:"valueBoolean,omitempty"`
		ValueCode    *string     `json:"valueCode,omitempty"`
		Extension    []extension `json:"extension,omitempty"`
	}
	element struct {
		Extension []extension `json:"extension,omitempty"`
	}
)

func str(s string) *string { return &s }

// translations returns the FHIR translation extensions of t for every
// language but lang, or nil.
func translations(t screening.Text, langs []string, lang string) *element {
	var ext []extension
	for _, l := range langs {
		if l == lang || t[l] == "" {
			continue
		}
		ext = append(ext, extension{URL: translationExt, Extension: []extension{
			{URL: "lang", ValueCode: str(l)},
			{URL: "content", ValueString: str(t[l])},
		}})
	}
	if len(ext) == 0 {
		return nil
	}
	return &element{Extension: ext}
}

type questionnaire struct {
	ResourceType string      `json:"resourceType"`
	ID           string      `json:"id"`
	Extension    []extension `json:"extension,omitempty"`
	URL          string      `json:"url"`
	Version      string      `json:"version"`
	Name         string      `json:"name"`
	Title        string      `json:"title,omitempty"`
	XTitle       *element    `json:"_title,omitempty"`
	Status       string      `json:"status"`
	Language     string      `json:"language"`
	Copyright    string      `json:"copyright,omitempty"`
	Code         []coding    `json:"code,omitempty"`
	Item         []qItem     `json:"item"`
}

type qItem struct {
	LinkID       string       `json:"linkId"`
	Code         []coding     `json:"code,omitempty"`
	Prefix       string       `json:"prefix,omitempty"`
	Text         string       `json:"text,omitempty"`
	XText        *element     `json:"_text,omitempty"`
	Type         string       `json:"type"`
	EnableWhen   []enableWhen `json:"enableWhen,omitempty"`
	EnableBeh    string       `json:"enableBehavior,omitempty"`
	Required     *bool        `json:"required,omitempty"`
	AnswerOption []answerOpt  `json:"answerOption,omitempty"`
}

type enableWhen struct {
	Question      string  `json:"question"`
	Operator      string  `json:"operator"`
	AnswerCoding  *coding `json:"answerCoding,omitempty"`
	AnswerBoolean *bool   `json:"answerBoolean,omitempty"`
}

type answerOpt struct {
	Extension   []extension `json:"extension,omitempty"`
	ValueCoding coding      `json:"valueCoding"`
}

// optionCoding is how an option is coded: its LOINC answer code where there
// is one, Sunpath's option system (the value as code) otherwise.
func optionCoding(o screening.Option, lang string) coding {
	if o.LOINC != "" {
		return coding{System: loincSystem, Code: o.LOINC, Display: o.Label[lang]}
	}
	return coding{System: OptionSystem, Code: strconv.Itoa(o.Value), Display: o.Label[lang]}
}

// Questionnaire returns the FHIR R4 Questionnaire for the definition, with
// text in lang (the definition's first language when "") and the other
// languages as translation extensions. Each answer option carries its score
// as an ordinalValue extension. Skip logic of the simple forms the shipped
// instruments use ("any of these items scores at least n") becomes
// enableWhen; an item whose skip logic cannot be expressed that way has none,
// and the scoring engine still applies the definition's rule.
func Questionnaire(d *screening.Definition, lang string) ([]byte, error) {
	if lang == "" {
		lang = d.Languages[0]
	}
	if !slices.Contains(d.Languages, lang) {
		return nil, fmt.Errorf("language %q: instrument %s is given in %s", lang, d.ID, strings.Join(d.Languages, ", "))
	}
	q := questionnaire{
		ResourceType: "Questionnaire",
		ID:           d.ID,
		Extension:    []extension{{URL: ContentHashExt, ValueString: str(d.ContentHash)}},
		URL:          QuestionnaireNS + d.ID,
		Version:      d.Version,
		Name:         fhirName(d.Name),
		Title:        d.Title[lang],
		XTitle:       translations(d.Title, d.Languages, lang),
		Status:       "active",
		Language:     lang,
		Copyright:    d.Licence.Terms,
	}
	if d.LOINC.Panel != "" {
		q.Code = []coding{{System: loincSystem, Code: d.LOINC.Panel, Display: d.Name}}
	}
	if d.Instructions[lang] != "" {
		q.Item = append(q.Item, qItem{LinkID: "instructions", Text: d.Instructions[lang],
			XText: translations(d.Instructions, d.Languages, lang), Type: "display"})
	}
	n := 0
	for _, it := range d.Items {
		qi := qItem{
			LinkID: it.ID,
			Text:   it.Text[lang],
			XText:  translations(it.Text, d.Languages, lang),
			Type:   "choice",
		}
		// Only the scored items carry the instrument's numbers (the PHQ-9's
		// difficulty question is unnumbered).
		if it.Scored {
			n++
			qi.Prefix = strconv.Itoa(n)
		}
		if it.LOINC != "" {
			qi.Code = []coding{{System: loincSystem, Code: it.LOINC}}
		}
		if it.AskWhen != nil {
			qi.EnableWhen = enableWhens(d, *it.AskWhen, lang)
			if len(qi.EnableWhen) > 0 {
				qi.EnableBeh = "any"
			}
		}
		// Every scored item is to be answered (prorating is the scoring's
		// fallback for paper forms, not a form's option); a conditional one
		// only when its enableWhen says it is asked.
		if (it.Required || it.Scored) && (it.AskWhen == nil || len(qi.EnableWhen) > 0) {
			t := true
			qi.Required = &t
		}
		for _, o := range it.Options {
			score := float64(o.Score)
			qi.AnswerOption = append(qi.AnswerOption, answerOpt{
				Extension:   []extension{{URL: ordinalValueExt, ValueDecimal: &score}},
				ValueCoding: optionCoding(o, lang),
			})
		}
		q.Item = append(q.Item, qi)
	}
	return marshal(q)
}

// enableWhens expresses "any of these items scores at least n" (and "item
// scores at least n") as enableWhen with behaviour any. Where the instrument
// counts an unanswered item as a score (the ASQ's refusal), an unanswered
// item also enables.
func enableWhens(d *screening.Definition, w screening.Condition, lang string) []enableWhen {
	var items []string
	var min int
	switch {
	case w.Score != "" && w.Gte != nil:
		items, min = []string{w.Score}, int(*w.Gte)
		if float64(min) != *w.Gte {
			return nil
		}
	case len(w.Items) > 0 && w.ItemGte != nil && w.AtLeast != nil && *w.AtLeast == 1:
		items, min = w.Items, *w.ItemGte
	default:
		return nil
	}
	var out []enableWhen
	for _, id := range items {
		it, ok := d.Item(id)
		if !ok || it.Reverse {
			return nil
		}
		for _, o := range it.Options {
			if o.Score >= min {
				c := optionCoding(o, lang)
				out = append(out, enableWhen{Question: id, Operator: "=", AnswerCoding: &c})
			}
		}
		if m := d.Scoring.Missing; m.Method == screening.MissingScoreAs && m.ScoreAs != nil && *m.ScoreAs >= min {
			f := false
			out = append(out, enableWhen{Question: id, Operator: "exists", AnswerBoolean: &f})
		}
	}
	return out
}

// fhirName makes a computer-friendly name ("PHQ-9" → "PHQ9").
func fhirName(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 128 && (r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "Instrument"
	}
	return b.String()
}

func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// The QuestionnaireResponse shapes the decoder reads. Values are kept raw so
// that a wrong JSON type is an item error, not a decoding failure.
type qResponse struct {
	ResourceType  string          `json:"resourceType"`
	ID            json.RawMessage `json:"id"`
	Language      json.RawMessage `json:"language"`
	Subject       json.RawMessage `json:"subject"`
	Authored      json.RawMessage `json:"authored"`
	Author        json.RawMessage `json:"author"`
	Questionnaire json.RawMessage `json:"questionnaire"`
	Status        json.RawMessage `json:"status"`
	Item          json.RawMessage `json:"item"`
}

type qrItem struct {
	LinkID json.RawMessage `json:"linkId"`
	Answer json.RawMessage `json:"answer"`
	Item   json.RawMessage `json:"item"`
}

type qrAnswer struct {
	ValueCoding  json.RawMessage `json:"valueCoding"`
	ValueInteger json.RawMessage `json:"valueInteger"`
	ValueDecimal json.RawMessage `json:"valueDecimal"`
	ValueBoolean json.RawMessage `json:"valueBoolean"`
	ValueString  json.RawMessage `json:"valueString"`
	Item         json.RawMessage `json:"item"`
}

// maxItemDepth bounds nested groups in a QuestionnaireResponse.
const maxItemDepth = 32

// DecodeResponse reads a FHIR R4 QuestionnaireResponse (JSON) and returns
// the answers it holds for the definition's items, keyed by linkId = item id
// at any depth of nested groups. An answer may be a valueCoding (the
// option's LOINC answer code, or Sunpath's option code, or the option's code
// such as "yes"), a valueInteger or valueDecimal (the option value), a
// valueBoolean (yes/no items) or a valueString (an option code).
//
// Not JSON, or not a JSON object, returns an error wrapping
// screening.ErrMalformed. Everything else wrong is a *problem.Invalid
// listing every offending item or field: resourceType, a status other than
// completed or amended, a questionnaire that names another instrument or
// version, an unknown linkId that carries an answer, an item answered more
// than once, an answer of a type or code the item does not take. Details
// never repeat the submitted value. The answers still go through
// Definition.Score, which applies the instrument's own rules.
func DecodeResponse(d *screening.Definition, raw []byte) (screening.Answers, error) {
	var qr qResponse
	if err := json.Unmarshal(raw, &qr); err != nil {
		return nil, fmt.Errorf("QuestionnaireResponse: %w", screening.ErrMalformed)
	}
	var inv problem.Invalid
	if qr.ResourceType != "QuestionnaireResponse" {
		inv.Add("resourceType", "must be QuestionnaireResponse")
	}
	var status string
	if err := json.Unmarshal(qr.Status, &status); err != nil || (status != "completed" && status != "amended") {
		inv.Add("status", "must be completed or amended: only a finished response is scored")
	}
	if len(qr.Questionnaire) > 0 && string(qr.Questionnaire) != "null" {
		var canon string
		want := QuestionnaireNS + d.ID
		if err := json.Unmarshal(qr.Questionnaire, &canon); err != nil {
			inv.Add("questionnaire", "must be a canonical URL string")
		} else if url, version, _ := strings.Cut(canon, "|"); url != want || (version != "" && version != d.Version) {
			inv.Add("questionnaire", "must be "+want+" (optionally |"+d.Version+"), the instrument being scored")
		}
	}
	out := screening.Answers{}
	seen := map[string]bool{}
	walkItems(d, qr.Item, "item", 0, out, seen, &inv)
	if len(inv.Errors) > 0 {
		return nil, &inv
	}
	return out, nil
}

func walkItems(d *screening.Definition, raw json.RawMessage, path string, depth int, out screening.Answers, seen map[string]bool, inv *problem.Invalid) {
	if len(raw) == 0 || string(raw) == "null" {
		return
	}
	if depth > maxItemDepth {
		inv.Add(path, "groups are nested too deeply")
		return
	}
	var items []qrItem
	if err := json.Unmarshal(raw, &items); err != nil {
		inv.Add(path, "must be an array of items")
		return
	}
	for i, qi := range items {
		p := path + "[" + strconv.Itoa(i) + "]"
		var linkID string
		if err := json.Unmarshal(qi.LinkID, &linkID); err != nil {
			inv.Add(p+".linkId", "must be a string")
			continue
		}
		walkItems(d, qi.Item, p+".item", depth+1, out, seen, inv)
		var answers []qrAnswer
		if len(qi.Answer) > 0 && string(qi.Answer) != "null" {
			if err := json.Unmarshal(qi.Answer, &answers); err != nil {
				inv.Add(p+".answer", "must be an array of answers")
				continue
			}
		}
		for j, a := range answers {
			walkItems(d, a.Item, p+".answer["+strconv.Itoa(j)+"].item", depth+1, out, seen, inv)
		}
		it, known := d.Item(linkID)
		switch {
		case !known && len(answers) > 0:
			inv.AddItem(displayID(linkID), "unknown item")
			continue
		case !known || len(answers) == 0:
			continue
		case len(answers) > 1 || seen[linkID]:
			inv.AddItem(linkID, "answered more than once")
			continue
		}
		seen[linkID] = true
		ans, bad := answerFor(it, answers[0])
		if bad != "" {
			inv.AddItem(linkID, bad)
			continue
		}
		out[linkID] = ans
	}
}

// answerFor turns one FHIR answer into a screening answer for the item.
func answerFor(it screening.Item, a qrAnswer) (screening.Answer, string) {
	given := 0
	for _, v := range []json.RawMessage{a.ValueCoding, a.ValueInteger, a.ValueDecimal, a.ValueBoolean, a.ValueString} {
		if len(v) > 0 && string(v) != "null" {
			given++
		}
	}
	if given != 1 {
		return screening.Answer{}, "must have exactly one value: valueCoding, valueInteger, valueDecimal, valueBoolean or valueString"
	}
	switch {
	case len(a.ValueCoding) > 0 && string(a.ValueCoding) != "null":
		var c coding
		if err := json.Unmarshal(a.ValueCoding, &c); err != nil {
			return screening.Answer{}, "valueCoding must be a Coding"
		}
		for _, o := range it.Options {
			switch {
			case c.System == loincSystem && o.LOINC != "" && c.Code == o.LOINC,
				c.System == OptionSystem && c.Code == strconv.Itoa(o.Value),
				c.System == "" && o.Code != "" && c.Code == o.Code:
				return screening.Int(o.Value), ""
			}
		}
		return screening.Answer{}, "valueCoding must be one of the item's answer options"
	case len(a.ValueInteger) > 0 && string(a.ValueInteger) != "null", len(a.ValueDecimal) > 0 && string(a.ValueDecimal) != "null":
		v := a.ValueInteger
		if len(v) == 0 || string(v) == "null" {
			v = a.ValueDecimal
		}
		ans, err := screening.DecodeAnswers([]byte(`{"v":` + string(v) + `}`))
		if err != nil || !isNumber(v) {
			return screening.Answer{}, "valueInteger and valueDecimal must be numbers"
		}
		return ans["v"], ""
	case len(a.ValueBoolean) > 0 && string(a.ValueBoolean) != "null":
		var b bool
		if err := json.Unmarshal(a.ValueBoolean, &b); err != nil {
			return screening.Answer{}, "valueBoolean must be true or false"
		}
		return screening.Bool(b), ""
	default:
		var s string
		if err := json.Unmarshal(a.ValueString, &s); err != nil {
			return screening.Answer{}, "valueString must be a string"
		}
		return screening.Code(s), ""
	}
}

func isNumber(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	return len(v) > 0 && (v[0] == '-' || v[0] >= '0' && v[0] <= '9')
}

// displayID makes a submitted linkId safe to name in an error.
func displayID(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) > 64 {
		cut := 64
		for cut > 0 && s[cut]&0xC0 == 0x80 {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

type observation struct {
	ResourceType   string      `json:"resourceType"`
	ID             string      `json:"id,omitempty"`
	Language       string      `json:"language,omitempty"`
	Extension      []extension `json:"extension,omitempty"`
	Status         string      `json:"status"`
	Category       []concept   `json:"category"`
	Code           concept     `json:"code"`
	Subject        *Reference  `json:"subject,omitempty"`
	Effective      string      `json:"effectiveDateTime,omitempty"`
	Issued         string      `json:"issued,omitempty"`
	Performer      []Reference `json:"performer,omitempty"`
	ValueInteger   *int        `json:"valueInteger,omitempty"`
	ValueConcept   *concept    `json:"valueCodeableConcept,omitempty"`
	DataAbsent     *concept    `json:"dataAbsentReason,omitempty"`
	Interpretation []concept   `json:"interpretation,omitempty"`
	Method         *concept    `json:"method,omitempty"`
	DerivedFrom    []Reference `json:"derivedFrom,omitempty"`
	Component      []component `json:"component,omitempty"`
}

type component struct {
	Code          concept   `json:"code"`
	ValueInteger  *int      `json:"valueInteger,omitempty"`
	ValueQuantity *quantity `json:"valueQuantity,omitempty"`
	ValueConcept  *concept  `json:"valueCodeableConcept,omitempty"`
}

type quantity struct {
	Value  float64 `json:"value"`
	System string  `json:"system"`
	Code   string  `json:"code"`
}

// Observation returns the FHIR R4 Observation (category survey) for a result
// of the definition: the total as valueInteger, coded with the instrument's
// LOINC total code where there is one (PHQ-9 44261-6, GAD-7 70274-6, AUDIT
// 75624-7), or, for an instrument without a total (the ASQ), the screening
// result as valueCodeableConcept. Severity is the interpretation; subscales
// (with their LOINC code where there is one, such as AUDIT-C 75626-2) and
// flags are components; the content hash, engine version, prorating,
// missing items and quality signals are extensions. The caller adds subject,
// effective time and derivedFrom.
func Observation(d *screening.Definition, r screening.Result) ([]byte, error) {
	return ObservationWith(d, r, Context{})
}

// ObservationWith is Observation with the context of the administration:
// whom it is about, when it was answered and scored, who administered it
// and the QuestionnaireResponse it is derived from, each where known.
func ObservationWith(d *screening.Definition, r screening.Result, c Context) ([]byte, error) {
	o, err := observationOf(d, r, c)
	if err != nil {
		return nil, err
	}
	return marshal(o)
}

func observationOf(d *screening.Definition, r screening.Result, c Context) (observation, error) {
	if r.Instrument != d.ID || r.Version != d.Version {
		return observation{}, fmt.Errorf("result of %s %s does not belong to %s %s", r.Instrument, r.Version, d.ID, d.Version)
	}
	lang := r.Language
	if lang == "" {
		lang = d.Languages[0]
	}
	o := observation{
		ResourceType: "Observation",
		ID:           c.ID,
		Language:     lang,
		Subject:      c.Subject,
		Effective:    fhirTime(c.Effective),
		Issued:       fhirInstant(c.Issued),
		Extension: []extension{
			{URL: ContentHashExt, ValueString: str(r.ContentHash)},
			{URL: EngineExt, ValueString: str(r.EngineVersion)},
		},
		Status:   "final",
		Category: []concept{{Coding: []coding{{System: observationCatSys, Code: "survey", Display: "Survey"}}}},
	}
	if r.Prorated {
		t := true
		o.Extension = append(o.Extension, extension{URL: ProratedExt, ValueBoolean: &t})
	}
	for _, m := range r.Missing {
		o.Extension = append(o.Extension, extension{URL: MissingExt, ValueString: str(m)})
	}
	for _, q := range r.Quality {
		o.Extension = append(o.Extension, extension{URL: QualityExt, ValueCode: str(q)})
	}
	title := d.Title[lang]
	switch {
	case r.Total != nil:
		o.Code = concept{Text: title + " total score"}
		if d.LOINC.Total != "" {
			o.Code.Coding = []coding{{System: loincSystem, Code: d.LOINC.Total, Display: d.Name + " total score"}}
		} else {
			o.Code.Coding = []coding{{System: ScoreSystem, Code: d.ID + ".total", Display: d.Name + " total score"}}
		}
		t := *r.Total
		o.ValueInteger = &t
	case r.Outcome != "":
		o.Code = concept{Coding: []coding{{System: ScoreSystem, Code: d.ID + ".result", Display: d.Name + " screening result"}}, Text: title}
		o.ValueConcept = &concept{Coding: []coding{{System: ResultSystem, Code: r.Outcome, Display: outcomeLabel(d, r.Outcome, lang)}}, Text: outcomeLabel(d, r.Outcome, lang)}
	default:
		o.Code = concept{Coding: []coding{{System: ScoreSystem, Code: d.ID + ".total", Display: d.Name}}, Text: title}
		o.DataAbsent = &concept{Text: "the instrument defines no total"}
	}
	if r.Severity != "" {
		label := bandLabel(d, r.BandSet, r.Severity, lang)
		o.Interpretation = []concept{{Coding: []coding{{System: SeveritySystem, Code: r.Severity, Display: label}}, Text: label}}
	}
	o.Method = &concept{Text: "Sunpath scoring engine " + r.EngineVersion + ", " + d.ID + " " + d.Version}
	for _, s := range d.Scoring.Subscales {
		v, ok := r.Subscales[s.Code]
		if !ok {
			continue
		}
		c := component{Code: concept{Text: s.Title[lang]}}
		if s.LOINC != "" {
			c.Code.Coding = []coding{{System: loincSystem, Code: s.LOINC}}
		} else {
			c.Code.Coding = []coding{{System: ScoreSystem, Code: d.ID + "." + s.Code}}
		}
		if s.Method == screening.MethodMean {
			c.ValueQuantity = &quantity{Value: v, System: "http://unitsofmeasure.org", Code: "{score}"}
		} else {
			n := int(v)
			c.ValueInteger = &n
		}
		o.Component = append(o.Component, c)
	}
	for _, f := range r.Flags {
		o.Component = append(o.Component, component{
			Code:         concept{Coding: []coding{{System: FlagSystem, Code: f.Code}}, Text: flagLabel(d, f.Code, lang)},
			ValueConcept: &concept{Coding: []coding{{System: LevelSystem, Code: string(f.Level)}}},
		})
	}
	if c.Performer != nil {
		o.Performer = []Reference{*c.Performer}
	}
	if c.DerivedFrom != nil {
		o.DerivedFrom = []Reference{*c.DerivedFrom}
	}
	return o, nil
}

func bandLabel(d *screening.Definition, set, code, lang string) string {
	for _, bs := range d.Scoring.Bands {
		if bs.ID != set {
			continue
		}
		for _, b := range bs.Bands {
			if b.Code == code {
				return b.Label[lang]
			}
		}
	}
	return code
}

func outcomeLabel(d *screening.Definition, code, lang string) string {
	for _, o := range d.Scoring.Outcomes {
		if o.Code == code {
			return o.Label[lang]
		}
	}
	return code
}

func flagLabel(d *screening.Definition, code, lang string) string {
	for _, f := range d.Scoring.Flags {
		if f.Code == code {
			return f.Label[lang]
		}
	}
	return code
}
