#!/usr/bin/env bash
# net.sh — ib over shaped links (issue 21): backup and restore of the shared dataset through a
# userspace shaping proxy (bench/shape, internal/shaper: a round-trip time and a rate each way,
# shared by all connections), and the --limit-upload check.
#
# Usage: bench/net.sh [WORK_DIR]   (default /tmp/ib-bench; reuses core.sh's dataset)
# Environment: SETTINGS="0ms:0 20ms:1Gbit 80ms:1Gbit 20ms:100Mbit 80ms:100Mbit" (RTT:RATE),
#              LIMIT=20MiB (the --limit-upload check; LIMIT= skips it),
#              BACKUP_FLAGS="--level fast" (more flags for the shaped backups; none by default).
# For each setting, against a fresh server: initial backup, no-change backup, restore. Prints wall
# seconds, wire MB (the server's ib_bandwidth_* counters), wire MB/s, the share of the link's
# rate reached, and the HTTP requests of the step (from the server's metrics).
# Needs: go, curl, python3, GNU time. Benchmarks never run in CI.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SHARED=${SHARED:-$REPO/../shared/bench}
W=$(realpath -m "${1:-/tmp/ib-bench}")
DS=$W/dataset
SETTINGS=${SETTINGS:-0ms:0 20ms:1Gbit 80ms:1Gbit 20ms:100Mbit 80ms:100Mbit}
LIMIT=${LIMIT-20MiB}
read -r -a BACKUP_FLAGS <<<"${BACKUP_FLAGS:-}"
mkdir -p "$W/logs"
if [ ! -f "$W/dataset.done" ]; then
  rm -rf "$DS"; "$SHARED/gen-dataset.sh" "$DS" >&2; touch "$W/dataset.done"
fi
(cd "$REPO" && go build -o "$W/ib" . && go build -o "$W/shape" ./bench/shape)
IB=$W/ib
export IB_CONFIG_DIR=$W/net-config IB_CACHE_DIR=$W/net-cache
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port); MPORT=$(free_port)
SERVER=; SHAPE=
cleanup() { kill $SERVER $SHAPE 2>/dev/null || true; }
trap cleanup EXIT
start_server() {
  cleanup; wait 2>/dev/null || true
  rm -rf "$W/net-data" "$IB_CONFIG_DIR" "$IB_CACHE_DIR"
  "$IB" server serve --listen 127.0.0.1:$PORT --metrics-port $MPORT --data-dir "$W/net-data" >>"$W/logs/net-server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && return; sleep 0.1; done
  echo "ib server did not start" >&2; exit 1
}
start_shape() { # RTT RATE
  "$W/shape" -target 127.0.0.1:$PORT -rtt "$1" -rate "$2" >"$W/logs/shape.addr" &
  SHAPE=$!
  for _ in $(seq 50); do [ -s "$W/logs/shape.addr" ] && break; sleep 0.1; done
  "$IB" login "http://$(cat "$W/logs/shape.addr")" --token "$("$IB" server token show)" >/dev/null
}
# metrics: upload bytes, download bytes, requests (all routes)
metrics() {
  curl -sf "http://127.0.0.1:$MPORT/metrics" | python3 -c '
import sys
up = down = req = 0.0
for l in sys.stdin:
    if l.startswith("ib_bandwidth_upload_bytes_total "): up = float(l.split()[1])
    elif l.startswith("ib_bandwidth_download_bytes_total "): down = float(l.split()[1])
    elif l.startswith("ib_http_request_duration_seconds_count"): req += float(l.split()[-1])
print(int(up), int(down), int(req))'
}
warm() { dd if=/dev/zero of="$W/warm-up" bs=1M count=4096 status=none && rm -f "$W/warm-up" && sync; }
printf '%-22s %-16s %8s %9s %8s %7s %7s\n' setting step wall_s wire_MB MB/s link% reqs | tee "$W/net-results.txt"
step() { # SETTING NAME RATE_BYTES CMD...
  local setting=$1 name=$2 rate=$3; shift 3
  sync
  read -r u0 d0 r0 < <(metrics)
  /usr/bin/time -f "%e" -o "$W/logs/net-$name.time" "$@" >"$W/logs/net-$name.out" 2>&1 || { echo "FAILED: $name" >&2; tail "$W/logs/net-$name.out" >&2; exit 1; }
  read -r u1 d1 r1 < <(metrics)
  python3 - "$setting" "$name" "$rate" "$(cat "$W/logs/net-$name.time")" $((u1 - u0)) $((d1 - d0)) $((r1 - r0)) <<'PY' | tee -a "$W/net-results.txt"
import sys
setting, name, rate, wall, up, down, req = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
wire = max(up, down)
mbs = wire / wall / 1e6 if wall > 0 else 0
link = "%.0f%%" % (100 * wire / wall / rate) if rate > 0 and wall > 0 else "-"
print("%-22s %-16s %8.2f %9.1f %8.1f %7s %7d" % (setting, name, wall, wire / 1e6, mbs, link, req))
PY
}
rm -rf "$W/net-work"; cp -a "$DS" "$W/net-work"
for s in $SETTINGS; do
  rtt=${s%%:*}; rate=${s#*:}
  bps=$(python3 -c "
r='$rate'; m={'Gbit':1e9,'Mbit':1e6,'kbit':1e3}
print(next((int(float(r[:-len(k)])*x/8) for k,x in m.items() if r.endswith(k)), 0))")
  start_server; start_shape "$rtt" "$rate"
  warm
  step "$s" backup_initial "$bps" "$IB" backup create -q --json --bench=net "${BACKUP_FLAGS[@]}" "$W/net-work"
  step "$s" backup_nochange "$bps" "$IB" backup create -q --json --bench=net "${BACKUP_FLAGS[@]}" "$W/net-work"
  rm -rf "$W/net-restore"; warm
  step "$s" restore "$bps" "$IB" backup restore -q latest --bench=net "$W/net-restore"
  diff -r -q --no-dereference --exclude=tmp "$W/net-work" "$W/net-restore" >/dev/null || echo "  restore DIFFERS from the source" | tee -a "$W/net-results.txt"
  rm -rf "$W/net-restore"
done
if [ -n "$LIMIT" ]; then
  start_server; start_shape 0ms 0
  lim=$(python3 -c "
s='$LIMIT'; u={'KiB':1<<10,'MiB':1<<20,'GiB':1<<30}
print(next(int(float(s[:-3])*m) for k,m in u.items() if s.endswith(k)))")
  step "limit-upload $LIMIT" backup_initial "$lim" "$IB" backup create -q --json --bench=limit --limit-upload "$LIMIT" "$W/net-work"
  rm -rf "$W/net-restore"
  step "limit-download $LIMIT" restore "$lim" "$IB" backup restore -q latest --bench=limit --limit-download "$LIMIT" "$W/net-restore"
  rm -rf "$W/net-restore"
fi
rm -rf "$W/net-work" "$W/net-data"
