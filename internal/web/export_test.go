package web

import (
	"bytes"
	"context"
	"mime"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/sunpath/sunpath/internal/postgres"
)

// download GETs path as c (in lang) and opens the answer as a workbook.
func (e *env) download(c *http.Client, path, lang string) (*excelize.File, *http.Response) {
	e.t.Helper()
	resp, body := e.get(c, path, "Cookie", langCookie+"="+lang)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != xlsxType {
		e.t.Fatalf("GET %s = %d %s, want 200 %s: %.200s", path, resp.StatusCode, resp.Header.Get("Content-Type"), xlsxType, body)
	}
	f, err := excelize.OpenReader(bytes.NewReader([]byte(body)))
	if err != nil {
		e.t.Fatalf("GET %s: not a workbook: %v", path, err)
	}
	e.t.Cleanup(func() { f.Close() })
	return f, resp
}

// TestExportCaseload: a counselor downloads the caseload as Excel; the file
// opens, names the columns in the page's language, lists her own people
// with their names, case numbers, unit names (not codes) and levels, and
// nobody from another caseload; the download is audited as an export.
func TestExportCaseload(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putSubject("X-1", "west", "carol", "陈一", nil)
	e.putSubject("X-2", "west", "carol", "=王二", nil)
	e.putSubject("X-9", "east", "dave", "东九", nil)
	e.phq9At("X-1", 1, 1, 1, 1, 1, 1, 1, 1, 1, 1) // item 9: an urgent flag

	carol := e.client()
	e.signin(carol, "carol")
	_, page := e.get(carol, "/")
	if !strings.Contains(page, `href="/caseload.xlsx?tier="`) {
		t.Error("the caseload page has no Excel download link")
	}
	f, resp := e.download(carol, "/caseload.xlsx", "zh-CN")
	_, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Disposition"))
	if !strings.HasPrefix(params["filename"], "个案名单-") || !strings.HasSuffix(params["filename"], ".xlsx") {
		t.Errorf("file name = %q, want 个案名单-<date>.xlsx", params["filename"])
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store: the file holds names", cc)
	}
	rows, err := f.GetRows("个案名单")
	if err != nil {
		t.Fatalf("sheet 个案名单: %v (sheets %v)", err, f.GetSheetList())
	}
	want := []string{"姓名", "档案号", "矫正类别", "单位", "负责人", "监管等级", "警示", "下次复评", "复评逾期"}
	if len(rows) < 3 || strings.Join(rows[0], "|") != strings.Join(want, "|") {
		t.Fatalf("header = %v, want %v (rows %d)", rows[0], want, len(rows))
	}
	byID := map[string][]string{}
	for _, r := range rows[1:] {
		if len(r) > 1 {
			byID[r[1]] = r
		}
	}
	if r := byID["X-1"]; len(r) < 9 || r[0] != "陈一" || r[2] != "缓刑" || r[3] != "west district" || r[4] != "carol" || r[5] != "未定级" || !strings.Contains(r[6], "紧急") {
		t.Errorf("row X-1 = %v, want 陈一, 缓刑, west district, carol, 未定级, an urgent flag", r)
	}
	// A name that looks like a formula stays text.
	if v, _ := f.GetCellFormula("个案名单", "A3"); v != "" {
		t.Errorf("a name became the formula %q", v)
	}
	if r := byID["X-2"]; len(r) < 1 || r[0] != "=王二" {
		t.Errorf("row X-2 = %v, want the name as written", r)
	}
	if _, ok := byID["X-9"]; ok {
		t.Error("another caseload's person is in the download")
	}
	// The next reassessment is a date cell, not text.
	if typ, _ := f.GetCellType("个案名单", "H2"); typ == excelize.CellTypeSharedString || typ == excelize.CellTypeInlineString {
		t.Errorf("next reassessment is stored as text (%v)", typ)
	}

	fe, _ := e.download(carol, "/caseload.xlsx", "en")
	enRows, err := fe.GetRows("Caseload")
	if err != nil || len(enRows) == 0 || enRows[0][0] != "Name" || enRows[0][3] != "Unit" {
		t.Errorf("English header = %v (%v)", enRows, err)
	}

	// The auditor reads the audit trail, not people's names.
	audrey := e.client()
	e.signin(audrey, "audrey")
	if resp, _ := e.get(audrey, "/caseload.xlsx"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("auditor's caseload download = %d, want 403", resp.StatusCode)
	}

	evs, err := e.audit.List(context.Background(), postgres.AuditFilter{Actor: "user:carol", Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	exports := 0
	for _, ev := range evs {
		if ev.Action == "subject.export" {
			exports++
		}
	}
	if exports != 2 {
		t.Errorf("audited exports = %d, want 2", exports)
	}
}

// TestExportMonth: a supervisor downloads the month's statistics; the
// workbook names the unit, counts the people and screenings, and holds no
// person's name.
func TestExportMonth(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putSubject("M-1", "west", "carol", "孙一", nil)
	e.putSubject("M-2", "west", "carol", "孙二", nil)
	e.phq9At("M-1", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

	sam := e.client()
	e.signin(sam, "sam")
	_, page := e.get(sam, "/dashboard")
	month := time.Now().Format("2006-01")
	if !strings.Contains(page, `href="/dashboard/month.xlsx?month=`+month+`"`) {
		t.Error("the dashboard has no Excel download link for this month")
	}
	f, resp := e.download(sam, "/dashboard/month.xlsx?month="+month, "zh-CN")
	_, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Disposition"))
	if params["filename"] != "月度统计-"+month+".xlsx" {
		t.Errorf("file name = %q", params["filename"])
	}
	rows, err := f.GetRows("月度统计")
	if err != nil {
		t.Fatalf("sheet 月度统计: %v (sheets %v)", err, f.GetSheetList())
	}
	if len(rows) < 2 || rows[0][0] != "单位" || rows[0][1] != "在矫人数" {
		t.Fatalf("rows = %v", rows)
	}
	found := false
	for _, r := range rows[1:] {
		if len(r) > 2 && r[0] == "west district" {
			found = true
			if r[1] != "2" || r[2] != "1" {
				t.Errorf("west district = %v, want 2 supervised, 1 screened", r)
			}
		}
		for _, c := range r {
			if strings.Contains(c, "孙") {
				t.Errorf("a person's name in the monthly statistics: %v", r)
			}
		}
	}
	if !found {
		t.Errorf("no row for west district by name: %v", rows)
	}
	if _, err := f.GetRows("警示响应"); err != nil {
		t.Errorf("no flag-response sheet: %v", err)
	}
	// A future month is refused on the page and falls back to this month.
	next := time.Now().AddDate(0, 1, 0).Format("2006-01")
	if _, page := e.get(sam, "/dashboard?month="+next); !strings.Contains(page, "请选择本月或以前的月份") {
		t.Error("a future month is not refused")
	}
}
