#!/usr/bin/env bash
# clients.sh — many clients against one server at once (issue 21): N `ib backup create`
# processes (default 50, at nice 19: the clients of a real server run elsewhere, here they share
# its two cores), each of its own small tree, start together; then all of them again
# with nothing changed (the daily case: commits only). Prints per round: wall, failures, the
# server's CPU seconds, and from the server's request histogram the count, p50 and p99 of
# POST /blocks/missing, PUT blocks/packs and commits (interpolated within buckets).
# Usage: bench/clients.sh [WORK_DIR]   CLIENTS=50 FILES=400 (per tree) IB_BIN= DB= (postgres://… to
# put the metadata in PostgreSQL instead of SQLite). Needs go, curl, python3. Never in CI.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
W=$(realpath -m "${1:-/tmp/ib-bench}")/clients
N=${CLIENTS:-50}
FILES=${FILES:-400}
mkdir -p "$W/logs"
IB=${IB_BIN:-$W/ib}   # IB_BIN: an ib built elsewhere (to compare two versions)
[ -n "${IB_BIN:-}" ] || (cd "$REPO" && go build -o "$W/ib" .)
if [ ! -f "$W/trees-$N-$FILES.done" ]; then
  rm -rf "$W/trees"
  python3 - "$W/trees" "$N" "$FILES" <<'PY'
import os, sys, random
root, n, files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for c in range(n):
    rnd = random.Random(c)
    for i in range(files):
        d = os.path.join(root, f"c{c:03d}", f"d{i % 20:02d}")
        os.makedirs(d, exist_ok=True)
        # most small, some of a few hundred KiB: a node's config and state, not its chain
        size = rnd.choice([200, 2_000, 20_000, 20_000, 300_000]) if i % 10 == 0 else rnd.randint(50, 4_000)
        with open(os.path.join(d, f"f{i:05d}"), "wb") as f:
            f.write(rnd.randbytes(size))
PY
  touch "$W/trees-$N-$FILES.done"
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port); MPORT=$(free_port)
export IB_CONFIG_DIR=$W/config
rm -rf "$W/data" "$IB_CONFIG_DIR" "$W"/cache-*
DBFLAG=(); [ -n "${DB:-}" ] && DBFLAG=(--db "$DB")
"$IB" server serve --listen 127.0.0.1:$PORT --metrics-port $MPORT --data-dir "$W/data" "${DBFLAG[@]}" >"$W/logs/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
"$IB" login "http://127.0.0.1:$PORT" --token "$("$IB" server token show)" >/dev/null
srv_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' /proc/$SERVER/stat; }
idle() { awk -v hz="$(getconf CLK_TCK)" '/^cpu / { print ($5 + $6) / hz }' /proc/stat; } # the machine's idle seconds, all cores
scrape() { curl -sf "http://127.0.0.1:$MPORT/metrics" >"$1"; }
round() { # NAME
  local name=$1 c0 c1 start end fails=0
  scrape "$W/logs/$name.before"; c0=$(srv_cpu); i0=$(idle); start=$(date +%s.%N)
  local pids=()
  for c in $(seq 0 $((N - 1))); do
    IB_CACHE_DIR=$W/cache-$c nice -n 19 "$IB" backup create -q --bench=clients --client="$c" "$W/trees/c$(printf %03d "$c")" >"$W/logs/$name-$c.out" 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
  end=$(date +%s.%N); c1=$(srv_cpu); i1=$(idle); scrape "$W/logs/$name.after"
  python3 - "$name" "$start" "$end" "$fails" "$c0" "$c1" "$W/logs/$name.before" "$W/logs/$name.after" "$i0" "$i1" "$(nproc)" <<'PY'
import sys, re, collections
name, start, end, fails, c0, c1, before, after = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]), sys.argv[7], sys.argv[8]
idle, cores = float(sys.argv[10]) - float(sys.argv[9]), int(sys.argv[11])
def buckets(path):
    out = collections.defaultdict(dict)
    for l in open(path):
        m = re.match(r'ib_http_request_duration_seconds_bucket\{(.*)\} (\S+)', l)
        if not m: continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        key = labels["method"] + " " + labels["route"]
        le = float("inf") if labels["le"] == "+Inf" else float(labels["le"])
        out[key][le] = out[key].get(le, 0) + float(m.group(2))
    return out
b0, b1 = buckets(before), buckets(after)
def quantile(cum, q):
    les = sorted(cum); total = cum[les[-1]]
    if total == 0: return 0, 0
    prev_le, prev_c = 0.0, 0.0
    for le in les:
        if cum[le] >= q * total:
            if le == float("inf"): return total, prev_le
            frac = (q * total - prev_c) / max(cum[le] - prev_c, 1e-9)
            return total, prev_le + frac * (le - prev_le)
        prev_le, prev_c = le, cum[le]
    return total, les[-2]
print(f"== {name}: {end - start:.2f} s wall, {fails} client(s) failed, server CPU {c1 - c0:.1f} s,"
      f" the machine's {cores} cores idle {100 * idle / (cores * (end - start)):.0f}% of the time")
def series(path, name):
    for l in open(path):
        if l.startswith(name + " "): return float(l.split()[-1])
    return None
for pool in ("sqlite_writer", "sqlite_readers"):
    w0 = series(before, f'go_sql_wait_duration_seconds_total{{db_name="{pool}"}}')
    w1 = series(after, f'go_sql_wait_duration_seconds_total{{db_name="{pool}"}}')
    n0 = series(before, f'go_sql_wait_count_total{{db_name="{pool}"}}')
    n1 = series(after, f'go_sql_wait_count_total{{db_name="{pool}"}}')
    if None not in (w0, w1, n0, n1):
        waited, n = w1 - w0, n1 - n0
        print(f"   {pool}: {int(n)} waits for a connection, {waited:.1f} s waited in all"
              f" ({waited / (end - start):.1f} waiting on average; {1000 * waited / max(n, 1):.0f} ms per wait)")
def sched(path):
    cum = {}
    for l in open(path):
        m = re.match(r'go_sched_latencies_seconds_bucket\{le="([^"]*)"\} (\S+)', l)
        if m: cum[float("inf") if m.group(1) == "+Inf" else float(m.group(1))] = float(m.group(2))
    return cum
s0, s1 = sched(before), sched(after)
if s1:
    cum = {le: s1[le] - s0.get(le, 0) for le in s1}
    n, p50 = quantile(cum, 0.5)
    _, p99 = quantile(cum, 0.99)
    print(f"   goroutines made runnable: {int(n)}, waited for a core p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.1f} ms")
print(f"   {'request':44s} {'count':>7s} {'p50_ms':>8s} {'p99_ms':>8s}")
for key in sorted(b1):
    cum = {le: b1[key][le] - b0.get(key, {}).get(le, 0) for le in b1[key]}
    n, p50 = quantile(cum, 0.5)
    _, p99 = quantile(cum, 0.99)
    if n == 0 or not any(s in key for s in ("missing", "blocks", "packs", "backups", "jobs")): continue
    print(f"   {key:44s} {int(n):7d} {p50 * 1000:8.1f} {p99 * 1000:8.1f}")
PY
}
round initial
round nochange
echo "server peak RSS: $(awk '/VmHWM/ {printf "%.0f MiB", $2/1024}' /proc/$SERVER/status)"
