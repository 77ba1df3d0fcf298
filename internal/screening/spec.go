package screening

// This file holds the data-file format of an instrument definition: the
// shapes that instruments/*.json decode into. instruments/schema.json
// describes the same format for editors and operators; NewDefinition checks
// everything the engine relies on, whether or not the schema was applied.

// Text is a piece of text per language tag ("zh-CN", "en").
type Text map[string]string

// In returns the text in lang, or "" when there is none.
func (t Text) In(lang string) string { return t[lang] }

// Spec is one instrument definition file as written.
type Spec struct {
	Schema       string                  `json:"$schema,omitempty"`
	ID           string                  `json:"id"`
	Version      string                  `json:"version"`
	Name         string                  `json:"name"`
	Languages    []string                `json:"languages"`
	TextSource   string                  `json:"text_source"`
	Title        Text                    `json:"title"`
	Instructions Text                    `json:"instructions,omitempty"`
	Licence      Licence                 `json:"licence"`
	Source       Source                  `json:"source"`
	LOINC        LOINC                   `json:"loinc,omitzero"`
	OptionSets   map[string][]OptionSpec `json:"option_sets,omitempty"`
	Items        []ItemSpec              `json:"items"`
	Scoring      ScoringSpec             `json:"scoring"`
	Notes        []string                `json:"notes,omitempty"`
}

// Text sources: whether the item text ships with Sunpath or must come from an
// operator's overlay because its licence forbids shipping it.
const (
	TextShipped = "shipped"
	TextOverlay = "overlay"
)

// Licence says under which terms the instrument may be used.
type Licence struct {
	Name   string `json:"name"`
	Holder string `json:"holder,omitempty"`
	Terms  string `json:"terms"`
}

// Source cites where the instrument, its scoring rules and each language's
// text come from.
type Source struct {
	Citation     string   `json:"citation"`
	Scoring      []string `json:"scoring,omitempty"`
	Translations Text     `json:"translations"`
}

// LOINC holds the LOINC codes of the instrument, where LOINC has them.
type LOINC struct {
	Panel string `json:"panel,omitempty"`
	Total string `json:"total,omitempty"`
}

// ItemSpec is one question as written. Options come either inline or from a
// named option set.
type ItemSpec struct {
	ID          string       `json:"id"`
	Text        Text         `json:"text,omitempty"`
	OptionSet   string       `json:"option_set,omitempty"`
	Options     []OptionSpec `json:"options,omitempty"`
	Scored      *bool        `json:"scored,omitempty"`
	Reverse     bool         `json:"reverse,omitempty"`
	AskWhen     *Condition   `json:"ask_when,omitempty"`
	WhenSkipped *SkipSpec    `json:"when_skipped,omitempty"`
	LOINC       string       `json:"loinc,omitempty"`
}

// SkipSpec says how an item that the skip logic did not ask is scored, and
// what happens when it is answered all the same.
type SkipSpec struct {
	Score      *int   `json:"score,omitempty"`
	IfAnswered string `json:"if_answered"`
}

// What to do with an answer to an item that was not asked.
const (
	IfAnsweredError = "error" // reject the answers
	IfAnsweredScore = "score" // score the answer as given
)

// OptionSpec is one response option: the value a client submits, the score it
// counts for (the value when absent), an optional code such as "yes" that a
// client may submit instead of the value, and its label per language.
type OptionSpec struct {
	Value int    `json:"value"`
	Score *int   `json:"score,omitempty"`
	Code  string `json:"code,omitempty"`
	Label Text   `json:"label,omitempty"`
	LOINC string `json:"loinc,omitempty"`
}

// ScoringSpec holds the scoring rules.
type ScoringSpec struct {
	Total     string         `json:"total"`
	Subscales []SubscaleSpec `json:"subscales,omitempty"`
	Missing   MissingSpec    `json:"missing"`
	Bands     []BandSetSpec  `json:"bands,omitempty"`
	Outcomes  []OutcomeSpec  `json:"outcomes,omitempty"`
	Flags     []FlagSpec     `json:"flags,omitempty"`
	Quality   QualitySpec    `json:"quality"`
}

// Total methods.
const (
	TotalSum  = "sum"
	TotalNone = "none"
)

// SubscaleSpec is a named score over some items: their sum, their mean, or
// the count of those that score at least MinItemScore.
type SubscaleSpec struct {
	Code         string   `json:"code"`
	Title        Text     `json:"title"`
	Items        []string `json:"items"`
	Method       string   `json:"method"`
	MinItemScore *int     `json:"min_item_score,omitempty"`
	LOINC        string   `json:"loinc,omitempty"`
}

// Subscale methods.
const (
	MethodSum   = "sum"
	MethodMean  = "mean"
	MethodCount = "count"
)

// MissingSpec is the manual's rule for unanswered items.
type MissingSpec struct {
	MaxMissing int      `json:"max_missing"`
	Method     string   `json:"method"`
	ScoreAs    *int     `json:"score_as,omitempty"`
	Required   []string `json:"required,omitempty"`
	Citation   string   `json:"citation"`
}

// Missing-data methods.
const (
	MissingNone    = "none"     // no scored item may be unanswered
	MissingProrate = "prorate"  // total × items / answered, rounded half up
	MissingScoreAs = "score_as" // an unanswered item counts as ScoreAs
)

// BandSetSpec is one set of severity bands over the total. A set with a
// Language or Population applies only when the caller asks for it; the set
// with neither is the default.
type BandSetSpec struct {
	ID         string     `json:"id"`
	Language   string     `json:"language,omitempty"`
	Population string     `json:"population,omitempty"`
	Citation   string     `json:"citation"`
	Bands      []BandSpec `json:"bands"`
}

// BandSpec is one severity band: totals in [Min, Max].
type BandSpec struct {
	Code  string `json:"code"`
	Min   int    `json:"min"`
	Max   int    `json:"max"`
	Label Text   `json:"label"`
}

// OutcomeSpec is one rule-based screening result (such as the ASQ's
// acute_positive). The first outcome whose condition holds is the result; the
// last one has no condition.
type OutcomeSpec struct {
	Code     string     `json:"code"`
	When     *Condition `json:"when,omitempty"`
	Label    Text       `json:"label"`
	Citation string     `json:"citation,omitempty"`
}

// FlagSpec raises a flag when its condition holds.
type FlagSpec struct {
	Code     string    `json:"code"`
	Level    Level     `json:"level"`
	Item     string    `json:"item,omitempty"`
	When     Condition `json:"when"`
	Label    Text      `json:"label"`
	Citation string    `json:"citation"`
}

// QualitySpec configures the response-quality signals.
type QualitySpec struct {
	// MinSecondsPerItem: a completion faster than this per answered item is
	// implausibly fast. Zero turns the signal off.
	MinSecondsPerItem float64 `json:"min_seconds_per_item"`
	// StraightLiningMinItems: when at least this many scored items are all
	// answered with the same option, and it is not the lowest option, the
	// answers are straight-lined. Zero turns the signal off.
	StraightLiningMinItems int `json:"straight_lining_min_items"`
}

// Condition is a rule over scores. Exactly one form is used:
//
//   - {"score": "total" | item id | subscale code, "gte": 20}, with one of
//     gte, gt, lte, lt, eq; it compares the reported score (an item's score,
//     after reversal);
//   - {"items": [...], "item_gte": 2, "at_least": 2}: at least that many of
//     the items score item_gte or more;
//   - {"result": "acute_positive"}: the outcome is that code;
//   - {"any": [...]} or {"all": [...]}.
type Condition struct {
	Score   string      `json:"score,omitempty"`
	Gte     *float64    `json:"gte,omitempty"`
	Gt      *float64    `json:"gt,omitempty"`
	Lte     *float64    `json:"lte,omitempty"`
	Lt      *float64    `json:"lt,omitempty"`
	Eq      *float64    `json:"eq,omitempty"`
	Items   []string    `json:"items,omitempty"`
	ItemGte *int        `json:"item_gte,omitempty"`
	AtLeast *int        `json:"at_least,omitempty"`
	Result  string      `json:"result,omitempty"`
	Any     []Condition `json:"any,omitempty"`
	All     []Condition `json:"all,omitempty"`
}
