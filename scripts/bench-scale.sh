#!/usr/bin/env bash
# bench-scale.sh: how the oversight use cases' cost grows with the caseload.
# Seeds SUNPATH_SCALE_PEOPLE people (default 2000 and 20000) through the
# real write path into a throwaway PostgreSQL, times each use case (as a
# provincial admin, and as one unit's supervisor) with go test -bench, and
# prints a table with the ratio of the largest size to the smallest. Each
# use case runs for BENCHTIME (default 1s: a thousand calls of a 1 ms read;
# 10 or 20 calls, the old default, left figures near 1 ms ±0.4 ms apart
# from run to run).
# Loopback only; seeding 20,000 people takes a few minutes on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d /tmp/sunpath-scale.XXXXXX)
trap 'scripts/localpg.sh stop "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
SUNPATH_TEST_DATABASE_URL=$(scripts/localpg.sh start "$dir" 2>/dev/null)
export SUNPATH_TEST_DATABASE_URL
go test -run '^$' -bench '^BenchmarkOversight$' -benchtime "${BENCHTIME:-1s}" -count "${COUNT:-1}" -timeout 60m ./internal/postgres/ | tee "$dir/out.txt" |
	grep -E '^(Benchmark|ok|FAIL|---|\s+scale_bench)' >&2 || true
python3 - "$dir/out.txt" <<'PY'
import re, sys, collections
t = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    m = re.match(r"BenchmarkOversight/people=(\d+)/(\S+?)(-\d+)?\s+\d+\s+([\d.]+) ns/op", line)
    if m:
        t[m.group(2)].setdefault(int(m.group(1)), []).append(float(m.group(4)) / 1e6)
sizes = sorted({n for v in t.values() for n in v})
if not sizes:
    sys.exit("no benchmark results")
print()
print(f"{'use case':18}" + "".join(f"{f'{n:,} people':>16}" for n in sizes) + (f"{'ratio':>8}" if len(sizes) > 1 else ""))
for name, v in t.items():
    med = {n: sorted(x)[len(x) // 2] for n, x in v.items()}
    row = f"{name:18}" + "".join(f"{med.get(n, float('nan')):13.1f} ms" for n in sizes)
    if len(sizes) > 1 and sizes[0] in med and sizes[-1] in med:
        row += f"{med[sizes[-1]] / med[sizes[0]]:7.2f}x"
    print(row)
PY
