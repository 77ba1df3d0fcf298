#!/usr/bin/env bash
# bench.sh: the Go benchmarks, then an end-to-end load test of persisted,
# audited PHQ-9 submissions through the real API (API key, Idempotency-Key,
# 64 connections) with answers drawn from a realistic screening mix (a
# quarter moderate or worse, one in ten with item 9 above 0: flags, rule
# reads and webhook notifications happen as in service), unique keys, over
# SUBJECTS people; then a run in which RETRY of the requests resend an
# earlier key; and pgbench doing the same two inserts per transaction
# (assessment + audit event) on the same PostgreSQL, with the ratio.
# Everything runs on this machine against loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
CONNS=${CONNS:-64}
SECONDS_RUN=${SECONDS_RUN:-20}
SUBJECTS=${SUBJECTS:-2000} # submissions are spread over this many people
MIX=${MIX:-realistic}      # or light: the old 0-1 answers, item 9 always 0
RETRY=${RETRY:-0.1}        # share of requests resending a key in the retry run
PROFILE=${PROFILE:-}       # a directory: keep the server's CPU profile of the main run and PostgreSQL's top statements there
PGCONF=${PGCONF:-}         # with PROFILE: a line added to postgresql.conf (a diagnosis, e.g. "synchronous_commit = off")

if [ "${BENCH_GO:-1}" != 0 ]; then
echo "== Go benchmarks (scoring, model inference, request decoding)"
go test -run '^$' -bench . -benchmem -benchtime 2s ./internal/instrument/ ./internal/screening/ ./internal/riskmodel/ ./internal/httpapi/ ./internal/audit/ 2>&1 |
	grep -E '^(Benchmark|ok|FAIL)' || true
fi

make -s build
go build -o bin/sunpath-load ./cmd/sunpath-load
dir=$(mktemp -d /tmp/sunpath-bench.XXXXXX)
chmod 755 "$dir"
cleanup() {
	local rc=$?
	if [ -n "${SRV:-}" ]; then kill "$SRV" 2>/dev/null; wait "$SRV" 2>/dev/null || true; fi
	if [ -n "${HOOK:-}" ]; then kill "$HOOK" 2>/dev/null; wait "$HOOK" 2>/dev/null || true; fi
	scripts/localpg.sh stop "$dir/pg" >/dev/null 2>&1 || true
	rm -rf "$dir"
	exit "$rc"
}
trap cleanup EXIT
URL=$(LOCALPG_MAX_CONNECTIONS=200 scripts/localpg.sh start "$dir/pg" 2>/dev/null)
if [ -n "$PROFILE" ]; then
	mkdir -p "$PROFILE"
	psql -qtA "$URL" -c "ALTER SYSTEM SET shared_preload_libraries = pg_stat_statements, auto_explain" >/dev/null
	printf '%s\n' "pg_stat_statements.track = 'all'" "log_checkpoints = on" "log_autovacuum_min_duration = 0" \
		"log_line_prefix = '%m [%p] '" \
		"auto_explain.log_min_duration = '15ms'" "track_wal_io_timing = on" ${PGCONF:+"$PGCONF"} >>"$dir/pg/data/postgresql.conf"
	scripts/localpg.sh stop "$dir/pg" >/dev/null 2>&1
	URL=$(LOCALPG_MAX_CONNECTIONS=200 scripts/localpg.sh start "$dir/pg" 2>/dev/null)
	psql -qtA "$URL" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
	DEBUGPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	export SUNPATH_DEBUG_ADDR=127.0.0.1:$DEBUGPORT
fi
export SUNPATH_DATABASE_URL=$URL
export SUNPATH_CRYPTO_KEYS="b1:$(bin/sunpath keys generate)"
export SUNPATH_HTTP_ADDR=127.0.0.1:0
export SUNPATH_METRICS_ADDR=127.0.0.1:0
export SUNPATH_HTTP_RATE_LIMIT_PER_SECOND=0 # measure the service, not the limiter
export SUNPATH_LOG_LEVEL=warn
# Flag notifications go to a loopback receiver that answers 204.
HOOKPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
bin/sunpath-load -receive "127.0.0.1:$HOOKPORT" >"$dir/hook.out" 2>&1 &
HOOK=$!
export SUNPATH_WEBHOOKS_ENDPOINTS="bench=http://127.0.0.1:$HOOKPORT/hook"
export SUNPATH_WEBHOOKS_SECRET=bench-webhook-secret-0123456789
bin/sunpath migrate >/dev/null
KEY=$(bin/sunpath apikey create --name bench --role admin | tail -1)
bin/sunpath serve >"$dir/serve.out" 2>"$dir/serve.err" &
SRV=$!
for _ in $(seq 100); do
	BASE=$(grep -o 'listening on http://[0-9.:]*' "$dir/serve.out" | sed 's/^listening on //' || true)
	[ -n "$BASE" ] && curl -sf "$BASE/readyz" >/dev/null && break
	sleep 0.1
done
[ -n "$BASE" ] || { cat "$dir/serve.err"; exit 1; }
H=(-H "Authorization: Bearer $KEY" -H 'Content-Type: application/json')
curl -sf -X PUT "$BASE/v1/units/bench" "${H[@]}" -d '{"name":"bench"}' >/dev/null
bin/sunpath-load -url "$BASE" -key "$KEY" -create-subjects "$SUBJECTS" -unit bench >/dev/null

# CPU seconds (user+system) used so far by a process, and by the
# PostgreSQL cluster: the postmaster, its live backends and those that
# exited (their time is in the postmaster's cutime/cstime).
TICK=$(getconf CLK_TCK)
cpu_of() { awk -v t="$TICK" '{sub(/.*\) /, ""); print ($12 + $13) / t}' "/proc/$1/stat"; }
pg_cpu() {
	local pm sum=0 p
	pm=$(head -1 "$dir/pg/data/postmaster.pid")
	sum=$(awk -v t="$TICK" '{sub(/.*\) /, ""); print ($12 + $13 + $14 + $15) / t}' "/proc/$pm/stat")
	for p in $(pgrep -P "$pm"); do
		sum=$(awk -v s="$sum" -v c="$(cpu_of "$p" 2>/dev/null || echo 0)" 'BEGIN {print s + c}')
	done
	echo "$sum"
}
count() { psql -qtA "$URL" -c 'SELECT count(*) FROM assessments'; }
raised() { psql -qtA -F ' ' "$URL" -c "SELECT (SELECT count(*) FROM flags WHERE code = 'suicidal_ideation'), (SELECT count(*) FROM flags WHERE source = 'rule'), (SELECT count(*) FROM flags), (SELECT count(*) FROM outbox)"; }

echo
echo "== End to end: $CONNS connections, ${SECONDS_RUN}s, $SUBJECTS subjects, $MIX mix, unique keys"
read -r F0I9 F0R F0 O0 <<<"$(raised)"
N0=$(count) S0=$(cpu_of "$SRV") P0=$(pg_cpu)
if [ -n "$PROFILE" ]; then
	psql -qtA "$URL" -c "SELECT pg_stat_statements_reset()" >/dev/null
	(sleep 2 && curl -sf -o "$PROFILE/server.pprof" "http://$SUNPATH_DEBUG_ADDR/debug/pprof/profile?seconds=$((SECONDS_RUN - 4))") &
	PROF=$!
	(sleep 2 && curl -sf -o "$PROFILE/allocs.pprof" "http://$SUNPATH_DEBUG_ADDR/debug/pprof/allocs?seconds=$((SECONDS_RUN - 4))") &
	ALLOCS=$!
fi
bin/sunpath-load -url "$BASE" -key "$KEY" -conns "$CONNS" -subjects "$SUBJECTS" -mix "$MIX" -duration "${SECONDS_RUN}s" -json \
	${PROFILE:+-trace "$PROFILE/latency.csv"} >"$dir/load.json"
if [ -n "$PROFILE" ]; then
	wait "$PROF" "$ALLOCS"
	# Statements by their first 100 characters (a multi-row insert's
	# variants for 1…32 rows are one line), with time per row.
	psql -q "$URL" -c "SELECT sum(calls) AS calls, round(sum(total_exec_time)::numeric) AS ms, sum(rows) AS rows,
		round((1000 * sum(total_exec_time) / greatest(sum(rows), sum(calls)))::numeric, 1) AS us_per_row, q AS query
		FROM (SELECT *, left(regexp_replace(query, '\s+', ' ', 'g'), 100) AS q FROM pg_stat_statements) s
		GROUP BY q ORDER BY ms DESC LIMIT 25" >"$PROFILE/statements.txt"
	psql -q "$URL" -c "SELECT c.relname, s.n_live_tup AS rows, pg_size_pretty(pg_relation_size(s.relid)) AS heap,
		pg_size_pretty(pg_indexes_size(s.relid)) AS indexes, pg_size_pretty(coalesce(pg_relation_size(nullif(c.reltoastrelid, 0)), 0)) AS toast
		FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid ORDER BY pg_total_relation_size(s.relid) DESC LIMIT 10" \
		-c "SELECT round(avg(pg_column_size(result))) AS result_bytes, round(avg(pg_column_size(answers))) AS answers_bytes FROM assessments" \
		-c "SELECT round(avg(pg_column_size(body))) AS reply_bytes FROM idempotency_keys" \
		-c "SELECT wal_records, wal_bytes, wal_write, wal_sync, round(wal_sync_time::numeric / greatest(wal_sync, 1), 2) AS ms_per_sync FROM pg_stat_wal" >>"$PROFILE/statements.txt"
	cp "$dir/pg/log" "$PROFILE/postgres.log"
	echo "profile: $PROFILE/server.pprof (go tool pprof -top bin/sunpath $PROFILE/server.pprof), $PROFILE/allocs.pprof, $PROFILE/statements.txt, $PROFILE/latency.csv"
fi
# The audit sealer works behind the writes: wait until every event is in
# the hash chain, so that the CPU below includes sealing them.
LAG=0
while [ "$(psql -qtA "$URL" -c 'SELECT count(*) FROM audit_pending')" != 0 ] && [ "$LAG" -lt 600 ]; do
	sleep 0.1
	LAG=$((LAG + 1))
done
N1=$(count) S1=$(cpu_of "$SRV") P1=$(pg_cpu)
read -r F1I9 F1R F1 O1 <<<"$(raised)"
echo "{\"n\": $((N1 - N0)), \"server\": $(awk "BEGIN {print $S1 - $S0}"), \"pg\": $(awk "BEGIN {print $P1 - $P0}"), \"seal_lag\": $LAG, \"flags\": $((F1 - F0)), \"item9_flags\": $((F1I9 - F0I9)), \"rule_flags\": $((F1R - F0R)), \"outbox\": $((O1 - O0))}" >"$dir/cpu-service.json"

echo "== End to end with retries: $RETRY of the requests resend an earlier Idempotency-Key and body"
N0=$(count)
bin/sunpath-load -url "$BASE" -key "$KEY" -conns "$CONNS" -subjects "$SUBJECTS" -mix "$MIX" -retry "$RETRY" -duration "$((SECONDS_RUN / 2))s" -json >"$dir/retry.json"
echo "{\"n\": $(($(count) - N0))}" >"$dir/retry-count.json"
kill "$SRV"; wait "$SRV" 2>/dev/null || true; SRV=

# pgbench: the same two rows per transaction, sized like the service's,
# spread over the same people (each insert fires the same schedule trigger
# as the service's; on one person they would all contend for one row).
RESULT=$(psql -qtA "$URL" -c "SELECT result::text FROM assessments LIMIT 1")
ANSWERS_LEN=$(psql -qtA "$URL" -c "SELECT length(answers) FROM assessments LIMIT 1")
cat >"$dir/pgbench.sql" <<SQL
\set k random(1, $SUBJECTS)
BEGIN;
INSERT INTO assessments (id, subject_id, instrument, instrument_version, content_hash, engine_version, language, answers, result,
  total, severity, administered_by, completed_at, created_by)
SELECT gen_random_uuid(), id, 'phq9', '1.0.0', 'sha256:bench', '1.0.0', 'zh-CN', decode(repeat('5a', $ANSWERS_LEN), 'hex'),
  '$RESULT'::jsonb, 4, 'minimal', 'api_key:bench', now(), 'api_key:bench' FROM subjects WHERE external_id = 'LOAD-' || :k;
INSERT INTO audit_events (actor, role, action, resource_type, resource_id, subject, outcome, request_id)
VALUES ('api_key:bench', 'admin', 'assessment.create', 'assessment', 'x', 'LOAD-' || :k, 'success', 'bench');
END;
SQL
echo "== pgbench: the same two inserts per transaction, $CONNS clients, ${SECONDS_RUN}s"
N0=$(count) P0=$(pg_cpu)
TIMEFORMAT='%U %S'
{ time pgbench -n -c "$CONNS" -j 2 -T "$SECONDS_RUN" --log --log-prefix="$dir/pgb" -f "$dir/pgbench.sql" "$URL" >"$dir/pgbench.out" 2>&1 ||
	{ cat "$dir/pgbench.out"; exit 1; }; } 2>"$dir/pgbench.time"
N1=$(count) P1=$(pg_cpu)
read -r PU PS <"$dir/pgbench.time"
echo "{\"n\": $((N1 - N0)), \"client\": $(awk "BEGIN {print $PU + $PS}"), \"pg\": $(awk "BEGIN {print $P1 - $P0}")}" >"$dir/cpu-pgbench.json"

psql -qtA "$URL" -c "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()" >"$dir/deadlocks"

python3 - "$dir" <<'PY'
import json, sys, glob, re
d = sys.argv[1]
load = json.load(open(f"{d}/load.json"))
pg = open(f"{d}/pgbench.out").read()
tps = float(re.search(r"tps = ([0-9.]+) \(without initial connection time\)", pg).group(1))
lat = []
for f in glob.glob(f"{d}/pgb.*"):
    for line in open(f):
        lat.append(int(line.split()[2]) / 1000.0)
lat.sort()
p50 = lat[len(lat) // 2] if lat else float("nan")
p99 = lat[min(len(lat) - 1, len(lat) * 99 // 100)] if lat else float("nan")
print()
fivexx = lambda r: sum(v for k, v in r['status'].items() if k.startswith('5'))
print(f"service : {load['per_second']:8.0f} submissions/s  p50 {load['p50_ms']:6.1f} ms  p99 {load['p99_ms']:6.1f} ms  non-2xx {load['non_2xx']}  5xx {fivexx(load)}  errors {load['errors']}  ({load['conns']} connections)")
print(f"pgbench : {tps:8.0f} transactions/s   p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  (2 inserts per transaction)")
print(f"ratio   : {load['per_second'] / tps:8.2f} of pgbench (target >= 0.80 with p99 <= 50 ms and no 5xx)")
cs = json.load(open(f"{d}/cpu-service.json"))
n = max(load['requests'], 1)
print(f"mix     : {load['item9_positive'] / n:.1%} item 9 > 0, {load['moderately_severe_or_worse'] / n:.1%} total >= 15; "
      f"stored {cs['n']} assessments raising {cs['flags']} flags ({cs['item9_flags']} suicidal_ideation, {cs['rule_flags']} consecutive-rule) "
      f"and {cs['outbox']} notifications")
rt = json.load(open(f"{d}/retry.json"))
rn = json.load(open(f"{d}/retry-count.json"))
print(f"retries : {rt['per_second']:8.0f} requests/s     p50 {rt['p50_ms']:6.1f} ms  p99 {rt['p99_ms']:6.1f} ms  non-2xx {rt['non_2xx']}  5xx {fivexx(rt)}  errors {rt['errors']}  "
      f"({rt['retried']} of {rt['requests']} resent a key; {rn['n']} assessments stored for {rt['requests'] - rt['retried']} new keys in the measured window and warm-up)")
cp = json.load(open(f"{d}/cpu-pgbench.json"))
us = lambda sec, n: 1e6 * sec / max(n, 1)
print()
print("CPU per write (user+system, both cores shared by everything below):")
print(f"service : server {us(cs['server'], cs['n']):5.0f} µs  PostgreSQL {us(cs['pg'], cs['n']):5.0f} µs  "
      f"load generator {us(load['cpu_seconds'], load['requests']):5.0f} µs")
print(f"pgbench :                PostgreSQL {us(cp['pg'], cp['n']):5.0f} µs  pgbench client {us(cp['client'], cp['n']):5.0f} µs")
print(f"(service figures include sealing every audit event into the hash chain; the sealer finished {cs['seal_lag'] / 10:.1f} s after the load)")
print(f"deadlocks detected by PostgreSQL over all runs: {open(f'{d}/deadlocks').read().strip()}")
PY
