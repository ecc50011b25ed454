#!/usr/bin/env bash
# Installs (or re-installs: idempotent) mosn-ts as a systemd service:
#   sudo scripts/install.sh [RELEASE_DIR]
# - the mosn system user and group
# - /opt/mosn/releases/<version> (built by scripts/release.sh when RELEASE_DIR
#   is not given) and /opt/mosn/current -> that release
# - /etc/mosn/mosn.yaml (an example) if absent; /var/log/mosn
# - /usr/local/bin/mosnctl, the units in /etc/systemd/system
# It does not start or restart the service: see README ("Install as a service").
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "install.sh: run as root" >&2; exit 1; }
cd "$(dirname "$0")/.."
PREFIX=${MOSN_PREFIX:-/opt/mosn}
ETC=${MOSN_ETC:-/etc/mosn}
UNITS=${MOSN_UNIT_DIR:-/etc/systemd/system}

release=${1:-}
if [ -z "$release" ]; then
  version=$(node -p "require('./package.json').version")
  release=$(scripts/release.sh "$(mktemp -d)/$version" | tail -n 1)
fi
version=$(node -p "require('$release/package.json').version")

getent group mosn >/dev/null || groupadd --system mosn
getent passwd mosn >/dev/null || useradd --system --gid mosn --home-dir /nonexistent --shell /usr/sbin/nologin mosn

mkdir -p "$PREFIX/releases" "$ETC" /var/log/mosn
chown mosn:mosn /var/log/mosn
target="$PREFIX/releases/$version"
if [ "$(readlink -f "$release")" != "$(readlink -f "$target")" ]; then
  rm -rf "$target.tmp"
  cp -a "$release" "$target.tmp"
  rm -rf "$target"
  mv "$target.tmp" "$target"
fi
ln -sfn "$target" "$PREFIX/current.tmp" && mv -T "$PREFIX/current.tmp" "$PREFIX/current"

if [ ! -e "$ETC/mosn.yaml" ]; then
  sed -e 's#control_socket: .*#control_socket: /run/mosn/mosn.sock#' "$target/examples/quickstart.yaml" > "$ETC/mosn.yaml"
  echo "wrote an example $ETC/mosn.yaml"
fi
"$target/bin/mosn" validate -c "$ETC/mosn.yaml"

ln -sfn "$PREFIX/current/bin/mosnctl" /usr/local/bin/mosnctl
install -m 0644 "$target/systemd/mosn.service" "$UNITS/mosn.service"
install -m 0644 "$target/systemd/mosn-web.socket" "$UNITS/mosn-web.socket"
command -v systemctl >/dev/null && [ -d /run/systemd/system ] && systemctl daemon-reload || true
echo "installed mosn-ts $version in $target (current -> $target)"
echo "next: systemctl enable --now mosn   (or: mosnctl -c $ETC/mosn.yaml upgrade $target, when it already runs)"
