// Command sunpath-load submits PHQ-9 assessments to a running Sunpath
// through its real API, each with its own Idempotency-Key, from many
// connections at once, and reports throughput and latency percentiles.
// Answers are drawn from a realistic screening mix (see mix below), so the
// flag, notification and consecutive-severity paths run as often as they
// would in service; -retry resends a share of requests with the key and
// body of an earlier one, as clients that lost a reply do.
//
// Two helper modes prepare a run: -create-subjects N registers the people
// the load is spread over, and -receive ADDR answers webhook deliveries
// (flag notifications) with 204. It only ever talks to the URL it is given
// and listens only on the address it is given; run it on loopback.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "sunpath-load:", err)
		os.Exit(1)
	}
}

// Report is the outcome of one load run.
type Report struct {
	Conns     int            `json:"conns"`
	Seconds   float64        `json:"seconds"`
	Requests  int            `json:"requests"`
	PerSecond float64        `json:"per_second"`
	P50ms     float64        `json:"p50_ms"`
	P99ms     float64        `json:"p99_ms"`
	MaxMs     float64        `json:"max_ms"`
	Non2xx    int            `json:"non_2xx"`
	Errors    int            `json:"errors"`
	Status    map[string]int `json:"status"`
	// Retried counts requests that resent an earlier key and body; Item9
	// and Severe count submissions with item 9 above 0 and with a total
	// of 15 or more (the flag and consecutive-rule paths).
	Retried int `json:"retried"`
	Item9   int `json:"item9_positive"`
	Severe  int `json:"moderately_severe_or_worse"`
	// CPUSeconds is the load generator's own CPU time (user+system) over
	// the measured window, so a report can say what the client cost.
	CPUSeconds float64 `json:"cpu_seconds"`
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("sunpath-load", flag.ContinueOnError)
	base := fs.String("url", "http://127.0.0.1:8080", "Sunpath base URL (loopback)")
	key := fs.String("key", "", "API key")
	prefix := fs.String("subject", "LOAD-", "subject ids are this prefix and 1…subjects")
	subjects := fs.Int("subjects", 1, "how many subjects the submissions are spread over")
	conns := fs.Int("conns", 64, "concurrent connections")
	dur := fs.Duration("duration", 20*time.Second, "measured duration")
	warm := fs.Duration("warmup", 3*time.Second, "unmeasured warm-up")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	mixName := fs.String("mix", "realistic", "answers: realistic (see README, Performance) or light (minimal/mild, item 9 always 0)")
	retry := fs.Float64("retry", 0, "share of requests that resend an earlier request's Idempotency-Key and body (0-1)")
	create := fs.Int("create-subjects", 0, "register this many subjects (prefix 1…N) in -unit, then exit")
	unitCode := fs.String("unit", "bench", "unit of the subjects -create-subjects registers")
	receive := fs.String("receive", "", "answer webhook POSTs on this loopback address with 204 until interrupted")
	trace := fs.String("trace", "", "write each measured request's start (Unix time, ms) and latency (ms) to this CSV file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *receive != "" {
		return serveHooks(ctx, *receive, out)
	}
	var draw func(*rand.Rand) submission
	switch *mixName {
	case "realistic":
		draw = realistic
	case "light":
		draw = light
	default:
		return fmt.Errorf("-mix must be realistic or light")
	}
	if *retry < 0 || *retry > 1 {
		return fmt.Errorf("-retry must be from 0 to 1")
	}
	if *key == "" {
		return fmt.Errorf("-key is required")
	}
	if *subjects < 1 {
		return fmt.Errorf("-subjects must be at least 1")
	}
	tr := &http.Transport{MaxIdleConns: *conns, MaxIdleConnsPerHost: *conns, MaxConnsPerHost: *conns}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	if *create > 0 {
		return createSubjects(ctx, client, *base, *key, *prefix, *unitCode, *create, *conns, out)
	}
	runID := rand.Uint64()
	// The load itself goes through fasthttp's client: net/http's cost about
	// 80 µs of CPU a request on the cores the service under test shares, twice
	// what this one does (wrk, which the issue measured with, costs less still).
	host := strings.TrimPrefix(strings.TrimPrefix(*base, "http://"), "https://")
	fast := &fasthttp.HostClient{Addr: host, MaxConns: *conns, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	auth := "Bearer " + *key

	var mu sync.Mutex
	var lat []time.Duration
	var spans [][2]time.Duration // start (from measureFrom), latency: for -trace
	rep := Report{Conns: *conns, Status: map[string]int{}}
	start := time.Now()
	measureFrom := start.Add(*warm)
	end := measureFrom.Add(*dur)
	cpuFrom := make(chan float64, 1)
	time.AfterFunc(time.Until(measureFrom), func() { cpuFrom <- cpuSeconds() })
	var wg sync.WaitGroup
	for w := 0; w < *conns; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(runID, uint64(w)))
			var mine []time.Duration
			var myspans [][2]time.Duration
			status := map[string]int{}
			non2xx, errs, retried, item9, severe := 0, 0, 0, 0, 0
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			var last struct {
				url, key string
				body     []byte
			}
			for i := 0; ctx.Err() == nil; i++ {
				t0 := time.Now()
				if t0.After(end) {
					break
				}
				measured := t0.After(measureFrom)
				url, idem, body := last.url, last.key, last.body
				if body != nil && r.Float64() < *retry {
					if measured {
						retried++
					}
				} else {
					sub := draw(r)
					if measured && sub.item9 {
						item9++
					}
					if measured && sub.total >= 15 {
						severe++
					}
					body = sub.body
					url = fmt.Sprintf("%s/v1/subjects/%s%d/assessments", *base, *prefix, 1+r.IntN(*subjects))
					idem = fmt.Sprintf("load-%x-%d-%d", runID, w, i)
					last.url, last.key, last.body = url, idem, body
				}
				req.SetRequestURI(url)
				req.Header.SetMethod(fasthttp.MethodPost)
				req.Header.SetContentType("application/json")
				req.Header.Set("Authorization", auth)
				req.Header.Set("Idempotency-Key", idem)
				req.SetBody(body)
				err := fast.Do(req, resp)
				d := time.Since(t0)
				if err != nil {
					if measured {
						errs++
					}
					continue
				}
				if !measured {
					continue
				}
				mine = append(mine, d)
				if *trace != "" {
					myspans = append(myspans, [2]time.Duration{t0.Sub(measureFrom), d})
				}
				code := resp.StatusCode()
				status[strconv.Itoa(code)]++
				if code < 200 || code > 299 {
					non2xx++
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			spans = append(spans, myspans...)
			for k, v := range status {
				rep.Status[k] += v
			}
			rep.Non2xx += non2xx
			rep.Errors += errs
			rep.Retried += retried
			rep.Item9 += item9
			rep.Severe += severe
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	if *trace != "" {
		if err := writeTrace(*trace, measureFrom, spans); err != nil {
			return err
		}
	}
	rep.CPUSeconds = cpuSeconds() - <-cpuFrom
	slices.Sort(lat)
	rep.Requests = len(lat)
	rep.Seconds = dur.Seconds()
	rep.PerSecond = float64(len(lat)) / dur.Seconds()
	if n := len(lat); n > 0 {
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		rep.P50ms, rep.P99ms, rep.MaxMs = ms(lat[n/2]), ms(lat[min(n-1, n*99/100)]), ms(lat[n-1])
	}
	if *asJSON {
		return json.NewEncoder(out).Encode(rep)
	}
	_, err := fmt.Fprintf(out, "service: %d conns, %.0f submissions/s, p50 %.1f ms, p99 %.1f ms, max %.1f ms, non-2xx %d, errors %d\n",
		rep.Conns, rep.PerSecond, rep.P50ms, rep.P99ms, rep.MaxMs, rep.Non2xx, rep.Errors)
	return err
}

// cpuSeconds is this process's user+system CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// writeTrace writes spans (start after from, latency) as CSV in
// milliseconds, by start.
func writeTrace(path string, from time.Time, spans [][2]time.Duration) error {
	slices.SortFunc(spans, func(a, b [2]time.Duration) int { return int(a[0] - b[0]) })
	var b bytes.Buffer
	b.WriteString("start_unix_ms,latency_ms\n")
	at := float64(from.UnixMicro()) / 1000
	for _, s := range spans {
		fmt.Fprintf(&b, "%.3f,%.3f\n", at+float64(s[0].Microseconds())/1000, float64(s[1].Microseconds())/1000)
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}
