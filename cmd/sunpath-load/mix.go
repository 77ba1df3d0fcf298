package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// submission is one PHQ-9 request body with what it should raise.
type submission struct {
	body  []byte
	total int
	item9 bool
}

// band is a PHQ-9 severity band (Kroenke & Spitzer 2002 cut-points) with
// its share of screenings and the chance that item 9 is above 0 in it.
type band struct {
	share    float64
	min, max int // total score range
	item9    float64
}

// mix is the realistic screening distribution (README, Performance): a
// quarter of screenings moderate or worse, about one in ten with item 9
// above 0, item 9 rising with severity as it does in screened samples.
var mix = []band{
	{0.45, 0, 4, 0.02},   // minimal
	{0.30, 5, 9, 0.08},   // mild
	{0.13, 10, 14, 0.20}, // moderate
	{0.08, 15, 19, 0.30}, // moderately severe
	{0.04, 20, 27, 0.45}, // severe
}

// realistic draws a submission from mix: a band, a total in it, items 1-8
// spread to reach the total (item 9 takes 1-2 points when positive).
func realistic(r *rand.Rand) submission {
	u := r.Float64()
	b := mix[len(mix)-1]
	for _, x := range mix {
		if u < x.share {
			b = x
			break
		}
		u -= x.share
	}
	total := b.min + r.IntN(b.max-b.min+1)
	var items [9]int
	if r.Float64() < b.item9 {
		items[8] = 1 + r.IntN(2)
		if items[8] > total {
			total = items[8]
		}
	}
	if total-items[8] > 24 { // items 1-8 reach 24 at most
		if items[8] > 0 {
			items[8] = total - 24
		} else {
			total = 24
		}
	}
	for left := total - items[8]; left > 0; {
		i := r.IntN(8)
		if items[i] < 3 {
			items[i]++
			left--
		}
	}
	return submission{body: phq9(items), total: total, item9: items[8] > 0}
}

// light is the old benchmark's mix: answers 0-1, item 9 always 0, so no
// flag, rule or notification is ever raised.
func light(r *rand.Rand) submission {
	var items [9]int
	total := 0
	for i := 0; i < 8; i++ {
		items[i] = r.IntN(2)
		total += items[i]
	}
	return submission{body: phq9(items), total: total}
}

func phq9(items [9]int) []byte {
	b := []byte(`{"instrument":"phq9","language":"zh-CN","answers":{`)
	for i, v := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `"phq9_%d":%d`, i+1, v)
	}
	return append(b, "}}"...)
}

// createSubjects registers prefix1…prefixN in unit over conns connections.
func createSubjects(ctx context.Context, client *http.Client, base, key, prefix, unit string, n, conns int, out io.Writer) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for w := 0; w < min(conns, 16); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				body := fmt.Sprintf(`{"display_name":"load %d","sex":"unknown","supervision_type":"probation","unit":%q}`, i, unit)
				req, _ := http.NewRequestWithContext(ctx, http.MethodPut, fmt.Sprintf("%s/v1/subjects/%s%d", base, prefix, i), bytes.NewReader([]byte(body)))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+key)
				resp, err := client.Do(req)
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					errs <- fmt.Errorf("PUT subject %s%d: %s", prefix, i, resp.Status)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	_, err := fmt.Fprintf(out, "registered %d subjects\n", n)
	return err
}

// serveHooks answers webhook deliveries with 204 until ctx ends; it
// refuses any address that is not loopback.
func serveHooks(ctx context.Context, addr string, out io.Writer) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return errors.New("-receive must be a loopback address")
	}
	var n atomic.Int64
	srv := &http.Server{Addr: addr, ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		n.Add(1)
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	_, err = fmt.Fprintf(out, "received %d deliveries\n", n.Load())
	return err
}
