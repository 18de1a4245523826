#!/usr/bin/env bash
# The first command: install what is missing, build, and start a wasmstack server in demo
# mode: a ready zone on the Simulator (libvirt's test driver) with a template, an offering
# and a guest network, so an instance can be deployed at once from the console or the API.
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
bash scripts/build.sh

# The demo needs the KVM driver (it drives the Simulator too), the local storage driver and
# the VLAN network driver (its guest network's isolation method); on its first start it
# grants them the Simulator, the local libvirtd and its own folders.
mkdir -p "$DATA/plugins"
for driver in kvm local vlan; do
  cp -f "$CARGO_TARGET_DIR/wasm32-wasip2/release/$driver.wasm" "$DATA/plugins/$driver.wasm"
done

echo "Console:  http://$LISTEN/client/"
echo "API:      http://$LISTEN/client/api"
if [ -f "$DATA/admin-password" ]; then
  echo "Login:    admin / $(cat "$DATA/admin-password")"
else
  echo "Login:    admin / the password printed below on this first start"
fi
exec "$CARGO_TARGET_DIR/release/wasmstack" serve --demo --listen "$LISTEN" --data-dir "$DATA"
