package screening

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sunpath/sunpath/internal/problem"
)

// ScoreOptions are the circumstances of one administration.
type ScoreOptions struct {
	// Language is the language the instrument was given in; "" means the
	// definition's first language. It selects language-specific severity
	// bands where the manual has them.
	Language string
	// Population selects population-specific severity bands (for example
	// "women_and_over_65" for the AUDIT); "" or a population the instrument
	// has no bands for uses the default bands. Result.BandSet says which.
	Population string
	// Duration, or else CompletedAt − StartedAt when both are set, is how long
	// the person took; it drives the too_fast quality signal.
	Duration    time.Duration
	StartedAt   time.Time
	CompletedAt time.Time
}

// work holds the per-call scratch space, so that scoring allocates only the
// Result.
type work struct {
	slots   []Answer
	unknown []string
	scores  []int
	known   []bool
	present []bool
	optIdx  []int
	missing []int
	subVals []int64
	subKnw  []bool
}

func (d *Definition) newWork() *work {
	n := len(d.Items)
	return &work{
		slots:   make([]Answer, n),
		scores:  make([]int, n),
		known:   make([]bool, n),
		present: make([]bool, n),
		optIdx:  make([]int, n),
		missing: make([]int, 0, n),
		subVals: make([]int64, len(d.subscales)),
		subKnw:  make([]bool, len(d.subscales)),
	}
}

func (d *Definition) getWork() *work {
	if w, ok := d.pool.Get().(*work); ok {
		return w
	}
	return d.newWork()
}

func (d *Definition) putWork(w *work) {
	clear(w.slots)
	w.unknown = w.unknown[:0]
	d.pool.Put(w)
}

// Score validates the answers against the definition and scores them as the
// manual says. A validation failure is a *problem.Invalid listing every
// offending item (and option field); its details say what a valid answer is
// and never repeat the submitted value.
func (d *Definition) Score(a Answers, opt ScoreOptions) (Result, error) {
	w := d.getWork()
	defer d.putWork(w)
	for k, v := range a {
		if i, ok := d.index[k]; ok {
			w.slots[i] = v
		} else {
			w.unknown = append(w.unknown, k)
		}
	}
	var inv problem.Invalid
	return d.score(w, opt, &inv)
}

// ScoreJSON decodes a submission and scores it. The submission is the JSON
// object that the API's score endpoint receives and that each line of
// `sunpath score` holds:
//
//	{"answers": {"<item id>": value, ...},
//	 "language": "zh-CN", "population": "...",
//	 "duration_seconds": 95, "started_at": "<RFC 3339>", "completed_at": "<RFC 3339>"}
//
// Only answers is required; fields given in the body win over opt. Syntax
// errors return an error wrapping ErrMalformed; everything else wrong (every
// offending item and field at once) is a *problem.Invalid.
func (d *Definition) ScoreJSON(body []byte, opt ScoreOptions) (Result, error) {
	w := d.getWork()
	defer d.putWork(w)
	var inv problem.Invalid
	if err := d.parseSubmission(body, w, &opt, &inv); err != nil {
		return Result{}, err
	}
	return d.score(w, opt, &inv)
}

// score is the engine. w.slots holds the answers by item position and
// w.unknown the ids that are no item; inv may already hold field errors.
func (d *Definition) score(w *work, opt ScoreOptions, inv *problem.Invalid) (Result, error) {
	lang := opt.Language
	if lang == "" {
		lang = d.Languages[0]
	} else if !slices.Contains(d.Languages, lang) {
		inv.Add("language", "must be one of "+strings.Join(d.Languages, ", "))
	}
	dur, timed := opt.Duration, opt.Duration != 0
	switch {
	case opt.Duration < 0:
		inv.Add("duration_seconds", "must not be negative")
	case !timed && !opt.StartedAt.IsZero() && !opt.CompletedAt.IsZero():
		dur, timed = opt.CompletedAt.Sub(opt.StartedAt), true
		if dur < 0 {
			inv.Add("completed_at", "must not be before started_at")
		}
	}

	e := env{scores: w.scores, known: w.known, subVals: w.subVals, subKnown: w.subKnw}
	clear(w.known)
	missing := w.missing[:0]
	invalid := false // an earlier item has an invalid answer
	for i := range d.Items {
		it := &d.Items[i]
		a := w.slots[i]
		given := a.kind != kindAbsent && a.kind != kindNull
		w.present[i] = false
		asked, undecided := true, false
		if it.askWhen != nil {
			switch it.askWhen.eval(&e) {
			case triFalse:
				asked = false
			case triUnknown:
				// Whether the item is asked depends on an answer that is
				// invalid; say nothing about its absence until that is fixed.
				undecided = invalid
			}
		}
		if !given {
			switch {
			case undecided:
			case !asked:
				if it.Scored {
					w.scores[i], w.known[i] = it.skipScore, true
				}
			case !it.Scored:
			case d.missing.required[i]:
				inv.AddItem(it.ID, "required: must be answered")
			default:
				missing = append(missing, i)
				if d.missing.method == MissingScoreAs {
					w.scores[i], w.known[i] = d.missing.scoreAs, true
				}
			}
			continue
		}
		if !asked && it.skipError {
			inv.AddItem(it.ID, "must not be answered: the instrument's skip logic does not ask this item after these answers")
			invalid = true
			continue
		}
		j, bad := it.option(a)
		if bad != "" {
			inv.AddItem(it.ID, bad)
			invalid = true
			continue
		}
		s := it.Options[j].Score
		if it.Reverse {
			s = it.minScore + it.maxScore - s
		}
		w.scores[i], w.known[i], w.present[i], w.optIdx[i] = s, true, true, j
	}
	w.missing = missing
	if len(missing) > d.missing.max {
		detail := d.tooManyMissing()
		for _, i := range missing {
			inv.AddItem(d.Items[i].ID, detail)
		}
	}
	if len(w.unknown) > 0 {
		slices.Sort(w.unknown)
		w.unknown = slices.Compact(w.unknown)
		for _, k := range w.unknown {
			inv.AddItem(displayKey(k), "unknown item")
		}
	}
	if len(inv.Errors) > 0 {
		// Fields first, then items in the instrument's order, then unknown
		// items by name.
		slices.SortStableFunc(inv.Errors, func(a, b problem.FieldError) int {
			return d.errorRank(a) - d.errorRank(b)
		})
		return Result{}, &problem.Invalid{Errors: inv.Errors}
	}

	res := Result{
		Instrument:    d.ID,
		Version:       d.Version,
		ContentHash:   d.ContentHash,
		EngineVersion: EngineVersion,
		Language:      lang,
	}
	if d.hasTotal {
		sum, n, counted := 0, 0, 0
		for i := range d.Items {
			if !d.Items[i].Scored {
				continue
			}
			n++
			if w.known[i] {
				sum += w.scores[i]
				counted++
			}
		}
		total := sum
		if counted < n {
			total = roundDiv(sum*n, counted)
			res.Prorated = true
		}
		res.Total = &total
		e.total, e.hasTotal = int64(total)*100, true
		if set := d.bandSet(lang, opt.Population); set != nil {
			res.BandSet = set.id
			for _, b := range set.bands {
				if total >= b.Min && total <= b.Max {
					res.Severity = b.Code
					break
				}
			}
		}
	}
	for si, s := range d.subscales {
		sum, counted, hits := 0, 0, 0
		for _, k := range s.items {
			if w.known[k] {
				sum += w.scores[k]
				counted++
				if w.scores[k] >= s.minItem {
					hits++
				}
			}
		}
		w.subKnw[si] = counted > 0
		if counted == 0 {
			continue
		}
		switch s.method {
		case MethodSum:
			v := sum
			if counted < len(s.items) {
				v = roundDiv(sum*len(s.items), counted)
			}
			w.subVals[si] = int64(v) * 100
		case MethodMean:
			w.subVals[si] = int64(roundDiv(sum*100, counted))
		case MethodCount:
			w.subVals[si] = int64(hits) * 100
		}
	}
	if len(d.subscales) > 0 {
		res.Subscales = make(map[string]float64, len(d.subscales))
		for si, s := range d.subscales {
			if w.subKnw[si] {
				res.Subscales[s.code] = float64(w.subVals[si]) / 100
			}
		}
	}
	for _, o := range d.outcomes {
		if o.when == nil || o.when.eval(&e) == triTrue {
			res.Outcome = o.code
			e.outcome = o.code
			break
		}
	}
	for _, f := range d.flags {
		if f.when.eval(&e) == triTrue {
			res.Flags = append(res.Flags, Flag{Code: f.code, Level: f.level, Item: f.item})
		}
	}
	if len(missing) > 0 {
		res.Missing = make([]string, len(missing))
		for j, i := range missing {
			res.Missing[j] = d.Items[i].ID
		}
	}
	res.Quality = d.qualitySignals(w, dur, timed)
	return res, nil
}

func (d *Definition) qualitySignals(w *work, dur time.Duration, timed bool) []string {
	var out []string
	answered := 0
	for i := range d.Items {
		if w.present[i] {
			answered++
		}
	}
	if q := d.quality.MinSecondsPerItem; timed && q > 0 && answered > 0 && dur.Seconds() < float64(answered)*q {
		out = append(out, QualityTooFast)
	}
	if m := d.quality.StraightLiningMinItems; m > 0 {
		n, same, lowest := 0, true, true
		first := 0
		for i := range d.Items {
			it := &d.Items[i]
			if !it.Scored || !w.present[i] {
				continue
			}
			v := it.Options[w.optIdx[i]].Value
			if n == 0 {
				first = v
			} else if v != first {
				same = false
				break
			}
			n++
			if v != it.minValue() {
				lowest = false
			}
		}
		if same && n >= m && !lowest {
			out = append(out, QualityStraightLining)
		}
	}
	return out
}

func (it *Item) minValue() int {
	m := it.Options[0].Value
	for _, o := range it.Options[1:] {
		m = min(m, o.Value)
	}
	return m
}

// option finds the option an answer chooses. bad, when not "", says what a
// valid answer is.
func (it *Item) option(a Answer) (j int, bad string) {
	switch a.kind {
	case kindNumber:
		for j := range it.Options {
			if float64(it.Options[j].Value) == a.num {
				return j, ""
			}
		}
		return 0, it.mustDetail
	case kindString:
		if !it.hasCodes {
			return 0, "wrong type: " + it.mustDetail
		}
		for j := range it.Options {
			if it.Options[j].Code != "" && it.Options[j].Code == a.str {
				return j, ""
			}
		}
		return 0, it.mustDetail
	case kindBool:
		if !it.yesNo {
			return 0, "wrong type: " + it.mustDetail
		}
		code := "no"
		if a.b {
			code = "yes"
		}
		for j := range it.Options {
			if it.Options[j].Code == code {
				return j, ""
			}
		}
	case kindDuplicate:
		return 0, "answered more than once"
	}
	return 0, "wrong type: " + it.mustDetail
}

// score returns the item score an answer counts for.
func (it *Item) score(a Answer) (int, string) {
	j, bad := it.option(a)
	if bad != "" {
		return 0, bad
	}
	s := it.Options[j].Score
	if it.Reverse {
		s = it.minScore + it.maxScore - s
	}
	return s, ""
}

func (d *Definition) errorRank(e problem.FieldError) int {
	if e.Item == "" {
		return -1
	}
	if i, ok := d.index[e.Item]; ok {
		return i
	}
	return len(d.Items)
}

func (d *Definition) tooManyMissing() string {
	return "unanswered: at most " + strconv.Itoa(d.missing.max) + " of the " + strconv.Itoa(d.nScored) + " scored items may be unanswered"
}

// bandSet picks the band set for a language and population: both matching
// first, then the population, then the language, then the default. It
// returns nil when the instrument has no bands.
func (d *Definition) bandSet(lang, pop string) *bandSet {
	best, rank := -1, -1
	for i, s := range d.bandSets {
		r := -1
		switch {
		case s.language == lang && s.population == pop && pop != "":
			r = 3
		case s.language == "" && s.population == pop && pop != "":
			r = 2
		case s.language == lang && s.population == "":
			r = 1
		case s.language == "" && s.population == "":
			r = 0
		}
		if r > rank {
			best, rank = i, r
		}
	}
	if best < 0 {
		return nil
	}
	return &d.bandSets[best]
}

// roundDiv returns a/b rounded half up, for a >= 0 and b > 0.
func roundDiv(a, b int) int { return (2*a + b) / (2 * b) }

// displayKey makes a submitted key safe to name in an error: valid UTF-8 and
// at most 64 bytes.
func displayKey(k string) string {
	k = strings.ToValidUTF8(k, "\uFFFD")
	if len(k) <= 64 {
		return k
	}
	cut := 64
	for cut > 0 && !isRuneStart(k[cut]) {
		cut--
	}
	return k[:cut] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
