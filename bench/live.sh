#!/usr/bin/env bash
# live.sh — issue 16's measurements, one run, same machine:
#   1. hard links: the shared dataset, and the same with a hard-linked copy of its db/rocksdb
#      folder added (a checkpoint): bytes read and uploaded by a first backup of each;
#   2. a live writer: cmd/testdata/kvnode fills a Pebble store to STORE_MIB (default 1024) and keeps
#      writing; a backup with a checkpoint pre hook and one without, each timed, restored and
#      checked (does the store open, and hold exactly the keys up to its own "last"?).
# Usage: bench/live.sh [WORK_DIR]     (SKIP_LINKS=1 skips part 1) Needs: go, the shared bench
#        scripts. Never run in CI.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
W=$(realpath -m "${1:-/tmp/ib-live-bench}")
STORE_MIB=${STORE_MIB:-1024}
GEN=${GEN:-/work/shared/bench/gen-dataset.sh}
mkdir -p "$W"
IB=$W/ib; KV=$W/kvnode
(cd "$REPO" && go build -o "$IB" .)
(cd "$REPO/cmd/testdata/kvnode" && GOFLAGS=-mod=mod go build -o "$KV" .)

export IB_CONFIG_DIR=$W/conf IB_CACHE_DIR=$W/cache
serve() { # $1 = data dir; sets PORT, SRV_PID
  rm -rf "$1"; mkdir -p "$1"
  PORT=$((20000 + RANDOM % 20000))
  "$IB" server serve --listen 127.0.0.1:$PORT --data-dir "$1" --log-format json 2>"$1.log" & SRV_PID=$!
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  "$IB" login "http://127.0.0.1:$PORT" --token "$("$IB" server token show)" >/dev/null
}
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }

if [ "${SKIP_LINKS:-0}" != 1 ]; then
echo "== 1. hard links"
if [ ! -f "$W/data.done" ]; then rm -rf "$W/data"; "$GEN" "$W/data" >/dev/null; touch "$W/data.done"; fi
rm -rf "$W/linked"; cp -a "$W/data" "$W/linked"
cp -al "$W/linked/db/rocksdb" "$W/linked/db/rocksdb-checkpoint"
printf "%-24s %14s %14s %14s %8s\n" tree bytes read_bytes uploaded hardlinks
for t in data linked; do
  serve "$W/srv-$t"
  rm -rf "$IB_CACHE_DIR"
  "$IB" backup create -q --json --node=links "$W/$t" > "$W/$t.json"
  printf "%-24s %14s %14s %14s %8s\n" "$t" "$(field "$W/$t.json" bytes)" "$(field "$W/$t.json" read_bytes)" \
    "$(field "$W/$t.json" uploaded_bytes)" "$(field "$W/$t.json" hardlinks)"
  kill $SRV_PID; wait $SRV_PID 2>/dev/null || true
done
fi

echo "== 2. a live writer, store of ${STORE_MIB} MiB"
rm -rf "$W/node"; mkdir -p "$W/node"
KVNODE_BATCH=${KVNODE_BATCH:-64} "$KV" run "$W/node/db" "$W/node/addr" 2>/dev/null & KV_PID=$!
trap 'kill $KV_PID 2>/dev/null || true' EXIT
until [ -f "$W/node/addr" ] && [ "$(du -sm "$W/node/db" | cut -f1)" -ge "$STORE_MIB" ]; do sleep 2; done
serve "$W/srv-live"
printf "%-12s %8s %6s %10s %10s  %s\n" backup seconds exit changed rereads "restored store"
run() { # $1 = name, rest = ib args
  local name=$1; shift
  local start end code=0
  start=$(date +%s.%N)
  "$IB" backup create -q --json --node="$name" "$@" > "$W/$name.json" 2>"$W/$name.err" || code=$?
  end=$(date +%s.%N)
  local dest=$W/restored-$name; rm -rf "$dest"
  "$IB" backup restore -q latest --node="$name" "$dest" >/dev/null
  [ -d "$dest/db" ] && dest=$dest/db
  local check; check=$("$KV" check "$dest" - 2>&1 | tail -1) || true
  printf "%-12s %8.1f %6s %10s %10s  %s\n" "$name" "$(echo "$end - $start" | bc)" "$code" \
    "$(field "$W/$name.json" changed_count)" "$(field "$W/$name.json" rereads)" "$check"
}
CP=$W/node/checkpoint
run checkpoint --pre-hook "$KV checkpoint $W/node/addr $CP" --post-hook "rm -rf $CP" "$W/node"
for i in 1 2 3; do run "nohook$i" "$W/node/db"; done
