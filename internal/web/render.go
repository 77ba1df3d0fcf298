package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/casework"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static/*.js static/*.css static/*.svg
var staticFS embed.FS

// assetURLs gives every static file a URL with a short content hash, so that
// browsers may cache assets for long and still see a new version at once.
func assetURLs() (map[string]string, error) {
	out := map[string]string{}
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		h := sha256.Sum256(b)
		out[path.Base(p)] = "/" + p + "?v=" + hex.EncodeToString(h[:6])
		return nil
	})
	return out, err
}

func (s *server) staticHandler() http.Handler {
	files := http.FileServerFS(staticFS)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=86400")
		files.ServeHTTP(w, r)
	})
}

// parseTemplates parses every page with the layout and the partials. Pages
// are files named page_*.html; the rest are shared.
func (s *server) parseTemplates() (map[string]*template.Template, error) {
	base := template.New("").Funcs(s.funcs(nil))
	shared, err := fs.Glob(templateFS, "templates/[^p]*.html")
	if err != nil {
		return nil, err
	}
	if base, err = base.ParseFS(templateFS, shared...); err != nil {
		return nil, fmt.Errorf("web: templates: %w", err)
	}
	pages, err := fs.Glob(templateFS, "templates/page_*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, p := range pages {
		t, err := base.Clone()
		if err != nil {
			return nil, err
		}
		if t, err = t.ParseFS(templateFS, p); err != nil {
			return nil, fmt.Errorf("web: template %s: %w", p, err)
		}
		out[strings.TrimSuffix(strings.TrimPrefix(path.Base(p), "page_"), ".html")] = t
	}
	return out, nil
}

// funcs are the template functions; rq is nil at parse time and the
// request's own at render time (T needs its language).
func (s *server) funcs(rq *request) template.FuncMap {
	return template.FuncMap{
		"T": func(id string, args ...any) string {
			if rq == nil {
				return id
			}
			return rq.T(id, args...)
		},
		"asset": func(name string) string { return s.assets[name] },
		"date": func(t any) string {
			switch v := t.(type) {
			case time.Time:
				return v.In(s.loc).Format("2006-01-02")
			case *time.Time:
				if v != nil {
					return v.In(s.loc).Format("2006-01-02")
				}
			}
			return "—"
		},
		"datetime": func(t any) string {
			switch v := t.(type) {
			case time.Time:
				return v.In(s.loc).Format("2006-01-02 15:04")
			case *time.Time:
				if v != nil {
					return v.In(s.loc).Format("2006-01-02 15:04")
				}
			}
			return "—"
		},
		"iso":      func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"now":      time.Now,
		"nl2br":    nl2br,
		"protocol": protocolHTML,
		// actor names who acted: a person by account, a machine client as
		// the case system (its key's name), never an audit prefix.
		"actor": func(a string) string {
			if k, ok := strings.CutPrefix(a, "api_key:"); ok {
				return rq.T("actor.apikey", "Name", k)
			}
			if u, ok := strings.CutPrefix(a, "user:"); ok {
				return rq.s.staff.get(rq, u)
			}
			return a
		},
		"pct":    func(v float64) string { return fmt.Sprintf("%.0f%%", v*100) },
		"signed": func(v float64) string { return fmt.Sprintf("%+.2f", v) },
		"add":    func(a, b int) int { return a + b },
		"seq": func(n int) []int {
			out := make([]int, n)
			for i := range out {
				out[i] = i
			}
			return out
		},
		"dict": func(kv ...any) map[string]any {
			m := make(map[string]any, len(kv)/2)
			for i := 0; i+1 < len(kv); i += 2 {
				k, _ := kv[i].(string)
				m[k] = kv[i+1]
			}
			return m
		},
		"list":          func(v ...string) []string { return v },
		"resolutions":   func() []string { return casework.ResolutionCodes },
		"interventions": func() []string { return casework.Interventions },
		"split":         func(key string) []string { a, b, _ := strings.Cut(key, "."); return []string{a, b} },
		"time":          func(t time.Time) string { return t.In(s.loc).Format("15:04:05") },
		"deref":         func(v *float64) float64 { return *v },
		"tierOf": func(t *casework.Tier) string {
			if t == nil {
				return ""
			}
			return string(*t)
		},
		"duration": func(d time.Duration) string {
			if rq == nil {
				return humanDuration(d)
			}
			return rq.duration(d)
		},
		"instrumentTitle": func(id string) string {
			def, ok := s.d.Catalog.Get(id)
			if !ok || rq == nil {
				return id
			}
			return textIn(def.Title, rq.lang)
		},
		"hasRole": func(roles ...string) bool {
			if rq == nil {
				return false
			}
			for _, r := range roles {
				if string(rq.p.Role) == r {
					return true
				}
			}
			return false
		},
	}
}

// page is what every template receives: the request's context and the
// page's own data.
type pageData struct {
	Lang     string
	Title    string
	User     string
	Role     string
	Unit     string
	SignedIn bool
	Kiosk    bool
	Path     string
	Nav      string // the current section, for aria-current
	// Alerts, on staff pages, feed the header's live badge.
	Alerts *casework.Alerts
	Poll   string
	// HTMX loads htmx: only pages that use it (the live badge, the flag
	// queue, the full form) pay for it.
	HTMX bool
	Data any
}

// render answers a full page.
func (rq *request) render(status int, name string, data any) {
	rq.renderAs(status, name, "layout", data)
}

// renderAs executes one template of a page: "layout" for a full page or a
// fragment that htmx swaps in.
func (rq *request) renderAs(status int, name, tmpl string, data any) {
	t, ok := rq.s.tmpl[name]
	if !ok {
		rq.s.log.Error("no such page template", "template", name)
		http.Error(rq.w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	t, err := t.Clone()
	if err == nil {
		t = t.Funcs(rq.s.funcs(rq))
	}
	pd := pageData{Lang: rq.lang, Path: rq.r.URL.Path, Data: data, Kiosk: rq.p.Kind == auth.KindKiosk}
	if rq.user {
		pd.SignedIn, pd.User, pd.Role = true, rq.p.Name, string(rq.p.Role)
		if tmpl == "layout" {
			pd.User, pd.Unit = rq.s.staff.get(rq, rq.p.Name), rq.s.units.get(rq, rq.p.Unit)
		}
	}
	pd.Nav = section(rq.r.URL.Path)
	if tmpl == "layout" && rq.user && slices.Contains(staffRoles, rq.p.Role) {
		pd.Poll = alertPoll
		if a, ok := rq.s.alerts(rq); ok {
			pd.Alerts = &a
		}
	}
	pd.HTMX = pd.Alerts != nil || name == "flags" || name == "form"
	var buf bytes.Buffer
	if err == nil {
		err = t.ExecuteTemplate(&buf, tmpl, pd)
	}
	if err != nil {
		rq.s.log.Error("template failed", "template", name, "err", err)
		http.Error(rq.w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	rq.w.Header().Set("Content-Type", "text/html; charset=utf-8")
	rq.w.Header().Set("Content-Language", rq.lang)
	rq.w.WriteHeader(status)
	_, _ = buf.WriteTo(rq.w)
}

func section(p string) string {
	switch {
	case p == "/" || strings.HasPrefix(p, "/subjects") || strings.HasPrefix(p, "/sessions"):
		return "caseload"
	case strings.HasPrefix(p, "/flags"):
		return "flags"
	case strings.HasPrefix(p, "/overrides"):
		return "overrides"
	case strings.HasPrefix(p, "/dashboard"):
		return "dashboard"
	case strings.HasPrefix(p, "/models"):
		return "models"
	case strings.HasPrefix(p, "/admin/users"):
		return "users"
	case strings.HasPrefix(p, "/admin/keys"):
		return "keys"
	case strings.HasPrefix(p, "/admin/units"):
		return "units"
	}
	return ""
}

// markdown renders model cards: GitHub tables, and raw HTML in the source
// is dropped (goldmark's default), so a card cannot inject markup.
var markdown = goldmark.New(goldmark.WithExtensions(extension.GFM))

func renderMarkdown(src []byte) (template.HTML, error) {
	var buf bytes.Buffer
	if err := markdown.Convert(src, &buf); err != nil {
		return "", err
	}
	return template.HTML(buf.String()), nil // goldmark escapes text and omits raw HTML
}

// humanDuration shows a response time or deadline in the largest unit that
// keeps it readable: "15 min", "24 h", "7 d", "1.5 h".
func humanDuration(d time.Duration) string {
	trim := func(v float64, unit string) string {
		return strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.1f", v), "0"), ".") + " " + unit
	}
	switch {
	case d < time.Minute:
		return "< 1 min"
	case d >= 48*time.Hour:
		return trim(d.Hours()/24, "d")
	case d >= 2*time.Hour:
		return trim(d.Hours(), "h")
	}
	return trim(d.Minutes(), "min")
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }
