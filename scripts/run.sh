#!/usr/bin/env bash
# The first command: install what is missing, build, and start a wasmstack server with
# the KVM driver granted the Simulator (libvirt's test driver) and the local libvirtd.
#
#   scripts/run.sh            data in ${WASMSTACK_DATA_DIR:-$HOME/.local/share/wasmstack}
#   LISTEN=0.0.0.0:8080 scripts/run.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/wasmstack/target}"
DATA="${WASMSTACK_DATA_DIR:-$HOME/.local/share/wasmstack}"
LISTEN="${LISTEN:-127.0.0.1:8080}"

bash scripts/setup.sh
cargo build --release -p wasmstack
cargo build --release --target wasm32-wasip2 -p kvm

mkdir -p "$DATA/plugins"
cp -f "$CARGO_TARGET_DIR/wasm32-wasip2/release/kvm.wasm" "$DATA/plugins/kvm.wasm"
if [ ! -f "$DATA/wasmstack.toml" ]; then
  cat > "$DATA/wasmstack.toml" <<'TOML'
# Plugins load from the plugins/ folder beside this file; each gets only what is granted here.
[plugin.kvm]
libvirt = ["test:///default", "qemu:///system"]
timeout-ms = 120000
TOML
fi

echo "API:      http://$LISTEN/client/api"
if [ -f "$DATA/admin-password" ]; then
  echo "Login:    admin / $(cat "$DATA/admin-password")"
fi
exec "$CARGO_TARGET_DIR/release/wasmstack" serve --listen "$LISTEN" --data-dir "$DATA"
