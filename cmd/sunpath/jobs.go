package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	cryptorand "crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/sunpath/sunpath/instruments"
	"github.com/sunpath/sunpath/internal/audit"
	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/instrument"
	"github.com/sunpath/sunpath/internal/postgres"
)

func loadCatalog(cfg Config) (*instrument.Catalog, error) {
	var overlay fs.FS
	if cfg.Instruments.OverlayDir != "" {
		if _, err := os.Stat(cfg.Instruments.OverlayDir); err != nil {
			return nil, fmt.Errorf("config key instruments.overlay_dir: %w", err)
		}
		overlay = os.DirFS(cfg.Instruments.OverlayDir)
	}
	cat, err := instrument.Load(instruments.FS, overlay)
	if err != nil {
		return nil, fmt.Errorf("instruments: %w", err)
	}
	return cat, nil
}

// auditSigner returns the checkpoint signer: the configured key, or a key
// made for this process (logged as a warning: its checkpoints can be checked
// against the public key the database records, but not independently).
func auditSigner(cfg Config, log *slog.Logger) (*audit.Signer, error) {
	seed := make([]byte, 32)
	if cfg.Audit.SigningKey != "" {
		b, err := base64.StdEncoding.DecodeString(cfg.Audit.SigningKey)
		if err != nil {
			return nil, fmt.Errorf("config key audit.signing_key: %w", err)
		}
		seed = b
	} else {
		if _, err := io.ReadFull(randReader, seed); err != nil {
			return nil, err
		}
		log.Warn("audit.signing_key is not set: checkpoints are signed with a key made for this process")
	}
	return audit.NewSigner(seed)
}

func sortedNames(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// runJobs runs the background work every replica shares through PostgreSQL:
// sealing the audit trail, applying pending schedule times, escalating
// overdue flags, delivering webhooks,
// refreshing the dashboard rollups and purging expired idempotency keys. Each job coordinates with the other
// replicas in the database (advisory lock or SKIP LOCKED), so running it on
// every replica is safe. The channel closes when all jobs have stopped.
func runJobs(ctx context.Context, log *slog.Logger, cfg Config, svc *casework.Service, cases *postgres.Cases, auditStore *postgres.AuditStore,
	signer *audit.Signer, reg prometheus.Registerer) <-chan struct{} {
	f := promauto.With(reg)
	escalations := f.NewCounterVec(prometheus.CounterOpts{Name: "sunpath_flag_escalations_total", Help: "Flags escalated past their deadline, by level."}, []string{"level"})
	deliveries := f.NewCounterVec(prometheus.CounterOpts{Name: "sunpath_webhook_deliveries_total", Help: "Webhook delivery attempts by outcome."}, []string{"outcome"})
	sealedEvents := f.NewCounter(prometheus.CounterOpts{Name: "sunpath_audit_events_total", Help: "Audit events sealed into the hash chain."})
	deliveryDelay := f.NewHistogram(prometheus.HistogramOpts{Name: "sunpath_webhook_delivery_delay_seconds",
		Help:    "Time from a notification being queued (its flag's commit) to its delivery, retries included.",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300, 1800, 3600, 4 * 3600}})

	client := &http.Client{Timeout: 10 * time.Second}
	send := func(ctx context.Context, d postgres.Delivery) error {
		u, ok := cfg.Webhooks.Endpoints[d.Endpoint]
		if !ok {
			return fmt.Errorf("endpoint %s is no longer configured", d.Endpoint)
		}
		return deliver(ctx, client, u, cfg.Webhooks.Secret, d)
	}
	done := make(chan struct{})
	// woken runs fn now and every d, and also when wake receives, but not
	// within gap of its last run.
	woken := func(d, gap time.Duration, wake <-chan struct{}, name string, fn func(context.Context) error) func() {
		return func() {
			t := time.NewTicker(d)
			defer t.Stop()
			for {
				last := time.Now()
				if err := fn(ctx); err != nil && ctx.Err() == nil {
					log.Warn("background job failed", "job", name, "err", err)
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				case <-wake:
					select {
					case <-ctx.Done():
						return
					case <-time.After(gap - time.Since(last)):
					}
				}
			}
		}
	}
	// every runs fn now and every d.
	every := func(d time.Duration, name string, fn func(context.Context) error) func() {
		return woken(d, 0, nil, name, fn)
	}
	var signed time.Time // the sealer's last signing run
	jobs := []func(){
		// The sealer follows the writes as the delivery job does (one
		// large run a second held up the submissions behind it), and signs
		// a checkpoint once per jobs.seal_interval.
		woken(cfg.Jobs.Seal, sealGap, cases.AuditQueued(), "audit-seal", func(ctx context.Context) error {
			var sign *audit.Signer
			if time.Since(signed) >= cfg.Jobs.Seal-sealGap {
				sign, signed = signer, time.Now()
			}
			for {
				n, err := auditStore.Seal(ctx, sign, 2000)
				sealedEvents.Add(float64(n))
				if err != nil || n < 2000 {
					return err
				}
			}
		}),
		every(cfg.Jobs.Seal, "schedule-pending", func(ctx context.Context) error {
			_, err := cases.DrainSchedule(ctx)
			return err
		}),
		every(cfg.Jobs.Escalate, "flag-escalation", func(ctx context.Context) error {
			fs, err := cases.Escalate(ctx)
			for _, fl := range fs {
				escalations.WithLabelValues(string(fl.Level)).Inc()
				log.Warn("flag escalated", "flag_id", fl.ID, "level", fl.Level, "escalation_level", fl.EscalationLevel)
			}
			return err
		}),
		// Notifications go out as this replica commits them (at most one
		// drain per deliverGap, so a burst of flags is sent in small
		// batches spread over the burst, not all at the next poll), and
		// every jobs.deliver_interval for retries and other replicas' rows.
		woken(cfg.Jobs.Deliver, deliverGap, cases.OutboxQueued(), "webhook-delivery", func(ctx context.Context) error {
			ok, failed, err := cases.DrainOutbox(ctx, 100, cfg.Webhooks.MaxAttempts, func(ctx context.Context, d postgres.Delivery) error {
				err := send(ctx, d)
				if err != nil {
					deliveries.WithLabelValues("retry").Inc()
				} else {
					deliveryDelay.Observe(time.Since(d.CreatedAt).Seconds())
				}
				return err
			})
			deliveries.WithLabelValues("delivered").Add(float64(ok))
			deliveries.WithLabelValues("failed").Add(float64(failed))
			return err
		}),
		// The refresh skips when another replica refreshed within half an
		// interval.
		every(cfg.Jobs.Dashboard, "dashboard-rollup", func(ctx context.Context) error {
			_, err := svc.RefreshDashboards(ctx, cfg.Jobs.Dashboard/2)
			return err
		}),
		every(time.Hour, "idempotency-purge", func(ctx context.Context) error {
			_, err := cases.PurgeIdempotency(ctx)
			return err
		}),
	}
	remaining := make(chan struct{}, len(jobs))
	for _, j := range jobs {
		go func() { j(); remaining <- struct{}{} }()
	}
	go func() {
		for range jobs {
			<-remaining
		}
		close(done)
	}()
	return done
}

// deliverGap is the least time between two drains of the outbox woken by
// this replica's commits: a notification waits at most this long after its
// flag's commit (measured: with a drain per 2 s poll only, a burst of 800
// deliveries every 2 s held up the submissions behind it and made most of
// their p99).
const deliverGap = 100 * time.Millisecond

// sealGap is deliverGap for the audit sealer: under load, events are in the
// hash chain (and a checkpoint signed) within about this long of their
// commit. Measured with make bench: a run each jobs.seal_interval (1 s) made
// most of the remaining p99.
const sealGap = 100 * time.Millisecond

// deliver posts one notification, signed like Stripe's webhooks:
// Sunpath-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">.
// Sunpath-Delivery is stable across retries so receivers can deduplicate.
func deliver(ctx context.Context, client *http.Client, url, secret string, d postgres.Delivery) error {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(d.Payload)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(d.Payload))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Sunpath-Delivery", d.DeliveryID)
	req.Header.Set("Sunpath-Topic", d.Topic)
	req.Header.Set("Sunpath-Signature", "t="+ts+",v1="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("post: %w", err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("receiver answered %d", resp.StatusCode)
	}
	return nil
}

// stateCollector exports gauges read from the database at scrape time.
type stateCollector struct {
	cases                                               *postgres.Cases
	audit                                               *postgres.AuditStore
	open, oldest, overdue, outbox, unsealed, checkpoint *prometheus.Desc
}

func newStateCollector(cases *postgres.Cases, a *postgres.AuditStore) *stateCollector {
	return &stateCollector{
		cases: cases, audit: a,
		open:       prometheus.NewDesc("sunpath_flags_open", "Unacknowledged flags, by level.", []string{"level"}, nil),
		oldest:     prometheus.NewDesc("sunpath_flags_oldest_open_age_seconds", "Age of the oldest unacknowledged flag, by level.", []string{"level"}, nil),
		overdue:    prometheus.NewDesc("sunpath_flags_overdue", "Unacknowledged flags past their deadline, by level.", []string{"level"}, nil),
		outbox:     prometheus.NewDesc("sunpath_outbox_pending", "Notifications waiting to be delivered.", nil, nil),
		unsealed:   prometheus.NewDesc("sunpath_audit_unsealed_events", "Audit events not yet sealed into the chain.", nil, nil),
		checkpoint: prometheus.NewDesc("sunpath_audit_last_checkpoint_timestamp_seconds", "Time of the last signed audit checkpoint.", nil, nil),
	}
}

func (sc *stateCollector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(sc, ch) }

func (sc *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if st, err := sc.cases.Stats(ctx); err == nil {
		for _, level := range []string{"critical", "urgent", "review"} {
			ch <- prometheus.MustNewConstMetric(sc.open, prometheus.GaugeValue, float64(st.Open[level]), level)
			ch <- prometheus.MustNewConstMetric(sc.oldest, prometheus.GaugeValue, st.OldestAge[level].Seconds(), level)
			ch <- prometheus.MustNewConstMetric(sc.overdue, prometheus.GaugeValue, float64(st.Overdue[level]), level)
		}
		ch <- prometheus.MustNewConstMetric(sc.outbox, prometheus.GaugeValue, float64(st.OutboxPending))
	}
	if st, err := sc.audit.Stats(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(sc.unsealed, prometheus.GaugeValue, float64(st.Pending))
		ts := 0.0
		if !st.LastCheckpoint.IsZero() {
			ts = float64(st.LastCheckpoint.Unix())
		}
		ch <- prometheus.MustNewConstMetric(sc.checkpoint, prometheus.GaugeValue, ts)
	}
}

var randReader = cryptorand.Reader
