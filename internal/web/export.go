package web

import (
	"fmt"
	"mime"
	"net/http"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/sunpath/sunpath/internal/casework"
)

// xlsxType is the media type of an Office Open XML workbook.
const xlsxType = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

// sheet is one worksheet as the downloads build it: a header row, then rows
// of values (string, int, float64 with a percent style, time.Time as a
// date), then notes under the table.
type sheet struct {
	Name   string
	Header []string
	Rows   [][]any
	Notes  []string
}

// sendWorkbook writes the sheets as one .xlsx download named file (a
// Chinese name is sent as RFC 6266 filename*). Headers are bold and frozen,
// the table has a filter, dates read yyyy-mm-dd and rates as percents.
func (rq *request) sendWorkbook(file string, sheets []sheet) {
	f := excelize.NewFile()
	defer f.Close()
	bold, err := f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}, Fill: excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"DDEBF7"}}})
	if err != nil {
		rq.fail(err)
		return
	}
	dateFmt := "yyyy-mm-dd"
	date, err := f.NewStyle(&excelize.Style{CustomNumFmt: &dateFmt})
	if err != nil {
		rq.fail(err)
		return
	}
	pct, err := f.NewStyle(&excelize.Style{NumFmt: 10}) // 0.00%
	if err != nil {
		rq.fail(err)
		return
	}
	for i, sh := range sheets {
		if i == 0 {
			if err := f.SetSheetName("Sheet1", sh.Name); err != nil {
				rq.fail(err)
				return
			}
		} else if _, err := f.NewSheet(sh.Name); err != nil {
			rq.fail(err)
			return
		}
		if err := writeSheet(f, sh, bold, date, pct); err != nil {
			rq.fail(err)
			return
		}
	}
	h := rq.w.Header()
	h.Set("Content-Type", xlsxType)
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": file + ".xlsx"}))
	rq.w.WriteHeader(http.StatusOK)
	if err := f.Write(rq.w); err != nil {
		rq.s.log.Warn("workbook write failed", "err", err)
	}
}

func writeSheet(f *excelize.File, sh sheet, bold, date, pct int) error {
	cell := func(col, row int) string { c, _ := excelize.CoordinatesToCellName(col, row); return c }
	for j, h := range sh.Header {
		if err := f.SetCellStr(sh.Name, cell(j+1, 1), h); err != nil {
			return err
		}
		width := float64(max(10, 2*len([]rune(h))+4))
		col, _ := excelize.ColumnNumberToName(j + 1)
		if err := f.SetColWidth(sh.Name, col, col, width); err != nil {
			return err
		}
	}
	if len(sh.Header) > 0 {
		if err := f.SetCellStyle(sh.Name, "A1", cell(len(sh.Header), 1), bold); err != nil {
			return err
		}
	}
	for i, row := range sh.Rows {
		for j, v := range row {
			c := cell(j+1, i+2)
			var err error
			switch x := v.(type) {
			case nil:
			case time.Time:
				if err = f.SetCellValue(sh.Name, c, x); err == nil {
					err = f.SetCellStyle(sh.Name, c, c, date)
				}
			case percent:
				if err = f.SetCellFloat(sh.Name, c, float64(x), 4, 64); err == nil {
					err = f.SetCellStyle(sh.Name, c, c, pct)
				}
			case string:
				// Strings are set as strings: a case number such as 0012 or
				// a name starting with = stays text, never a number or formula.
				err = f.SetCellStr(sh.Name, c, x)
			default:
				err = f.SetCellValue(sh.Name, c, x)
			}
			if err != nil {
				return err
			}
		}
	}
	if len(sh.Header) > 0 {
		if err := f.SetPanes(sh.Name, &excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
			return err
		}
		if len(sh.Rows) > 0 {
			if err := f.AutoFilter(sh.Name, "A1:"+cell(len(sh.Header), len(sh.Rows)+1), nil); err != nil {
				return err
			}
		}
	}
	for k, n := range sh.Notes {
		if err := f.SetCellStr(sh.Name, cell(1, len(sh.Rows)+3+k), n); err != nil {
			return err
		}
	}
	return nil
}

// percent is a share in [0, 1], written with a percent format.
type percent float64

// exportCaseload downloads the caseload (narrowed like the page by tier and
// overdue) as a workbook: names, case numbers, units by name, counselors,
// levels, open flags and the next reassessment. Names are personal data:
// the read is its own audited use case, scoped to the people the caller
// may see.
func (s *server) exportCaseload(rq *request) {
	q := rq.r.URL.Query()
	tier := q.Get("tier")
	if tier != "" && !casework.Tier(tier).Valid() {
		tier = ""
	}
	ex, err := s.d.Casework.ExportCaseload(rq.ctx, rq.call(), casework.SubjectQuery{Tier: tier, Overdue: q.Get("overdue") == "1"})
	if err != nil {
		rq.fail(err)
		return
	}
	sh := sheet{Name: rq.T("export.caseload.sheet"), Header: []string{rq.T("export.name"), rq.T("export.caseno"), rq.T("caseload.type"),
		rq.T("subject.unit"), rq.T("subject.counselor"), rq.T("caseload.tier"), rq.T("caseload.flags"), rq.T("caseload.nextdue"), rq.T("export.overdue")}}
	for _, x := range ex.Subjects {
		unit := ex.UnitNames[x.Unit]
		if unit == "" {
			unit = x.Unit
		}
		tier := "unassigned"
		if x.Tier != nil {
			tier = string(*x.Tier)
		}
		flags := rq.T("caseload.noflags")
		if x.OpenFlags > 0 {
			flags = rq.T("level."+string(x.TopFlagLevel)) + " · " + rq.T("caseload.openflags", "Count", x.OpenFlags)
		}
		var due any
		if x.NextDue != nil {
			due = dateOnly(x.NextDue.In(s.loc))
		}
		overdue := rq.T("export.no")
		if x.Overdue {
			overdue = rq.T("export.yes")
		}
		sh.Rows = append(sh.Rows, []any{x.DisplayName, x.ID, rq.T("supervision." + x.SupervisionType), unit, x.Counselor,
			rq.T("tier." + tier), flags, due, overdue})
	}
	if ex.Truncated {
		sh.Notes = append(sh.Notes, rq.T("export.truncated", "Count", casework.ExportLimit))
	}
	now := time.Now().In(s.loc)
	sh.Notes = append(sh.Notes, rq.T("export.generated", "At", now.Format("2006-01-02 15:04")))
	rq.sendWorkbook(rq.T("export.caseload.file")+"-"+now.Format("2006-01-02"), []sheet{sh})
}

// dateOnly is t's calendar day at midnight UTC, so that a spreadsheet shows
// the day the page shows whatever its own time zone.
func dateOnly(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// month is a reporting month: [From, To), To no later than now.
type month struct {
	Value    string // "2026-11", for the picker
	From, To time.Time
	Invalid  bool // the asked month was not a past or current month
}

// reportMonth reads ?month=YYYY-MM (default: this month) in the UI's time
// zone; a future or malformed month falls back to this month.
func (s *server) reportMonth(rq *request) month {
	now := time.Now().In(s.loc)
	start := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, s.loc)
	m := month{}
	if v := rq.r.URL.Query().Get("month"); v != "" {
		t, err := time.ParseInLocation("2006-01", v, s.loc)
		if err != nil || !t.Before(now) {
			m.Invalid = true
		} else {
			start = t
		}
	}
	m.Value, m.From, m.To = start.Format("2006-01"), start, start.AddDate(0, 1, 0)
	if m.To.After(now) {
		m.To = now
	}
	return m
}

// exportMonth downloads the monthly statistics of the caller's scope: per
// unit, by name, the people supervised, screened, flagged, helped and
// re-screened in the month, and how flags were answered against their
// deadlines. It holds figures only, no person's name.
func (s *server) exportMonth(rq *request) {
	m := s.reportMonth(rq)
	o, err := s.d.Casework.Dashboard(rq.ctx, rq.call(), casework.DashboardQuery{WindowDays: dashboardWindowDays, From: m.From, To: m.To})
	if err != nil {
		rq.fail(err)
		return
	}
	units := sheet{Name: rq.T("export.month.sheet"), Header: []string{rq.T("subject.unit"), rq.T("month.supervised"), rq.T("month.screened"),
		rq.T("month.rate"), rq.T("month.flagged"), rq.T("month.intervened"), rq.T("month.rescreened"), rq.T("month.improved"),
		rq.T("month.nochange"), rq.T("month.deteriorated")}}
	for _, u := range o.Units {
		var rate any
		if u.ScreenedRate != nil {
			rate = percent(*u.ScreenedRate)
		}
		units.Rows = append(units.Rows, []any{unitLabel(u), u.Supervised, u.Screened, rate, u.Flagged, u.Intervened, u.Rescreened,
			u.Improved, u.NoChange, u.Deteriorated})
	}
	last := m.To
	if last.Equal(m.From.AddDate(0, 1, 0)) {
		last = last.AddDate(0, 0, -1)
	}
	units.Notes = []string{rq.T("month.period", "From", m.From.Format("2006-01-02"), "To", last.Format("2006-01-02")),
		rq.T("export.generated", "At", time.Now().In(s.loc).Format("2006-01-02 15:04"))}
	resp := sheet{Name: rq.T("export.responses.sheet"), Header: []string{rq.T("flags.level"), rq.T("dash.deadline"), rq.T("dash.answered"),
		rq.T("dash.ontime"), rq.T("dash.late"), rq.T("dash.median"), rq.T("dash.open"), rq.T("dash.overdue")}}
	for _, r := range o.Responses {
		deadline, median := "—", "—"
		if r.Deadline > 0 {
			deadline = rq.duration(r.Deadline)
		}
		if r.Answered > 0 {
			median = rq.duration(r.Median)
		}
		resp.Rows = append(resp.Rows, []any{rq.T("level." + string(r.Level)), deadline, r.Answered, r.OnTime, r.Late, median, r.Open, r.Overdue})
	}
	rq.sendWorkbook(fmt.Sprintf("%s-%s", rq.T("export.month.file"), m.Value), []sheet{units, resp})
}

// unitLabel is a unit's name, or its code when it has none.
func unitLabel(u casework.UnitOutcome) string {
	if u.Name != "" {
		return u.Name
	}
	return u.Unit
}
