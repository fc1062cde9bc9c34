#!/usr/bin/env bash
# refresh.sh — issue 17's refresh goal, one run: the shared dataset backed up and restored; the
# source mutated (mutate-dataset.sh, 5% of files) and backed up again; the old restore refreshed
# with `restore --force --delete`. Prints the bytes fetched against the bytes of the blocks that
# changed (counted from the two manifests) and the refresh's time against a full restore's: once
# for the restore itself (the client knows what it restored there) and once for a `cp -a` of it
# (a copy it did not restore: its stale files are hashed).
# Usage: bench/refresh.sh [WORK_DIR]   (reuses WORK_DIR/data from bench/live.sh if present)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
W=$(realpath -m "${1:-/tmp/ib-live-bench}")
GEN=${GEN:-/work/shared/bench/gen-dataset.sh}
MUT=${MUT:-/work/shared/bench/mutate-dataset.sh}
mkdir -p "$W"
IB=$W/ib
(cd "$REPO" && go build -o "$IB" .)
export IB_CONFIG_DIR=$W/conf IB_CACHE_DIR=$W/cache
if [ ! -f "$W/data.done" ]; then rm -rf "$W/data"; "$GEN" "$W/data" >/dev/null; touch "$W/data.done"; fi
rm -rf "$W/srv-refresh" "$W/src" "$W/restored" "$W/copied"; mkdir -p "$W/srv-refresh"
PORT=$((20000 + RANDOM % 20000))
"$IB" server serve --listen 127.0.0.1:$PORT --data-dir "$W/srv-refresh" --log-format json 2>"$W/srv-refresh.log" & SRV=$!
trap 'kill $SRV 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
"$IB" login "http://127.0.0.1:$PORT" --token "$("$IB" server token show)" >/dev/null
now() { date +%s.%N; }
cp -a "$W/data" "$W/src"
"$IB" backup create -q --node=refresh "$W/src" >/dev/null
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
t0=$(now); "$IB" backup restore -q latest --node=refresh "$W/restored" >/dev/null; t1=$(now)
cp -a "$W/restored" "$W/copied"
"$MUT" "$W/src" 5 >&2
"$IB" backup create -q --node=refresh "$W/src" >/dev/null
changed=$(python3 - "$PORT" <<'PY'
import json, sys, urllib.request
port = sys.argv[1]
ids = [b["id"] for b in json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/backups"))][:2]
def blocks(i):
    m = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/backups/{i}/manifest"))
    return {b["cid"]: b["size"] for e in m["entries"] for b in e.get("blocks") or []}
new, old = blocks(ids[0]), blocks(ids[1])
print(sum(s for c, s in new.items() if c not in old))
PY
)
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
t2=$(now); "$IB" backup restore -q --json latest --node=refresh "$W/restored" --force --delete > "$W/refresh.json"; t3=$(now)
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
t4=$(now); "$IB" backup restore -q latest --node=refresh "$W/copied" --force --delete >/dev/null; t5=$(now)
fetched=$(python3 -c "import json; print(json.load(open('$W/refresh.json'))['bytes_fetched'])")
diff -r --no-dereference --exclude=tmp "$W/src" "$W/restored" >/dev/null && same=identical || same=DIFFERENT
printf "full restore        %8.2f s\n" "$(echo "$t1 - $t0" | bc)"
printf "refresh             %8.2f s   ratio %.3f\n" "$(echo "$t3 - $t2" | bc)" "$(echo "($t3 - $t2) / ($t1 - $t0)" | bc -l)"
printf "refresh of a copy   %8.2f s   ratio %.3f   (not restored by this client: stale files hashed)\n" "$(echo "$t5 - $t4" | bc)" "$(echo "($t5 - $t4) / ($t1 - $t0)" | bc -l)"
printf "changed blocks      %12d bytes\n" "$changed"
printf "fetched             %12d bytes   ratio %.3f\n" "$fetched" "$(echo "$fetched / $changed" | bc -l)"
echo "refreshed tree: $same to the source (tmp/ aside, which the dataset's .gitignore excludes)"
cat "$W/refresh.json"
