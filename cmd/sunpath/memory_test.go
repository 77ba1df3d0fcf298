package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/sunpath/sunpath/internal/pgtest"
	"github.com/sunpath/sunpath/internal/sealed"
)

// peakRSS returns a process's peak resident set size (VmHWM) in MiB.
func peakRSS(t *testing.T, pid int) float64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb / 1024
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

var plain struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// plainBinary builds sunpath without the race detector (whose shadow memory
// would multiply what is measured), once per test process.
func plainBinary(t *testing.T) string {
	t.Helper()
	plain.once.Do(func() {
		dir, err := os.MkdirTemp("", "sunpath-plain-")
		if err != nil {
			plain.err = err
			return
		}
		plain.path = filepath.Join(dir, "sunpath")
		cmd := exec.Command("go", "build", "-o", plain.path, ".")
		plain.out, plain.err = cmd.CombinedOutput()
	})
	if plain.err != nil {
		t.Fatalf("go build: %v\n%s", plain.err, plain.out)
	}
	return plain.path
}

// TestConcurrentSignInsBoundMemory: rounds of 40 concurrent sign-ins keep the
// real server's peak memory under 400 MiB (each Argon2id verification holds
// 19 MiB; unbounded, 40 at once took it to ~800 MiB). Sign-ins beyond the
// hashing budget wait briefly, then answer 429 with Retry-After.
func TestConcurrentSignInsBoundMemory(t *testing.T) {
	t.Parallel()
	url := pgtest.NewURL(t)
	const pw = "correct horse battery staple"
	sunpath(t, url, pw+"\n", "user", "create", "--username", "olga", "--role", "admin")
	srv := startServerBinary(t, plainBinary(t), "SUNPATH_DATABASE_URL="+url, "SUNPATH_CRYPTO_KEYS=m1:"+sealed.NewKey(),
		"SUNPATH_HTTP_LOGINS_PER_MINUTE=0") // this test measures the hashing bound, not the sign-in limits
	pid := srv.cmd.Process.Pid
	base := peakRSS(t, pid)
	codes := map[int]int{}
	var mu sync.Mutex
	for round := 0; round < 3; round++ {
		var wg sync.WaitGroup
		for i := 0; i < 40; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := http.Post(srv.base+"/v1/auth/login", "application/json",
					strings.NewReader(`{"username":"olga","password":"`+pw+`"}`))
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
					t.Error("429 without Retry-After")
				}
				mu.Lock()
				codes[resp.StatusCode]++
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	peak := peakRSS(t, pid)
	t.Logf("3 × 40 concurrent sign-ins: %v; peak RSS %.0f MiB (%.0f MiB before)", codes, peak, base)
	if codes[200] == 0 || codes[200]+codes[429] != 120 {
		t.Errorf("codes %v: want successes, and 429 for the rest", codes)
	}
	if peak > 400 {
		t.Errorf("peak RSS %.0f MiB, want under 400 MiB", peak)
	}
}
