#!/usr/bin/env bash
# core.sh — ib against restic on the shared benchmark dataset, one run, same machine.
#
# Usage: bench/core.sh [WORK_DIR]       (default /tmp/ib-bench; needs ~3x the dataset's size)
#
# Generates (or reuses) the dataset with shared/bench/gen-dataset.sh, builds ib, starts an ib
# server on loopback with a fresh data dir, and times with /usr/bin/time -v:
#   initial backup, no-change backup, backup after mutate-dataset.sh (5% of files), restore
# for ib (defaults, then --level 1 and --level fast for the initial backup) and for restic
# (Debian's package). Prints a table: wall seconds, MB/s (dataset bytes / wall, 10^6),
# CPU %, client peak RSS; and the ib server's peak RSS. Page cache is not dropped.
# Needs: go, restic, GNU time, openssl, python3 (apt-get install restic time).
# Environment: LEVELS="1 fast" extra initial-backup levels; KEEP=1 keeps the dataset.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SHARED=${SHARED:-$REPO/../shared/bench}
W=$(realpath -m "${1:-/tmp/ib-bench}")
DS=$W/dataset
mkdir -p "$W/logs"
for tool in restic /usr/bin/time openssl python3 go; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install restic time)" >&2; exit 1; }
done

if [ ! -f "$W/dataset.done" ]; then
  rm -rf "$DS"
  "$SHARED/gen-dataset.sh" "$DS" >&2
  touch "$W/dataset.done"
fi
# A mutated copy is made fresh on each run so both tools see the same change.
BYTES=$(find "$DS" -type f -printf '%s\n' | awk '{s+=$1} END {printf "%.0f", s}')
NFILES=$(find "$DS" -type f | wc -l)
echo "dataset: $BYTES bytes in $NFILES files" >&2

(cd "$REPO" && go build -o "$W/ib" .)
IB=$W/ib
export IB_CONFIG_DIR=$W/ib-config IB_CACHE_DIR=$W/ib-cache
rm -rf "$W"/ib-data* "$IB_CONFIG_DIR" "$IB_CACHE_DIR" "$W/restic-repo" "$W/restic-cache" "$W"/restore-* "$W/work"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
SERVER=
# start_server DATA_DIR: (re)start the ib server on $PORT with that data dir
start_server() {
  if [ -n "$SERVER" ]; then kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; fi
  "$IB" server serve --listen 127.0.0.1:$PORT --data-dir "$1" >>"$W/logs/server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && return; sleep 0.1; done
  echo "ib server did not start" >&2; exit 1
}
trap 'kill $SERVER 2>/dev/null || true' EXIT

printf '%-28s %8s %8s %6s %8s %10s\n' step wall_s MB/s cpu rss_MiB srv_cpu_s | tee "$W/results.txt"
# srv_cpu: CPU seconds (user+system) the ib server has used so far
srv_cpu() {
  if [ -n "$SERVER" ] && [ -r /proc/$SERVER/stat ]; then
    awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' /proc/$SERVER/stat
  else echo 0; fi
}
# t NAME CMD...: time a step, print one row
t() {
  local name=$1; shift
  sync
  local s0; s0=$(srv_cpu)
  /usr/bin/time -v -o "$W/logs/$name.time" "$@" >"$W/logs/$name.out" 2>&1 || { echo "FAILED: $name" >&2; tail "$W/logs/$name.out" >&2; exit 1; }
  local s1; s1=$(srv_cpu)
  awk -v n="$name" -v b="$BYTES" -v s="$(awk -v a="$s0" -v b="$s1" 'BEGIN { print b - a }')" -F': ' '
    /Elapsed \(wall clock\)/ { k = split($2, p, ":"); w = (k == 3) ? p[1]*3600 + p[2]*60 + p[3] : p[1]*60 + p[2] }
    /Percent of CPU/ { c = $2 } /Maximum resident set size/ { r = $2 / 1024 }
    END { printf "%-28s %8.2f %8.1f %6s %8.0f %10.2f\n", n, w, (w > 0 ? b / w / 1e6 : 0), c, r, s }' \
    "$W/logs/$name.time" | tee -a "$W/results.txt"
}

# This machine is a VM: memory the guest has not touched for a while costs a fault on the host
# the first time it is written, which made whichever step first wrote 2 GB of new files up to a
# third slower (a restore, or a backup into an empty repository). warm writes and deletes 4 GiB
# so that the next step, whichever tool runs it, gets memory that is already backed.
warm() { dd if=/dev/zero of="$W/warm-up" bs=1M count=4096 status=none && rm -f "$W/warm-up" && sync; }

# Work on a copy so that the mutation does not touch the cached dataset.
cp -a "$DS" "$W/work"
export RESTIC_PASSWORD=bench RESTIC_REPOSITORY=$W/restic-repo RESTIC_CACHE_DIR=$W/restic-cache
restic init >/dev/null

# Other levels first, each against an empty server, so that every block is compressed.
for lv in ${LEVELS-1 fast}; do
  start_server "$W/ib-data-level-$lv"
  "$IB" login "http://127.0.0.1:$PORT" --token "$("$IB" server token show)" >/dev/null
  warm
  t "ib_backup1_level_$lv" "$IB" backup create -q --json --bench=core --level "$lv" "$W/work"
  echo "  stored: $(du -sb "$W/ib-data-level-$lv" | cut -f1) bytes" | tee -a "$W/results.txt"
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=; rm -rf "$W/ib-data-level-$lv"
done
start_server "$W/ib-data"
"$IB" login "http://127.0.0.1:$PORT" --token "$("$IB" server token show)" >/dev/null
warm
t ib_backup1 "$IB" backup create -q --json --bench=core "$W/work"
t ib_backup2_nochange "$IB" backup create -q --json --bench=core "$W/work"
warm
t restic_backup1 restic backup -q "$W/work"
t restic_backup2_nochange restic backup -q "$W/work"
"$SHARED/mutate-dataset.sh" "$W/work" 5 >"$W/logs/mutate.txt" 2>&1
t ib_backup3_5pct "$IB" backup create -q --json --bench=core "$W/work"
t restic_backup3_5pct restic backup -q "$W/work"
warm
t ib_restore "$IB" backup restore -q latest --bench=core "$W/restore-ib"
warm
t restic_restore restic restore -q latest --target "$W/restore-restic"

# tmp/ is in the dataset's .gitignore: ib leaves it out, restic backs it up
diff -r --no-dereference --exclude=tmp "$W/work" "$W/restore-ib" >/dev/null && echo "ib restore: identical to the source but tmp/ (diff -r --no-dereference)" | tee -a "$W/results.txt"
echo "ib server peak RSS: $(awk '/VmHWM/ {printf "%.0f MiB", $2/1024}' /proc/$SERVER/status)" | tee -a "$W/results.txt"
echo "ib stored: $(du -sb "$W/ib-data" | cut -f1) bytes; restic repo: $(du -sb "$W/restic-repo" | cut -f1) bytes" | tee -a "$W/results.txt"
grep -h '"new_blocks"\|"uploaded_bytes"\|"reused_files"' "$W"/logs/ib_backup*.out | tr -d ' ,' | paste -sd' ' >"$W/logs/ib-json.txt" || true
[ "${KEEP:-1}" = 1 ] || rm -rf "$DS" "$W/dataset.done"
rm -rf "$W/work" "$W"/restore-*
