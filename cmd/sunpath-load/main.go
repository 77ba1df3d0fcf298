// Command sunpath-load submits PHQ-9 assessments to a running Sunpath
// through its real API, each with its own Idempotency-Key, from many
// connections at once, and reports throughput and latency percentiles.
// It only ever talks to the URL it is given; run it against loopback.
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
	"sync"
	"syscall"
	"time"
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
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *key == "" {
		return fmt.Errorf("-key is required")
	}
	if *subjects < 1 {
		return fmt.Errorf("-subjects must be at least 1")
	}
	tr := &http.Transport{MaxIdleConns: *conns, MaxIdleConnsPerHost: *conns, MaxConnsPerHost: *conns}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	runID := rand.Uint64()

	var mu sync.Mutex
	var lat []time.Duration
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
			status := map[string]int{}
			non2xx, errs := 0, 0
			for i := 0; ctx.Err() == nil; i++ {
				t0 := time.Now()
				if t0.After(end) {
					break
				}
				body := answers(r)
				url := fmt.Sprintf("%s/v1/subjects/%s%d/assessments", *base, *prefix, 1+r.IntN(*subjects))
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+*key)
				req.Header.Set("Idempotency-Key", fmt.Sprintf("load-%x-%d-%d", runID, w, i))
				resp, err := client.Do(req)
				d := time.Since(t0)
				measured := t0.After(measureFrom)
				if err != nil {
					if measured {
						errs++
					}
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if !measured {
					continue
				}
				mine = append(mine, d)
				status[fmt.Sprint(resp.StatusCode)]++
				if resp.StatusCode < 200 || resp.StatusCode > 299 {
					non2xx++
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			for k, v := range status {
				rep.Status[k] += v
			}
			rep.Non2xx += non2xx
			rep.Errors += errs
			mu.Unlock()
		}(w)
	}
	wg.Wait()
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

// answers is a PHQ-9 submission in the minimal or mild band with item 9 at
// 0, so the measured path is the common one: no flag, no notification.
func answers(r *rand.Rand) []byte {
	b := []byte(`{"instrument":"phq9","language":"zh-CN","answers":{`)
	for i := 1; i <= 9; i++ {
		v := r.IntN(2)
		if i == 9 {
			v = 0
		}
		b = fmt.Appendf(b, `"phq9_%d":%d`, i, v)
		if i < 9 {
			b = append(b, ',')
		}
	}
	return append(b, "}}"...)
}
