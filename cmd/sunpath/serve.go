package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/caseprom"
	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/httpapi"
	"github.com/sunpath/sunpath/internal/postgres"
	"github.com/sunpath/sunpath/internal/refusal"
	"github.com/sunpath/sunpath/internal/riskmodel"
	"github.com/sunpath/sunpath/internal/sealed"
	"github.com/sunpath/sunpath/internal/web"
)

func newServeCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Serve the HTTP API until SIGTERM or SIGINT",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := c.config()
			if err != nil {
				return err
			}
			tuneGC()
			return serve(cmd.Context(), c, cfg)
		},
	}
}

// tuneGC trades memory for CPU unless GOGC or GOMEMLIMIT say otherwise: the
// collector runs when the heap has grown by 400 % (not 100 %) over what
// survived the last collection, and harder as the heap nears 256 MiB (a
// soft limit: the deployment's GOMEMLIMIT takes its place). The live heap of
// a replica is tens of MiB; at the default, collection took about a fifth of
// the server's CPU under the realistic load (make bench PROFILE=…).
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(256 << 20)
	}
}

// serve wires the service top to bottom and serves until ctx ends.
func serve(ctx context.Context, c *cli, cfg Config) error {
	log := c.logger(cfg)
	if cfg.Database.URL == "" {
		return errors.New("config key database.url (env SUNPATH_DATABASE_URL): required; 'make run' starts a local PostgreSQL and sets it")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	db, err := postgres.New(cfg.Database)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer db.Close()
	reg.MustRegister(newPoolCollector(db))
	accounts := postgres.NewAccounts(db)
	authSvc := auth.NewService(accounts, cfg.Session)
	authSvc.CacheAPIKeys(cfg.KeyCacheTTL)
	authSvc.LimitLogins(cfg.LoginsPerMinute)
	authSvc.BoundPasswordHashing(cfg.PasswordHashMemory, cfg.PasswordHashWait)
	authSvc.SetLockout(cfg.LockoutBase, cfg.LockoutMax)
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sunpath_login_lockouts_total",
		Help: "Sign-in locks imposed on a (login name, client address) pair after repeated wrong passwords."},
		func() float64 { return float64(authSvc.Lockouts()) }))

	// Instruments and models are data checked at startup: a bad definition
	// or a model whose sha256 does not match stops the server here.
	catalog, err := loadCatalog(cfg)
	if err != nil {
		return err
	}
	models, err := riskmodel.LoadDir(cfg.Models.Dir)
	if err != nil {
		return fmt.Errorf("config key models.dir: %w", err)
	}
	if _, ok := models[cfg.Models.Default]; !ok {
		return fmt.Errorf("config key models.default: no model %q in %s", cfg.Models.Default, cfg.Models.Dir)
	}
	riskMetrics, err := riskmodel.NewMetrics(reg, models, 1000)
	if err != nil {
		return err
	}
	if cfg.Crypto.Keys == "" {
		return errors.New("config key crypto.keys (env SUNPATH_CRYPTO_KEYS): required to seal answers and notes at rest; 'sunpath keys generate' makes one ('make run' does this for you)")
	}
	keys, err := sealed.ParseKeyring(cfg.Crypto.Keys, cfg.Crypto.ActiveKey)
	if err != nil {
		return fmt.Errorf("config key crypto.keys: %w", err)
	}
	signer, err := auditSigner(cfg, log)
	if err != nil {
		return err
	}
	auditStore := postgres.NewAuditStore(db)
	groupUnits := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sunpath_write_group_units",
		Help: "Submissions per group transaction.", Buckets: []float64{1, 2, 4, 8, 16, 32}})
	groupsLost := prometheus.NewCounter(prometheus.CounterOpts{Name: "sunpath_write_groups_lost_total",
		Help: "Group transactions that did not commit; their submissions ran again one by one."})
	reg.MustRegister(groupUnits, groupsLost)
	// Oversight reads go to a streaming replica when one is named; their
	// audit events are still written on the primary.
	var replica *postgres.DB
	if cfg.Database.ReadURL != "" {
		rc := cfg.Database
		rc.URL = cfg.Database.ReadURL
		if replica, err = postgres.New(rc); err != nil {
			return fmt.Errorf("read replica: %w", err)
		}
		defer replica.Close()
	}
	cases := postgres.NewCases(db, postgres.CasesConfig{Keys: keys, Flags: cfg.Policy.Flags, Endpoints: sortedNames(cfg.Webhooks.Endpoints),
		Groups: cfg.WriteGroups, Replica: replica,
		OnGroup: func(units int, committed bool) {
			groupUnits.Observe(float64(units))
			if !committed {
				groupsLost.Inc()
			}
		}})
	reg.MustRegister(newStateCollector(cases, auditStore))

	// The database may still be starting: the server comes up regardless and
	// reports not-ready until the database answers and passes the self-check.
	var safe atomic.Bool
	dbCheck := func(ctx context.Context) error {
		if err := db.Ping(ctx); err != nil {
			return err
		}
		if !safe.Load() {
			if err := db.SelfCheck(ctx); err != nil {
				return err
			}
			safe.Store(true)
		}
		return nil
	}
	var firstPassword string // of the first administrator, made on the first start
	startCtx, cancel := context.WithTimeout(ctx, cfg.Database.ConnectTimeout+time.Second)
	err = dbCheck(startCtx)
	cancel()
	switch {
	case errors.Is(err, postgres.ErrUnsafe):
		return err // never serve on a database that may lose acknowledged writes
	case err != nil:
		log.Warn("database not reachable at startup; serving and reporting not ready", "err", err)
	default:
		if firstPassword, err = bootstrapAdmin(ctx, accounts, authSvc); err != nil {
			return err
		}
		if err := auditStore.RegisterKey(ctx, signer.Public()); err != nil {
			return err
		}
		// The due lists read the schedule's rows: they must be kept for
		// the instruments configured.
		if err := cases.SyncSchedule(ctx, cfg.Policy.Schedule.Instruments); err != nil {
			return fmt.Errorf("schedule instruments: %w", err)
		}
	}

	svc, err := casework.New(casework.Deps{Store: cases, Audit: auditStore, Catalog: catalog, Models: models, DefaultModel: cfg.Models.Default,
		ModelSource: cases, Training: cases, Policy: cfg.Policy, Metrics: caseprom.New(reg, riskMetrics)})
	if err != nil {
		return err
	}
	// Stored model versions (shadow, active) load over the shipped ones;
	// one that no longer matches its sha256 stops the server here. Every
	// replica then polls for versions stored or promoted elsewhere.
	if safe.Load() {
		if err := svc.SyncModels(ctx); err != nil {
			return fmt.Errorf("stored model versions: %w", err)
		}
	}
	go svc.Registry().Poll(ctx, cfg.Models.Poll, func(err error) { log.Warn("stored model versions not reloaded", "err", err) })
	refusals := refusal.New(reg) // refused requests of both front ends, audited as counts
	// The web UI answers every path outside the API's own.
	ui, err := web.New(web.Config{
		CookieSecure: cfg.HTTP.CookieSecure, MaxBodyBytes: cfg.HTTP.MaxBodyBytes,
		ModelsDir: cfg.Models.Dir, DefaultModel: cfg.Models.Default, Location: cfg.Policy.Location,
	}, web.Deps{Log: log, Auth: authSvc, Casework: svc, Catalog: catalog, Models: models, Refusals: refusals})
	if err != nil {
		return err
	}
	srv, err := httpapi.New(cfg.HTTP, httpapi.Deps{
		Log:      log,
		Registry: reg,
		Auth:     authSvc,
		Checks: []httpapi.Check{
			{Name: "database", Fn: dbCheck},
			{Name: "migrations", Fn: db.CheckSchema},
		},
		Catalog:      catalog,
		Models:       models,
		DefaultModel: cfg.Models.Default,
		RiskMetrics:  riskMetrics,
		Casework:     svc,
		UI:           ui,
		Refusals:     refusals,
	})
	if err != nil {
		return err
	}
	if cfg.DebugAddr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		dbg := &http.Server{Addr: cfg.DebugAddr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = dbg.ListenAndServe() }()
		defer dbg.Close()
	}
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("config key metrics.addr: listen: %w", err)
		}
		msrv := &http.Server{Handler: httpapi.MetricsHandler(reg), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = msrv.Serve(mln) }()
		defer msrv.Close()
		fmt.Fprintf(c.stdout, "Sunpath metrics on http://%s/metrics\n", mln.Addr())
	}
	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("config key http.addr: listen: %w", err)
	}
	if firstPassword != "" {
		fmt.Fprintf(c.stdout, "First run: created administrator 'admin' with password %s\n", firstPassword)
		fmt.Fprintf(c.stdout, "Sign in at http://%s/signin and change it at http://%s/account/password; it is not shown again ('sunpath user reset-password --username admin' sets a new one).\n", ln.Addr(), ln.Addr())
	}
	fmt.Fprintf(c.stdout, "Sunpath %s listening on http://%s\n", version, ln.Addr())
	log.Info("serving", "addr", ln.Addr().String(), "version", version, "instruments", len(catalog.List()), "models", len(models))
	jobsCtx, stopJobs := context.WithCancel(context.WithoutCancel(ctx))
	jobsDone := runJobs(jobsCtx, log, cfg, svc, cases, auditStore, signer, reg)
	err = srv.Serve(ctx, ln)
	stopJobs()
	<-jobsDone
	if err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// bootstrapAdmin creates the first administrator when there are no users and
// returns its password, which serve prints once with the page to change it
// on; a second start finds users and returns "".
func bootstrapAdmin(ctx context.Context, accounts *postgres.Accounts, svc *auth.Service) (string, error) {
	n, err := accounts.CountUsers(ctx)
	if err != nil || n > 0 {
		return "", err
	}
	pw := auth.RandomPassword()
	if _, err := svc.CreateUser(ctx, "admin", pw, auth.RoleAdmin, ""); err != nil {
		if errors.Is(err, auth.ErrConflict) { // another replica was first
			return "", nil
		}
		return "", fmt.Errorf("create first admin: %w", err)
	}
	return pw, nil
}

// poolCollector exports the pool's statistics as sunpath_db_pool_* metrics.
type poolCollector struct {
	db                                            *postgres.DB
	conns, maxConns, acquires, wait, empty, cancl *prometheus.Desc
}

func newPoolCollector(db *postgres.DB) *poolCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("sunpath_db_pool_"+name, help, labels, nil)
	}
	return &poolCollector{
		db:       db,
		conns:    d("connections", "Connections in the pool by state.", "state"),
		maxConns: d("max_connections", "Largest size of the pool."),
		acquires: d("acquires_total", "Connections acquired from the pool."),
		wait:     d("acquire_wait_seconds_total", "Time spent waiting for a connection."),
		empty:    d("empty_acquires_total", "Acquires that had to wait because the pool was empty."),
		cancl:    d("canceled_acquires_total", "Acquires canceled before a connection was free."),
	}
}

func (pc *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(pc, ch)
}

func (pc *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := pc.db.Stat()
	ch <- prometheus.MustNewConstMetric(pc.conns, prometheus.GaugeValue, float64(s.Acquired), "acquired")
	ch <- prometheus.MustNewConstMetric(pc.conns, prometheus.GaugeValue, float64(s.Idle), "idle")
	ch <- prometheus.MustNewConstMetric(pc.conns, prometheus.GaugeValue, float64(s.Total), "total")
	ch <- prometheus.MustNewConstMetric(pc.maxConns, prometheus.GaugeValue, float64(s.Max))
	ch <- prometheus.MustNewConstMetric(pc.acquires, prometheus.CounterValue, float64(s.AcquireCount))
	ch <- prometheus.MustNewConstMetric(pc.wait, prometheus.CounterValue, s.AcquireDuration.Seconds())
	ch <- prometheus.MustNewConstMetric(pc.empty, prometheus.CounterValue, float64(s.EmptyAcquire))
	ch <- prometheus.MustNewConstMetric(pc.cancl, prometheus.CounterValue, float64(s.Canceled))
}
