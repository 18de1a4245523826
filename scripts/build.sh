#!/usr/bin/env bash
# Build everything once, release profile, into one target folder:
#   - the wasmstack server binary and its test binary (host)
#   - the plugin components kvm, nfs, local, vlan, flat, rogue (two versions) and future (wasm32-wasip2)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'build: %s\n' "$*"; }

if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/wasmstack/target}"
WASM_DIR=$CARGO_TARGET_DIR/wasm32-wasip2/release

log "host: wasmstack binary + tests (target dir $CARGO_TARGET_DIR)"
cargo test --release --no-run -p wasmstack

log "components: kvm nfs local vlan flat rogue future"
cargo build --release --target wasm32-wasip2 -p kvm -p nfs -p local -p vlan -p flat -p rogue -p future

# The rogue test plugin comes in two versions (plugin upgrade tests). Both builds
# write rogue.wasm, so keep a copy of each; what rogue.wasm holds afterwards does not matter.
cp -f "$WASM_DIR/rogue.wasm" "$WASM_DIR/rogue-v1.wasm"
log "components: rogue --features v2"
cargo build --release --target wasm32-wasip2 -p rogue --features v2
cp -f "$WASM_DIR/rogue.wasm" "$WASM_DIR/rogue-v2.wasm"

log "artifacts:"
for f in "$CARGO_TARGET_DIR/release/wasmstack" \
         "$WASM_DIR/kvm.wasm" "$WASM_DIR/nfs.wasm" "$WASM_DIR/local.wasm" "$WASM_DIR/vlan.wasm" "$WASM_DIR/flat.wasm" "$WASM_DIR/rogue-v1.wasm" "$WASM_DIR/rogue-v2.wasm" "$WASM_DIR/future.wasm"; do
  [ -f "$f" ] || { printf 'build: ERROR: missing %s\n' "$f" >&2; exit 1; }
  printf '  %s\n' "$f"
done
