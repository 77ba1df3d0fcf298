package instrument_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/sunpath/sunpath/internal/instrument"
	"github.com/sunpath/sunpath/internal/screening"
)

func TestScoreLines(t *testing.T) {
	cat := loadShipped(t)
	in := strings.Join([]string{
		`{"answers": {"phq9_1": 1, "phq9_2": 2, "phq9_3": 3, "phq9_4": 0, "phq9_5": 1, "phq9_6": 2, "phq9_7": 3, "phq9_8": 0, "phq9_9": 1}}`,
		`{"answers": {"phq9_1": 4, "phq9_2": "x", "phq9_x": 1}}`,
		``,
		`   `,
		`not json`,
		`{"answers": {"phq9_1": 0, "phq9_2": 0, "phq9_3": 0, "phq9_4": 0, "phq9_5": 0, "phq9_6": 0, "phq9_7": 0, "phq9_8": 0, "phq9_9": 0}, "language": "en"}` + "\r",
		`{"answers": {"phq9_1": 0, "phq9_2": 0, "phq9_3": 0, "phq9_4": 0, "phq9_5": 0, "phq9_6": 0, "phq9_7": 0, "phq9_8": 0, "phq9_9": 0}}`,
		`{"answers": {"phq9_1": 0, "phq9_2": 0, "phq9_3": 0, "phq9_4": 0, "phq9_5": 0, "phq9_6": 0, "phq9_7": 0, "phq9_8": 0, "phq9_9": "CANARY-7f3a"}}`,
	}, "\n") // no newline after the last line
	var out bytes.Buffer
	if err := instrument.ScoreLines(cat, "phq9", "zh-CN", strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "CANARY") {
		t.Error("an answer value reached the output")
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 6 {
		t.Fatalf("got %d output lines, want 6 (one per non-blank input line):\n%s", len(lines), out.String())
	}
	type line struct {
		Total    *int   `json:"total"`
		Severity string `json:"severity"`
		Language string `json:"language"`
		Error    *struct {
			Status int `json:"status"`
			Line   int `json:"line"`
			Errors []struct {
				Item, Field, Detail string
			} `json:"errors"`
		} `json:"error"`
	}
	var got []line
	for _, l := range lines {
		var v line
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("output line is not JSON: %q", l)
		}
		got = append(got, v)
	}
	if got[0].Total == nil || *got[0].Total != 13 || got[0].Severity != "moderate" {
		t.Errorf("line 1 = %s", lines[0])
	}
	if e := got[1].Error; e == nil || e.Status != 422 || e.Line != 2 || len(e.Errors) != 10 {
		t.Errorf("line 2 = %s", lines[1])
	}
	if e := got[2].Error; e == nil || e.Status != 400 || e.Line != 5 {
		t.Errorf("line 5 = %s", lines[2])
	}
	if got[3].Language != "en" || got[4].Language != "zh-CN" {
		t.Errorf("languages %q %q: a line's language wins over --lang", got[3].Language, got[4].Language)
	}
	if got[5].Error == nil || got[5].Error.Line != 8 {
		t.Errorf("line 8 = %s", lines[5])
	}
}

func TestScoreLinesLongLine(t *testing.T) {
	cat := loadShipped(t)
	long := `{"answers": {"phq9_1": 0}, "x": "` + strings.Repeat("a", instrument.MaxLineBytes) + `"}`
	ok := `{"answers": {"asq_1": 0, "asq_2": 0, "asq_3": 0, "asq_4": 0}}`
	var out bytes.Buffer
	if err := instrument.ScoreLines(cat, "asq", "", strings.NewReader(long+"\n"+ok+"\n"), &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"line too long"`) || !strings.Contains(lines[1], `"result":"negative"`) {
		t.Errorf("output:\n%.300s", out.String())
	}
}

func TestScoreLinesErrors(t *testing.T) {
	cat := loadShipped(t)
	if err := instrument.ScoreLines(cat, "nope", "", strings.NewReader(""), io.Discard); !errors.Is(err, instrument.ErrNotFound) {
		t.Errorf("unknown instrument: %v", err)
	}
	if err := instrument.ScoreLines(cat, "phq9", "fr", strings.NewReader(""), io.Discard); err == nil {
		t.Error("unknown language accepted")
	}
}

// TestScoreLinesFlushesPerBatch: a caller that writes one line and waits
// sees its result without closing the input.
func TestScoreLinesFlushesPerBatch(t *testing.T) {
	cat := loadShipped(t)
	pr, pw := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- instrument.ScoreLines(cat, "asq", "", pr, outW); outW.Close() }()
	go fmt.Fprintln(pw, `{"answers": {"asq_1": 0, "asq_2": 0, "asq_3": 0, "asq_4": 0}}`)
	got := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(outR).ReadString('\n')
		got <- l
	}()
	select {
	case l := <-got:
		if !strings.Contains(l, "negative") {
			t.Errorf("got %q", l)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no output before the input was closed")
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestWriteListAndShow(t *testing.T) {
	cat := loadShipped(t)
	var table, js bytes.Buffer
	if err := instrument.WriteList(cat, &table, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "phq9") || !strings.Contains(table.String(), "overlay: none") {
		t.Errorf("table:\n%s", table.String())
	}
	if err := instrument.WriteList(cat, &js, true); err != nil {
		t.Fatal(err)
	}
	var list []instrument.Summary
	if err := json.Unmarshal(js.Bytes(), &list); err != nil || len(list) != 7 || list[0].ID != "asq" {
		t.Errorf("list --json: %v %v", err, list)
	}

	var show bytes.Buffer
	if err := instrument.WriteShow(cat, "phq9", &show); err != nil {
		t.Fatal(err)
	}
	var def struct {
		ID          string `json:"id"`
		ContentHash string `json:"content_hash"`
		Items       []struct {
			ID      string            `json:"id"`
			Text    map[string]string `json:"text"`
			Options []struct {
				Value int               `json:"value"`
				Label map[string]string `json:"label"`
			} `json:"options"`
		} `json:"items"`
	}
	if err := json.Unmarshal(show.Bytes(), &def); err != nil {
		t.Fatal(err)
	}
	if def.ID != "phq9" || len(def.Items) != 10 || def.Items[8].ID != "phq9_9" || def.ContentHash == "" {
		t.Fatalf("show: %+v", def)
	}
	for i, it := range def.Items[:9] {
		if it.ID != fmt.Sprintf("phq9_%d", i+1) || it.Text["zh-CN"] == "" || it.Text["en"] == "" || len(it.Options) != 4 {
			t.Errorf("item %d: %+v", i, it)
		}
		for v, o := range it.Options {
			if o.Value != v || o.Label["zh-CN"] == "" {
				t.Errorf("item %d option %d: %+v", i, v, o)
			}
		}
	}
	if err := instrument.WriteShow(cat, "nope", io.Discard); !errors.Is(err, instrument.ErrNotFound) {
		t.Errorf("show unknown: %v", err)
	}
}

func TestAnswersNeverPrint(t *testing.T) {
	a := screening.Answers{"phq9_9": screening.Code("CANARY-7f3a")}
	for _, s := range []string{fmt.Sprint(a), fmt.Sprintf("%v %+v %#v", a, a, a), fmt.Sprint(a["phq9_9"])} {
		if strings.Contains(s, "CANARY") {
			t.Errorf("answers printed: %s", s)
		}
	}
}

func phq9Lines(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	for range n {
		b.WriteString(`{"answers": {`)
		for i := 1; i <= 9; i++ {
			if i > 1 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, `"phq9_%d": %d`, i, r.IntN(4))
		}
		b.WriteString("}}\n")
	}
	return b.Bytes()
}

// BenchmarkScorePHQ9 is one in-process PHQ-9 score (target: at most 2 µs).
func BenchmarkScorePHQ9(b *testing.B) {
	cat := loadShipped(b)
	d, _ := cat.Get("phq9")
	a := screening.Answers{}
	for i := 1; i <= 9; i++ {
		a[fmt.Sprintf("phq9_%d", i)] = screening.Int(i % 4)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Score(a, screening.ScoreOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScoreJSONPHQ9 is one PHQ-9 submission decoded and scored.
func BenchmarkScoreJSONPHQ9(b *testing.B) {
	cat := loadShipped(b)
	d, _ := cat.Get("phq9")
	line := bytes.TrimSpace(phq9Lines(1))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.ScoreJSON(line, screening.ScoreOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScoreLines streams PHQ-9 JSON Lines through ScoreLines and
// reports lines/s (target: at least 100,000 on two cores).
func BenchmarkScoreLines(b *testing.B) {
	cat := loadShipped(b)
	const n = 20000
	input := phq9Lines(n)
	b.SetBytes(int64(len(input)))
	lines := 0
	for b.Loop() {
		if err := instrument.ScoreLines(cat, "phq9", "", bytes.NewReader(input), io.Discard); err != nil {
			b.Fatal(err)
		}
		lines += n
	}
	b.ReportMetric(float64(lines)/b.Elapsed().Seconds(), "lines/s")
}
