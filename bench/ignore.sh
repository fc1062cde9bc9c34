#!/usr/bin/env bash
# ignore.sh — walking and matching a tree of 100,000 files with 50 ignore files:
# `ib backup create --dry-run` against `git ls-files --others` on the same tree.
# Usage: bench/ignore.sh [WORK_DIR]   (default /tmp/ib-bench-ignore). Needs git, python3, GNU time.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
W=$(realpath -m "${1:-/tmp/ib-bench-ignore}")
T=$W/tree
if [ ! -f "$W/tree.done" ]; then
  rm -rf "$T"; mkdir -p "$T"
  python3 - "$T" <<'PY'
import os, sys, random
root = sys.argv[1]; rnd = random.Random(7)
exts = ["log", "sst", "ldb", "json", "tmp", "bak", "txt", "dat"]
dirs = [os.path.join(root, f"d{a:02d}", f"e{b:02d}") for a in range(50) for b in range(20)]
for d in dirs: os.makedirs(d, exist_ok=True)
for i in range(100_000):
    d = dirs[i % len(dirs)]
    open(os.path.join(d, f"f{i:06d}.{rnd.choice(exts)}"), "w").close()
pats = ["*.tmp", "!keep*.tmp", "*.bak", "/e0[0-4]/", "**/cache/", "f0000*.log", "[!a-m]*.json", "e1?/*.dat"]
for a in range(50):
    with open(os.path.join(root, f"d{a:02d}", ".gitignore"), "w") as f:
        f.write("\n".join(rnd.sample(pats, 3)) + "\n")
PY
  (cd "$T" && git init -q)
  touch "$W/tree.done"
fi
(cd "$REPO" && go build -o "$W/ib" .)
N=$(find "$T" -path "$T/.git" -prune -o -type f -print | wc -l)
echo "tree: $N files, $(find "$T" -name .gitignore | wc -l) ignore files"
for run in 1 2 3; do
  /usr/bin/time -f "ib dry-run   %e s  %M KiB" "$W/ib" backup create --dry-run "$T" >"$W/ib.out" 2>"$W/ib.err" || cat "$W/ib.err"
  tail -1 "$W/ib.err"
  /usr/bin/time -f "git ls-files %e s  %M KiB" git -C "$T" ls-files --others --exclude-per-directory=.gitignore >"$W/git.out" 2>"$W/git.err"
  tail -1 "$W/git.err"
done
echo "kept: ib $(grep '^+ .*[^/]$' "$W/ib.out" | grep -vc '^+ .git/') files and symlinks outside .git, git $(wc -l <"$W/git.out")"
