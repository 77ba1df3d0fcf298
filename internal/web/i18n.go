package web

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"

	"github.com/sunpath/sunpath/internal/auth"
)

//go:embed locales/*.json
var localeFS embed.FS

// The languages of the UI, the default first: a request that names neither
// gets Chinese.
var (
	zhCN      = language.MustParse("zh-CN")
	supported = []language.Tag{zhCN, language.English}
	langNames = []string{"zh-CN", "en"}
)

func newBundle() (*i18n.Bundle, error) {
	b := i18n.NewBundle(zhCN)
	b.RegisterUnmarshalFunc("json", json.Unmarshal)
	for _, name := range langNames {
		if _, err := b.LoadMessageFileFS(localeFS, "locales/active."+name+".json"); err != nil {
			return nil, fmt.Errorf("web: message file %s: %w", name, err)
		}
	}
	return b, nil
}

// validLang returns lang when the UI speaks it.
func validLang(lang string) (string, bool) {
	for _, l := range langNames {
		if l == lang {
			return l, true
		}
	}
	return "", false
}

// language chooses the UI language: the language cookie (set by the
// switcher) first, then the account's setting, then Accept-Language, then
// Chinese.
func (s *server) language(r *http.Request, p *auth.Principal) string {
	if c, err := r.Cookie(langCookie); err == nil {
		if l, ok := validLang(c.Value); ok {
			return l
		}
	}
	if p != nil && p.Kind == auth.KindUser {
		if l, ok := validLang(s.langs.get(r.Context(), s.d.Auth, p.Name)); ok {
			return l
		}
	}
	tags, _, err := language.ParseAcceptLanguage(r.Header.Get("Accept-Language"))
	if err != nil || len(tags) == 0 {
		return langNames[0]
	}
	_, i, conf := s.matcher.Match(tags...)
	if conf == language.No {
		return langNames[0]
	}
	return langNames[i]
}

// langCache remembers each account's language setting for a few minutes,
// so that pages do not list every user on every request.
type langCache struct {
	mu      sync.Mutex
	byName  map[string]string
	fetched time.Time
}

const langCacheTTL = 5 * time.Minute

func (c *langCache) get(ctx context.Context, svc *auth.Service, username string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.byName[username]; ok && time.Since(c.fetched) < langCacheTTL {
		return l
	}
	if time.Since(c.fetched) < 5*time.Second {
		return "" // just refreshed and still unknown: do not ask again at once
	}
	us, err := svc.Users(ctx)
	if err != nil {
		return ""
	}
	c.byName = make(map[string]string, len(us))
	for _, u := range us {
		c.byName[u.Username] = u.Language
	}
	c.fetched = time.Now()
	return c.byName[username]
}

// unitNames remembers units' names for the page header for a few minutes:
// a unit is named, never shown by its code, without a read on every page.
type unitNames struct {
	mu     sync.Mutex
	byCode map[string]unitName
}

type unitName struct {
	name string
	at   time.Time
}

// get returns the unit's name, or its code when the name cannot be read.
func (c *unitNames) get(rq *request, code string) string {
	if code == "" {
		return ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.byCode[code]; ok && time.Since(n.at) < langCacheTTL {
		return n.name
	}
	name, err := rq.s.d.Casework.UnitName(rq.ctx, rq.call(), code)
	if err != nil || name == "" {
		return code
	}
	if c.byCode == nil {
		c.byCode = map[string]unitName{}
	}
	c.byCode[code] = unitName{name: name, at: time.Now()}
	return name
}

// T translates a message id; args are name/value pairs for the message's
// template. A missing message shows its id, which a test forbids.
func (rq *request) T(id string, args ...any) string {
	return translate(rq.loc, id, args...)
}

func translate(loc *i18n.Localizer, id string, args ...any) string {
	cfg := &i18n.LocalizeConfig{MessageID: id}
	if len(args) > 0 {
		data := make(map[string]any, len(args)/2)
		for i := 0; i+1 < len(args); i += 2 {
			k, _ := args[i].(string)
			data[k] = args[i+1]
			if k == "Count" {
				cfg.PluralCount = args[i+1]
			}
		}
		cfg.TemplateData = data
	}
	s, err := loc.Localize(cfg)
	if err != nil {
		return id
	}
	return s
}

// setLanguage switches the UI language for this browser.
func (s *server) setLanguage(rq *request) {
	l, ok := validLang(rq.r.PostFormValue("lang"))
	if !ok {
		rq.redirect("/")
		return
	}
	rq.cookie(langCookie, l, "/", 365*24*3600)
	rq.redirect(safeNext(rq.r.PostFormValue("next")))
}

// safeNext keeps a post-action redirect on this site: a path, never
// "//host" or a scheme.
func safeNext(next string) string {
	if next == "" || next[0] != '/' || len(next) > 1 && (next[1] == '/' || next[1] == '\\') {
		return "/"
	}
	for _, c := range next {
		if c < 0x20 || c == 0x7f {
			return "/"
		}
	}
	return next
}

// staffNames remembers staff accounts' names for a few minutes, so that a
// page names the people who acted without a read for each of them.
type staffNames struct {
	mu      sync.Mutex
	byUser  map[string]string
	fetched time.Time
}

// get returns username's name, or the username when none is recorded (or
// the names cannot be read).
func (c *staffNames) get(rq *request, username string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byUser == nil || time.Since(c.fetched) >= langCacheTTL {
		names, err := rq.s.d.Casework.StaffNames(rq.ctx)
		if err != nil {
			return username
		}
		c.byUser, c.fetched = names, time.Now()
	}
	if n, ok := c.byUser[username]; ok {
		return n
	}
	return username
}

// forget drops the remembered names (one was just changed here).
func (c *staffNames) forget() {
	c.mu.Lock()
	c.byUser = nil
	c.mu.Unlock()
}
