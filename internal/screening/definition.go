package screening

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// ErrInvalidDefinition marks an instrument definition that the engine
// refuses; the error names each offending field.
var ErrInvalidDefinition = errors.New("invalid instrument definition")

// SpecError lists every problem found in one definition. Each problem names
// its field as a path such as items[3].options[1].value.
type SpecError struct {
	Problems []SpecProblem
}

// SpecProblem is one offending field of a definition.
type SpecProblem struct {
	Path   string
	Detail string
}

// Error lists the problems, one "path: detail" per line.
func (e *SpecError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Path + ": " + p.Detail
	}
	return strings.Join(lines, "\n")
}

// Unwrap makes errors.Is(err, ErrInvalidDefinition) hold.
func (e *SpecError) Unwrap() error { return ErrInvalidDefinition }

func (e *SpecError) add(path, format string, args ...any) {
	e.Problems = append(e.Problems, SpecProblem{Path: path, Detail: fmt.Sprintf(format, args...)})
}

// Definition is an instrument compiled from its Spec: validated, its option
// sets expanded, its rules ready to run. It is immutable and safe for
// concurrent use. Its JSON form is what `sunpath instruments show` prints.
type Definition struct {
	ID          string   `json:"id"`
	Version     string   `json:"version"`
	Name        string   `json:"name"`
	ContentHash string   `json:"content_hash"`
	Languages   []string `json:"languages"`
	TextSource  string   `json:"text_source"`
	// TextComplete says, per language, whether every item has its text. An
	// instrument whose text may not be shipped has none until an operator
	// supplies it in an overlay; it can still be scored by item id.
	TextComplete map[string]bool `json:"text_complete"`
	Title        Text            `json:"title"`
	Instructions Text            `json:"instructions,omitempty"`
	Licence      Licence         `json:"licence"`
	Source       Source          `json:"source"`
	LOINC        LOINC           `json:"loinc,omitzero"`
	Items        []Item          `json:"items"`
	// TotalMin and TotalMax bound the total; both are 0 when the instrument
	// has no total.
	TotalMin int         `json:"total_min"`
	TotalMax int         `json:"total_max"`
	Scoring  ScoringSpec `json:"scoring"`
	Notes    []string    `json:"notes,omitempty"`

	index     map[string]int // item id → position
	subscales []subscale
	subOrder  []int // subscale positions in code order
	bandSets  []bandSet
	outcomes  []outcome
	flags     []flagRule
	missing   missingRule
	quality   QualitySpec
	hasTotal  bool
	nScored   int
	pool      sync.Pool // of *work
}

// Item is one question with its options in order.
type Item struct {
	ID          string     `json:"id"`
	Text        Text       `json:"text,omitempty"`
	Options     []Option   `json:"options"`
	Scored      bool       `json:"scored"`
	Reverse     bool       `json:"reverse,omitempty"`
	Required    bool       `json:"required,omitempty"`
	AskWhen     *Condition `json:"ask_when,omitempty"`
	WhenSkipped *SkipSpec  `json:"when_skipped,omitempty"`
	LOINC       string     `json:"loinc,omitempty"`

	minScore, maxScore int
	askWhen            *cond
	skipScore          int
	skipError          bool
	yesNo              bool // has options coded "yes" and "no": accepts booleans
	hasCodes           bool
	mustDetail         string // what a valid answer is, for error details
}

// Option is one response option.
type Option struct {
	Value int    `json:"value"`
	Score int    `json:"score"`
	Code  string `json:"code,omitempty"`
	Label Text   `json:"label,omitempty"`
	LOINC string `json:"loinc,omitempty"`
}

// Subscale returns the subscale with the code, and whether there is one.
func (d *Definition) Subscale(code string) (SubscaleSpec, bool) {
	for _, s := range d.Scoring.Subscales {
		if s.Code == code {
			return s, true
		}
	}
	return SubscaleSpec{}, false
}

// Item returns the item with the id, and whether there is one.
func (d *Definition) Item(id string) (Item, bool) {
	i, ok := d.index[id]
	if !ok {
		return Item{}, false
	}
	return d.Items[i], true
}

// HasTotal reports whether the manual defines a total score.
func (d *Definition) HasTotal() bool { return d.hasTotal }

// ItemScore returns the score an answer counts for on the item: the option's
// score, reversed if the item is reverse-keyed. ok is false when the answer
// is not valid for the item.
func (d *Definition) ItemScore(id string, a Answer) (score int, ok bool) {
	i, found := d.index[id]
	if !found {
		return 0, false
	}
	s, problem := d.Items[i].score(a)
	return s, problem == ""
}

type subscale struct {
	code    string
	items   []int
	method  string
	minItem int
}

type bandSet struct {
	id, language, population string
	bands                    []BandSpec
}

type outcome struct {
	code string
	when *cond
}

type flagRule struct {
	code  string
	level Level
	item  string
	when  *cond
}

type missingRule struct {
	max      int
	method   string
	scoreAs  int
	required []bool // by item position
}

var (
	idPattern      = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
	codePattern    = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	versionPattern = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`)
	langPattern    = regexp.MustCompile(`^[a-z]{2,3}(-[A-Z][A-Za-z]{1,3})?$`)
	loincPattern   = regexp.MustCompile(`^(LA)?[0-9]{1,7}-[0-9]$`)
)

// NewDefinition validates spec and compiles it. contentHash identifies the
// definition (with any overlay) and is stored with every result. The error,
// when not nil, is a *SpecError naming every offending field.
func NewDefinition(spec Spec, contentHash string) (*Definition, error) {
	c := compiler{spec: &spec, err: &SpecError{}}
	d := c.compile()
	if len(c.err.Problems) > 0 {
		return nil, c.err
	}
	d.ContentHash = contentHash
	return d, nil
}

type compiler struct {
	spec *Spec
	err  *SpecError
	d    *Definition
}

func (c *compiler) texts(path string, t Text, required bool) {
	for lang := range t {
		if !slices.Contains(c.spec.Languages, lang) {
			c.err.add(path+"."+lang, "language is not in languages")
		}
	}
	if !required {
		return
	}
	for _, lang := range c.spec.Languages {
		if strings.TrimSpace(t[lang]) == "" {
			c.err.add(path+"."+lang, "missing text")
		}
	}
}

func (c *compiler) compile() *Definition {
	s := c.spec
	d := &Definition{
		ID: s.ID, Version: s.Version, Name: s.Name, Languages: s.Languages,
		TextSource: s.TextSource, Title: s.Title, Instructions: s.Instructions,
		Licence: s.Licence, Source: s.Source, LOINC: s.LOINC, Scoring: s.Scoring,
		Notes: s.Notes, index: make(map[string]int, len(s.Items)),
	}
	c.d = d
	if !idPattern.MatchString(s.ID) {
		c.err.add("id", "must be lower case letters, digits and underscores, starting with a letter")
	}
	if !versionPattern.MatchString(s.Version) {
		c.err.add("version", "must be MAJOR.MINOR.PATCH")
	}
	if strings.TrimSpace(s.Name) == "" {
		c.err.add("name", "missing")
	}
	if len(s.Languages) == 0 {
		c.err.add("languages", "must list at least one language")
	}
	for i, l := range s.Languages {
		if !langPattern.MatchString(l) {
			c.err.add(fmt.Sprintf("languages[%d]", i), "must be a language tag such as zh-CN or en")
		}
		if slices.Index(s.Languages, l) != i {
			c.err.add(fmt.Sprintf("languages[%d]", i), "duplicate language")
		}
	}
	shipped := s.TextSource == TextShipped
	if !shipped && s.TextSource != TextOverlay {
		c.err.add("text_source", "must be %q or %q", TextShipped, TextOverlay)
	}
	c.texts("title", s.Title, true)
	c.texts("instructions", s.Instructions, shipped && len(s.Instructions) > 0)
	if strings.TrimSpace(s.Licence.Name) == "" {
		c.err.add("licence.name", "missing")
	}
	if strings.TrimSpace(s.Licence.Terms) == "" {
		c.err.add("licence.terms", "missing")
	}
	if strings.TrimSpace(s.Source.Citation) == "" {
		c.err.add("source.citation", "missing")
	}
	c.texts("source.translations", s.Source.Translations, shipped)
	c.loinc("loinc.panel", s.LOINC.Panel)
	c.loinc("loinc.total", s.LOINC.Total)
	for name, opts := range s.OptionSets {
		if !idPattern.MatchString(name) {
			c.err.add("option_sets."+name, "name must be lower case letters, digits and underscores")
		}
		c.options("option_sets."+name, opts, shipped)
	}
	c.items()
	c.scoring()
	d.TextComplete = make(map[string]bool, len(s.Languages))
	for _, lang := range s.Languages {
		complete := true
		for _, it := range d.Items {
			if strings.TrimSpace(it.Text[lang]) == "" {
				complete = false
			}
		}
		d.TextComplete[lang] = complete
	}
	return d
}

func (c *compiler) loinc(path, code string) {
	if code != "" && !loincPattern.MatchString(code) {
		c.err.add(path, "must be a LOINC code such as 44261-6")
	}
}

func (c *compiler) options(path string, opts []OptionSpec, labels bool) {
	if len(opts) < 2 {
		c.err.add(path, "must have at least two options")
	}
	for j, o := range opts {
		p := fmt.Sprintf("%s[%d]", path, j)
		for k := range j {
			if opts[k].Value == o.Value {
				c.err.add(p+".value", "duplicate value")
				break
			}
		}
		if o.Score != nil && *o.Score < 0 {
			c.err.add(p+".score", "must not be negative")
		}
		if o.Score == nil && o.Value < 0 {
			c.err.add(p+".value", "must not be negative unless the option has a score")
		}
		if o.Code != "" {
			if !codePattern.MatchString(o.Code) {
				c.err.add(p+".code", "must be lower_snake_case")
			}
			for k := range j {
				if opts[k].Code == o.Code {
					c.err.add(p+".code", "duplicate code")
					break
				}
			}
		}
		c.texts(p+".label", o.Label, labels)
		c.loinc(p+".loinc", o.LOINC)
	}
}

func (c *compiler) items() {
	s, d := c.spec, c.d
	shipped := s.TextSource == TextShipped
	if len(s.Items) == 0 {
		c.err.add("items", "must list at least one item")
	}
	d.Items = make([]Item, len(s.Items))
	for i, is := range s.Items {
		p := fmt.Sprintf("items[%d]", i)
		it := Item{ID: is.ID, Text: is.Text, Scored: is.Scored == nil || *is.Scored, Reverse: is.Reverse, AskWhen: is.AskWhen, WhenSkipped: is.WhenSkipped, LOINC: is.LOINC}
		if !idPattern.MatchString(is.ID) {
			c.err.add(p+".id", "must be lower case letters, digits and underscores, starting with a letter")
		} else if is.ID == "total" {
			c.err.add(p+".id", "\"total\" is reserved")
		} else if _, dup := d.index[is.ID]; dup {
			c.err.add(p+".id", "duplicate id")
		} else {
			d.index[is.ID] = i
		}
		c.texts(p+".text", is.Text, shipped)
		c.loinc(p+".loinc", is.LOINC)
		var opts []OptionSpec
		switch {
		case is.OptionSet != "" && len(is.Options) > 0:
			c.err.add(p, "give either option_set or options, not both")
		case is.OptionSet != "":
			set, ok := s.OptionSets[is.OptionSet]
			if !ok {
				c.err.add(p+".option_set", "no such option set")
			}
			opts = set
		default:
			c.options(p+".options", is.Options, shipped)
			opts = is.Options
		}
		it.Options = make([]Option, len(opts))
		codes := map[string]bool{}
		for j, o := range opts {
			sc := o.Value
			if o.Score != nil {
				sc = *o.Score
			}
			it.Options[j] = Option{Value: o.Value, Score: sc, Code: o.Code, Label: o.Label, LOINC: o.LOINC}
			if j == 0 || sc < it.minScore {
				it.minScore = sc
			}
			if j == 0 || sc > it.maxScore {
				it.maxScore = sc
			}
			if o.Code != "" {
				codes[o.Code] = true
				it.hasCodes = true
			}
		}
		it.yesNo = codes["yes"] && codes["no"]
		if is.Reverse && !it.Scored {
			c.err.add(p+".reverse", "only a scored item can be reverse-keyed")
		}
		it.mustDetail = mustDetail(it.Options, it.yesNo)
		d.Items[i] = it
	}
	// Skip logic refers to earlier items only, so it runs in one pass.
	for i, is := range s.Items {
		p := fmt.Sprintf("items[%d]", i)
		it := &d.Items[i]
		if is.AskWhen == nil {
			if is.WhenSkipped != nil {
				c.err.add(p+".when_skipped", "only an item with ask_when can be skipped")
			}
			continue
		}
		it.askWhen = c.cond(p+".ask_when", *is.AskWhen, i)
		if is.WhenSkipped == nil {
			c.err.add(p+".when_skipped", "missing: say how the item scores when it is not asked")
			continue
		}
		switch is.WhenSkipped.IfAnswered {
		case IfAnsweredError:
			it.skipError = true
		case IfAnsweredScore:
		default:
			c.err.add(p+".when_skipped.if_answered", "must be %q or %q", IfAnsweredError, IfAnsweredScore)
		}
		if it.Scored {
			if is.WhenSkipped.Score == nil {
				c.err.add(p+".when_skipped.score", "missing: a scored item needs the score it counts for when not asked")
			} else if sc := *is.WhenSkipped.Score; sc < it.minScore || sc > it.maxScore {
				c.err.add(p+".when_skipped.score", "must be within the item's scores %d to %d", it.minScore, it.maxScore)
			} else {
				it.skipScore = sc
			}
		}
	}
	for _, it := range d.Items {
		if it.Scored {
			d.nScored++
		}
	}
}

// mustDetail says what a valid answer to an item is, without ever repeating
// what was submitted.
func mustDetail(opts []Option, yesNo bool) string {
	var b strings.Builder
	b.WriteString("must be one of ")
	for j, o := range opts {
		if j > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(o.Value))
	}
	var codes []string
	for _, o := range opts {
		if o.Code != "" {
			codes = append(codes, strconv.Quote(o.Code))
		}
	}
	if len(codes) > 0 {
		b.WriteString(" or the codes ")
		b.WriteString(strings.Join(codes, ", "))
	}
	if yesNo {
		b.WriteString(" or true (yes), false (no)")
	}
	return b.String()
}

func (c *compiler) scoring() {
	s, d := c.spec, c.d
	sc := s.Scoring
	switch sc.Total {
	case TotalSum:
		d.hasTotal = true
		if d.nScored == 0 {
			c.err.add("scoring.total", "a summed total needs at least one scored item")
		}
		for _, it := range d.Items {
			if it.Scored {
				d.TotalMin += it.minScore
				d.TotalMax += it.maxScore
			}
		}
	case TotalNone:
	default:
		c.err.add("scoring.total", "must be %q or %q", TotalSum, TotalNone)
	}

	codes := map[string]bool{}
	for i, ss := range sc.Subscales {
		p := fmt.Sprintf("scoring.subscales[%d]", i)
		if !codePattern.MatchString(ss.Code) {
			c.err.add(p+".code", "must be lower_snake_case")
		} else if _, isItem := d.index[ss.Code]; isItem || ss.Code == "total" || codes[ss.Code] {
			c.err.add(p+".code", "duplicate: already an item id, a subscale code or \"total\"")
		}
		codes[ss.Code] = true
		c.texts(p+".title", ss.Title, true)
		c.loinc(p+".loinc", ss.LOINC)
		sub := subscale{code: ss.Code, method: ss.Method}
		if len(ss.Items) == 0 {
			c.err.add(p+".items", "must list at least one item")
		}
		for j, id := range ss.Items {
			k, ok := d.index[id]
			switch {
			case !ok:
				c.err.add(fmt.Sprintf("%s.items[%d]", p, j), "no such item")
			case !d.Items[k].Scored:
				c.err.add(fmt.Sprintf("%s.items[%d]", p, j), "item is not scored")
			case slices.Contains(sub.items, k):
				c.err.add(fmt.Sprintf("%s.items[%d]", p, j), "duplicate item")
			default:
				sub.items = append(sub.items, k)
			}
		}
		switch ss.Method {
		case MethodSum, MethodMean:
			if ss.MinItemScore != nil {
				c.err.add(p+".min_item_score", "only for method %q", MethodCount)
			}
		case MethodCount:
			if ss.MinItemScore == nil {
				c.err.add(p+".min_item_score", "missing: count needs the score an item must reach")
			} else {
				sub.minItem = *ss.MinItemScore
			}
		default:
			c.err.add(p+".method", "must be %q, %q or %q", MethodSum, MethodMean, MethodCount)
		}
		d.subscales = append(d.subscales, sub)
	}
	d.subOrder = make([]int, len(d.subscales))
	for i := range d.subOrder {
		d.subOrder[i] = i
	}
	slices.SortFunc(d.subOrder, func(a, b int) int { return strings.Compare(d.subscales[a].code, d.subscales[b].code) })

	c.missing()
	c.bands()

	for i, o := range sc.Outcomes {
		p := fmt.Sprintf("scoring.outcomes[%d]", i)
		if !codePattern.MatchString(o.Code) {
			c.err.add(p+".code", "must be lower_snake_case")
		}
		for k := range i {
			if sc.Outcomes[k].Code == o.Code {
				c.err.add(p+".code", "duplicate code")
			}
		}
		c.texts(p+".label", o.Label, true)
		last := i == len(sc.Outcomes)-1
		var w *cond
		switch {
		case o.When == nil && !last:
			c.err.add(p+".when", "missing: only the last outcome may have no condition")
		case o.When != nil && last:
			c.err.add(p+".when", "the last outcome must have no condition, so that every answer set has a result")
		case o.When != nil:
			w = c.cond(p+".when", *o.When, -1)
			if refersTo(*o.When, func(Condition) bool { return false }, true) {
				c.err.add(p+".when", "an outcome cannot depend on the result")
			}
		}
		d.outcomes = append(d.outcomes, outcome{code: o.Code, when: w})
	}

	for i, f := range sc.Flags {
		p := fmt.Sprintf("scoring.flags[%d]", i)
		if !codePattern.MatchString(f.Code) {
			c.err.add(p+".code", "must be lower_snake_case")
		}
		if !f.Level.Valid() {
			c.err.add(p+".level", "must be %q, %q or %q", LevelCritical, LevelUrgent, LevelReview)
		}
		if f.Item != "" {
			if _, ok := d.index[f.Item]; !ok {
				c.err.add(p+".item", "no such item")
			}
		}
		if strings.TrimSpace(f.Citation) == "" {
			c.err.add(p+".citation", "missing")
		}
		c.texts(p+".label", f.Label, true)
		w := c.cond(p+".when", f.When, -1)
		if f.Level == LevelCritical || f.Level == LevelUrgent {
			c.safety(p+".when", f.When)
		}
		d.flags = append(d.flags, flagRule{code: f.Code, level: f.Level, item: f.Item, when: w})
	}

	q := sc.Quality
	if q.MinSecondsPerItem < 0 || math.IsNaN(q.MinSecondsPerItem) || q.MinSecondsPerItem > 600 {
		c.err.add("scoring.quality.min_seconds_per_item", "must be between 0 and 600")
	}
	if q.StraightLiningMinItems < 0 {
		c.err.add("scoring.quality.straight_lining_min_items", "must not be negative")
	}
	d.quality = q
}

func (c *compiler) missing() {
	d := c.d
	m := c.spec.Scoring.Missing
	const p = "scoring.missing"
	d.missing = missingRule{max: m.MaxMissing, method: m.Method, required: make([]bool, len(d.Items))}
	if strings.TrimSpace(m.Citation) == "" {
		c.err.add(p+".citation", "missing: cite the manual's rule, or say why this one was chosen")
	}
	switch m.Method {
	case MissingNone:
		if m.MaxMissing != 0 {
			c.err.add(p+".max_missing", "must be 0 when method is %q", MissingNone)
		}
	case MissingProrate:
		if m.MaxMissing < 1 || m.MaxMissing >= d.nScored {
			c.err.add(p+".max_missing", "must be at least 1 and fewer than the scored items")
		}
	case MissingScoreAs:
		if m.MaxMissing < 1 || m.MaxMissing > d.nScored {
			c.err.add(p+".max_missing", "must be at least 1 and at most the scored items")
		}
		if m.ScoreAs == nil {
			c.err.add(p+".score_as", "missing: the score an unanswered item counts for")
		} else {
			d.missing.scoreAs = *m.ScoreAs
			for i, it := range d.Items {
				if it.Scored && (*m.ScoreAs < it.minScore || *m.ScoreAs > it.maxScore) {
					c.err.add(p+".score_as", "outside the scores of items[%d]", i)
					break
				}
			}
		}
	default:
		c.err.add(p+".method", "must be %q, %q or %q", MissingNone, MissingProrate, MissingScoreAs)
	}
	if m.Method != MissingScoreAs && m.ScoreAs != nil {
		c.err.add(p+".score_as", "only for method %q", MissingScoreAs)
	}
	for j, id := range m.Required {
		k, ok := d.index[id]
		switch {
		case !ok:
			c.err.add(fmt.Sprintf("%s.required[%d]", p, j), "no such item")
		case !d.Items[k].Scored:
			c.err.add(fmt.Sprintf("%s.required[%d]", p, j), "item is not scored")
		case d.missing.required[k]:
			c.err.add(fmt.Sprintf("%s.required[%d]", p, j), "duplicate item")
		default:
			d.missing.required[k] = true
			d.Items[k].Required = true
		}
	}
	if m.Method == MissingNone {
		for i := range d.Items {
			if d.Items[i].Scored {
				d.Items[i].Required = true
			}
		}
	}
}

func (c *compiler) bands() {
	s, d := c.spec, c.d
	sets := s.Scoring.Bands
	if !d.hasTotal {
		if len(sets) > 0 {
			c.err.add("scoring.bands", "an instrument without a total has no severity bands")
		}
		return
	}
	defaults := 0
	for i, bs := range sets {
		p := fmt.Sprintf("scoring.bands[%d]", i)
		if !codePattern.MatchString(bs.ID) {
			c.err.add(p+".id", "must be lower_snake_case")
		}
		if bs.Language != "" && !slices.Contains(s.Languages, bs.Language) {
			c.err.add(p+".language", "language is not in languages")
		}
		if bs.Population != "" && !codePattern.MatchString(bs.Population) {
			c.err.add(p+".population", "must be lower_snake_case")
		}
		if bs.Language == "" && bs.Population == "" {
			defaults++
		}
		for k := range i {
			if sets[k].ID == bs.ID {
				c.err.add(p+".id", "duplicate id")
			}
			if sets[k].Language == bs.Language && sets[k].Population == bs.Population {
				c.err.add(p, "another band set has the same language and population")
			}
		}
		if strings.TrimSpace(bs.Citation) == "" {
			c.err.add(p+".citation", "missing")
		}
		if len(bs.Bands) == 0 {
			c.err.add(p+".bands", "must list at least one band")
		}
		next := d.TotalMin
		for j, b := range bs.Bands {
			bp := fmt.Sprintf("%s.bands[%d]", p, j)
			if !codePattern.MatchString(b.Code) {
				c.err.add(bp+".code", "must be lower_snake_case")
			}
			for k := range j {
				if bs.Bands[k].Code == b.Code {
					c.err.add(bp+".code", "duplicate code")
				}
			}
			c.texts(bp+".label", b.Label, true)
			switch {
			case b.Min != next && j == 0:
				c.err.add(bp+".min", "must be %d, the lowest possible total", next)
			case b.Min != next:
				c.err.add(bp+".min", "must be %d: bands must not overlap or leave gaps", next)
			}
			if b.Max < b.Min {
				c.err.add(bp+".max", "must not be below min")
			}
			next = b.Max + 1
		}
		if len(bs.Bands) > 0 && next-1 != d.TotalMax {
			c.err.add(fmt.Sprintf("%s.bands[%d].max", p, len(bs.Bands)-1), "must be %d, the highest possible total", d.TotalMax)
		}
		d.bandSets = append(d.bandSets, bandSet{id: bs.ID, language: bs.Language, population: bs.Population, bands: bs.Bands})
	}
	if len(sets) > 0 && defaults != 1 {
		c.err.add("scoring.bands", "must have exactly one default band set (no language, no population)")
	}
}

// safety checks that an urgent or critical flag can never be silently
// dropped because an item it reads was left unanswered: every item it reads,
// directly or through a subscale or the result, must be required, or count
// for a score when unanswered.
func (c *compiler) safety(path string, w Condition) {
	d := c.d
	if d.missing.method == MissingScoreAs || d.missing.method == MissingNone {
		return
	}
	check := func(id string) {
		if k, ok := d.index[id]; ok && d.Items[k].Scored && !d.missing.required[k] {
			c.err.add(path, "reads item %s, which may be left unanswered: list it in scoring.missing.required so that a safety flag can never pass silently", id)
		}
	}
	var walk func(Condition)
	walk = func(w Condition) {
		if w.Score != "" {
			check(w.Score)
			if ss, ok := d.Subscale(w.Score); ok {
				for _, id := range ss.Items {
					check(id)
				}
			}
		}
		for _, id := range w.Items {
			check(id)
		}
		for _, sub := range w.Any {
			walk(sub)
		}
		for _, sub := range w.All {
			walk(sub)
		}
		if w.Result != "" {
			for _, o := range c.spec.Scoring.Outcomes {
				if o.When != nil {
					walk(*o.When)
				}
			}
		}
	}
	walk(w)
}

// refersTo reports whether w or any nested condition satisfies f, or, when
// result is true, tests the result.
func refersTo(w Condition, f func(Condition) bool, result bool) bool {
	if f(w) || (result && w.Result != "") {
		return true
	}
	for _, sub := range w.Any {
		if refersTo(sub, f, result) {
			return true
		}
	}
	for _, sub := range w.All {
		if refersTo(sub, f, result) {
			return true
		}
	}
	return false
}
