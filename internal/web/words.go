package web

import (
	"fmt"

	"github.com/nicksnyder/go-i18n/v2/i18n"

	"github.com/sunpath/sunpath/internal/screening"
	"html/template"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// duration is humanDuration in the page's language: "15 分钟", "24 小时",
// "7 天", "1.5 小时".
func (rq *request) duration(d time.Duration) string {
	trim := func(v float64) string {
		return strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.1f", v), "0"), ".")
	}
	switch {
	case d < time.Minute:
		return rq.T("duration.lt1min")
	case d >= 48*time.Hour:
		return rq.T("duration.days", "N", trim(d.Hours()/24))
	case d >= 2*time.Hour:
		return rq.T("duration.hours", "N", trim(d.Hours()))
	}
	return rq.T("duration.minutes", "N", trim(d.Minutes()))
}

// phoneNumber matches what a crisis protocol gives as numbers to call:
// the three-digit emergency numbers (110, 119, 120, 122), hotlines of five
// or more digits (12356, 400-…), and numbers with an area code.
var phoneNumber = regexp.MustCompile(`(^|[^0-9])(1(?:10|19|20|22)|\d{3,4}-\d{7,8}|400-?\d{3}-?\d{4}|\d{5,})([^0-9]|$)`)

// protocolHTML keeps a configured protocol's line breaks and makes its phone
// numbers tel: links, so a counselor can call from a phone with one tap.
func protocolHTML(s string) template.HTML {
	esc := template.HTMLEscapeString(s)
	esc = phoneNumber.ReplaceAllStringFunc(esc, func(m string) string {
		p := phoneNumber.FindStringSubmatch(m)
		return p[1] + `<a href="tel:` + strings.ReplaceAll(p[2], "-", "") + `">` + p[2] + `</a>` + p[3]
	})
	return template.HTML(strings.ReplaceAll(esc, "\n", "<br>"))
}

// kioskInstructions are the instructions a person answering alone reads:
// the UI's own for instruments whose instructions address an interviewer
// (kiosk.instructions.<id>), else the instrument's.
func kioskInstructions(rq *request, def *screening.Definition, lang string) string {
	loc := i18n.NewLocalizer(rq.s.bundle, lang)
	id := "kiosk.instructions." + def.ID
	if t := translate(loc, id); t != id {
		return t
	}
	return def.Instructions[lang]
}

// suicideItem reports whether it asks about suicide: every item of an
// instrument with a critical flag, and any item a flag names (PHQ-9 item
// 9). No "skip" is offered under these.
func suicideItem(def *screening.Definition, it screening.Item) bool {
	for _, f := range def.Scoring.Flags {
		if f.Level == screening.LevelCritical || f.Item == it.ID {
			return true
		}
	}
	return false
}

// binZH words a model's value or bin in Chinese: "6 or more" is "6 及以上",
// "> 173.8 & ≤ 200" is "大于 173.8 且不超过 200", "[0.34, 0.60)" is
// "0.34 至 0.60"; true and false are 是 and 否.
func binZH(v string) string {
	switch v {
	case "true", "True":
		return "是"
	case "false", "False":
		return "否"
	}
	if m := interval.FindStringSubmatch(v); m != nil {
		return short(m[1]) + " 至 " + short(m[2])
	}
	r := strings.NewReplacer(" or more", " 及以上", " or less", " 及以下", " or fewer", " 及以下", " & ", " 且 ",
		"≤ ", "不超过 ", ">= ", "不少于 ", "≥ ", "不少于 ", "> ", "大于 ", "< ", "小于 ")
	return r.Replace(v)
}

// short rounds a bin edge to two decimals for reading ("0.341994" reads
// "0.34"); the model scores with the exact edges.
func short(n string) string {
	v, err := strconv.ParseFloat(n, 64)
	if err != nil {
		return n
	}
	return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
}

var interval = regexp.MustCompile(`^[\[(]\s*(-?[0-9.]+)\s*,\s*(-?[0-9.]+)\s*[\])]$`)
