package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/sunpath/sunpath/internal/audit"
	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/problem"
	"github.com/sunpath/sunpath/internal/screening"
)

// flow is a screening session as it is filled in: by staff at
// /sessions/{id}, or by the person themselves at /kiosk.
type flow struct {
	base  string // URL prefix of the flow's pages
	id    string // session id
	kiosk bool
}

func (f flow) url(page string) string { return f.base + "/" + page }

// staffFlow binds a flow handler to the session named in the path.
func (s *server) staffFlow(h func(*request, flow)) func(*request) {
	return func(rq *request) {
		id := rq.r.PathValue("id")
		if _, err := uuid.Parse(id); err != nil {
			rq.notFound()
			return
		}
		h(rq, flow{base: "/sessions/" + id, id: id})
	}
}

// createSession opens a screening session for a person, with the API's
// checks of instruments and language, and goes to its first question, its
// full form, or the page with the one-time kiosk link.
func (s *server) createSession(rq *request) {
	id := rq.r.PathValue("id")
	if !casework.IDPattern.MatchString(id) {
		rq.notFound()
		return
	}
	back := "/subjects/" + id
	if err := rq.r.ParseForm(); err != nil {
		rq.errorPage(http.StatusBadRequest, "error.badrequest")
		return
	}
	insts := rq.r.PostForm["instrument"]
	lang, mode := rq.r.PostFormValue("language"), rq.r.PostFormValue("mode")
	switch {
	case len(insts) == 0 || len(insts) > 10:
		rq.redirect(back + "?error=no_instruments#screen")
		return
	case !slices.Contains(langNames, lang):
		rq.redirect(back + "?error=bad_language#screen")
		return
	case mode != "step" && mode != "form" && mode != "kiosk":
		rq.redirect(back + "?error=bad_mode#screen")
		return
	}
	var ordered []string
	for _, inst := range insts {
		def, ok := s.d.Catalog.Get(inst)
		switch {
		case !ok || !slices.Contains(def.Languages, lang):
			rq.redirect(back + "?error=bad_instrument#screen")
			return
		case !def.TextComplete[lang]:
			rq.redirect(back + "?error=text_missing#screen")
			return
		}
		if !slices.Contains(ordered, inst) {
			ordered = append(ordered, inst)
		}
	}
	opened, _, err := s.d.Casework.OpenSession(rq.ctx, rq.call(), id, casework.SessionInput{Instruments: ordered, Language: lang, Kiosk: mode == "kiosk"})
	var inv *problem.Invalid
	switch err := rq.check("session.create", err); {
	case errors.As(err, &inv):
		rq.redirect(back + "?error=bad_instrument#screen")
		return
	case err != nil:
		rq.fail(err)
		return
	}
	sess, token := opened.Session, opened.KioskToken
	switch mode {
	case "form":
		rq.redirect("/sessions/" + sess.ID + "/form")
	case "kiosk":
		// The link is shown once, on this answer only (no-store), never in a URL
		// of ours: the person's device opens /kiosk#<token>.
		scheme := "http"
		if rq.r.TLS != nil || s.cfg.CookieSecure {
			scheme = "https"
		}
		link := "/kiosk#" + token
		rq.render(http.StatusCreated, "kiosklink", map[string]any{"Subject": id, "Link": link, "URL": scheme + "://" + rq.r.Host + link, "Expires": sess.KioskExpiresAt})
	default:
		rq.redirect("/sessions/" + sess.ID + "/q")
	}
}

// step is one question as the flow asks it.
type step struct {
	Def  *screening.Definition
	Item screening.Item
}

func (st step) key() string { return st.Def.ID + "." + st.Item.ID }

// steps lists the questions of a session in order, leaving out those the
// instrument's skip logic does not ask after the answers given so far.
func (s *server) steps(sess casework.Session) []step {
	var out []step
	for _, inst := range sess.Instruments {
		def, ok := s.d.Catalog.Get(inst)
		if !ok {
			continue
		}
		for _, it := range def.Items {
			if asked(def, it, sess.Answers[inst]) {
				out = append(out, step{Def: def, Item: it})
			}
		}
	}
	return out
}

// asked reports whether the instrument asks item it after answers. It asks
// the scoring engine rather than evaluating the skip rule here: with a valid
// value for the item, the only error the engine can report on it is that
// its skip logic does not ask it. Items whose answer is scored even when not
// asked are always shown.
func asked(def *screening.Definition, it screening.Item, answers map[string]json.RawMessage) bool {
	if it.AskWhen == nil || len(it.Options) == 0 {
		return true
	}
	probe := make(map[string]json.RawMessage, len(answers)+1)
	for k, v := range answers {
		probe[k] = v
	}
	probe[it.ID] = json.RawMessage(strconv.Itoa(it.Options[0].Value))
	b, _ := json.Marshal(probe)
	parsed, err := screening.DecodeAnswers(b)
	if err != nil {
		return true
	}
	_, err = def.Score(parsed, screening.ScoreOptions{})
	var inv *problem.Invalid
	if errors.As(err, &inv) {
		for _, fe := range inv.Errors {
			if fe.Item == it.ID {
				return false
			}
		}
	}
	return true
}

// selected returns the value of the option a stored answer chooses: the API
// stores values, codes ("yes") or booleans, the UI stores values.
func selected(it screening.Item, raw json.RawMessage) (int, bool) {
	if len(raw) == 0 {
		return 0, false
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, false
	}
	for _, o := range it.Options {
		switch x := v.(type) {
		case float64:
			if float64(o.Value) == x {
				return o.Value, true
			}
		case string:
			if o.Code != "" && o.Code == x {
				return o.Value, true
			}
		case bool:
			if x && o.Code == "yes" || !x && o.Code == "no" {
				return o.Value, true
			}
		}
	}
	return 0, false
}

// loadSession reads the flow's session (one audited read) and runs fn on
// it. A kiosk sees its own session only; its pages speak the session's
// language.
func (s *server) loadSession(rq *request, f flow, fn func(sess *casework.Session, subj casework.Subject) error) error {
	v, err := s.d.Casework.Session(rq.ctx, rq.call(), f.id)
	if err := rq.check("session.read", err); err != nil {
		return err
	}
	if f.kiosk {
		rq.setLang(v.Language)
	}
	return fn(&v.Session, v.Subject)
}

// saveAnswers stores answers of the flow's session through the use case
// the API's autosave uses; gone is true when the session is no longer open.
func (s *server) saveAnswers(rq *request, f flow, answers map[string]map[string]json.RawMessage) (v casework.SessionView, gone bool, err error) {
	v, err = s.d.Casework.SaveAnswers(rq.ctx, rq.call(), f.id, answers)
	if errors.Is(err, casework.ErrSessionClosed) {
		return v, true, nil
	}
	if f.kiosk && err == nil {
		rq.setLang(v.Language)
	}
	return v, false, rq.check("session.save", err)
}

type optionView struct {
	Value    int
	Label    string
	Selected bool
}

type questionData struct {
	F            flowView
	Instrument   string
	Instructions string
	First        bool // the first question of its instrument
	Key          string
	Inst, Item   string
	Text         string
	TextLang     string
	Options      []optionView
	Answered     bool
	NoSkip       bool // a suicide question: no "skip" link under it
	Pos, Count   int
	Done         int
	Prev, Next   string
}

// flowView is what every flow page needs to link within the flow.
type flowView struct {
	Base    string
	Kiosk   bool
	Subject string
}

func (f flow) view(subject string) flowView {
	fv := flowView{Base: f.base, Kiosk: f.kiosk}
	if !f.kiosk {
		fv.Subject = subject
	}
	return fv
}

// sessionStart sends staff to the first unanswered question.
func (s *server) sessionStart(rq *request, f flow) { rq.redirect(f.url("q")) }

// questionPage shows one question with its options as large buttons; the
// saved answer is marked as chosen. Without ?item it shows the first
// unanswered question, or the review when all are answered.
func (s *server) questionPage(rq *request, f flow) {
	var d questionData
	var gone, review bool
	err := s.loadSession(rq, f, func(sess *casework.Session, subj casework.Subject) error {
		if sess.Status != "open" {
			gone = true
			return nil
		}
		steps := s.steps(*sess)
		i := -1
		want := rq.r.URL.Query().Get("item")
		for j, st := range steps {
			if want != "" && st.key() == want || want == "" && i < 0 && sess.Answers[st.Def.ID][st.Item.ID] == nil {
				i = j
			}
		}
		if i < 0 {
			review = true
			return nil
		}
		st := steps[i]
		d = questionData{F: f.view(subj.ID), Key: st.key(), Inst: st.Def.ID, Item: st.Item.ID, Pos: i + 1, Count: len(steps),
			Instrument: textIn(st.Def.Title, sess.Language), Text: st.Item.Text[sess.Language], TextLang: sess.Language,
			First: i == 0 || steps[i-1].Def != st.Def}
		if d.First {
			d.Instructions = st.Def.Instructions[sess.Language]
			if f.kiosk {
				// The instrument's instructions may be the interviewer's
				// ("ask the person…"); the person reads their own.
				d.Instructions = kioskInstructions(rq, st.Def, sess.Language)
			}
		}
		d.NoSkip = suicideItem(st.Def, st.Item)
		cur, answered := selected(st.Item, sess.Answers[st.Def.ID][st.Item.ID])
		d.Answered = answered
		for _, o := range st.Item.Options {
			d.Options = append(d.Options, optionView{Value: o.Value, Label: textIn(o.Label, sess.Language), Selected: answered && o.Value == cur})
		}
		for _, x := range steps {
			if sess.Answers[x.Def.ID][x.Item.ID] != nil {
				d.Done++
			}
		}
		if i > 0 {
			d.Prev = f.url("q") + "?item=" + steps[i-1].key()
		}
		d.Next = f.url("review")
		if i+1 < len(steps) {
			d.Next = f.url("q") + "?item=" + steps[i+1].key()
		}
		return nil
	})
	switch {
	case err != nil:
		rq.fail(err)
	case gone:
		s.sessionClosed(rq, f)
	case review:
		rq.redirect(f.url("review"))
	default:
		rq.render(http.StatusOK, "question", d)
	}
}

// sessionClosed answers a request for a session that is submitted or
// expired: staff see its result (or are told it expired); a kiosk sees only
// thanks.
func (s *server) sessionClosed(rq *request, f flow) {
	if f.kiosk {
		rq.redirect("/kiosk/thanks?lang=" + rq.lang)
		return
	}
	rq.redirect(f.url("result"))
}

// answer autosaves one answer (or clears it) and moves to the next
// question. Each answer is checked against the item's options before it is
// stored, so a resumed session never holds an answer that cannot be scored.
func (s *server) answer(rq *request, f flow) {
	inst, item, value := rq.r.PostFormValue("inst"), rq.r.PostFormValue("item"), rq.r.PostFormValue("value")
	clear := rq.r.PostFormValue("clear") == "1"
	var next string
	var gone bool
	raw, err := formAnswer(value, clear)
	var v casework.SessionView
	if err == nil {
		v, gone, err = s.saveAnswers(rq, f, map[string]map[string]json.RawMessage{inst: {item: raw}})
	}
	if err == nil && !gone {
		sess := &v.Session
		steps := s.steps(*sess)
		next = f.url("review")
		for j, st := range steps {
			if st.Def.ID == inst && st.Item.ID == item && j+1 < len(steps) {
				next = f.url("q") + "?item=" + steps[j+1].key()
			}
		}
		if clear {
			next = f.url("q") + "?item=" + inst + "." + item
		}
	}
	var inv *problem.Invalid
	switch {
	case errors.As(err, &inv):
		rq.errorPage(http.StatusUnprocessableEntity, "error.badanswer")
	case err != nil:
		rq.fail(err)
	case gone:
		s.sessionClosed(rq, f)
	default:
		rq.redirect(next)
	}
}

// setAnswer merges one answer into the session after checking that the
// item belongs to one of its instruments and the value is one of the item's
// options.
func formAnswer(value string, clear bool) (json.RawMessage, error) {
	if clear {
		return json.RawMessage("null"), nil
	}
	v, err := strconv.Atoi(value)
	if err != nil {
		return nil, &problem.Invalid{Errors: []problem.FieldError{{Field: "value", Detail: "must be one of the item's options"}}}
	}
	return json.RawMessage(strconv.Itoa(v)), nil
}

type formItem struct {
	Inst, Item  string
	Text        string
	Options     []optionView
	Conditional bool
}

type formInstrument struct {
	ID           string
	Title        string
	Instructions string
	Items        []formItem
}

type formData struct {
	F           flowView
	Lang        string
	Instruments []formInstrument
	Saved       bool
}

// formPage shows every question of the session at once. With JavaScript,
// each change is saved at once (htmx); without, the Save button saves.
func (s *server) formPage(rq *request, f flow) {
	var d formData
	var gone bool
	err := s.loadSession(rq, f, func(sess *casework.Session, subj casework.Subject) error {
		if sess.Status != "open" {
			gone = true
			return nil
		}
		d = formData{F: f.view(subj.ID), Lang: sess.Language, Saved: rq.r.URL.Query().Get("saved") == "1"}
		for _, inst := range sess.Instruments {
			def, ok := s.d.Catalog.Get(inst)
			if !ok {
				continue
			}
			fi := formInstrument{ID: def.ID, Title: textIn(def.Title, sess.Language), Instructions: def.Instructions[sess.Language]}
			for _, it := range def.Items {
				cur, answered := selected(it, sess.Answers[inst][it.ID])
				item := formItem{Inst: inst, Item: it.ID, Text: it.Text[sess.Language], Conditional: it.AskWhen != nil}
				for _, o := range it.Options {
					item.Options = append(item.Options, optionView{Value: o.Value, Label: textIn(o.Label, sess.Language), Selected: answered && cur == o.Value})
				}
				fi.Items = append(fi.Items, item)
			}
			d.Instruments = append(d.Instruments, fi)
		}
		return nil
	})
	switch {
	case err != nil:
		rq.fail(err)
	case gone:
		s.sessionClosed(rq, f)
	default:
		rq.render(http.StatusOK, "form", d)
	}
}

// saveForm saves every answer of the full form. htmx sends it on each
// change and gets a status line back; a plain form post is redirected.
func (s *server) saveForm(rq *request, f flow) {
	if err := rq.r.ParseForm(); err != nil {
		rq.errorPage(http.StatusBadRequest, "error.badrequest")
		return
	}
	var gone bool
	answers := map[string]map[string]json.RawMessage{}
	var err error
	for k, vs := range rq.r.PostForm {
		rest, ok := strings.CutPrefix(k, "a.")
		if !ok {
			continue
		}
		inst, item, ok := strings.Cut(rest, ".")
		if !ok || len(vs) == 0 {
			err = &problem.Invalid{Errors: []problem.FieldError{{Field: "answers", Detail: "malformed field name"}}}
			break
		}
		raw, aerr := formAnswer(vs[0], false)
		if aerr != nil {
			err = aerr
			break
		}
		if answers[inst] == nil {
			answers[inst] = map[string]json.RawMessage{}
		}
		answers[inst][item] = raw
	}
	if err == nil && len(answers) > 0 {
		_, gone, err = s.saveAnswers(rq, f, answers)
	}
	htmx := rq.r.Header.Get("HX-Request") == "true"
	var inv *problem.Invalid
	switch {
	case errors.As(err, &inv):
		rq.errorPage(http.StatusUnprocessableEntity, "error.badanswer")
	case err != nil:
		rq.fail(err)
	case gone && htmx:
		rq.w.Header().Set("HX-Redirect", f.url("result"))
		rq.w.WriteHeader(http.StatusOK)
	case gone:
		s.sessionClosed(rq, f)
	case htmx:
		rq.renderAs(http.StatusOK, "form", "savestatus", map[string]any{"At": time.Now()})
	case rq.r.PostFormValue("action") == "review":
		rq.redirect(f.url("review"))
	default:
		rq.redirect(f.url("form") + "?saved=1")
	}
}

type reviewItem struct {
	Key      string
	Pos      int
	Text     string
	Answer   string
	Answered bool
	Problem  string // message id, "" when the answer is fine
}

type reviewInstrument struct {
	Title string
	Items []reviewItem
}

type reviewData struct {
	F           flowView
	Lang        string
	Instruments []reviewInstrument
	Problems    int
	Unanswered  int
}

// reviewPage lists every question with its answer before submission, and
// the problems the scoring engine would refuse the answers for.
func (s *server) reviewPage(rq *request, f flow) {
	d, gone, err := s.review(rq, f, nil)
	switch {
	case err != nil:
		rq.fail(err)
	case gone:
		s.sessionClosed(rq, f)
	default:
		rq.render(http.StatusOK, "review", d)
	}
}

// review builds the review; refused holds the engine's errors from a failed
// submission by instrument (nil: check the answers now, storing nothing).
func (s *server) review(rq *request, f flow, refused map[string]*problem.Invalid) (reviewData, bool, error) {
	var d reviewData
	var gone bool
	err := s.loadSession(rq, f, func(sess *casework.Session, subj casework.Subject) error {
		if sess.Status != "open" {
			gone = true
			return nil
		}
		d = reviewData{F: f.view(subj.ID), Lang: sess.Language}
		steps := s.steps(*sess)
		pos := map[string]int{}
		for j, st := range steps {
			pos[st.key()] = j + 1
		}
		for _, inst := range sess.Instruments {
			def, ok := s.d.Catalog.Get(inst)
			if !ok {
				continue
			}
			problems := map[string]bool{}
			inv := refused[inst]
			if refused == nil {
				inv = check(def, sess.Answers[inst], sess.Language)
			}
			if inv != nil {
				for _, fe := range inv.Errors {
					problems[fe.Item] = true
				}
			}
			ri := reviewInstrument{Title: textIn(def.Title, sess.Language)}
			for _, it := range def.Items {
				key := inst + "." + it.ID
				raw, given := sess.Answers[inst][it.ID]
				if pos[key] == 0 && !given {
					continue // not asked, not answered
				}
				item := reviewItem{Key: key, Pos: pos[key], Text: it.Text[sess.Language], Answered: given}
				if v, ok := selected(it, raw); ok {
					for _, o := range it.Options {
						if o.Value == v {
							item.Answer = textIn(o.Label, sess.Language)
						}
					}
				}
				switch {
				case problems[it.ID] && given:
					item.Problem = "review.notasked"
				case problems[it.ID]:
					item.Problem = "review.required"
				}
				if item.Problem != "" {
					d.Problems++
				}
				if !given {
					d.Unanswered++
				}
				ri.Items = append(ri.Items, item)
			}
			d.Instruments = append(d.Instruments, ri)
		}
		return nil
	})
	return d, gone, err
}

// check scores answers without storing anything and returns the engine's
// refusal, if any.
func check(def *screening.Definition, answers map[string]json.RawMessage, lang string) *problem.Invalid {
	b, _ := json.Marshal(answers)
	if answers == nil {
		b = []byte("{}")
	}
	parsed, err := screening.DecodeAnswers(b)
	if err == nil {
		_, err = def.Score(parsed, screening.ScoreOptions{Language: lang})
	}
	var inv *problem.Invalid
	if errors.As(err, &inv) {
		return inv
	}
	return nil
}

// submit scores and stores every instrument of the session, once. Staff go
// to the result; a kiosk's cookie is cleared and it sees only thanks.
func (s *server) submit(rq *request, f flow) {
	out, _, err := s.d.Casework.SubmitSession(rq.ctx, rq.call(), f.id)
	gone := errors.Is(err, casework.ErrSessionClosed)
	if gone {
		err = nil
	}
	err = rq.check("session.submit", err)
	lang := out.Language
	if lang == "" {
		lang = rq.lang
	}
	var refused *casework.Refusal
	switch {
	case errors.As(err, &refused):
		d, gone, err := s.review(rq, f, refused.ByInstrument)
		switch {
		case err != nil:
			rq.fail(err)
		case gone:
			s.sessionClosed(rq, f)
		default:
			rq.render(http.StatusUnprocessableEntity, "review", d)
		}
	case err != nil:
		rq.fail(err)
	case f.kiosk:
		rq.cookie(kioskCookie, "", "/kiosk", -1)
		rq.redirect("/kiosk/thanks?lang=" + lang)
	case gone:
		s.sessionClosed(rq, f)
	default:
		rq.redirect(f.url("result"))
	}
}

type resultData struct {
	Subject     string
	Assessments []assessmentView
	Critical    bool
	Urgent      bool
	Protocol    string
	Status      string
}

// resultPage shows staff what a submitted session found. When a critical
// flag fired, the crisis protocol comes first, as an alert.
func (s *server) resultPage(rq *request) {
	id := rq.r.PathValue("id")
	if _, err := uuid.Parse(id); err != nil {
		rq.notFound()
		return
	}
	var d resultData
	res, err := s.d.Casework.SessionResult(rq.ctx, rq.call(), id)
	if err := rq.check("session.read", err); err != nil {
		rq.fail(err)
		return
	}
	d.Subject, d.Status = res.Subject.ID, res.Status
	for _, a := range res.Assessments {
		for _, fl := range a.Flags {
			d.Critical = d.Critical || fl.Level == screening.LevelCritical
			d.Urgent = d.Urgent || fl.Level == screening.LevelUrgent
		}
		d.Assessments = append(d.Assessments, s.assessmentView(rq, a))
	}
	if d.Status == "open" {
		rq.redirect("/sessions/" + id + "/q")
		return
	}
	if d.Critical {
		d.Protocol = s.protocol(rq.lang)
	}
	rq.render(http.StatusOK, "result", d)
}

// kiosk serves a kiosk page: the HttpOnly cookie scoped to /kiosk holds the
// one-time token, resolved on every request, so a submitted or expired
// session ends the kiosk at once.
func (s *server) kiosk(h func(*request, flow)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rq := s.newRequest(w, r)
		c, err := r.Cookie(kioskCookie)
		if err != nil || c.Value == "" {
			s.kioskInvalid(rq)
			return
		}
		p, err := s.d.Casework.KioskPrincipal(r.Context(), c.Value)
		if err != nil {
			if !errors.Is(err, auth.ErrUnauthorized) {
				rq.fail(err)
				return
			}
			rq.cookie(kioskCookie, "", "/kiosk", -1)
			s.kioskInvalid(rq)
			return
		}
		rq.p = p
		h(rq, flow{base: "/kiosk", id: p.Name, kiosk: true})
	})
}

// kioskEntry is where a kiosk link lands. /kiosk?t=<token> is exchanged for
// the cookie at once; /kiosk#<token> (the API's kiosk_url) reaches the
// server only through kiosk.js, which posts the token to /kiosk/start.
func (s *server) kioskEntry(rq *request) {
	if t := rq.r.URL.Query().Get("t"); t != "" {
		s.kioskExchange(rq, t)
		return
	}
	if c, err := rq.r.Cookie(kioskCookie); err == nil && c.Value != "" {
		if _, err := s.d.Casework.KioskPrincipal(rq.ctx, c.Value); err == nil {
			rq.redirect("/kiosk/q")
			return
		}
		rq.cookie(kioskCookie, "", "/kiosk", -1)
	}
	rq.p, rq.user = auth.Principal{Kind: auth.KindKiosk}, false
	rq.render(http.StatusOK, "kioskstart", nil)
}

func (s *server) kioskStart(rq *request) { s.kioskExchange(rq, rq.r.PostFormValue("t")) }

// kioskExchange trades a kiosk token for the kiosk cookie. A staff member
// signed in on this browser is signed out first: the person at the kiosk
// must not be able to reach staff pages from it.
func (s *server) kioskExchange(rq *request, token string) {
	p, err := s.d.Casework.KioskPrincipal(rq.ctx, token)
	if err != nil {
		if !errors.Is(err, auth.ErrUnauthorized) {
			rq.fail(err)
			return
		}
		rq.cookie(kioskCookie, "", "/kiosk", -1)
		rq.p = auth.Principal{Kind: auth.KindKiosk}
		s.record(rq, audit.Event{Actor: "kiosk:(invalid token)", Role: string(auth.RoleKiosk), Action: "kiosk.start", ResourceType: "session", Outcome: audit.Denied})
		s.kioskInvalid(rq)
		return
	}
	if c, err := rq.r.Cookie(sessionCookie); err == nil && c.Value != "" {
		if err := s.d.Auth.Logout(rq.ctx, c.Value); err != nil {
			rq.fail(err)
			return
		}
		rq.cookie(sessionCookie, "", "/", -1)
	}
	rq.p = p
	s.record(rq, audit.Event{Action: "kiosk.start", ResourceType: "session", ResourceID: p.Name, Outcome: audit.Success})
	rq.cookie(kioskCookie, token, "/kiosk", int(s.d.Casework.Policy().KioskTTL.Seconds()))
	rq.redirect("/kiosk/q")
}

func (s *server) kioskInvalid(rq *request) {
	rq.p, rq.user = auth.Principal{Kind: auth.KindKiosk}, false
	rq.render(http.StatusNotFound, "kioskinvalid", nil)
}

// kioskThanks is all a kiosk shows after submission: never a score.
func (s *server) kioskThanks(rq *request) {
	if l, ok := validLang(rq.r.URL.Query().Get("lang")); ok {
		rq.setLang(l)
	}
	rq.p, rq.user = auth.Principal{Kind: auth.KindKiosk}, false
	rq.render(http.StatusOK, "thanks", nil)
}
