package web

import (
	"fmt"
	"html/template"
	"regexp"
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
