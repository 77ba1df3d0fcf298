package screening

import (
	"slices"
	"strconv"
	"unicode/utf8"
)

// EngineVersion identifies the scoring engine. It is stored with every result
// beside the definition's content hash: together they say exactly which rules
// produced a result, so any stored result can be re-derived from its answers.
// Bump it whenever a change to this package could change any Result.
const EngineVersion = "1.0.0"

// Level is how soon a person must act on a flag.
type Level string

// Flag levels, most pressing first.
const (
	LevelCritical Level = "critical" // act now: the person must not leave before a safety evaluation
	LevelUrgent   Level = "urgent"   // act today: a safety assessment is needed
	LevelReview   Level = "review"   // a clinician should review the result
)

// Valid reports whether l is one of the defined levels.
func (l Level) Valid() bool {
	return l == LevelCritical || l == LevelUrgent || l == LevelReview
}

// Flag is a rule of the instrument that fired, such as PHQ-9 item 9 ≥ 1.
// Item names the item that drives the rule, when there is one.
type Flag struct {
	Code  string `json:"code"`
	Level Level  `json:"level"`
	Item  string `json:"item,omitempty"`
}

// Response-quality signals. They never change a score; they tell the reader
// that the answers may not reflect the person.
const (
	QualityTooFast        = "too_fast"        // completed faster than the instrument can be read
	QualityStraightLining = "straight_lining" // every item answered with the same, non-lowest option
)

// Result is the outcome of scoring one completed instrument. Its JSON form is
// the same for the CLI, the API and storage:
//
//	{"instrument","version","content_hash","engine_version","language",
//	 "band_set","total","severity","result","subscales","flags","prorated",
//	 "missing","quality"}
//
// Total is nil (JSON null) when the manual defines no total (the ASQ);
// Severity is "" (JSON null) when the instrument has no severity bands;
// Outcome ("result") is set for instruments whose manual defines a
// rule-based screening result (the ASQ: negative, non_acute_positive,
// acute_positive).
type Result struct {
	Instrument    string             `json:"instrument"`
	Version       string             `json:"version"`
	ContentHash   string             `json:"content_hash"`
	EngineVersion string             `json:"engine_version"`
	Language      string             `json:"language"`
	BandSet       string             `json:"band_set,omitempty"`
	Total         *int               `json:"total"`
	Severity      string             `json:"severity"`
	Outcome       string             `json:"result,omitempty"`
	Subscales     map[string]float64 `json:"subscales"`
	Flags         []Flag             `json:"flags"`
	Prorated      bool               `json:"prorated"`
	Missing       []string           `json:"missing"`
	Quality       []string           `json:"quality"`
}

// HighestLevel returns the most pressing level among the flags, or "" when no
// flag fired.
func (r Result) HighestLevel() Level {
	best := Level("")
	for _, f := range r.Flags {
		switch {
		case f.Level == LevelCritical:
			return LevelCritical
		case f.Level == LevelUrgent:
			best = LevelUrgent
		case f.Level == LevelReview && best == "":
			best = LevelReview
		}
	}
	return best
}

// MarshalJSON encodes r in its documented shape: empty lists as [], an empty
// severity as null, subscales in sorted key order.
func (r Result) MarshalJSON() ([]byte, error) {
	return r.AppendJSON(make([]byte, 0, 256)), nil
}

// AppendJSON appends the JSON encoding of r to b. It is MarshalJSON without
// reflection, for the scoring stream's hot path.
func (r Result) AppendJSON(b []byte) []byte {
	b = append(b, `{"instrument":`...)
	b = appendString(b, r.Instrument)
	b = append(b, `,"version":`...)
	b = appendString(b, r.Version)
	b = append(b, `,"content_hash":`...)
	b = appendString(b, r.ContentHash)
	b = append(b, `,"engine_version":`...)
	b = appendString(b, r.EngineVersion)
	b = append(b, `,"language":`...)
	b = appendString(b, r.Language)
	if r.BandSet != "" {
		b = append(b, `,"band_set":`...)
		b = appendString(b, r.BandSet)
	}
	b = append(b, `,"total":`...)
	if r.Total == nil {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, int64(*r.Total), 10)
	}
	b = append(b, `,"severity":`...)
	if r.Severity == "" {
		b = append(b, "null"...)
	} else {
		b = appendString(b, r.Severity)
	}
	if r.Outcome != "" {
		b = append(b, `,"result":`...)
		b = appendString(b, r.Outcome)
	}
	b = append(b, `,"subscales":{`...)
	if len(r.Subscales) > 0 {
		keys := make([]string, 0, len(r.Subscales))
		for k := range r.Subscales {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = strconv.AppendFloat(b, r.Subscales[k], 'f', -1, 64)
		}
	}
	b = append(b, `},"flags":[`...)
	for i, f := range r.Flags {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"code":`...)
		b = appendString(b, f.Code)
		b = append(b, `,"level":`...)
		b = appendString(b, string(f.Level))
		if f.Item != "" {
			b = append(b, `,"item":`...)
			b = appendString(b, f.Item)
		}
		b = append(b, '}')
	}
	b = append(b, `],"prorated":`...)
	b = strconv.AppendBool(b, r.Prorated)
	b = append(b, `,"missing":`...)
	b = appendStrings(b, r.Missing)
	b = append(b, `,"quality":`...)
	b = appendStrings(b, r.Quality)
	return append(b, '}')
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaped as encoding/json escapes
// it (HTML-safe, invalid UTF-8 replaced by U+FFFD).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
