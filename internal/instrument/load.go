// Package instrument loads Sunpath's instrument definitions from an fs.FS,
// checks each against the JSON Schema and the engine's own rules, applies an
// operator's text overlay, and serves them as a Catalog. It also holds the
// CLI logic (list, show, and the fast JSON Lines scoring stream).
package instrument

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/sunpath/sunpath/internal/screening"
)

// Schema file names in the definitions directory; they are not definitions.
const (
	SchemaFile        = "schema.json"
	OverlaySchemaFile = "overlay.schema.json"
)

// ErrNotFound is returned for an instrument id that the catalog lacks.
var ErrNotFound = errors.New("instrument not found")

// Catalog holds the loaded definitions. It is immutable and safe for
// concurrent use.
type Catalog struct {
	defs map[string]*screening.Definition
	list []*screening.Definition
}

// Get returns the definition with the id.
func (c *Catalog) Get(id string) (*screening.Definition, bool) {
	d, ok := c.defs[id]
	return d, ok
}

// List returns every definition, sorted by id.
func (c *Catalog) List() []*screening.Definition { return slices.Clone(c.list) }

// Load reads every *.json definition in fsys (but the schema files),
// validates it against schema.json (which fsys must hold) and against the
// engine's rules, applies the text overlay files found in overlay (nil for
// none), and computes each definition's content hash.
//
// A bad file fails the whole load: the error names the file and the field,
// for example "phq9.json: items[3].options[1].value: duplicate value", one
// problem per line. Startup must stop on it.
//
// Overlay files are named <instrument id>.<language>.json and follow
// overlay.schema.json; other files in the overlay directory (a README) are
// ignored. An overlay can only add or replace text, never scoring rules.
func Load(fsys fs.FS, overlay fs.FS) (*Catalog, error) {
	defSchema, err := compileSchema(fsys, SchemaFile)
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(fsys, "*.json")
	if err != nil {
		return nil, fmt.Errorf("list definitions: %w", err)
	}
	type loaded struct {
		spec     screening.Spec
		raw      []byte
		overlays [][]byte
	}
	var problems []string
	specs := map[string]*loaded{}
	var ids []string
	for _, name := range names {
		if name == SchemaFile || strings.HasSuffix(name, ".schema.json") {
			continue
		}
		raw, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		spec, errs := decodeChecked[screening.Spec](raw, defSchema)
		if len(errs) > 0 {
			for _, e := range errs {
				problems = append(problems, name+": "+e)
			}
			continue
		}
		if want := strings.TrimSuffix(name, ".json"); spec.ID != want {
			problems = append(problems, fmt.Sprintf("%s: id: must be %q, the file name without .json", name, want))
			continue
		}
		specs[spec.ID] = &loaded{spec: spec, raw: raw}
		ids = append(ids, spec.ID)
	}
	if len(ids) == 0 && len(problems) == 0 {
		return nil, fmt.Errorf("no instrument definitions found: %w", screening.ErrInvalidDefinition)
	}

	if overlay != nil {
		ovSchema, err := compileSchema(fsys, OverlaySchemaFile)
		if err != nil {
			return nil, err
		}
		onames, err := fs.Glob(overlay, "*.json")
		if err != nil {
			return nil, fmt.Errorf("list overlays: %w", err)
		}
		for _, name := range onames {
			raw, err := fs.ReadFile(overlay, name)
			if err != nil {
				return nil, fmt.Errorf("overlay %s: %w", name, err)
			}
			ov, errs := decodeChecked[Overlay](raw, ovSchema)
			if len(errs) == 0 {
				l := specs[ov.Instrument]
				if l == nil {
					errs = append(errs, "instrument: no such instrument")
				} else {
					errs = ov.apply(name, &l.spec)
					l.overlays = append(l.overlays, raw)
				}
			}
			for _, e := range errs {
				problems = append(problems, "overlay "+name+": "+e)
			}
		}
	}

	cat := &Catalog{defs: map[string]*screening.Definition{}}
	slices.Sort(ids)
	for _, id := range ids {
		l := specs[id]
		hash, err := contentHash(l.raw, l.overlays)
		if err != nil {
			return nil, fmt.Errorf("%s.json: %w", id, err)
		}
		d, err := screening.NewDefinition(l.spec, hash)
		var se *screening.SpecError
		switch {
		case errors.As(err, &se):
			for _, p := range se.Problems {
				problems = append(problems, fmt.Sprintf("%s.json: %s: %s", id, p.Path, p.Detail))
			}
			continue
		case err != nil:
			return nil, fmt.Errorf("%s.json: %w", id, err)
		}
		cat.defs[id] = d
		cat.list = append(cat.list, d)
	}
	if len(problems) > 0 {
		return nil, &LoadError{Problems: problems}
	}
	return cat, nil
}

// LoadError lists every problem found while loading, each naming its file
// and field.
type LoadError struct {
	Problems []string
}

// Error lists the problems, one per line.
func (e *LoadError) Error() string {
	return "invalid instrument definitions:\n" + strings.Join(e.Problems, "\n")
}

// Unwrap makes errors.Is(err, screening.ErrInvalidDefinition) hold.
func (e *LoadError) Unwrap() error { return screening.ErrInvalidDefinition }

func compileSchema(fsys fs.FS, name string) (*jsonschema.Schema, error) {
	raw, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	c := jsonschema.NewCompiler()
	url := "file:///" + name
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	sch, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return sch, nil
}

// decodeChecked validates raw against the schema and then decodes it
// strictly into T. The problems name fields as paths like items[3].id.
func decodeChecked[T any](raw []byte, sch *jsonschema.Schema) (T, []string) {
	var out T
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return out, []string{"not valid JSON: " + err.Error()}
	}
	if err := sch.Validate(doc); err != nil {
		var ve *jsonschema.ValidationError
		if !errors.As(err, &ve) {
			return out, []string{err.Error()}
		}
		return out, schemaProblems(ve)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		return out, []string{err.Error()}
	}
	return out, nil
}

// schemaProblems flattens a validation error into "path: message" lines,
// deepest first, without repeats.
func schemaProblems(ve *jsonschema.ValidationError) []string {
	type leaf struct{ loc, msg string }
	var leaves []leaf
	for _, line := range strings.Split(ve.Error(), "\n") {
		m := schemaLine.FindStringSubmatch(line)
		if m == nil || m[2] == "validation failed" {
			continue
		}
		leaves = append(leaves, leaf{m[1], m[2]})
	}
	slices.SortStableFunc(leaves, func(a, b leaf) int {
		return strings.Count(b.loc, "/") - strings.Count(a.loc, "/")
	})
	var lines []string
	for _, l := range leaves {
		line := pointerPath(l.loc) + ": " + l.msg
		if !slices.Contains(lines, line) {
			lines = append(lines, line)
		}
		if len(lines) == 10 {
			break
		}
	}
	if len(lines) == 0 {
		lines = append(lines, "(root): "+ve.Error())
	}
	return lines
}

// schemaLine matches one cause in a jsonschema error: "- at '/items/0': ...".
var schemaLine = regexp.MustCompile(`^\s*- at '([^']*)': (.*)$`)

// pointerPath turns a JSON pointer (/items/3/id) into a field path
// (items[3].id).
func pointerPath(ptr string) string {
	if ptr == "" {
		return "(root)"
	}
	var b strings.Builder
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		if _, err := strconv.Atoi(tok); err == nil {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

// contentHash is "sha256:" and the hex SHA-256 of the canonical form of the
// definition file, followed (for each overlay file applied, in file-name
// order) by a newline and the overlay's canonical form. The canonical form
// is the JSON value re-encoded with object keys sorted, no insignificant
// whitespace, numbers exactly as written and strings without HTML escaping,
// so reformatting a file does not change its hash, while any change to its
// content does.
func contentHash(def []byte, overlays [][]byte) (string, error) {
	h := sha256.New()
	c, err := Canonical(def)
	if err != nil {
		return "", err
	}
	h.Write(c)
	for _, o := range overlays {
		c, err := Canonical(o)
		if err != nil {
			return "", err
		}
		h.Write([]byte{'\n'})
		h.Write(c)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// Canonical returns the canonical form of a JSON document (see Load).
func Canonical(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("canonical form: %w", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("canonical form: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// Overlay is an operator's text for one instrument in one language; see
// instruments/overlay.schema.json and instruments/README.md.
type Overlay struct {
	Schema       string                       `json:"$schema,omitempty"`
	Instrument   string                       `json:"instrument"`
	Version      string                       `json:"version"`
	Language     string                       `json:"language"`
	Source       string                       `json:"source"`
	Title        string                       `json:"title,omitempty"`
	Instructions string                       `json:"instructions,omitempty"`
	Items        map[string]string            `json:"items"`
	OptionLabels map[string]string            `json:"option_labels,omitempty"`
	ItemOptions  map[string]map[string]string `json:"item_options,omitempty"`
}

// apply checks the overlay against the definition and writes its text into
// spec. It must give text for every item.
func (o *Overlay) apply(file string, spec *screening.Spec) []string {
	var errs []string
	if want := spec.ID + "." + o.Language + ".json"; path.Base(file) != want {
		errs = append(errs, fmt.Sprintf("(file name): must be %s for this instrument and language", want))
	}
	if o.Version != spec.Version {
		errs = append(errs, fmt.Sprintf("version: must be %s, the definition's version; check the overlay against the new version", spec.Version))
	}
	if !slices.Contains(spec.Languages, o.Language) {
		errs = append(errs, "language: the instrument is not given in this language")
	}
	index := map[string]int{}
	for i, it := range spec.Items {
		index[it.ID] = i
	}
	for id := range o.Items {
		if _, ok := index[id]; !ok {
			errs = append(errs, fmt.Sprintf("items.%s: no such item", id))
		}
	}
	for _, it := range spec.Items {
		if _, ok := o.Items[it.ID]; !ok {
			errs = append(errs, fmt.Sprintf("items.%s: missing: an overlay must give text for every item", it.ID))
		}
	}
	for id, labels := range o.ItemOptions {
		i, ok := index[id]
		if !ok {
			errs = append(errs, fmt.Sprintf("item_options.%s: no such item", id))
			continue
		}
		for v := range labels {
			if !hasValue(spec, spec.Items[i], v) {
				errs = append(errs, fmt.Sprintf("item_options.%s.%s: the item has no option with this value", id, v))
			}
		}
	}
	for v := range o.OptionLabels {
		found := false
		for _, it := range spec.Items {
			found = found || hasValue(spec, it, v)
		}
		if !found {
			errs = append(errs, fmt.Sprintf("option_labels.%s: no item has an option with this value", v))
		}
	}
	if len(errs) > 0 {
		return errs
	}
	set := func(t *screening.Text, s string) {
		if s == "" {
			return
		}
		*t = copyText(*t)
		(*t)[o.Language] = s
	}
	set(&spec.Title, o.Title)
	set(&spec.Instructions, o.Instructions)
	set(&spec.Source.Translations, o.Source)
	// Option sets are shared; the overlay's labels go to inline copies.
	for i := range spec.Items {
		it := &spec.Items[i]
		set(&it.Text, o.Items[it.ID])
		opts := it.Options
		if it.OptionSet != "" {
			opts = slices.Clone(spec.OptionSets[it.OptionSet])
		}
		changed := false
		for j := range opts {
			v := strconv.Itoa(opts[j].Value)
			label := o.OptionLabels[v]
			if l, ok := o.ItemOptions[it.ID][v]; ok {
				label = l
			}
			if label != "" {
				set(&opts[j].Label, label)
				changed = true
			}
		}
		if changed && it.OptionSet != "" {
			it.OptionSet, it.Options = "", opts
		}
	}
	return nil
}

func hasValue(spec *screening.Spec, it screening.ItemSpec, v string) bool {
	opts := it.Options
	if it.OptionSet != "" {
		opts = spec.OptionSets[it.OptionSet]
	}
	for _, o := range opts {
		if strconv.Itoa(o.Value) == v {
			return true
		}
	}
	return false
}

// copyText returns a copy of t, so that an overlay never writes into text that
// another item shares.
func copyText(t screening.Text) screening.Text {
	out := make(screening.Text, len(t)+1)
	for k, v := range t {
		out[k] = v
	}
	return out
}
