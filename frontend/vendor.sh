#!/usr/bin/env bash
# vendor.sh VERSION — refresh the vendored htm+Preact module from the npm package htm@VERSION.
set -euo pipefail
v=${1:?usage: frontend/vendor.sh HTM_VERSION}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack "htm@$v" >/dev/null && tar xzf "htm-$v.tgz")
rm -f "$here"/vendor/htm-preact-*.mjs
cp "$tmp/package/preact/standalone.module.js" "$here/vendor/htm-preact-$v.mjs"
cp "$tmp/package/LICENSE" "$here/vendor/LICENSE-htm"
echo "now update the import in frontend/app.js to /vendor/htm-preact-$v.mjs"
