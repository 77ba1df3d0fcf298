package instrument_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/sunpath/sunpath/instruments"
	"github.com/sunpath/sunpath/internal/instrument"
	"github.com/sunpath/sunpath/internal/screening"
)

func TestShippedDefinitions(t *testing.T) {
	cat := loadShipped(t)
	want := []string{"asq", "audit", "gad7", "k10", "pcl5", "phq9", "scl90"}
	var got []string
	for _, d := range cat.List() {
		got = append(got, d.ID)
		if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(d.ContentHash) {
			t.Errorf("%s: content hash %q", d.ID, d.ContentHash)
		}
		for _, lang := range []string{"zh-CN", "en"} {
			if d.Title[lang] == "" {
				t.Errorf("%s: no %s title", d.ID, lang)
			}
			complete := d.TextSource == screening.TextShipped
			if d.TextComplete[lang] != complete {
				t.Errorf("%s: text complete in %s = %v, want %v", d.ID, lang, d.TextComplete[lang], complete)
			}
			if complete && d.Source.Translations[lang] == "" {
				t.Errorf("%s: no citation for the %s text", d.ID, lang)
			}
		}
		if d.Scoring.Missing.Citation == "" || d.Source.Citation == "" || d.Licence.Terms == "" {
			t.Errorf("%s: citation or licence missing", d.ID)
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("List() = %v, want %v", got, want)
	}
}

// TestShippedFilesMatchSchema validates every shipped definition against
// schema.json directly, apart from Load.
func TestShippedFilesMatchSchema(t *testing.T) {
	c := jsonschema.NewCompiler()
	raw, err := fs.ReadFile(instruments.FS, "schema.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddResource("schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("schema.json")
	if err != nil {
		t.Fatal(err)
	}
	names, _ := fs.Glob(instruments.FS, "*.json")
	n := 0
	for _, name := range names {
		if strings.HasSuffix(name, "schema.json") {
			continue
		}
		n++
		raw, _ := fs.ReadFile(instruments.FS, name)
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := sch.Validate(inst); err != nil {
			t.Errorf("%s does not match schema.json: %v", name, err)
		}
	}
	if n != 7 {
		t.Errorf("validated %d definitions, want 7", n)
	}
}

// withFile returns a copy of the shipped files with one file's JSON changed.
func withFile(t *testing.T, name string, mutate func(m map[string]any)) fstest.MapFS {
	t.Helper()
	out := fstest.MapFS{}
	for _, f := range []string{"schema.json", "overlay.schema.json", "phq9.json", "pcl5.json", "asq.json"} {
		raw, err := fs.ReadFile(instruments.FS, f)
		if err != nil {
			t.Fatal(err)
		}
		out[f] = &fstest.MapFile{Data: raw}
	}
	raw, err := fs.ReadFile(instruments.FS, name)
	if err != nil {
		raw = []byte("{}")
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	mutate(m)
	data, _ := json.Marshal(m)
	out[name] = &fstest.MapFile{Data: data}
	return out
}

func at(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			v = v.(map[string]any)[k]
		case int:
			v = v.([]any)[k]
		}
	}
	return v
}

func TestLoadRejectsBadDefinitions(t *testing.T) {
	tests := []struct {
		name, file string
		mutate     func(m map[string]any)
		want       []string
	}{
		{"duplicate option value", "phq9.json", func(m map[string]any) {
			it := at(m, "items", 3).(map[string]any)
			delete(it, "option_set")
			it["options"] = []any{
				map[string]any{"value": 0, "label": map[string]any{"zh-CN": "a", "en": "a"}},
				map[string]any{"value": 0, "label": map[string]any{"zh-CN": "b", "en": "b"}},
			}
		}, []string{"phq9.json: items[3].options[1].value: duplicate value"}},
		{"band gap", "phq9.json", func(m map[string]any) {
			at(m, "scoring", "bands", 0, "bands", 1).(map[string]any)["min"] = 6
		}, []string{"phq9.json: scoring.bands[0].bands[1].min: must be 5"}},
		{"band short of the maximum", "phq9.json", func(m map[string]any) {
			at(m, "scoring", "bands", 0, "bands", 4).(map[string]any)["max"] = 26
		}, []string{"phq9.json: scoring.bands[0].bands[4].max: must be 27"}},
		{"band overlap", "phq9.json", func(m map[string]any) {
			at(m, "scoring", "bands", 0, "bands", 2).(map[string]any)["min"] = 9
		}, []string{"phq9.json: scoring.bands[0].bands[2].min: must be 10"}},
		{"subscale unknown item", "pcl5.json", func(m map[string]any) {
			at(m, "scoring", "subscales", 0).(map[string]any)["items"] = []any{"pcl5_99"}
		}, []string{"pcl5.json: scoring.subscales[0].items[0]: no such item"}},
		{"unknown field", "phq9.json", func(m map[string]any) {
			at(m, "items", 0).(map[string]any)["valu"] = 1
		}, []string{"phq9.json: items[0]: "}},
		{"id is not the file name", "phq9.json", func(m map[string]any) { m["id"] = "phq8" },
			[]string{`phq9.json: id: must be "phq9"`}},
		{"safety item may be missing", "phq9.json", func(m map[string]any) {
			at(m, "scoring", "missing").(map[string]any)["required"] = []any{}
		}, []string{"phq9.json: scoring.flags[0].when: reads item phq9_9"}},
		{"missing English item text", "phq9.json", func(m map[string]any) {
			delete(at(m, "items", 2, "text").(map[string]any), "en")
		}, []string{"phq9.json: items[2].text.en: missing text"}},
		{"flag level", "phq9.json", func(m map[string]any) {
			at(m, "scoring", "flags", 0).(map[string]any)["level"] = "panic"
		}, []string{"phq9.json: scoring.flags[0].level: "}},
		{"condition on unknown item", "phq9.json", func(m map[string]any) {
			at(m, "scoring", "flags", 1, "when").(map[string]any)["score"] = "phq9_99"
		}, []string{"phq9.json: scoring.flags[1].when.score: no such item or subscale"}},
		{"duplicate item id", "phq9.json", func(m map[string]any) {
			at(m, "items", 1).(map[string]any)["id"] = "phq9_1"
		}, []string{"phq9.json: items[1].id: duplicate id"}},
		{"skip logic reads a later item", "asq.json", func(m map[string]any) {
			at(m, "items", 4, "ask_when").(map[string]any)["items"] = []any{"asq_5"}
		}, []string{"asq.json: items[4].ask_when.items[0]: skip logic may refer to earlier items only"}},
		{"two problems at once", "phq9.json", func(m map[string]any) {
			at(m, "scoring", "bands", 0, "bands", 1).(map[string]any)["min"] = 6
			at(m, "items", 1).(map[string]any)["id"] = "phq9_1"
		}, []string{"phq9.json: items[1].id: duplicate id", "phq9.json: scoring.bands[0].bands[1].min: must be 5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := instrument.Load(withFile(t, tt.file, tt.mutate), nil)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if !errors.Is(err, screening.ErrInvalidDefinition) {
				t.Errorf("error %v does not wrap ErrInvalidDefinition", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not name %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestLoadRejectsBrokenFiles(t *testing.T) {
	base := withFile(t, "phq9.json", func(map[string]any) {})
	notJSON := fstest.MapFS{}
	for k, v := range base {
		notJSON[k] = v
	}
	notJSON["phq9.json"] = &fstest.MapFile{Data: []byte(`{"id": "phq9",`)}
	if _, err := instrument.Load(notJSON, nil); err == nil || !strings.Contains(err.Error(), "phq9.json: not valid JSON") {
		t.Errorf("Load(broken JSON) = %v", err)
	}
	noSchema := fstest.MapFS{"phq9.json": base["phq9.json"]}
	if _, err := instrument.Load(noSchema, nil); err == nil || !strings.Contains(err.Error(), "schema.json") {
		t.Errorf("Load(no schema) = %v", err)
	}
}

func TestContentHash(t *testing.T) {
	raw, _ := fs.ReadFile(instruments.FS, "phq9.json")
	var v any
	json.Unmarshal(raw, &v)
	compact, _ := json.Marshal(v)
	reformatted := withFile(t, "phq9.json", func(map[string]any) {})
	reformatted["phq9.json"] = &fstest.MapFile{Data: compact}
	a := loadShipped(t)
	b, err := instrument.Load(reformatted, nil)
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.Get("phq9")
	db, _ := b.Get("phq9")
	if da.ContentHash != db.ContentHash {
		t.Errorf("reformatting changed the hash: %s vs %s", da.ContentHash, db.ContentHash)
	}
	changed, err := instrument.Load(withFile(t, "phq9.json", func(m map[string]any) {
		at(m, "items", 0, "text").(map[string]any)["en"] = "Little interest or pleasure in doing things."
	}), nil)
	if err != nil {
		t.Fatal(err)
	}
	dc, _ := changed.Get("phq9")
	if dc.ContentHash == da.ContentHash {
		t.Error("changing an item's text did not change the hash")
	}
	res, _ := da.Score(answersForTotal(t, da, 3), screening.ScoreOptions{})
	if res.ContentHash != da.ContentHash || res.EngineVersion != screening.EngineVersion {
		t.Errorf("result carries hash %q engine %q", res.ContentHash, res.EngineVersion)
	}
}

func scl90Overlay(lang string, mutate func(m map[string]any)) fstest.MapFS {
	items := map[string]any{}
	for i := 1; i <= 90; i++ {
		items[fmt.Sprintf("scl90_%d", i)] = fmt.Sprintf("operator text %d", i)
	}
	m := map[string]any{
		"instrument": "scl90", "version": "1.0.0", "language": lang,
		"source":        "test overlay: placeholder text, not the licensed text",
		"instructions":  "test instructions",
		"items":         items,
		"option_labels": map[string]any{"1": "none", "5": "extreme"},
	}
	if mutate != nil {
		mutate(m)
	}
	data, _ := json.Marshal(m)
	return fstest.MapFS{
		"scl90." + lang + ".json": &fstest.MapFile{Data: data},
		"README.md":               &fstest.MapFile{Data: []byte("ignored")},
	}
}

func TestOverlay(t *testing.T) {
	plain := loadShipped(t)
	d0, _ := plain.Get("scl90")
	if it, _ := d0.Item("scl90_1"); it.Text["en"] != "" {
		t.Fatalf("scl90 ships text %q; it must not", it.Text["en"])
	}
	if _, err := d0.Score(answersForTotal(t, d0, 90), screening.ScoreOptions{}); err != nil {
		t.Fatalf("scl90 without overlay cannot be scored by item id: %v", err)
	}

	cat, err := instrument.Load(instruments.FS, scl90Overlay("en", nil))
	if err != nil {
		t.Fatal(err)
	}
	d, _ := cat.Get("scl90")
	if !d.TextComplete["en"] || d.TextComplete["zh-CN"] {
		t.Errorf("TextComplete = %v, want en only", d.TextComplete)
	}
	it, _ := d.Item("scl90_90")
	if it.Text["en"] != "operator text 90" || it.Options[0].Label["en"] != "none" || it.Options[4].Label["en"] != "extreme" {
		t.Errorf("overlay not applied: %q %v", it.Text["en"], it.Options)
	}
	if it.Options[1].Label["en"] != "A little bit" {
		t.Errorf("a label the overlay does not give must stay: %v", it.Options[1].Label)
	}
	if d.ContentHash == d0.ContentHash {
		t.Error("an overlay must change the content hash")
	}
	var show bytes.Buffer
	if err := instrument.WriteShow(cat, "scl90", &show); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(show.String(), "operator text 42") {
		t.Error("show does not include the overlay text")
	}
	// The shared option set of the shipped definition is untouched.
	d0again, _ := plain.Get("scl90")
	if it, _ := d0again.Item("scl90_2"); it.Options[0].Label["en"] != "Not at all" {
		t.Errorf("overlay leaked into another catalog: %v", it.Options[0].Label)
	}

	bad := []struct {
		name string
		fsys fstest.MapFS
		want string
	}{
		{"unknown instrument", fstest.MapFS{"nope.en.json": scl90Overlay("en", func(m map[string]any) { m["instrument"] = "nope" })["scl90.en.json"]},
			"overlay nope.en.json: instrument: no such instrument"},
		{"version", scl90Overlay("en", func(m map[string]any) { m["version"] = "2.0.0" }), "overlay scl90.en.json: version: must be 1.0.0"},
		{"missing item", scl90Overlay("en", func(m map[string]any) { delete(m["items"].(map[string]any), "scl90_7") }),
			"overlay scl90.en.json: items.scl90_7: missing"},
		{"unknown item", scl90Overlay("en", func(m map[string]any) { m["items"].(map[string]any)["scl90_91"] = "x" }),
			"overlay scl90.en.json: items.scl90_91: no such item"},
		{"language", scl90Overlay("fr", nil), "overlay scl90.fr.json: language: the instrument is not given in this language"},
		{"option value", scl90Overlay("en", func(m map[string]any) { m["option_labels"] = map[string]any{"0": "zero"} }),
			"overlay scl90.en.json: option_labels.0: no item has an option with this value"},
		{"schema", scl90Overlay("en", func(m map[string]any) { m["scoring"] = "sum" }), "overlay scl90.en.json: (root): "},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := instrument.Load(instruments.FS, tt.fsys)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load = %v, want it to name %q", err, tt.want)
			}
		})
	}
}

// TestOverlayReplacesShippedText: an operator may swap a working
// translation for a validated one.
func TestOverlayReplacesShippedText(t *testing.T) {
	items := map[string]any{}
	for i := 1; i <= 10; i++ {
		items[fmt.Sprintf("k10_%d", i)] = fmt.Sprintf("validated %d", i)
	}
	data, _ := json.Marshal(map[string]any{"instrument": "k10", "version": "1.0.0", "language": "zh-CN",
		"source": "validated Chinese K10 (test)", "items": items})
	cat, err := instrument.Load(instruments.FS, fstest.MapFS{"k10.zh-CN.json": {Data: data}})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := cat.Get("k10")
	if it, _ := d.Item("k10_3"); it.Text["zh-CN"] != "validated 3" || it.Text["en"] == "" {
		t.Errorf("text = %v", it.Text)
	}
	if d.Source.Translations["zh-CN"] != "validated Chinese K10 (test)" {
		t.Errorf("translation citation = %q", d.Source.Translations["zh-CN"])
	}
}
