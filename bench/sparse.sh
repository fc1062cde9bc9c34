#!/usr/bin/env bash
# sparse.sh — issue 17's in-place goal, one run: a SIZE_GIB (default 20) sparse file backed up and
# restored; 1 GiB of random bytes appended to the source and backed up; the old restore refreshed
# with `restore --force --in-place`. Prints the bytes fetched and the free space the refresh used.
# Usage: bench/sparse.sh [WORK_DIR]   Needs: go, ~SIZE_GIB+2 GiB free (the restore writes zeros).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
W=$(realpath -m "${1:-/tmp/ib-sparse-bench}")
SIZE_GIB=${SIZE_GIB:-20}
rm -rf "$W"; mkdir -p "$W/src"
IB=$W/ib
(cd "$REPO" && go build -o "$IB" .)
export IB_CONFIG_DIR=$W/conf IB_CACHE_DIR=$W/cache
PORT=$((20000 + RANDOM % 20000))
"$IB" server serve --listen 127.0.0.1:$PORT --data-dir "$W/srv" 2>"$W/srv.log" & SRV=$!
trap 'kill $SRV 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
"$IB" login "http://127.0.0.1:$PORT" --token "$("$IB" server token show)" >/dev/null
truncate -s "${SIZE_GIB}G" "$W/src/ancient.cdat"
"$IB" backup create -q --node=sparse "$W/src" >/dev/null
"$IB" backup restore -q latest --node=sparse "$W/restored" >/dev/null
head -c 1G /dev/urandom >> "$W/src/ancient.cdat"
"$IB" backup create -q --node=sparse "$W/src" >/dev/null
free_kib() { df --output=avail -k "$W" | tail -1; }
before=$(free_kib)
start=$(date +%s.%N)
"$IB" backup restore -q --json latest --node=sparse "$W/restored" --force --in-place > "$W/refresh.json"
end=$(date +%s.%N)
after=$(free_kib)
cmp "$W/src/ancient.cdat" "$W/restored/ancient.cdat" && same=identical || same=DIFFERENT
fetched=$(python3 -c "import json; print(json.load(open('$W/refresh.json'))['bytes_fetched'])")
printf "refresh --in-place  %.1f s; fetched %d bytes (%.3f GiB); free space used %d MiB; file %s\n" \
  "$(echo "$end - $start" | bc)" "$fetched" "$(echo "$fetched / 1073741824" | bc -l)" $(((before - after) / 1024)) "$same"
