#!/usr/bin/env bash
# compare.sh — ib against its peers, one run, same machine (issues 8, 17 and 21):
#   1. bench/core.sh on the shared dataset (initial, no-change, 5% changed, restore), ratios ib/restic,
#      and the same steps as ratios to kopia 0.23 through restic 0.14 (kopia does not install here:
#      shared/bench/BASELINES.md measured it at 0.41 x restic 0.14 for 5% changed, 0.30 x for
#      no change, 0.85 x initial, 1.85 x restore, in one run);
#   2. a tree of TINY small files (default 1,000,000, of 1-200 bytes, 1,000 folders): initial and
#      no-change backups and a restore, with wall time and peak RSS of both tools, and ib's
#      `backup diff` of the live tree against its backup (issue 17: <= 1.5 x the no-change backup);
#   3. bench/net.sh: backup and restore through a shaping proxy (20/80 ms, 1 Gbit/100 Mbit) and the
#      --limit-upload/--limit-download check (SKIP_NET=1 skips it: ~15 minutes);
#   4. bench/clients.sh: 50 clients at once against one server (SKIP_CLIENTS=1 skips it).
# Usage: bench/compare.sh [WORK_DIR]    (TINY=100000 for a quicker second table; SKIP_CORE=1)
# Needs what core.sh needs. Benchmarks never run in CI.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
W=$(realpath -m "${1:-/tmp/ib-bench}")
TINY=${TINY:-1000000}
mkdir -p "$W/logs"

if [ "${SKIP_CORE:-0}" != 1 ]; then
  "$HERE/core.sh" "$W" >&2
fi
if [ -f "$W/results.txt" ]; then
  echo "== shared dataset (bench/core.sh), ratios ib/restic"
  awk '
    $1 ~ /^(ib|restic)_/ && NF >= 5 { wall[$1] = $2; rss[$1] = $5 }
    END {
      split("backup1 backup2_nochange backup3_5pct restore", steps, " ")
      printf "%-20s %10s %10s %8s %10s %10s %8s\n", "step", "ib_s", "restic_s", "ratio", "ib_MiB", "restic_MiB", "ratio"
      for (i = 1; i <= 4; i++) {
        s = steps[i]; a = "ib_" s; b = "restic_" s
        if (!(a in wall) || !(b in wall)) continue
        printf "%-20s %10.2f %10.2f %8.2f %10d %10d %8.2f\n", s, wall[a], wall[b], wall[a] / wall[b], rss[a], rss[b], rss[a] / rss[b]
      }
      for (l in wall) if (l ~ /level/) printf "%-20s %10.2f %10.2f %8.2f\n", substr(l, 4), wall[l], wall["restic_backup1"], wall[l] / wall["restic_backup1"]
      # kopia 0.23 / restic 0.14 in one run (shared/bench/BASELINES.md)
      k["backup1"] = 0.85; k["backup2_nochange"] = 0.30; k["backup3_5pct"] = 0.41; k["restore"] = 1.85
      printf "\n%-20s %10s %12s %10s\n", "step", "ib/restic", "kopia/restic", "ib/kopia"
      for (i = 1; i <= 4; i++) {
        s = steps[i]; a = "ib_" s; b = "restic_" s
        if (!(a in wall) || !(b in wall)) continue
        printf "%-20s %10.2f %12.2f %10.2f\n", s, wall[a] / wall[b], k[s], wall[a] / wall[b] / k[s]
      }
    }' "$W/results.txt"
fi

echo "== $TINY tiny files"
T=$W/tiny-$TINY
if [ ! -f "$T.done" ]; then
  rm -rf "$T"
  python3 - "$T" "$TINY" <<'PY'
import os, sys, random
root, n = sys.argv[1], int(sys.argv[2]); rnd = random.Random(11)
for d in range(1000): os.makedirs(os.path.join(root, f"d{d:03d}"), exist_ok=True)
for i in range(n):
    with open(os.path.join(root, f"d{i % 1000:03d}", f"f{i:07d}"), "wb") as f:
        f.write(rnd.randbytes(rnd.randint(1, 200)))
PY
  touch "$T.done"
fi
IB=$W/ib
(cd "$HERE/.." && go build -o "$IB" .)
export IB_CONFIG_DIR=$W/tiny-config IB_CACHE_DIR=$W/tiny-ib-cache RESTIC_PASSWORD=bench RESTIC_REPOSITORY=$W/tiny-restic RESTIC_CACHE_DIR=$W/tiny-restic-cache
rm -rf "$W/tiny-data" "$IB_CONFIG_DIR" "$IB_CACHE_DIR" "$RESTIC_REPOSITORY" "$RESTIC_CACHE_DIR"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$IB" server serve --listen 127.0.0.1:$PORT --data-dir "$W/tiny-data" >"$W/logs/tiny-server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
"$IB" login "http://127.0.0.1:$PORT" --token "$("$IB" server token show)" >/dev/null
restic init >/dev/null
row() { # NAME CMD...: wall seconds and peak RSS
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$W/logs/$name.time" "$@" >"$W/logs/$name.out" 2>&1 || { echo "FAILED: $name" >&2; tail "$W/logs/$name.out" >&2; exit 1; }
  read -r wall rss <"$W/logs/$name.time"
  printf '%-24s %8.2f s %8d MiB\n' "$name" "$wall" "$((rss / 1024))"
}
# Each tool's first read of the tree finds it in the page cache: the steps before (core.sh writes
# gigabytes) evict parts of it, and a cold million files is a disk benchmark, not a backup one.
warm() { find "$T" -type f -print0 | xargs -0 -n 4096 cat >/dev/null; }
warm
row ib_tiny_initial "$IB" backup create -q --bench=tiny "$T"
row ib_tiny_nochange "$IB" backup create -q --bench=tiny "$T"
row ib_tiny_diff "$IB" backup diff latest --bench=tiny "$T"   # live folder against its backup: exit 0, identical
warm
row restic_tiny_initial restic backup -q "$T"
row restic_tiny_nochange restic backup -q "$T"
rm -rf "$W/tiny-restore-ib" "$W/tiny-restore-restic"
row ib_tiny_restore "$IB" backup restore latest --bench=tiny -q "$W/tiny-restore-ib"
row restic_tiny_restore restic restore latest -q --target "$W/tiny-restore-restic"
diff -r -q "$T" "$W/tiny-restore-ib" >/dev/null && echo "ib restore: identical to the source" || echo "ib restore DIFFERS from the source"
rm -rf "$W/tiny-restore-ib" "$W/tiny-restore-restic"
echo "ib server peak RSS: $(awk '/VmHWM/ {printf "%.0f MiB", $2/1024}' /proc/$SERVER/status)"
kill $SERVER 2>/dev/null || true
if [ "${SKIP_NET:-0}" != 1 ]; then
  echo "== shaped links (bench/net.sh)"
  "$HERE/net.sh" "$W" >/dev/null
  cat "$W/net-results.txt"
fi
if [ "${SKIP_CLIENTS:-0}" != 1 ]; then
  echo "== 50 clients at once (bench/clients.sh)"
  "$HERE/clients.sh" "$W"
fi
