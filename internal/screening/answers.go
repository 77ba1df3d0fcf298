package screening

import (
	"log/slog"
	"math"
	"slices"
	"strconv"
)

type answerKind uint8

const (
	kindAbsent    answerKind = iota // not given
	kindNull                        // JSON null: given as unanswered
	kindNumber                      // a JSON number
	kindString                      // a JSON string: an option code such as "yes"
	kindBool                        // a JSON boolean, for yes/no items
	kindWrongType                   // a JSON object or array
	kindDuplicate                   // the item was answered more than once
)

// Answer is the answer to one item as submitted: a number (the option's
// value), a string (the option's code, for items whose options have codes),
// a boolean (for yes/no items), or null (unanswered). Whether it is valid for
// its item is decided by Definition.Score. An Answer never prints its value
// through fmt or slog.
type Answer struct {
	kind answerKind
	num  float64
	str  string
	b    bool
}

// Int returns the answer v, an option value.
func Int(v int) Answer { return Answer{kind: kindNumber, num: float64(v)} }

// Number returns the answer v as a JSON number; a v that is not an option
// value (1.5, say) is rejected by Score.
func Number(v float64) Answer { return Answer{kind: kindNumber, num: v} }

// Code returns the answer given as an option code, such as "yes".
func Code(s string) Answer { return Answer{kind: kindString, str: s} }

// Bool returns a yes (true) or no (false) answer to a yes/no item.
func Bool(v bool) Answer { return Answer{kind: kindBool, b: v} }

// Unanswered returns an explicit unanswered answer (JSON null); Score treats
// it as a missing item.
func Unanswered() Answer { return Answer{kind: kindNull} }

// LogValue keeps the answer out of logs, even by accident.
func (Answer) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// String keeps the answer out of fmt output.
func (Answer) String() string { return "[redacted]" }

// GoString keeps the answer out of %#v output.
func (Answer) GoString() string { return "[redacted]" }

// MarshalJSON encodes the answer as it was submitted, for storage. It is the
// one way to read an answer's value back as text.
func (a Answer) MarshalJSON() ([]byte, error) {
	switch a.kind {
	case kindNumber:
		if math.IsInf(a.num, 0) || math.IsNaN(a.num) {
			return []byte("null"), nil
		}
		return strconv.AppendFloat(nil, a.num, 'f', -1, 64), nil
	case kindString:
		return appendString(nil, a.str), nil
	case kindBool:
		return strconv.AppendBool(nil, a.b), nil
	}
	return []byte("null"), nil
}

// Answers maps item ids to answers. It never prints its contents through fmt
// or slog: answers are among the most sensitive data Sunpath holds.
type Answers map[string]Answer

// MarshalJSON encodes the answers as encoding/json encodes the map (keys
// sorted, strings escaped alike), without its reflection.
func (as Answers) MarshalJSON() ([]byte, error) { return as.AppendJSON(nil), nil }

// AppendJSON appends the answers' JSON object, keys sorted, to b.
func (as Answers) AppendJSON(b []byte) []byte {
	if as == nil {
		return append(b, "null"...)
	}
	keys := make([]string, 0, len(as))
	for k := range as {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		v, _ := as[k].MarshalJSON()
		b = append(b, v...)
	}
	return append(b, '}')
}

// LogValue keeps answers out of logs, even by accident.
func (Answers) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// String keeps answers out of fmt output.
func (Answers) String() string { return "[redacted]" }

// GoString keeps answers out of %#v output.
func (Answers) GoString() string { return "[redacted]" }
