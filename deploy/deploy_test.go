package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite generated files (k8s/monitoring/prometheusrule.yaml)")

// repoRoot is the repository root as seen from this package's directory,
// where go test runs.
const repoRoot = ".."

// metric is a documented Sunpath metric: its type, its labels and, where the
// label has a fixed vocabulary, the values it may take.
type metric struct {
	kind   string // counter, gauge or histogram
	labels map[string][]string
}

func labels(names ...string) map[string][]string {
	m := map[string][]string{}
	for _, n := range names {
		m[n] = nil
	}
	return m
}

var (
	levels     = []string{"critical", "urgent", "review"}
	byLevel    = map[string][]string{"level": levels}
	documented = map[string]metric{
		// HTTP and build (internal/httpapi/metrics.go).
		"sunpath_http_request_duration_seconds": {"histogram", labels("route", "method", "status")},
		"sunpath_http_requests_in_flight":       {"gauge", nil},
		"sunpath_build_info":                    {"gauge", labels("version", "go_version")},
		// Database pool (cmd/sunpath/serve.go).
		"sunpath_db_pool_connections":                {"gauge", map[string][]string{"state": {"acquired", "idle", "total"}}},
		"sunpath_db_pool_max_connections":            {"gauge", nil},
		"sunpath_db_pool_acquires_total":             {"counter", nil},
		"sunpath_db_pool_acquire_wait_seconds_total": {"counter", nil},
		"sunpath_db_pool_empty_acquires_total":       {"counter", nil},
		"sunpath_db_pool_canceled_acquires_total":    {"counter", nil},
		"sunpath_write_group_units":                  {"histogram", nil},
		"sunpath_write_groups_lost_total":            {"counter", nil},
		// Risk model (internal/riskmodel/psi.go).
		"sunpath_risk_probability": {"histogram", labels("model")},
		"sunpath_risk_psi":         {"gauge", labels("model")},
		"sunpath_risk_psi_window":  {"gauge", labels("model")},
		// Assessments, flags, overrides, audit and webhooks (issue 9).
		"sunpath_assessments_total":             {"counter", labels("instrument")},
		"sunpath_flags_raised_total":            {"counter", map[string][]string{"level": levels, "code": nil}},
		"sunpath_flags_open":                    {"gauge", byLevel},
		"sunpath_flags_oldest_open_age_seconds": {"gauge", byLevel},
		"sunpath_flags_overdue":                 {"gauge", byLevel},
		"sunpath_flag_escalations_total":        {"counter", byLevel},
		"sunpath_overrides_total": {"counter", map[string][]string{
			"direction": {"stricter", "more_lenient"},
			"status":    {"requested", "approved", "rejected"},
		}},
		"sunpath_audit_events_total":                      {"counter", nil},
		"sunpath_audit_unsealed_events":                   {"gauge", nil},
		"sunpath_audit_last_checkpoint_timestamp_seconds": {"gauge", nil},
		"sunpath_outbox_pending":                          {"gauge", nil},
		"sunpath_webhook_deliveries_total":                {"counter", map[string][]string{"outcome": {"delivered", "failed", "retry"}}},
		"sunpath_webhook_delivery_delay_seconds":          {"histogram", nil},
		// Refusals and sign-in locks (issue 17: internal/refusal, cmd/sunpath/serve.go).
		"sunpath_http_refused_total":   {"counter", map[string][]string{"reason": {"unauthenticated", "rate_limited"}}},
		"sunpath_login_lockouts_total": {"counter", nil},
	}
	// Labels Prometheus attaches to every scraped series.
	targetLabels = labels("job", "instance", "namespace", "pod", "container", "service", "endpoint")
)

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// yamlDocs decodes every document of a (multi-document) YAML file.
func yamlDocs(t *testing.T, name string) []any {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(readFile(t, name)))
	var docs []any
	for {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if v != nil {
			docs = append(docs, v)
		}
	}
}

// get walks maps by string key and slices by int index; nil when absent.
func get(v any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			s, ok := v.([]any)
			if !ok || k >= len(s) {
				return nil
			}
			v = s[k]
		}
	}
	return v
}

func str(v any, keys ...any) string {
	s, _ := get(v, keys...).(string)
	return s
}

func num(v any, keys ...any) (int, bool) {
	n, ok := get(v, keys...).(int)
	return n, ok
}

func list(v any, keys ...any) []any {
	s, _ := get(v, keys...).([]any)
	return s
}

func stringMap(v any) map[string]string {
	m, _ := v.(map[string]any)
	out := map[string]string{}
	for k, v := range m {
		out[k] = fmt.Sprint(v)
	}
	return out
}

// subset reports whether every key of sel has the same value in labels.
func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func TestEveryYAMLFileParses(t *testing.T) {
	n := 0
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ext := filepath.Ext(p); !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
			n++
			if len(yamlDocs(t, p)) == 0 {
				t.Errorf("%s: no YAML document", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Errorf("found %d YAML files under deploy/, want the compose, Kubernetes and Prometheus files", n)
	}
}

// instruction is one Dockerfile instruction with continuations joined.
type instruction struct {
	cmd  string // upper case
	args string
	line int
}

func parseDockerfile(b []byte) []instruction {
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if cont, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(cont + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args), start})
		cur.Reset()
	}
	return out
}

type stage struct {
	image, name string
	instrs      []instruction
}

func TestDockerfile(t *testing.T) {
	var stages []*stage
	for _, in := range parseDockerfile(readFile(t, "Dockerfile")) {
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			s := &stage{image: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				t.Fatalf("Dockerfile:%d: %s before FROM", in.line, in.cmd)
			}
			continue
		}
		last := stages[len(stages)-1]
		last.instrs = append(last.instrs, in)
	}
	if len(stages) != 2 {
		t.Fatalf("Dockerfile has %d stages, want a builder and a runtime stage", len(stages))
	}
	build, final := stages[0], stages[1]
	if !strings.HasPrefix(build.image, "golang:1.26") {
		t.Errorf("builder FROM %s, want golang:1.26", build.image)
	}
	if final.image != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("runtime FROM %s, want gcr.io/distroless/static-debian12:nonroot", final.image)
	}

	ignored := dockerIgnored(t)
	names := map[string]bool{}
	var user, entrypoint, cmd string
	env := map[string]string{}
	var exposed []string
	built := false
	for i, s := range stages {
		for _, in := range s.instrs {
			switch in.cmd {
			case "COPY", "ADD":
				checkCopy(t, in, names, ignored)
			case "RUN":
				if strings.Contains(in.args, "go build") {
					built = true
					checkGoBuild(t, in)
				}
			case "USER":
				if i == len(stages)-1 {
					user = in.args
				}
			case "ENV":
				if i == len(stages)-1 {
					for _, kv := range strings.Fields(in.args) {
						if k, v, ok := strings.Cut(kv, "="); ok {
							env[k] = v
						}
					}
				}
			case "ENTRYPOINT":
				entrypoint = in.args
			case "CMD":
				cmd = in.args
			case "EXPOSE":
				exposed = append(exposed, strings.Fields(in.args)...)
			case "HEALTHCHECK":
				t.Errorf("Dockerfile:%d: HEALTHCHECK cannot run in distroless (no shell); the orchestrator probes /healthz and /readyz", in.line)
			}
		}
		if s.name != "" {
			names[s.name] = true
		}
	}
	if !built {
		t.Error("no RUN instruction builds the binary with go build")
	}
	uid, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("runtime USER %q, want a numeric non-root uid (65532) so runAsNonRoot can verify it", user)
	}
	if entrypoint != `["/app/sunpath"]` {
		t.Errorf(`ENTRYPOINT %s, want ["/app/sunpath"]`, entrypoint)
	}
	if cmd != `["serve"]` {
		t.Errorf(`CMD %s, want ["serve"]`, cmd)
	}
	if !slices.Contains(exposed, "8080") {
		t.Errorf("EXPOSE %v, want 8080", exposed)
	}
	for k, want := range map[string]string{"SUNPATH_MODELS_DIR": "/app/models", "SUNPATH_HTTP_ADDR": "0.0.0.0:8080"} {
		if env[k] != want {
			t.Errorf("ENV %s=%q, want %q", k, env[k], want)
		}
	}
}

// dockerIgnored returns the patterns of deploy/Dockerfile.dockerignore, which
// BuildKit uses for `docker build -f deploy/Dockerfile .`.
func dockerIgnored(t *testing.T) []string {
	var pats []string
	for _, l := range strings.Split(string(readFile(t, "Dockerfile.dockerignore")), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			pats = append(pats, l)
		}
	}
	for _, must := range []string{".git", ".data", "sunpath.yaml", "**/.env"} {
		if !slices.Contains(pats, must) {
			t.Errorf("Dockerfile.dockerignore does not exclude %s", must)
		}
	}
	return pats
}

func checkCopy(t *testing.T, in instruction, stages map[string]bool, ignored []string) {
	t.Helper()
	f := strings.Fields(in.args)
	from := ""
	for len(f) > 0 && strings.HasPrefix(f[0], "--") {
		if v, ok := strings.CutPrefix(f[0], "--from="); ok {
			from = v
		}
		f = f[1:]
	}
	if len(f) < 2 {
		t.Errorf("Dockerfile:%d: %s needs a source and a destination", in.line, in.cmd)
		return
	}
	if from != "" {
		if !stages[from] {
			t.Errorf("Dockerfile:%d: COPY --from=%s names no earlier stage", in.line, from)
		}
		return
	}
	for _, src := range f[:len(f)-1] {
		matches, err := filepath.Glob(filepath.Join(repoRoot, src))
		if err != nil || len(matches) == 0 {
			t.Errorf("Dockerfile:%d: COPY source %s does not exist in the repository (the build context is the repository root)", in.line, src)
		}
		top := strings.Split(strings.TrimPrefix(path.Clean(src), "./"), "/")[0]
		if slices.Contains(ignored, top) {
			t.Errorf("Dockerfile:%d: COPY source %s is excluded by Dockerfile.dockerignore", in.line, src)
		}
	}
}

func checkGoBuild(t *testing.T, in instruction) {
	t.Helper()
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version="} {
		if !strings.Contains(in.args, want) {
			t.Errorf("Dockerfile:%d: go build lacks %s", in.line, want)
		}
	}
	f := strings.Fields(in.args)
	if pkg := f[len(f)-1]; pkg != "./cmd/sunpath" {
		t.Errorf("Dockerfile:%d: go build builds %s, want ./cmd/sunpath", in.line, pkg)
	}
	// The package must exist, be a main package and declare main.version
	// (-X silently ignores a missing variable).
	files, _ := filepath.Glob(filepath.Join(repoRoot, "cmd", "sunpath", "*.go"))
	if len(files) == 0 {
		t.Errorf("Dockerfile:%d: ./cmd/sunpath has no Go files", in.line)
	}
	var isMain, hasVersion bool
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b := readFile(t, f)
		isMain = isMain || regexp.MustCompile(`(?m)^package main\b`).Match(b)
		hasVersion = hasVersion || regexp.MustCompile(`(?m)^\s*(var\s+)?version\s*(string\s*)?=`).Match(b)
	}
	if !isMain {
		t.Errorf("Dockerfile:%d: ./cmd/sunpath is not a main package in this repository", in.line)
	}
	if !hasVersion {
		t.Errorf("Dockerfile:%d: ./cmd/sunpath declares no version variable for -X main.version", in.line)
	}
}

func TestCompose(t *testing.T) {
	docs := yamlDocs(t, "compose.yaml")
	c := docs[0]
	for _, name := range []string{"postgres", "migrate", "sunpath", "prometheus", "grafana"} {
		if get(c, "services", name) == nil {
			t.Errorf("compose.yaml: no service %s", name)
		}
	}
	pg := get(c, "services", "postgres")
	if img := str(pg, "image"); !strings.HasPrefix(img, "postgres:16") {
		t.Errorf("postgres image %q, want postgres:16", img)
	}
	if hc := fmt.Sprint(get(pg, "healthcheck", "test")); !strings.Contains(hc, "pg_isready") {
		t.Errorf("postgres healthcheck %s does not use pg_isready", hc)
	}
	command := fmt.Sprint(get(pg, "command"))
	for _, bad := range []string{"fsync=off", "synchronous_commit=off", "full_page_writes=off"} {
		if strings.Contains(command, bad) {
			t.Errorf("postgres command turns durability off (%s); Sunpath refuses to serve on it", bad)
		}
	}
	vol := str(pg, "volumes", 0)
	name, _, _ := strings.Cut(vol, ":")
	if _, ok := get(c, "volumes").(map[string]any)[name]; !ok || strings.HasPrefix(name, ".") {
		t.Errorf("postgres data %q is not a named volume", vol)
	}
	if got := fmt.Sprint(get(c, "services", "migrate", "command")); got != "[migrate]" {
		t.Errorf("migrate command %s, want [migrate]", got)
	}
	app := get(c, "services", "sunpath")
	if got := fmt.Sprint(get(app, "command")); got != "[serve]" {
		t.Errorf("sunpath command %s, want [serve]", got)
	}
	if got := str(app, "depends_on", "migrate", "condition"); got != "service_completed_successfully" {
		t.Errorf("sunpath depends on migrate with %q, want service_completed_successfully", got)
	}
	if got := str(app, "depends_on", "postgres", "condition"); got != "service_healthy" {
		t.Errorf("sunpath depends on postgres with %q, want service_healthy", got)
	}
	if !strings.Contains(fmt.Sprint(get(app, "ports")), "8080:8080") {
		t.Errorf("sunpath ports %v do not publish 8080", get(app, "ports"))
	}

	// Secrets come from deploy/.env, never from compose.yaml itself, and
	// every required variable is in the example env file.
	example := string(readFile(t, "compose.env.example"))
	for svc, s := range get(c, "services").(map[string]any) {
		for k, v := range stringMap(get(s, "environment")) {
			if (strings.Contains(k, "PASSWORD") || strings.Contains(k, "DATABASE_URL")) && !strings.HasPrefix(v, "${") {
				t.Errorf("service %s: %s is a literal; take it from deploy/.env", svc, k)
			}
		}
		for _, m := range list(s, "volumes") {
			src, _, _ := strings.Cut(fmt.Sprint(m), ":")
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(src); err != nil {
					t.Errorf("service %s mounts %s, which does not exist under deploy/", svc, src)
				}
			}
		}
	}
	for _, m := range regexp.MustCompile(`\$\{([A-Z_]+):\?`).FindAllStringSubmatch(string(readFile(t, "compose.yaml")), -1) {
		if !regexp.MustCompile(`(?m)^` + m[1] + `=`).MatchString(example) {
			t.Errorf("compose.env.example does not set required %s", m[1])
		}
	}
	if !slices.Contains(strings.Fields(string(readFile(t, ".gitignore"))), ".env") {
		t.Error("deploy/.gitignore does not ignore .env")
	}
	mounts := fmt.Sprint(get(c, "services", "prometheus", "volumes"))
	for _, f := range []string{"prometheus/prometheus.yml", "prometheus/alerts.yml"} {
		if !strings.Contains(mounts, f) {
			t.Errorf("prometheus does not mount %s", f)
		}
	}
}

// object is a Kubernetes object from a manifest, with where it came from.
type object struct {
	file string
	m    map[string]any
}

func (o object) kind() string { return str(o.m, "kind") }
func (o object) name() string { return str(o.m, "metadata", "name") }

type kustomization struct {
	dir     string
	m       map[string]any
	objects []object
}

// loadKustomizations reads every kustomization under k8s/ and the objects of
// the files it lists.
func loadKustomizations(t *testing.T) []*kustomization {
	t.Helper()
	var ks []*kustomization
	err := filepath.WalkDir("k8s", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Name() != "kustomization.yaml" {
			return err
		}
		k := &kustomization{dir: filepath.Dir(p), m: yamlDocs(t, p)[0].(map[string]any)}
		for _, r := range list(k.m, "resources") {
			rp := filepath.Join(k.dir, fmt.Sprint(r))
			fi, err := os.Stat(rp)
			if err != nil {
				t.Errorf("%s lists resource %v, which does not exist", p, r)
				continue
			}
			if fi.IsDir() {
				continue
			}
			for _, doc := range yamlDocs(t, rp) {
				k.objects = append(k.objects, object{rp, doc.(map[string]any)})
			}
		}
		ks = append(ks, k)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func TestKustomizationsListEveryManifest(t *testing.T) {
	listed := map[string]bool{}
	for _, k := range loadKustomizations(t) {
		for _, r := range list(k.m, "resources") {
			listed[filepath.Join(k.dir, fmt.Sprint(r))] = true
		}
	}
	err := filepath.WalkDir("k8s", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Base(p) == "kustomization.yaml" {
			return err
		}
		switch {
		case strings.HasSuffix(p, ".example.yaml"):
			if listed[p] {
				t.Errorf("%s is an example and must not be in a kustomization", p)
			}
			for _, doc := range yamlDocs(t, p) {
				for k, v := range stringMap(get(doc, "stringData")) {
					// A basic-auth username (the login role's name) is no secret.
					if v != "" && !strings.Contains(v, "REPLACE-ME") && k != "username" {
						t.Errorf("%s: %s has a value that is not a REPLACE-ME placeholder", p, k)
					}
				}
			}
		case !listed[p]:
			t.Errorf("%s is in no kustomization", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// kinds indexes the objects of all kustomizations by kind.
func kinds(t *testing.T, ks []*kustomization) map[string][]object {
	t.Helper()
	out := map[string][]object{}
	for _, k := range ks {
		for _, o := range k.objects {
			out[o.kind()] = append(out[o.kind()], o)
			if o.kind() == "Secret" {
				t.Errorf("%s: a Secret in a kustomization; reference secrets, never ship them", o.file)
			}
			if o.kind() != "Namespace" && str(o.m, "metadata", "namespace") != "sunpath" {
				t.Errorf("%s: %s %s is not in namespace sunpath", o.file, o.kind(), o.name())
			}
		}
	}
	return out
}

func one(t *testing.T, objs map[string][]object, kind string) object {
	t.Helper()
	if len(objs[kind]) != 1 {
		t.Fatalf("%d objects of kind %s, want 1", len(objs[kind]), kind)
	}
	return objs[kind][0]
}

func TestKubernetes(t *testing.T) {
	ks := loadKustomizations(t)
	objs := kinds(t, ks)
	for _, kind := range []string{"Namespace", "ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler",
		"PodDisruptionBudget", "NetworkPolicy", "Job", "Cluster", "ScheduledBackup", "PodMonitor", "PrometheusRule"} {
		if len(objs[kind]) == 0 {
			t.Errorf("no %s in deploy/k8s", kind)
		}
	}
	dep := one(t, objs, "Deployment")
	podLabels := stringMap(get(dep.m, "spec", "template", "metadata", "labels"))
	selector := stringMap(get(dep.m, "spec", "selector", "matchLabels"))
	if !subset(selector, podLabels) {
		t.Errorf("Deployment selector %v does not match its pod labels %v", selector, podLabels)
	}
	pod := get(dep.m, "spec", "template", "spec")
	checkPod(t, "Deployment", pod)
	ctr := get(pod, "containers", 0)
	if p := str(ctr, "livenessProbe", "httpGet", "path"); p != "/healthz" {
		t.Errorf("liveness probe path %q, want /healthz", p)
	}
	if p := str(ctr, "readinessProbe", "httpGet", "path"); p != "/readyz" {
		t.Errorf("readiness probe path %q, want /readyz", p)
	}
	if get(ctr, "startupProbe", "httpGet") == nil {
		t.Error("Deployment has no startup probe")
	}
	if args := fmt.Sprint(get(ctr, "args")); args != "[serve]" {
		t.Errorf("Deployment args %s, want [serve]", args)
	}

	// Graceful shutdown: the grace period covers the preStop sleep and the
	// server's own shutdown timeout.
	cm := one(t, objs, "ConfigMap")
	shutdown, err := time.ParseDuration(str(cm.m, "data", "SUNPATH_HTTP_SHUTDOWN_TIMEOUT"))
	if err != nil {
		t.Errorf("ConfigMap SUNPATH_HTTP_SHUTDOWN_TIMEOUT: %v", err)
	}
	sleep, _ := num(ctr, "lifecycle", "preStop", "sleep", "seconds")
	if sleep == 0 {
		t.Error("Deployment has no preStop sleep to let load balancers drain")
	}
	grace, _ := num(pod, "terminationGracePeriodSeconds")
	if need := time.Duration(sleep)*time.Second + shutdown; time.Duration(grace)*time.Second <= need {
		t.Errorf("terminationGracePeriodSeconds %d, want more than preStop %ds + shutdown %v", grace, sleep, shutdown)
	}
	if env := stringMap(get(cm.m, "data")); env["SUNPATH_HTTP_ADDR"] != "0.0.0.0:8080" {
		t.Errorf("ConfigMap SUNPATH_HTTP_ADDR %q, want 0.0.0.0:8080", env["SUNPATH_HTTP_ADDR"])
	}

	// Replicas belong to the HPA; at least two at all times.
	if n, ok := num(dep.m, "spec", "replicas"); ok && n < 2 {
		t.Errorf("Deployment replicas %d, want at least 2 (or none, left to the HPA)", n)
	}
	hpa := one(t, objs, "HorizontalPodAutoscaler")
	minR, _ := num(hpa.m, "spec", "minReplicas")
	maxR, _ := num(hpa.m, "spec", "maxReplicas")
	if minR < 2 || minR > maxR {
		t.Errorf("HPA min %d max %d, want 2 ≤ min ≤ max", minR, maxR)
	}
	if str(hpa.m, "spec", "scaleTargetRef", "kind") != "Deployment" || str(hpa.m, "spec", "scaleTargetRef", "name") != dep.name() {
		t.Errorf("HPA targets %v, want Deployment %s", get(hpa.m, "spec", "scaleTargetRef"), dep.name())
	}

	pdb := one(t, objs, "PodDisruptionBudget")
	if sel := stringMap(get(pdb.m, "spec", "selector", "matchLabels")); !subset(sel, podLabels) {
		t.Errorf("PodDisruptionBudget selector %v does not match the Deployment's pods %v", sel, podLabels)
	}

	svc := one(t, objs, "Service")
	if sel := stringMap(get(svc.m, "spec", "selector")); !subset(sel, podLabels) {
		t.Errorf("Service selector %v does not match the Deployment's pods %v", sel, podLabels)
	}
	var portNames []string
	for _, p := range list(ctr, "ports") {
		portNames = append(portNames, str(p, "name"), fmt.Sprint(get(p, "containerPort")))
	}
	for _, p := range list(svc.m, "spec", "ports") {
		if tp := fmt.Sprint(get(p, "targetPort")); !slices.Contains(portNames, tp) {
			t.Errorf("Service targetPort %s is not a container port (%v)", tp, portNames)
		}
	}

	checkNetworkPolicies(t, objs["NetworkPolicy"], podLabels)

	job := one(t, objs, "Job")
	jobPod := get(job.m, "spec", "template", "spec")
	checkPod(t, "Job", jobPod)
	if args := fmt.Sprint(get(jobPod, "containers", 0, "args")); args != "[migrate]" {
		t.Errorf("Job args %s, want [migrate]", args)
	}
	if rp := str(jobPod, "restartPolicy"); rp != "Never" && rp != "OnFailure" {
		t.Errorf("Job restartPolicy %q", rp)
	}
	if a, b := str(jobPod, "containers", 0, "image"), str(ctr, "image"); a != b {
		t.Errorf("Job image %q differs from the Deployment's %q", a, b)
	}
	// Both kustomizations pin the image the same way, so the migration runs
	// the binary that is about to serve.
	var images []any
	for _, k := range ks {
		if im := get(k.m, "images"); im != nil {
			images = append(images, im)
		}
	}
	if len(images) != 2 || !reflect.DeepEqual(images[0], images[1]) {
		t.Errorf("images in k8s/kustomization.yaml and k8s/migrate/kustomization.yaml differ: %v", images)
	}

	checkCNPG(t, one(t, objs, "Cluster"), cm, maxR)
}

// checkPod checks the security and resource settings every Sunpath pod has.
func checkPod(t *testing.T, what string, pod any) {
	t.Helper()
	if get(pod, "securityContext", "runAsNonRoot") != true {
		t.Errorf("%s: pod securityContext.runAsNonRoot is not true", what)
	}
	if uid, _ := num(pod, "securityContext", "runAsUser"); uid == 0 {
		t.Errorf("%s: pod runs as uid 0", what)
	}
	if get(pod, "automountServiceAccountToken") != false {
		t.Errorf("%s: service account token is mounted; Sunpath never calls the Kubernetes API", what)
	}
	ctrs := list(pod, "containers")
	if len(ctrs) == 0 {
		t.Fatalf("%s: no containers", what)
	}
	for _, c := range ctrs {
		n := str(c, "name")
		if str(c, "image") == "" {
			t.Errorf("%s/%s: no image", what, n)
		}
		sc := get(c, "securityContext")
		if get(sc, "readOnlyRootFilesystem") != true || get(sc, "allowPrivilegeEscalation") != false {
			t.Errorf("%s/%s: want readOnlyRootFilesystem true and allowPrivilegeEscalation false, got %v", what, n, sc)
		}
		if drop := fmt.Sprint(get(sc, "capabilities", "drop")); drop != "[ALL]" {
			t.Errorf("%s/%s: capabilities drop %s, want [ALL]", what, n, drop)
		}
		for _, kind := range []string{"requests", "limits"} {
			for _, r := range []string{"cpu", "memory"} {
				if get(c, "resources", kind, r) == nil {
					t.Errorf("%s/%s: no resources.%s.%s", what, n, kind, r)
				}
			}
		}
		var dbURL bool
		for _, e := range list(c, "env") {
			if v := str(e, "value"); strings.Contains(v, "://") || strings.Contains(strings.ToLower(str(e, "name")), "password") {
				t.Errorf("%s/%s: env %s carries a literal secret; use secretKeyRef", what, n, str(e, "name"))
			}
			if str(e, "name") == "SUNPATH_DATABASE_URL" {
				dbURL = str(e, "valueFrom", "secretKeyRef", "name") == "sunpath-db" && str(e, "valueFrom", "secretKeyRef", "key") == "url"
			}
		}
		if !dbURL {
			t.Errorf("%s/%s: SUNPATH_DATABASE_URL does not come from secret sunpath-db key url", what, n)
		}
	}
}

func checkNetworkPolicies(t *testing.T, nps []object, podLabels map[string]string) {
	t.Helper()
	var server *object
	for i, np := range nps {
		if subset(stringMap(get(np.m, "spec", "podSelector", "matchLabels")), podLabels) {
			server = &nps[i]
		}
	}
	if server == nil {
		t.Fatal("no NetworkPolicy selects the Deployment's pods")
	}
	types := fmt.Sprint(get(server.m, "spec", "policyTypes"))
	if !strings.Contains(types, "Ingress") || !strings.Contains(types, "Egress") {
		t.Errorf("NetworkPolicy %s policyTypes %s, want Ingress and Egress", server.name(), types)
	}
	if len(list(server.m, "spec", "ingress")) == 0 {
		t.Errorf("NetworkPolicy %s admits no ingress (ingress controller and Prometheus)", server.name())
	}
	var ports []string
	for _, e := range list(server.m, "spec", "egress") {
		for _, p := range list(e, "ports") {
			ports = append(ports, fmt.Sprint(get(p, "port")))
		}
	}
	for _, want := range []string{"53", "5432", "443"} {
		if !slices.Contains(ports, want) {
			t.Errorf("NetworkPolicy %s egress ports %v lack %s (DNS, PostgreSQL, webhooks)", server.name(), ports, want)
		}
	}
}

func checkCNPG(t *testing.T, c object, cm object, maxReplicas int) {
	t.Helper()
	if str(c.m, "apiVersion") != "postgresql.cnpg.io/v1" {
		t.Errorf("Cluster apiVersion %q", str(c.m, "apiVersion"))
	}
	if n, _ := num(c.m, "spec", "instances"); n < 3 {
		t.Errorf("CloudNativePG Cluster has %d instances, want at least 3", n)
	}
	params := stringMap(get(c.m, "spec", "postgresql", "parameters"))
	for _, p := range []string{"fsync", "synchronous_commit", "full_page_writes"} {
		if v, ok := params[p]; ok && v != "on" {
			t.Errorf("Cluster parameter %s=%s; Sunpath refuses to serve unless it is on", p, v)
		}
	}
	syncN, _ := num(c.m, "spec", "postgresql", "synchronous", "number")
	minSync, _ := num(c.m, "spec", "minSyncReplicas")
	if syncN < 1 && minSync < 1 {
		t.Error("Cluster has no synchronous replication (postgresql.synchronous or minSyncReplicas)")
	}
	if get(c.m, "spec", "backup", "barmanObjectStore", "destinationPath") == nil {
		t.Error("Cluster has no backup.barmanObjectStore")
	}
	conns, err1 := strconv.Atoi(params["max_connections"])
	perPod, err2 := strconv.Atoi(str(cm.m, "data", "SUNPATH_DATABASE_MAX_CONNS"))
	if err1 != nil || err2 != nil {
		t.Errorf("max_connections %q, SUNPATH_DATABASE_MAX_CONNS %q: want both set", params["max_connections"], str(cm.m, "data", "SUNPATH_DATABASE_MAX_CONNS"))
	} else if need := maxReplicas*perPod + perPod + 10; conns < need {
		t.Errorf("max_connections %d < %d (HPA max %d x %d per pod + migration + 10 spare)", conns, need, maxReplicas, perPod)
	}
}

// TestKustomizeBuild renders every kustomization when kubectl or kustomize
// is installed (it is not needed otherwise: the checks above read the files).
func TestKustomizeBuild(t *testing.T) {
	var argv []string
	if p, err := exec.LookPath("kustomize"); err == nil {
		argv = []string{p, "build"}
	} else if p, err := exec.LookPath("kubectl"); err == nil {
		argv = []string{p, "kustomize"}
	} else {
		t.Skip("neither kustomize nor kubectl on PATH; the structural checks of TestKubernetes still ran")
	}
	for _, k := range loadKustomizations(t) {
		out, err := exec.Command(argv[0], append(argv[1:], k.dir)...).CombinedOutput()
		if err != nil {
			t.Errorf("%s %s: %v\n%s", strings.Join(argv, " "), k.dir, err, out)
		}
	}
}

// promRule is the part of an alerting or recording rule the tests read.
type promRule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type promRules struct {
	Groups []struct {
		Name  string     `yaml:"name"`
		Rules []promRule `yaml:"rules"`
	} `yaml:"groups"`
}

func loadRules(t *testing.T) []promRule {
	t.Helper()
	var rf promRules
	if err := yaml.Unmarshal(readFile(t, "prometheus/alerts.yml"), &rf); err != nil {
		t.Fatal(err)
	}
	var rules []promRule
	for _, g := range rf.Groups {
		rules = append(rules, g.Rules...)
	}
	return rules
}

func TestAlertRules(t *testing.T) {
	anchors := runbookAnchors(t)
	rules := loadRules(t)
	seen := map[string]bool{}
	for _, r := range rules {
		if r.Alert == "" {
			continue
		}
		seen[r.Alert] = true
		if s := r.Labels["severity"]; s != "critical" && s != "warning" && s != "info" {
			t.Errorf("%s: severity %q, want critical, warning or info", r.Alert, s)
		}
		for _, a := range []string{"summary", "description", "runbook_url"} {
			if r.Annotations[a] == "" {
				t.Errorf("%s: no %s annotation", r.Alert, a)
			}
		}
		const base = "https://github.com/sunpath/sunpath/blob/main/deploy/RUNBOOK.md#"
		anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], base)
		if !ok || !anchors[anchor] {
			t.Errorf("%s: runbook_url %q is not a heading of deploy/RUNBOOK.md", r.Alert, r.Annotations["runbook_url"])
		}
	}
	for _, want := range []string{"SunpathCriticalFlagOverdue", "SunpathHighErrorRate", "SunpathHighLatency",
		"SunpathAuditCheckpointLag", "SunpathModelDriftHigh", "SunpathModelDriftModerate", "SunpathDBPoolSaturated",
		"SunpathUnavailable", "SunpathNotReady"} {
		if !seen[want] {
			t.Errorf("no alert %s", want)
		}
	}
	// A critical flag past its deadline must page, at once.
	for _, r := range rules {
		if r.Alert == "SunpathCriticalFlagOverdue" {
			if r.Labels["severity"] != "critical" || (r.For != "" && r.For != "0s" && r.For != "0m") {
				t.Errorf("SunpathCriticalFlagOverdue: severity %q for %q, want critical with no delay", r.Labels["severity"], r.For)
			}
			if !strings.Contains(r.Expr, `sunpath_flags_overdue{level="critical"}`) {
				t.Errorf("SunpathCriticalFlagOverdue watches %q", r.Expr)
			}
		}
	}
}

// runbookAnchors returns the GitHub anchors of RUNBOOK.md's headings.
func runbookAnchors(t *testing.T) map[string]bool {
	t.Helper()
	anchors := map[string]bool{}
	count := map[string]int{}
	inCode := false
	for _, l := range strings.Split(string(readFile(t, "RUNBOOK.md")), "\n") {
		if strings.HasPrefix(l, "```") {
			inCode = !inCode
			continue
		}
		if inCode || !strings.HasPrefix(l, "#") {
			continue
		}
		a := githubAnchor(strings.TrimLeft(l, "# "))
		if n := count[a]; n > 0 {
			anchors[fmt.Sprintf("%s-%d", a, n)] = true
		} else {
			anchors[a] = true
		}
		count[a]++
	}
	return anchors
}

var notAnchor = regexp.MustCompile(`[^\p{L}\p{N}_\- ]`)

// githubAnchor is GitHub's heading slug: lower case, punctuation dropped,
// spaces to hyphens.
func githubAnchor(h string) string {
	h = strings.ReplaceAll(h, "`", "")
	return strings.ReplaceAll(notAnchor.ReplaceAllString(strings.ToLower(strings.TrimSpace(h)), ""), " ", "-")
}

func TestRunbookLinks(t *testing.T) {
	anchors := runbookAnchors(t)
	// Links to runbook sections from the other artifacts.
	re := regexp.MustCompile(`RUNBOOK\.md#([a-z0-9_-]+)`)
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		for _, m := range re.FindAllStringSubmatch(string(readFile(t, p)), -1) {
			if !anchors[m[1]] {
				t.Errorf("%s links to RUNBOOK.md#%s, which is no heading", p, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Internal links of the runbook itself.
	for _, m := range regexp.MustCompile(`\]\(#([a-z0-9_-]+)\)`).FindAllStringSubmatch(string(readFile(t, "RUNBOOK.md")), -1) {
		if !anchors[m[1]] {
			t.Errorf("RUNBOOK.md links to #%s, which is no heading", m[1])
		}
	}
}

var (
	stringLit   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	selectorRe  = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^{}]*)\}`)
	matcherRe   = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"`)
	bracesRe    = regexp.MustCompile(`\{[^{}]*\}`)
	rangeRe     = regexp.MustCompile(`\[[^\]]*\]`)
	groupingRe  = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	identRe     = regexp.MustCompile(`(^|[^a-zA-Z0-9_.$])([a-zA-Z_:][a-zA-Z0-9_:]*)`)
	plainAltRe  = regexp.MustCompile(`^[a-z_]+(\|[a-z_]+)*$`)
	labelValues = regexp.MustCompile(`^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)
	// promqlWords are the functions and keywords an expression may use.
	promqlWords = wordSet(`abs absent absent_over_time avg avg_over_time bottomk ceil changes clamp
		clamp_max clamp_min count count_over_time count_values day_of_month day_of_week delta deriv exp
		floor group histogram_quantile histogram_count histogram_sum idelta increase irate label_join
		label_replace last_over_time ln log2 log10 max max_over_time min min_over_time predict_linear
		quantile quantile_over_time rate resets round scalar sgn sort sort_desc sqrt stddev stdvar sum
		sum_over_time time timestamp topk vector by without on ignoring group_left group_right and or
		unless bool offset inf nan`)
)

func wordSet(words string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(words) {
		m[w] = true
	}
	return m
}

// checkExpr checks that every metric an expression reads is documented (or
// a Prometheus/Go/process metric), with documented labels and label values.
func checkExpr(errorf func(format string, args ...any), where, expr string) {
	if m := labelValues.FindStringSubmatch(strings.TrimSpace(expr)); m != nil {
		checkExpr(errorf, where, m[1])
		name := strings.TrimSpace(selectorRe.ReplaceAllString(m[1], "$1"))
		if d, ok := documented[name]; ok {
			if _, ok := d.labels[m[2]]; !ok && !hasKey(targetLabels, m[2]) {
				errorf("%s: label_values(%s, %s): %s has no label %s", where, m[1], m[2], name, m[2])
			}
		}
		return
	}
	for _, sel := range selectorRe.FindAllStringSubmatch(expr, -1) {
		name := baseName(sel[1])
		d, ok := documented[name]
		if !ok {
			continue // reported below
		}
		for _, mt := range matcherRe.FindAllStringSubmatch(sel[2], -1) {
			label, op, value := mt[1], mt[2], mt[3]
			if label == "le" && d.kind == "histogram" {
				continue
			}
			allowed, ok := d.labels[label]
			if !ok {
				if !hasKey(targetLabels, label) {
					errorf("%s: %s has no label %q (documented: %v)", where, sel[1], label, keys(d.labels))
				}
				continue
			}
			if allowed == nil || strings.Contains(value, "$") || (op != "=" && op != "=~") {
				continue
			}
			vals := []string{value}
			if op == "=~" {
				if !plainAltRe.MatchString(value) {
					continue
				}
				vals = strings.Split(value, "|")
			}
			for _, v := range vals {
				if !slices.Contains(allowed, v) {
					errorf("%s: %s{%s%s%q}: %q is not one of %v", where, sel[1], label, op, value, v, allowed)
				}
			}
		}
	}
	s := stringLit.ReplaceAllString(expr, `""`)
	s = bracesRe.ReplaceAllString(s, "{}")
	s = rangeRe.ReplaceAllString(s, "[]")
	s = groupingRe.ReplaceAllString(s, "$1()")
	for _, m := range identRe.FindAllStringSubmatch(s, -1) {
		id := m[2]
		switch {
		case promqlWords[id]:
		case id == "up" || strings.HasPrefix(id, "go_") || strings.HasPrefix(id, "process_"):
		case strings.HasPrefix(id, "sunpath_"):
			name := baseName(id)
			d, ok := documented[name]
			switch {
			case !ok:
				errorf("%s: unknown metric %s (not among the documented sunpath_* metrics)", where, id)
			case d.kind == "histogram" && name == id:
				errorf("%s: histogram %s is read without _bucket, _sum or _count", where, id)
			case d.kind != "histogram" && name != id:
				errorf("%s: %s: %s is a %s, not a histogram", where, id, name, d.kind)
			}
		default:
			errorf("%s: unknown identifier %q in %q", where, id, expr)
		}
	}
}

func hasKey[V any](m map[string]V, k string) bool {
	_, ok := m[k]
	return ok
}

func keys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// baseName strips the series suffixes of a histogram.
func baseName(id string) string {
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if b, ok := strings.CutSuffix(id, suf); ok {
			if d, ok := documented[b]; ok && d.kind == "histogram" {
				return b
			}
		}
	}
	return id
}

// dashboardExprs returns every PromQL expression and template query of a
// Grafana dashboard.
func dashboardExprs(v any, out *[]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && (k == "expr" || (k == "query" && strings.HasPrefix(s, "label_values("))) {
				*out = append(*out, s)
				continue
			}
			dashboardExprs(x, out)
		}
	case []any:
		for _, x := range v {
			dashboardExprs(x, out)
		}
	}
}

func TestMetricNames(t *testing.T) {
	for _, r := range loadRules(t) {
		checkExpr(t.Errorf, "alerts.yml "+r.Alert+r.Record, r.Expr)
	}
	// Series in the rule tests must be real series too, or the tests prove
	// nothing about production.
	var rt struct {
		Tests []struct {
			Name   string `yaml:"name"`
			Series []struct {
				Series string `yaml:"series"`
			} `yaml:"input_series"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(readFile(t, "prometheus/alerts_test.yml"), &rt); err != nil {
		t.Fatal(err)
	}
	for _, tc := range rt.Tests {
		for _, s := range tc.Series {
			checkExpr(t.Errorf, "alerts_test.yml "+tc.Name, s.Series)
		}
	}

	dashboards, _ := filepath.Glob("grafana/dashboards/*.json")
	if len(dashboards) == 0 {
		t.Fatal("no Grafana dashboard in grafana/dashboards")
	}
	for _, f := range dashboards {
		var d map[string]any
		if err := json.Unmarshal(readFile(t, f), &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if str(d, "uid") == "" || str(d, "title") == "" || len(list(d, "panels")) == 0 {
			t.Errorf("%s: want uid, title and panels", f)
		}
		var exprs []string
		dashboardExprs(d, &exprs)
		used := strings.Join(exprs, "\n")
		for i, e := range exprs {
			checkExpr(t.Errorf, fmt.Sprintf("%s expr %d", f, i), e)
		}
		// Every documented metric has a panel.
		for name, m := range documented {
			if !regexp.MustCompile(`\b` + name + `(_bucket|_sum|_count)?\b`).MatchString(used) {
				t.Errorf("%s: no panel shows %s (%s)", f, name, m.kind)
			}
		}
	}
}

// The checker itself: a typo must fail.
func TestCheckExprCatchesTypos(t *testing.T) {
	for _, expr := range []string{
		`max(sunpath_flag_overdue{level="critical"}) > 0`,
		`max(sunpath_flags_overdue{level="critcal"}) > 0`,
		`max(sunpath_flags_overdue{levle="critical"}) > 0`,
		`sum(rate(sunpath_http_request_duration_seconds[5m]))`,
		`sum(rate(sunpth_http_request_duration_seconds_count[5m]))`,
		`sunpath_db_pool_connections{state=~"acquired|idel"}`,
		`rate(sunpath_flags_open_count[5m])`,
	} {
		var errs []string
		checkExpr(func(f string, a ...any) { errs = append(errs, fmt.Sprintf(f, a...)) }, "typo", expr)
		if len(errs) == 0 {
			t.Errorf("checkExpr(%q) found nothing wrong", expr)
		}
	}
	valid := `histogram_quantile(0.99, sum by (le) (rate(sunpath_http_request_duration_seconds_bucket{route!~"/healthz"}[5m]))) > 1 and on() max(up{job="sunpath"}) == 1`
	checkExpr(t.Errorf, "valid", valid)
}

// prometheusRule renders alerts.yml as a Prometheus Operator PrometheusRule.
func prometheusRule(t *testing.T) []byte {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(readFile(t, "prometheus/alerts.yml"), &doc); err != nil {
		t.Fatal(err)
	}
	spec := doc.Content[0]
	spec.HeadComment = ""
	if len(spec.Content) > 0 {
		spec.Content[0].HeadComment = ""
	}
	obj := struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name      string            `yaml:"name"`
			Namespace string            `yaml:"namespace"`
			Labels    map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec *yaml.Node `yaml:"spec"`
	}{APIVersion: "monitoring.coreos.com/v1", Kind: "PrometheusRule", Spec: spec}
	obj.Metadata.Name = "sunpath"
	obj.Metadata.Namespace = "sunpath"
	obj.Metadata.Labels = map[string]string{"app.kubernetes.io/name": "sunpath", "app.kubernetes.io/part-of": "sunpath"}
	var buf bytes.Buffer
	buf.WriteString("# Generated from deploy/prometheus/alerts.yml; do not edit. Regenerate with\n" +
		"#   go test ./deploy -run TestPrometheusRule -update\n" +
		"# Your Prometheus must select it (its ruleSelector, e.g. a release label).\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(obj); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestPrometheusRule(t *testing.T) {
	const name = "k8s/monitoring/prometheusrule.yaml"
	want := prometheusRule(t)
	if *update {
		if err := os.WriteFile(name, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(name)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s is not the rendering of prometheus/alerts.yml (%v); run: go test ./deploy -run TestPrometheusRule -update", name, err)
	}
	var a, b promRules
	if err := yaml.Unmarshal(readFile(t, "prometheus/alerts.yml"), &a); err != nil {
		t.Fatal(err)
	}
	var pr struct {
		Spec promRules `yaml:"spec"`
	}
	if err := yaml.Unmarshal(got, &pr); err != nil {
		t.Fatal(err)
	}
	b = pr.Spec
	if !reflect.DeepEqual(a, b) {
		t.Errorf("%s rules differ from prometheus/alerts.yml", name)
	}
}

// promtool finds promtool: $SUNPATH_PROMTOOL (scripts/test.sh sets it with
// scripts/ensure-promtool.sh), else PATH. Under CI the variable is required,
// so a CI run can never silently skip the rule tests.
func promtool(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SUNPATH_PROMTOOL"); p != "" {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true but SUNPATH_PROMTOOL is unset: scripts/test.sh must export SUNPATH_PROMTOOL=$(scripts/ensure-promtool.sh)")
	}
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not found (set SUNPATH_PROMTOOL=$(scripts/ensure-promtool.sh)); alert rules not checked by promtool")
	}
	return p
}

func TestPromtool(t *testing.T) {
	p := promtool(t)
	for _, args := range [][]string{
		{"check", "rules", "prometheus/alerts.yml"},
		{"check", "config", "prometheus/prometheus.yml"},
		{"test", "rules", "prometheus/alerts_test.yml"},
	} {
		out, err := exec.Command(p, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

func TestSystemdUnit(t *testing.T) {
	unit := string(readFile(t, "systemd/sunpath.service"))
	for _, want := range []string{"ExecStartPre=+/usr/local/bin/sunpath --config /etc/sunpath/migrate.yaml migrate", "ExecStart=/usr/local/bin/sunpath serve",
		"User=sunpath", "EnvironmentFile=", "NoNewPrivileges=yes", "ProtectSystem=strict", "KillSignal=SIGTERM"} {
		if !strings.Contains(unit, want) {
			t.Errorf("systemd/sunpath.service lacks %s", want)
		}
	}
}

// configKeys reads the configuration keys from the defaults table in
// cmd/sunpath/config.go, as the SUNPATH_* variables viper maps them to.
func configKeys(t *testing.T) map[string]bool {
	t.Helper()
	src := readFile(t, filepath.Join(repoRoot, "cmd", "sunpath", "config.go"))
	keys := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s*"([a-z0-9_]+\.[a-z0-9_]+)":`).FindAllSubmatch(src, -1) {
		keys["SUNPATH_"+strings.ToUpper(strings.ReplaceAll(string(m[1]), ".", "_"))] = true
	}
	if len(keys) < 10 {
		t.Fatalf("found %d configuration keys in cmd/sunpath/config.go; update configKeys to its defaults table", len(keys))
	}
	return keys
}

// An environment variable with a typo is silently ignored, so every SUNPATH_*
// name the deployment files set must be a configuration key.
func TestEnvironmentNamesAreConfigKeys(t *testing.T) {
	keys := configKeys(t)
	notConfig := map[string]bool{ // compose and script variables, not read by the binary
		"SUNPATH_IMAGE": true, "SUNPATH_VERSION": true, "SUNPATH_BIND": true,
		"SUNPATH_PROMTOOL": true, "SUNPATH_TOOLS_DIR": true, "SUNPATH_PROMTOOL_FROM_SOURCE": true,
	}
	re := regexp.MustCompile(`\bSUNPATH_[A-Z0-9_]*[A-Z0-9]\b`)
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, "_test.go") {
			return err
		}
		for _, name := range re.FindAllString(string(readFile(t, p)), -1) {
			if !keys[name] && !notConfig[name] {
				t.Errorf("%s: %s is not a configuration key of cmd/sunpath/config.go", p, name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Every deployment provides the keys serve cannot run without.
	for _, name := range []string{"SUNPATH_DATABASE_URL", "SUNPATH_CRYPTO_KEYS", "SUNPATH_AUDIT_SIGNING_KEY"} {
		if !strings.Contains(string(readFile(t, "compose.env.example")), name+"=") {
			t.Errorf("compose.env.example does not set %s", name)
		}
		if !strings.Contains(string(readFile(t, "systemd/sunpath.service")), name) {
			t.Errorf("systemd/sunpath.service does not mention %s for /etc/sunpath/sunpath.env", name)
		}
	}
	for _, doc := range yamlDocs(t, "k8s/secrets.example.yaml") {
		if str(doc, "metadata", "name") == "sunpath-keys" {
			data := stringMap(get(doc, "stringData"))
			for _, name := range []string{"SUNPATH_CRYPTO_KEYS", "SUNPATH_AUDIT_SIGNING_KEY"} {
				if _, ok := data[name]; !ok {
					t.Errorf("secrets.example.yaml: sunpath-keys lacks %s", name)
				}
			}
		}
	}
	dep := yamlDocs(t, "k8s/deployment.yaml")[0]
	var keysFromSecret bool
	for _, e := range list(dep, "spec", "template", "spec", "containers", 0, "envFrom") {
		if str(e, "secretRef", "name") == "sunpath-keys" && get(e, "secretRef", "optional") != true {
			keysFromSecret = true
		}
	}
	if !keysFromSecret {
		t.Error("Deployment does not load the required Secret sunpath-keys with envFrom")
	}
}
