#!/usr/bin/env bash
# Builds a release directory from this checkout:
#   scripts/release.sh [OUT_DIR] [NODE_BINARY]
# OUT_DIR defaults to ./releases/<version>. The release holds package.json,
# dist/, production node_modules/, schema/, examples/, systemd/, docs and
# bin/mosn + bin/mosnctl wrappers that run it with NODE_BINARY (default: the
# `node` found now, as an absolute path; it is also written to release.json
# so that `mosnctl upgrade` starts the successor on that runtime).
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(node -p "require('./package.json').version")
out=${1:-releases/$version}
node_bin=${2:-$(command -v node)}
node_bin=$(readlink -f "$node_bin")
[ -x "$node_bin" ] || { echo "release.sh: $node_bin is not an executable node" >&2; exit 1; }

echo "building release $version into $out (node: $node_bin)"
# Reuse the checkout's node_modules when present (it may be shared, e.g. a
# symlink from a git worktree): npm ci would wipe and reinstall it.
[ -d node_modules ] || npm ci --no-audit --no-fund >/dev/null
npm run build >/dev/null
rm -rf "$out"
mkdir -p "$out/bin"
cp -r package.json package-lock.json dist schema examples systemd README.md docs "$out/"
mkdir -p "$out/scripts" && cp scripts/install.sh "$out/scripts/"
(cd "$out" && npm ci --omit=dev --no-audit --no-fund >/dev/null)
printf '{ "node": "%s", "version": "%s" }\n' "$node_bin" "$version" > "$out/release.json"
for cmd in mosn mosnctl; do
  cat > "$out/bin/$cmd" <<WRAP
#!/bin/sh
# Runs this release's $cmd with the Node.js it was built for.
dir=\$(dirname "\$(readlink -f "\$0")")/..
exec "$node_bin" "\$dir/dist/cli/$cmd.js" "\$@"
WRAP
  chmod 755 "$out/bin/$cmd"
done
echo "$out"
