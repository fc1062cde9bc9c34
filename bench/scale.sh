#!/usr/bin/env bash
# scale.sh — issue 19's throughput figure, one run: two clients back up two different copies of
# the shared dataset (SEED=bench1 and bench2, ~2.2 GiB each) at once, through HAProxy, to ONE ib
# server and then to TWO, both on PostgreSQL (blocks of 256 KiB and more in a versitygw bucket),
# alternating, three of each, a fresh database and bucket and the page cache dropped before each.
# Prints each wall time, the throughput (bytes of both datasets / time) and the CPU seconds each
# kind of process used, which says what limits it. Needs root (initdb as postgres, drop_caches),
# haproxy, PostgreSQL and tools/bin/versitygw (scripts/test --install-only gives them).
# Usage: bench/scale.sh [WORK_DIR]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
W=$(realpath -m "${1:-/tmp/ib-scale-bench}")
GEN=${GEN:-/work/shared/bench/gen-dataset.sh}
PGBIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | tail -1)")
VGW=$REPO/tools/bin/versitygw
mkdir -p "$W"
for s in 1 2; do
  [ -f "$W/data$s.done" ] || { rm -rf "$W/data$s"; SEED=bench$s "$GEN" "$W/data$s" >/dev/null; touch "$W/data$s.done"; }
done
(cd "$REPO" && go build -o "$W/ib" .)
BYTES=$(( $(du -sb "$W/data1" | cut -f1) + $(du -sb "$W/data2" | cut -f1) ))
port() { echo $((20000 + RANDOM % 20000)); }
wait_http() { for _ in $(seq 200); do curl -fs "$1" >/dev/null 2>&1 && return; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }
cpu() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# a process's CPU seconds with its reaped children's (the postmaster's backends)
cpuall() { awk '{print ($14 + $15 + $16 + $17) / 100}' "/proc/$1/stat" 2>/dev/null || echo 0; }

run() { # $1: number of servers
  local n=$1 pids=() ports=() cpu_srv=0
  rm -rf "$W/run"; mkdir -p "$W/run/pg" "$W/run/s3"; chown postgres "$W/run/pg"
  local pgport; pgport=$(port)
  su postgres -c "$PGBIN/initdb -D $W/run/pg/data -U ib --auth=trust --no-sync --locale=C >/dev/null"
  su postgres -c "$PGBIN/postgres -D $W/run/pg/data -p $pgport -k $W/run/pg -c listen_addresses=127.0.0.1 -c shared_buffers=1GB -c max_connections=300" >/dev/null 2>&1 &
  local pg=$!
  for _ in $(seq 100); do "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$pgport" && break; sleep 0.1; done
  local s3port; s3port=$(port)
  ROOT_ACCESS_KEY=bench ROOT_SECRET_KEY=benchsecret0123456789 "$VGW" --port "127.0.0.1:$s3port" --health /health posix "$W/run/s3" >/dev/null 2>&1 &
  local s3=$!
  wait_http "http://127.0.0.1:$s3port/health"
  export IB_CONFIG_DIR=$W/run/conf IB_CACHE_DIR=$W/run/cache
  local token; token=$("$W/ib" server token show)
  for i in $(seq "$n"); do
    local p; p=$(port); ports+=("$p")
    "$W/ib" server serve --listen "127.0.0.1:$p" --data-dir "$W/run/srv$i" --db "postgres://ib@127.0.0.1:$pgport/postgres?sslmode=disable" \
      --s3-endpoint "http://127.0.0.1:$s3port" --s3-bucket ib-bench --s3-access-key bench --s3-secret-key benchsecret0123456789 \
      --s3-region us-east-1 2>/dev/null &
    pids+=($!)
    wait_http "http://127.0.0.1:$p/healthz"
  done
  local lb; lb=$(port)
  { sed -e "s/^\tbind .*/\tbind 127.0.0.1:$lb/" -e '/^\tserver /d' "$REPO/deploy/scale-out/haproxy.cfg"
    for i in "${!ports[@]}"; do printf '\tserver s%d 127.0.0.1:%d check inter 200ms fall 2 rise 2\n' "$i" "${ports[$i]}"; done
  } > "$W/run/haproxy.cfg"
  haproxy -db -f "$W/run/haproxy.cfg" >/dev/null 2>&1 &
  local ha=$!
  wait_http "http://127.0.0.1:$lb/healthz"
  "$W/ib" login "http://127.0.0.1:$lb" --token "$token" >/dev/null
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  local pm; pm=$(head -1 "$W/run/pg/data/postmaster.pid")
  local pgcpu0; pgcpu0=$(cpuall "$pm")
  local start; start=$(date +%s.%N)
  /usr/bin/time -f "%e %U %S" -o "$W/run/c1" "$W/ib" backup create -q --node=scale1 "$W/data1" >/dev/null 2>&1 &
  local c1=$!
  /usr/bin/time -f "%e %U %S" -o "$W/run/c2" "$W/ib" backup create -q --node=scale2 "$W/data2" >/dev/null 2>&1 &
  local c2=$!
  wait $c1 $c2
  local end; end=$(date +%s.%N)
  for p in "${pids[@]}"; do cpu_srv=$(echo "$cpu_srv + $(cpu "$p")" | bc); done
  local s3cpu; s3cpu=$(cpu $s3)
  kill "${pids[@]}" $ha $s3 2>/dev/null || true
  wait "${pids[@]}" $ha $s3 2>/dev/null || true
  sleep 1 # the backends exit and are reaped
  local pgcpu; pgcpu=$(cpuall "$pm")
  local t; t=$(echo "$end - $start" | bc)
  local clientcpu; clientcpu=$(awk '{s+=$2+$3} END {print s}' "$W/run/c1" "$W/run/c2")
  printf "%d server(s): %6.2f s  %7.1f MiB/s   cpu: clients %6.1f s, ib servers %6.1f s, postgres %5.1f s, versitygw %5.1f s\n" \
    "$n" "$t" "$(echo "$BYTES / $t / 1048576" | bc -l)" "$clientcpu" "$cpu_srv" "$(echo "$pgcpu - $pgcpu0" | bc)" "$s3cpu"
  kill -INT "$pm"; wait $pg 2>/dev/null || true
}

for i in 1 2 3; do
  run 1
  run 2
done
