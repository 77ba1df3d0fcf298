package instrument

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/sunpath/sunpath/internal/problem"
	"github.com/sunpath/sunpath/internal/screening"
)

// Summary is one line of `sunpath instruments list --json` and one element
// of GET /v1/instruments.
type Summary struct {
	ID           string          `json:"id"`
	Version      string          `json:"version"`
	Name         string          `json:"name"`
	Title        screening.Text  `json:"title"`
	Languages    []string        `json:"languages"`
	Items        int             `json:"items"`
	TextSource   string          `json:"text_source"`
	TextComplete map[string]bool `json:"text_complete"`
	Licence      string          `json:"licence"`
	ContentHash  string          `json:"content_hash"`
}

// Summaries lists the catalog, sorted by id.
func Summaries(cat *Catalog) []Summary {
	out := make([]Summary, 0, len(cat.list))
	for _, d := range cat.list {
		out = append(out, Summary{
			ID: d.ID, Version: d.Version, Name: d.Name, Title: d.Title,
			Languages: d.Languages, Items: len(d.Items), TextSource: d.TextSource,
			TextComplete: d.TextComplete, Licence: d.Licence.Name, ContentHash: d.ContentHash,
		})
	}
	return out
}

// WriteList writes the catalog for `sunpath instruments list`: a table, or
// with asJSON a JSON array of Summary.
func WriteList(cat *Catalog, w io.Writer, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		return enc.Encode(Summaries(cat))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tVERSION\tNAME\tITEMS\tLANGUAGES\tTEXT\tCONTENT HASH")
	for _, s := range Summaries(cat) {
		text := "shipped"
		if s.TextSource == screening.TextOverlay {
			var have []string
			for _, l := range s.Languages {
				if s.TextComplete[l] {
					have = append(have, l)
				}
			}
			text = "overlay: none (score by item id)"
			if len(have) > 0 {
				text = "overlay: " + strings.Join(have, ",")
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", s.ID, s.Version, s.Name, s.Items,
			strings.Join(s.Languages, ","), text, s.ContentHash)
	}
	return tw.Flush()
}

// WriteShow writes one definition as indented JSON, for `sunpath
// instruments show ID --json` (and GET /v1/instruments/{id}): its items in
// order, each with id, text per language and options with their value. It
// returns an error wrapping ErrNotFound for an unknown id.
func WriteShow(cat *Catalog, id string, w io.Writer) error {
	d, ok := cat.Get(id)
	if !ok {
		return fmt.Errorf("%q: %w", id, ErrNotFound)
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(d)
}

// MaxLineBytes bounds one input line of ScoreLines; a longer line is
// answered with an error line and skipped.
const MaxLineBytes = 1 << 20

// ScoreLines implements `sunpath score --instrument ID [--lang L]`. It reads
// JSON Lines from r, each a submission such as {"answers": {"phq9_1": 2, ...}}
// (see screening.Definition.ScoreJSON for the optional fields), and writes
// one line to w for each non-blank input line, in order: the Result, or
//
//	{"error": {"type", "title", "status", "detail", "line", "errors": [{"item"|"field", "detail"}]}}
//
// for a line that cannot be scored; scoring then continues. Blank lines are
// skipped. It returns an error wrapping ErrNotFound for an unknown
// instrument, an error for a language the instrument lacks, and read or
// write errors; never one for a bad line.
//
// It is written for throughput (no reflection on the hot path, buffered I/O)
// and flushes whenever it has read all the input available so far, so that
// an interactive caller sees each answer at once.
func ScoreLines(cat *Catalog, id, lang string, r io.Reader, w io.Writer) error {
	d, ok := cat.Get(id)
	if !ok {
		return fmt.Errorf("%q: %w", id, ErrNotFound)
	}
	if lang != "" && !slices.Contains(d.Languages, lang) {
		return fmt.Errorf("language %q: instrument %s is given in %s", lang, id, strings.Join(d.Languages, ", "))
	}
	opt := screening.ScoreOptions{Language: lang}
	br := bufio.NewReaderSize(r, 64<<10)
	bw := bufio.NewWriterSize(w, 64<<10)
	out := make([]byte, 0, 1024)
	var long []byte
	lineNo := 0
	for {
		if br.Buffered() == 0 {
			if err := bw.Flush(); err != nil {
				return err
			}
		}
		line, err := br.ReadSlice('\n')
		tooLong := false
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				if len(long) <= MaxLineBytes {
					long = append(long, line...)
				}
			}
			tooLong = len(long) > MaxLineBytes
			line = long
		}
		if len(line) > 0 {
			lineNo++
			out = out[:0]
			body := trimSpace(line)
			switch {
			case tooLong:
				out = appendLineError(out, lineNo, 400, "line too long",
					"line "+strconv.Itoa(lineNo)+" is longer than "+strconv.Itoa(MaxLineBytes)+" bytes", nil)
			case len(body) == 0:
				// A blank line gives no output.
			default:
				res, serr := d.ScoreJSON(body, opt)
				out = appendOutcome(out, lineNo, res, serr)
			}
			if len(out) > 0 {
				out = append(out, '\n')
				if _, werr := bw.Write(out); werr != nil {
					return werr
				}
			}
		}
		if err == io.EOF {
			return bw.Flush()
		}
		if err != nil {
			bw.Flush()
			return fmt.Errorf("read line %d: %w", lineNo+1, err)
		}
	}
}

func appendOutcome(out []byte, lineNo int, res screening.Result, err error) []byte {
	var inv *problem.Invalid
	switch {
	case err == nil:
		return res.AppendJSON(out)
	case errors.As(err, &inv):
		return appendLineError(out, lineNo, 422, "invalid answers",
			"line "+strconv.Itoa(lineNo)+" has invalid answers or fields; see errors", inv.Errors)
	case errors.Is(err, screening.ErrMalformed):
		return appendLineError(out, lineNo, 400, "malformed line",
			"line "+strconv.Itoa(lineNo)+" is not a JSON object", nil)
	}
	return appendLineError(out, lineNo, 500, "scoring failed", "line "+strconv.Itoa(lineNo)+" could not be scored", nil)
}

// appendLineError appends an RFC 9457-shaped problem under "error".
func appendLineError(b []byte, lineNo, status int, title, detail string, errs []problem.FieldError) []byte {
	p := lineProblem{
		Type: "about:blank", Title: title, Status: status, Detail: detail, Line: lineNo, Errors: errs,
	}
	enc, _ := json.Marshal(struct {
		Error lineProblem `json:"error"`
	}{p})
	return append(b, enc...)
}

type lineProblem struct {
	Type   string               `json:"type"`
	Title  string               `json:"title"`
	Status int                  `json:"status"`
	Detail string               `json:"detail"`
	Line   int                  `json:"line"`
	Errors []problem.FieldError `json:"errors,omitempty"`
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	return b
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
