package screening

import (
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/sunpath/sunpath/internal/problem"
)

// ErrMalformed marks a body or line that is not valid JSON, or not a JSON
// object where one is required. Handlers answer it with 400.
var ErrMalformed = errors.New("malformed JSON")

// maxDepth bounds nesting as encoding/json does.
const maxDepth = 10000

// DecodeAnswers decodes a JSON object mapping item ids to answers. A value
// may be a number, a string (an option code such as "yes"), a boolean or
// null (unanswered). Whether each answer is valid for its item is decided by
// Definition.Score.
//
// Syntax errors, and anything but an object at the top, return an error
// wrapping ErrMalformed. Values of the wrong JSON type (objects, arrays) and
// items given more than once return a *problem.Invalid naming each item; the
// answers are returned with it, those items marked, so that Score can report
// them together with every other problem.
func DecodeAnswers(raw []byte) (Answers, error) {
	s := scanner{b: raw}
	s.ws()
	if s.peek() != '{' {
		return nil, fmt.Errorf("answers must be a JSON object: %w", ErrMalformed)
	}
	out := Answers{}
	ok := s.answers(func(key []byte, a Answer) {
		k := string(key)
		if _, dup := out[k]; dup {
			a = Answer{kind: kindDuplicate}
		}
		out[k] = a
	})
	s.ws()
	if !ok || s.i != len(s.b) {
		return nil, fmt.Errorf("answers are not valid JSON: %w", ErrMalformed)
	}
	var inv problem.Invalid
	for k, a := range out {
		switch a.kind {
		case kindWrongType:
			inv.AddItem(displayKey(k), "wrong type: must be a number, an option code or a boolean")
		case kindDuplicate:
			inv.AddItem(displayKey(k), "answered more than once")
		}
	}
	if len(inv.Errors) > 0 {
		sortItemErrors(inv.Errors)
		return out, &inv
	}
	return out, nil
}

func sortItemErrors(errs []problem.FieldError) {
	for i := 1; i < len(errs); i++ {
		for j := i; j > 0 && errs[j].Item < errs[j-1].Item; j-- {
			errs[j], errs[j-1] = errs[j-1], errs[j]
		}
	}
}

// parseSubmission reads a submission object into w and opt, adding field
// problems to inv. It returns an error only for malformed JSON.
func (d *Definition) parseSubmission(body []byte, w *work, opt *ScoreOptions, inv *problem.Invalid) error {
	s := scanner{b: body}
	if !s.consume('{') {
		return fmt.Errorf("the body must be a JSON object: %w", ErrMalformed)
	}
	const (
		seenAnswers = 1 << iota
		seenLanguage
		seenPopulation
		seenDuration
		seenStarted
		seenCompleted
	)
	seen := 0
	once := func(bit int, field string) bool {
		if seen&bit != 0 {
			inv.Add(field, "given more than once")
			return false
		}
		seen |= bit
		return true
	}
	bad := fmt.Errorf("the body is not valid JSON: %w", ErrMalformed)
	if !s.consume('}') {
		for {
			s.ws()
			key, ok := s.str()
			if !ok || !s.consume(':') {
				return bad
			}
			s.ws()
			switch string(key) {
			case "answers":
				if s.peek() != '{' {
					if !s.skip(0) {
						return bad
					}
					inv.Add("answers", "must be an object mapping item ids to answers")
					seen |= seenAnswers
					break
				}
				first := once(seenAnswers, "answers")
				ok := s.answers(func(key []byte, a Answer) {
					if !first {
						return
					}
					if i, found := d.index[string(key)]; found {
						if w.slots[i].kind != kindAbsent {
							a = Answer{kind: kindDuplicate}
						}
						w.slots[i] = a
						return
					}
					w.unknown = append(w.unknown, string(key))
				})
				if !ok {
					return bad
				}
			case "language", "population":
				field := string(key)
				if s.peek() != '"' {
					if !s.skip(0) {
						return bad
					}
					inv.Add(field, "must be a string")
					break
				}
				v, ok := s.str()
				if !ok {
					return bad
				}
				if field == "language" && once(seenLanguage, field) {
					opt.Language = string(v)
				} else if field == "population" && once(seenPopulation, field) {
					opt.Population = string(v)
				}
			case "duration_seconds":
				if c := s.peek(); c != '-' && (c < '0' || c > '9') {
					if !s.skip(0) {
						return bad
					}
					inv.Add("duration_seconds", "must be a number of seconds")
					break
				}
				lit, ok := s.number()
				if !ok {
					return bad
				}
				f, err := strconv.ParseFloat(string(lit), 64)
				switch {
				case !once(seenDuration, "duration_seconds"):
				case err != nil || f < 0 || f > 1e9:
					inv.Add("duration_seconds", "must be a number of seconds between 0 and 1e9")
				default:
					opt.Duration = time.Duration(f * float64(time.Second))
					if opt.Duration == 0 {
						// A zero duration is a measured one: it is implausibly
						// fast, not absent.
						opt.Duration = 1
					}
				}
			case "started_at", "completed_at":
				field := string(key)
				if s.peek() != '"' {
					if !s.skip(0) {
						return bad
					}
					inv.Add(field, "must be an RFC 3339 date-time string")
					break
				}
				v, ok := s.str()
				if !ok {
					return bad
				}
				t, err := time.Parse(time.RFC3339Nano, string(v))
				bit := seenStarted
				if field == "completed_at" {
					bit = seenCompleted
				}
				switch {
				case !once(bit, field):
				case err != nil:
					inv.Add(field, "must be an RFC 3339 date-time string")
				case field == "started_at":
					opt.StartedAt = t
				default:
					opt.CompletedAt = t
				}
			default:
				field := displayKey(string(key))
				if !s.skip(0) {
					return bad
				}
				inv.Add(field, "unknown field")
			}
			if s.consume(',') {
				continue
			}
			if s.consume('}') {
				break
			}
			return bad
		}
	}
	s.ws()
	if s.i != len(s.b) {
		return bad
	}
	if seen&seenAnswers == 0 {
		inv.Add("answers", "required")
	}
	return nil
}

// scanner is a small, strict JSON reader: it accepts exactly what
// encoding/json accepts, and reads answers without reflection or
// allocation beyond the strings it must keep.
type scanner struct {
	b   []byte
	i   int
	tmp []byte
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) consume(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// answers reads an object of answers at s.i, calling visit for each member.
// The key passed to visit is valid only during the call.
func (s *scanner) answers(visit func(key []byte, a Answer)) bool {
	if !s.consume('{') {
		return false
	}
	if s.consume('}') {
		return true
	}
	for {
		s.ws()
		key, ok := s.str()
		if !ok || !s.consume(':') {
			return false
		}
		if len(key) > 0 && len(s.tmp) > 0 && &key[0] == &s.tmp[0] {
			// The key was unescaped into tmp, which the value may reuse.
			key = []byte(string(key))
		}
		a, ok := s.answer()
		if !ok {
			return false
		}
		visit(key, a)
		if s.consume(',') {
			continue
		}
		return s.consume('}')
	}
}

func (s *scanner) answer() (Answer, bool) {
	s.ws()
	switch c := s.peek(); {
	case c == '"':
		v, ok := s.str()
		return Answer{kind: kindString, str: string(v)}, ok
	case c == 't':
		return Answer{kind: kindBool, b: true}, s.lit("true")
	case c == 'f':
		return Answer{kind: kindBool}, s.lit("false")
	case c == 'n':
		return Answer{kind: kindNull}, s.lit("null")
	case c == '{' || c == '[':
		return Answer{kind: kindWrongType}, s.skip(0)
	}
	lit, ok := s.number()
	if !ok {
		return Answer{}, false
	}
	return Answer{kind: kindNumber, num: exactInt(lit)}, true
}

// exactInt returns the value of a JSON number literal when it is exactly a
// whole number written without an exponent (2, -1, 3.00), and NaN, which
// matches no option, otherwise. Nothing is rounded: 1.0000001 is not 1.
func exactInt(lit []byte) float64 {
	neg := false
	if lit[0] == '-' {
		neg, lit = true, lit[1:]
	}
	var v int64
	for i, c := range lit {
		switch {
		case c >= '0' && c <= '9':
			if i >= 15 {
				return nan()
			}
			v = v*10 + int64(c-'0')
		case c == '.':
			for _, f := range lit[i+1:] {
				if f != '0' {
					return nan()
				}
			}
			return signed(v, neg)
		default:
			return nan()
		}
	}
	return signed(v, neg)
}

func signed(v int64, neg bool) float64 {
	if neg {
		return -float64(v)
	}
	return float64(v)
}

func nan() float64 {
	var zero float64
	return zero / zero
}

func (s *scanner) lit(word string) bool {
	if len(s.b)-s.i >= len(word) && string(s.b[s.i:s.i+len(word)]) == word {
		s.i += len(word)
		return true
	}
	return false
}

// number reads a JSON number and returns its literal.
func (s *scanner) number() ([]byte, bool) {
	start := s.i
	b := s.b
	i := s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return nil, false
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return nil, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return nil, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return nil, false
		}
	}
	s.i = i
	return b[start:i], true
}

// str reads a JSON string and returns its decoded bytes, which alias the
// input or s.tmp and are valid until the next call.
func (s *scanner) str() ([]byte, bool) {
	if s.peek() != '"' {
		return nil, false
	}
	s.i++
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			out := s.b[start:s.i]
			s.i++
			return out, true
		case c == '\\':
			return s.strEscaped(start)
		case c < 0x20:
			return nil, false
		}
		s.i++
	}
	return nil, false
}

func (s *scanner) strEscaped(start int) ([]byte, bool) {
	s.tmp = append(s.tmp[:0], s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return s.tmp, true
		case c < 0x20:
			return nil, false
		case c != '\\':
			s.tmp = append(s.tmp, c)
			s.i++
			continue
		}
		s.i++
		if s.i >= len(s.b) {
			return nil, false
		}
		switch e := s.b[s.i]; e {
		case '"', '\\', '/':
			s.tmp = append(s.tmp, e)
		case 'b':
			s.tmp = append(s.tmp, '\b')
		case 'f':
			s.tmp = append(s.tmp, '\f')
		case 'n':
			s.tmp = append(s.tmp, '\n')
		case 'r':
			s.tmp = append(s.tmp, '\r')
		case 't':
			s.tmp = append(s.tmp, '\t')
		case 'u':
			r, ok := s.hex4(s.i + 1)
			if !ok {
				return nil, false
			}
			s.i += 4
			if utf16.IsSurrogate(r) {
				r2, ok2 := rune(0), false
				if s.i+6 < len(s.b) && s.b[s.i+1] == '\\' && s.b[s.i+2] == 'u' {
					r2, ok2 = s.hex4(s.i + 3)
				}
				if dec := utf16.DecodeRune(r, r2); ok2 && dec != utf8.RuneError {
					r = dec
					s.i += 6
				} else {
					r = utf8.RuneError
				}
			}
			s.tmp = utf8.AppendRune(s.tmp, r)
		default:
			return nil, false
		}
		s.i++
	}
	return nil, false
}

func (s *scanner) hex4(at int) (rune, bool) {
	if at+4 > len(s.b) {
		return 0, false
	}
	var r rune
	for _, c := range s.b[at : at+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// skip reads any JSON value.
func (s *scanner) skip(depth int) bool {
	s.ws()
	switch c := s.peek(); {
	case c == '{' || c == '[':
		if depth >= maxDepth {
			return false
		}
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		s.i++
		if s.consume(closer) {
			return true
		}
		for {
			if c == '{' {
				s.ws()
				if _, ok := s.str(); !ok || !s.consume(':') {
					return false
				}
			}
			if !s.skip(depth + 1) {
				return false
			}
			if s.consume(',') {
				continue
			}
			return s.consume(closer)
		}
	case c == '"':
		_, ok := s.str()
		return ok
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		return s.lit("null")
	}
	_, ok := s.number()
	return ok
}
