package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"
	"sigs.k8s.io/yaml"

	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/sealed"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/httpapi"
	"github.com/sunpath/sunpath/internal/postgres"
)

// Config is Sunpath's whole configuration. Each package owns its part.
type Config struct {
	Database postgres.Config
	// MigrateURL is the role that owns the schema and runs `sunpath
	// migrate`; empty means Database.URL. The service itself logs in with
	// Database.URL, a role granted only sunpath_app, which cannot change or
	// drop the audit trail's guards (RUNBOOK.md#database-roles).
	MigrateURL string
	// WriteGroups bounds the group transactions (shared by concurrent
	// submissions) in flight at once.
	WriteGroups int
	HTTP        httpapi.Config
	Session     auth.SessionPolicy
	KeyCacheTTL time.Duration
	// LoginsPerMinute limits sign-in attempts per login name (five times
	// that per address), in the API and the web pages alike.
	LoginsPerMinute int
	LogLevel        slog.Level
	Instruments     InstrumentsConfig
	Models          ModelsConfig
	Crypto          CryptoConfig
	Audit           AuditConfig
	// Policy is every rule of the case work (schedule, deadlines,
	// lifetimes, cross-instrument rules, crisis protocol).
	Policy   casework.Policy
	Webhooks WebhooksConfig
	Jobs     JobsConfig
	// DebugAddr, when set, serves net/http/pprof there (loopback only).
	DebugAddr string
	// PasswordHashMemory bounds the memory of concurrent Argon2id work;
	// PasswordHashWait is how long a sign-in waits for a slot (then 429).
	PasswordHashMemory int64
	PasswordHashWait   time.Duration
	// LockoutBase and LockoutMax time-box sign-in locks per (name,
	// address): the first lock and the cap of its doubling.
	LockoutBase, LockoutMax time.Duration
	// MetricsAddr is the listener of GET /metrics, never the service port;
	// empty disables it.
	MetricsAddr string
}

// CryptoConfig holds the keys that seal answers, notes and names at rest.
type CryptoConfig struct {
	Keys      string // "id:base64,id2:base64"
	ActiveKey string
}

// AuditConfig holds the checkpoint signing key.
type AuditConfig struct {
	SigningKey string // base64 Ed25519 seed
}

// WebhooksConfig lists the endpoints notified of flags.
type WebhooksConfig struct {
	Endpoints   map[string]string // name → URL
	Secret      string            // HMAC-SHA256 key
	MaxAttempts int
}

// JobsConfig sets how often background work runs.
type JobsConfig struct {
	Seal, Escalate, Deliver time.Duration
	// Dashboard is how often the dashboard rollups are refreshed; a rollup
	// is shown for up to three of these, then dashboards are computed live.
	Dashboard time.Duration
}

// InstrumentsConfig says where operator-supplied instrument text lives.
type InstrumentsConfig struct {
	OverlayDir string
}

// ModelsConfig says where the trained models are and which one recommends.
type ModelsConfig struct {
	Dir     string
	Default string
	// Poll is how often a replica checks for model versions stored or
	// promoted through another replica.
	Poll time.Duration
}

// defaults lists every key with its default; viper's Unmarshal and env lookup
// only see keys it knows, and `sunpath config` prints them in this order.
func defaults() map[string]any {
	db := postgres.DefaultConfig()
	h := httpapi.DefaultConfig()
	return map[string]any{
		"database.url":               "",
		"database.migrate_url":       "",
		"database.read_url":          "",
		"database.max_conns":         int(db.MaxConns),
		"database.write_groups":      2,
		"database.connect_timeout":   db.ConnectTimeout.String(),
		"database.acquire_timeout":   db.AcquireTimeout.String(),
		"database.statement_timeout": db.StatementTimeout.String(),
		"http.addr":                  h.Addr,
		"http.shutdown_timeout":      h.ShutdownTimeout.String(),
		"http.request_timeout":       h.RequestTimeout.String(),
		"http.max_body_bytes":        h.MaxBodyBytes,
		"http.trusted_proxies":       "",
		"http.cookie_secure":         false,
		"http.tls_cert_file":         "",
		"http.tls_key_file":          "",
		"http.rate_limit_per_second": h.CallerRate,
		"http.rate_limit_burst":      h.CallerBurst,
		"http.logins_per_minute":     10,
		"session.idle_timeout":       auth.DefaultSessionPolicy.Idle.String(),
		"auth.api_key_cache_ttl":     "5s",
		"session.absolute_timeout":   auth.DefaultSessionPolicy.Absolute.String(),
		"log.level":                  "info",
		"instruments.overlay_dir":    "",
		"models.dir":                 "models",
		"models.default":             "nij-review",
		"models.poll_interval":       "5s",
		"crypto.keys":                "",
		"crypto.active_key":          "",
		"audit.signing_key":          "",
		"flags.deadline_critical":    casework.DefaultFlagPolicy.Critical.String(),
		"flags.deadline_urgent":      casework.DefaultFlagPolicy.Urgent.String(),
		"flags.deadline_review":      casework.DefaultFlagPolicy.Review.String(),
		"flags.crisis_protocol_zh":   casework.DefaultCrisisZH,
		"flags.crisis_protocol_en":   casework.DefaultCrisisEN,
		"webhooks.endpoints":         "",
		"webhooks.secret":            "",
		"webhooks.max_attempts":      12,
		"workflow.idempotency_ttl":   "24h0m0s",
		"workflow.session_ttl":       "24h0m0s",
		"workflow.kiosk_ttl":         "2h0m0s",
		"schedule.instruments":       strings.Join(casework.DefaultSchedule.Instruments, ","),
		"schedule.strict":            casework.DefaultSchedule.Every[casework.Strict].String(),
		"schedule.ordinary":          casework.DefaultSchedule.Every[casework.Ordinary].String(),
		"schedule.lenient":           casework.DefaultSchedule.Every[casework.Lenient].String(),
		"schedule.unassigned":        casework.DefaultSchedule.Unassigned.String(),
		"schedule.new_entrant":       casework.DefaultSchedule.NewEntrant.String(),
		"debug.addr":                 "",
		"jobs.seal_interval":         "1s",
		"jobs.escalate_interval":     "15s",
		"jobs.deliver_interval":      "2s",
		"jobs.dashboard_interval":    "1m0s",
		"reports.time_zone":          "",

		// Hardening (issue 17).
		"http.unauthenticated_per_second": h.UnauthenticatedRate,
		"http.unauthenticated_burst":      h.UnauthenticatedBurst,
		"auth.password_hash_memory_mib":   64,
		"auth.password_hash_wait":         "1s",
		"auth.lockout_base":               auth.LockoutBase.String(),
		"auth.lockout_max":                auth.LockoutMax.String(),
		"metrics.addr":                    "127.0.0.1:9180",
	}
}

func newViper() *viper.Viper {
	v := viper.New()
	v.SetEnvPrefix("SUNPATH")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	for k, d := range defaults() {
		v.SetDefault(k, d)
	}
	return v
}

// loadConfig reads the file (explicit, or sunpath.yaml when present), falls
// back to what `make run` made in c.devDir when no database is configured,
// then validates every key; an error names the key at fault.
func loadConfig(c *cli, v *viper.Viper, file string) (Config, error) {
	if file != "" {
		v.SetConfigFile(file)
		if err := v.ReadInConfig(); err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", file, err)
		}
	} else if _, err := os.Stat("sunpath.yaml"); err == nil {
		v.SetConfigFile("sunpath.yaml")
		if err := v.ReadInConfig(); err != nil {
			return Config{}, fmt.Errorf("config file sunpath.yaml: %w", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Config{}, fmt.Errorf("config file sunpath.yaml: %w", err)
	}
	for _, k := range v.AllKeys() {
		if _, ok := defaults()[k]; !ok {
			return Config{}, fmt.Errorf("config key %s: unknown key", k)
		}
	}
	if err := localDev(c, v); err != nil {
		return Config{}, err
	}
	p := parser{v: v}
	var cfg Config
	cfg.Database = postgres.Config{
		URL:              p.str("database.url"),
		ReadURL:          p.str("database.read_url"),
		MaxConns:         int32(p.intIn("database.max_conns", 1, 1000)),
		ConnectTimeout:   p.dur("database.connect_timeout"),
		AcquireTimeout:   p.dur("database.acquire_timeout"),
		StatementTimeout: p.dur("database.statement_timeout"),
	}
	cfg.WriteGroups = p.intIn("database.write_groups", 1, 64)
	if cfg.Database.ReadURL != "" {
		if err := postgres.ParseURL(cfg.Database.ReadURL); err != nil {
			p.fail("database.read_url", "not a PostgreSQL URL")
		}
	}
	if cfg.Database.URL != "" {
		if err := postgres.ParseURL(cfg.Database.URL); err != nil {
			p.fail("database.url", "not a PostgreSQL URL")
		}
	}
	if cfg.MigrateURL = p.str("database.migrate_url"); cfg.MigrateURL != "" {
		if err := postgres.ParseURL(cfg.MigrateURL); err != nil {
			p.fail("database.migrate_url", "not a PostgreSQL URL")
		}
	}
	cfg.HTTP = httpapi.Config{
		Addr:              p.addr("http.addr"),
		ShutdownTimeout:   p.dur("http.shutdown_timeout"),
		RequestTimeout:    p.dur("http.request_timeout"),
		ReadHeaderTimeout: 10 * time.Second,
		MaxBodyBytes:      int64(p.intIn("http.max_body_bytes", 1024, 64<<20)),
		TrustedProxies:    p.list("http.trusted_proxies"),
		CookieSecure:      p.boolean("http.cookie_secure"),
		Version:           version,
		TLSCertFile:       p.str("http.tls_cert_file"),
		TLSKeyFile:        p.str("http.tls_key_file"),
		CallerRate:        float64(p.intIn("http.rate_limit_per_second", 0, 1000000)),
		CallerBurst:       p.intIn("http.rate_limit_burst", 1, 1000000),

		UnauthenticatedRate:  float64(p.intIn("http.unauthenticated_per_second", 0, 1000000)),
		UnauthenticatedBurst: p.intIn("http.unauthenticated_burst", 1, 1000000),
	}
	if (cfg.HTTP.TLSCertFile == "") != (cfg.HTTP.TLSKeyFile == "") {
		p.fail("http.tls_cert_file", "set both http.tls_cert_file and http.tls_key_file, or neither")
	}
	if cfg.HTTP.TLSCertFile != "" {
		cfg.HTTP.CookieSecure = true
	}
	for _, tp := range cfg.HTTP.TrustedProxies {
		if net.ParseIP(tp) == nil {
			if _, _, err := net.ParseCIDR(tp); err != nil {
				p.fail("http.trusted_proxies", "each entry must be an IP address or CIDR")
			}
		}
	}
	if cfg.KeyCacheTTL, _ = time.ParseDuration(p.str("auth.api_key_cache_ttl")); cfg.KeyCacheTTL < 0 || cfg.KeyCacheTTL > time.Minute {
		p.fail("auth.api_key_cache_ttl", "must be a duration from 0s to 1m")
	}
	cfg.LoginsPerMinute = p.intIn("http.logins_per_minute", 0, 10000)
	cfg.PasswordHashMemory = int64(p.intIn("auth.password_hash_memory_mib", 0, 1<<20)) << 20
	cfg.PasswordHashWait = p.dur("auth.password_hash_wait")
	cfg.LockoutBase, cfg.LockoutMax = p.dur("auth.lockout_base"), p.dur("auth.lockout_max")
	if cfg.MetricsAddr = p.str("metrics.addr"); cfg.MetricsAddr != "" {
		cfg.MetricsAddr = p.addr("metrics.addr")
		if cfg.MetricsAddr == cfg.HTTP.Addr && !strings.HasSuffix(cfg.MetricsAddr, ":0") {
			p.fail("metrics.addr", "must differ from http.addr: metrics are not served on the service port")
		}
	}
	if cfg.LockoutMax < cfg.LockoutBase {
		p.fail("auth.lockout_max", "must be at least auth.lockout_base")
	}
	cfg.Session = auth.SessionPolicy{Idle: p.dur("session.idle_timeout"), Absolute: p.dur("session.absolute_timeout")}
	if err := cfg.LogLevel.UnmarshalText([]byte(p.str("log.level"))); err != nil {
		p.fail("log.level", "must be debug, info, warn or error")
	}
	cfg.Instruments.OverlayDir = p.str("instruments.overlay_dir")
	cfg.Models = ModelsConfig{Dir: p.str("models.dir"), Default: p.str("models.default")}
	if cfg.Models.Poll, _ = time.ParseDuration(p.str("models.poll_interval")); cfg.Models.Poll < 100*time.Millisecond || cfg.Models.Poll > time.Hour {
		p.fail("models.poll_interval", "must be a duration from 100ms to 1h")
	}
	cfg.Crypto = CryptoConfig{Keys: p.str("crypto.keys"), ActiveKey: p.str("crypto.active_key")}
	if cfg.Crypto.Keys != "" {
		if cfg.Crypto.ActiveKey == "" {
			cfg.Crypto.ActiveKey, _, _ = strings.Cut(cfg.Crypto.Keys, ":")
		}
		if _, err := sealed.ParseKeyring(cfg.Crypto.Keys, cfg.Crypto.ActiveKey); err != nil {
			p.fail("crypto.keys", err.Error())
		}
	}
	cfg.Audit.SigningKey = p.str("audit.signing_key")
	if cfg.Audit.SigningKey != "" {
		if b, err := base64.StdEncoding.DecodeString(cfg.Audit.SigningKey); err != nil || len(b) != 32 {
			p.fail("audit.signing_key", "must be 32 bytes, base64-encoded ('sunpath keys generate' makes one)")
		}
	}
	cfg.Policy = casework.DefaultPolicy()
	cfg.Policy.Flags = casework.FlagPolicy{Critical: p.dur("flags.deadline_critical"), Urgent: p.dur("flags.deadline_urgent"), Review: p.dur("flags.deadline_review")}
	cfg.Webhooks = WebhooksConfig{Endpoints: map[string]string{}, Secret: p.str("webhooks.secret"), MaxAttempts: p.intIn("webhooks.max_attempts", 1, 100)}
	for _, e := range p.list("webhooks.endpoints") {
		name, u, ok := strings.Cut(e, "=")
		pu, err := url.Parse(u)
		if !ok || !casework.IDPattern.MatchString(name) || err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" {
			p.fail("webhooks.endpoints", "each entry must be name=https://host/path")
			continue
		}
		cfg.Webhooks.Endpoints[name] = u
	}
	if len(cfg.Webhooks.Endpoints) > 0 && len(cfg.Webhooks.Secret) < 16 {
		p.fail("webhooks.secret", "required with webhooks.endpoints: at least 16 characters")
	}
	sched := casework.Schedule{
		Instruments: p.list("schedule.instruments"),
		Every: map[casework.Tier]time.Duration{casework.Strict: p.dur("schedule.strict"),
			casework.Ordinary: p.dur("schedule.ordinary"), casework.Lenient: p.dur("schedule.lenient")},
		Unassigned: p.dur("schedule.unassigned"),
		NewEntrant: p.dur("schedule.new_entrant"),
	}
	cfg.Policy.Schedule = sched
	cfg.Policy.IdempotencyTTL = p.dur("workflow.idempotency_ttl")
	cfg.Policy.SessionTTL = p.dur("workflow.session_ttl")
	cfg.Policy.KioskTTL = p.dur("workflow.kiosk_ttl")
	if cfg.DebugAddr = p.str("debug.addr"); cfg.DebugAddr != "" {
		if host, _, err := net.SplitHostPort(cfg.DebugAddr); err != nil || !net.ParseIP(host).IsLoopback() {
			p.fail("debug.addr", "must be a loopback host:port, e.g. 127.0.0.1:6060")
		}
	}
	cfg.Policy.CrisisProtocol = map[string]string{"zh-CN": p.str("flags.crisis_protocol_zh"), "en": p.str("flags.crisis_protocol_en")}
	cfg.Jobs = JobsConfig{Seal: p.dur("jobs.seal_interval"), Escalate: p.dur("jobs.escalate_interval"), Deliver: p.dur("jobs.deliver_interval"),
		Dashboard: p.dur("jobs.dashboard_interval")}
	cfg.Policy.DashboardMaxAge = 3 * cfg.Jobs.Dashboard
	if tz := p.str("reports.time_zone"); tz != "" {
		loc, err := time.LoadLocation(tz)
		if err != nil {
			p.fail("reports.time_zone", "must be an IANA time zone such as Asia/Shanghai")
		}
		cfg.Policy.Location = loc
	}
	return cfg, p.err
}

// localDev lets the CLI work next to `make run` without hand-set
// environment. When neither a flag, the environment nor a file names a
// database and c.devDir/pg holds the local cluster that scripts/localpg.sh
// made, the database URL is that cluster's (as `localpg.sh url` prints it),
// and every SUNPATH_* key of c.devDir/secrets.env (the development keys
// scripts/run.sh made) that nothing else sets is taken from there. Both
// become defaults, so a file, an environment variable or a flag still wins
// for each key. It says so on stderr, once per process.
func localDev(c *cli, v *viper.Viper) error {
	if c.devDir == "" || v.GetString("database.url") != "" {
		return nil
	}
	pg := filepath.Join(c.devDir, "pg")
	pw, err := os.ReadFile(filepath.Join(pg, "password"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("local PostgreSQL %s: %w", pg, err)
	}
	port, err := os.ReadFile(filepath.Join(pg, "port"))
	if err != nil {
		return fmt.Errorf("local PostgreSQL %s: %w", pg, err)
	}
	v.SetDefault("database.url", fmt.Sprintf("postgres://sunpath:%s@127.0.0.1:%s/sunpath?sslmode=disable",
		url.PathEscape(strings.TrimSpace(string(pw))), strings.TrimSpace(string(port))))
	note := fmt.Sprintf("using the local PostgreSQL in %s", pg)
	secrets := filepath.Join(c.devDir, "secrets.env")
	b, err := os.ReadFile(secrets)
	switch {
	case err == nil:
		for i, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			name, value, ok := strings.Cut(line, "=")
			key := envKey(name)
			if !ok || key == "" {
				return fmt.Errorf("%s line %d: not SUNPATH_KEY=value with a known key", secrets, i+1)
			}
			if v.GetString(key) == "" {
				v.SetDefault(key, value)
			}
		}
		note += " and the keys in " + secrets
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: %w", secrets, err)
	}
	if !c.devNoted {
		c.devNoted = true
		fmt.Fprintf(c.stderr, "sunpath: %s (made by 'make run'; set SUNPATH_DATABASE_URL to use another database)\n", note)
	}
	return nil
}

// envKey returns the configuration key of an environment variable name
// (SUNPATH_CRYPTO_KEYS → crypto.keys), or "" when it names none.
func envKey(name string) string {
	for k := range defaults() {
		if "SUNPATH_"+strings.ToUpper(strings.ReplaceAll(k, ".", "_")) == name {
			return k
		}
	}
	return ""
}

// parser reads keys, remembering the first error with the key's name.
type parser struct {
	v   *viper.Viper
	err error
}

func (p *parser) fail(key, msg string) {
	if p.err == nil {
		p.err = fmt.Errorf("config key %s (env SUNPATH_%s): %s", key, strings.ToUpper(strings.ReplaceAll(key, ".", "_")), msg)
	}
}

func (p *parser) str(key string) string { return strings.TrimSpace(p.v.GetString(key)) }

func (p *parser) dur(key string) time.Duration {
	d, err := time.ParseDuration(p.str(key))
	if err != nil || d <= 0 {
		p.fail(key, "must be a positive duration such as 30s or 5m")
	}
	return d
}

func (p *parser) intIn(key string, lo, hi int) int {
	n, err := strconv.Atoi(p.str(key))
	if err != nil || n < lo || n > hi {
		p.fail(key, fmt.Sprintf("must be a whole number from %d to %d", lo, hi))
	}
	return n
}

func (p *parser) boolean(key string) bool {
	b, err := strconv.ParseBool(p.str(key))
	if err != nil {
		p.fail(key, "must be true or false")
	}
	return b
}

func (p *parser) addr(key string) string {
	s := p.str(key)
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		p.fail(key, "must be host:port, e.g. 127.0.0.1:8080")
		return s
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.fail(key, "port must be a number from 0 to 65535")
	}
	_ = host
	return s
}

func (p *parser) list(key string) []string {
	var out []string
	for _, s := range p.v.GetStringSlice(key) {
		for _, part := range strings.Split(s, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}

// redact hides secrets: the password of URLs and values of secret keys.
func redact(key, value string) string {
	if value == "" {
		return value
	}
	lk := strings.ToLower(key)
	if strings.Contains(lk, "secret") || strings.Contains(lk, "password") || strings.HasSuffix(lk, "_key") || strings.HasSuffix(lk, ".keys") {
		return "REDACTED"
	}
	if u, err := url.Parse(value); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "REDACTED")
			return u.String()
		}
	}
	return value
}

func newConfigCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "config",
		Short: "Print the effective configuration, secrets redacted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := c.config(); err != nil {
				return err
			}
			keys := make([]string, 0, len(defaults()))
			for k := range defaults() {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			out := map[string]map[string]string{}
			for _, k := range keys {
				sec, name, _ := strings.Cut(k, ".")
				if out[sec] == nil {
					out[sec] = map[string]string{}
				}
				out[sec][name] = redact(k, fmt.Sprint(c.v.Get(k)))
			}
			b, err := yaml.Marshal(out)
			if err != nil {
				return err
			}
			_, err = c.stdout.Write(b)
			return err
		},
	}
}
