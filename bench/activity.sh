#!/usr/bin/env bash
# activity.sh — issue 18's overhead figure, one run: initial backups of the shared dataset by a
# client from before the activity log (BASE, default 7dd32b9) and by this one (which reports its
# job to the server every second), with a reader of the server's event stream attached,
# alternating, three of each, page cache dropped before each. Prints each time and the count of
# progress events the reader saw. Usage: bench/activity.sh [WORK_DIR]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
W=$(realpath -m "${1:-/tmp/ib-activity-bench}")
BASE=${BASE:-7dd32b9}
GEN=${GEN:-/work/shared/bench/gen-dataset.sh}
mkdir -p "$W"
[ -f "$W/data.done" ] || { rm -rf "$W/data"; "$GEN" "$W/data" >/dev/null; touch "$W/data.done"; }
(cd "$REPO" && go build -o "$W/ib-new" .)
rm -rf "$W/base" && git -C "$REPO" worktree add -f "$W/base" "$BASE" >/dev/null 2>&1
(cd "$W/base" && go build -o "$W/ib-old" .)
git -C "$REPO" worktree remove --force "$W/base"
for i in 1 2 3; do
  for who in old new; do
    rm -rf "$W/srv" "$W/conf" "$W/cache"; mkdir -p "$W/srv"
    export IB_CONFIG_DIR=$W/conf IB_CACHE_DIR=$W/cache
    PORT=$((20000 + RANDOM % 20000))
    "$W/ib-new" server serve --listen 127.0.0.1:$PORT --data-dir "$W/srv" 2>/dev/null & SRV=$!
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
    "$W/ib-new" login "http://127.0.0.1:$PORT" --token "$("$W/ib-new" server token show)" >/dev/null
    LISTEN=""
    if [ $who = new ]; then curl -sN "http://127.0.0.1:$PORT/api/v1/events" > "$W/events.txt" & LISTEN=$!; fi
    sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
    /usr/bin/time -f "%e" -o "$W/t" "$W/ib-$who" backup create -q --node=activity "$W/data" >/dev/null 2>&1
    printf "%-4s run %d: %6.2f s" $who $i "$(cat "$W/t")"
    if [ -n "$LISTEN" ]; then kill $LISTEN; printf "   %d progress events" "$(grep -c '^event: progress' "$W/events.txt")"; fi
    echo
    kill $SRV; wait $SRV 2>/dev/null || true
  done
done
