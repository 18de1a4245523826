#!/usr/bin/env bash
# Build everything once, release profile, into one target folder:
#   - the wasmstack server binary and its test binary (host)
#   - the plugin components kvm, nfs, local, vlan, flat (wasm32-wasip2), and the test-only
#     rogue (in variants), roguestore and future
#   - the web console (web/, wasm32-unknown-unknown, profile wasm-release) into
#     $CARGO_TARGET_DIR/release/web, where the server binary finds it by default
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

log "components: kvm nfs local vlan flat rogue roguestore future"
cargo build --release --target wasm32-wasip2 -p kvm -p nfs -p local -p vlan -p flat -p rogue -p roguestore -p future

# The rogue test plugin comes in variants, one per cargo feature (see its Cargo.toml): two
# versions (plugin upgrade tests) and drivers whose describe() misbehaves. Every build
# writes rogue.wasm, so keep a copy of each; what rogue.wasm holds afterwards does not matter.
cp -f "$WASM_DIR/rogue.wasm" "$WASM_DIR/rogue-v1.wasm"
ROGUE_VARIANTS="v2 impostor describe-loop many-asks huge-describe"
for variant in $ROGUE_VARIANTS; do
  log "components: rogue --features $variant"
  cargo build --release --target wasm32-wasip2 -p rogue --features "$variant"
  cp -f "$WASM_DIR/rogue.wasm" "$WASM_DIR/rogue-$variant.wasm"
done

# The kvm driver built against the frozen wasmstack:driver@0.1.0, for the test that loads a
# 0.1.0 driver beside current ones; the current build is put back as kvm.wasm afterwards.
log "components: kvm --features wit-v0-1 (kept as kvm-wit-0.1.wasm)"
cp -f "$WASM_DIR/kvm.wasm" "$WASM_DIR/kvm.wasm.current"
cargo build --release --target wasm32-wasip2 -p kvm --features wit-v0-1
mv -f "$WASM_DIR/kvm.wasm" "$WASM_DIR/kvm-wit-0.1.wasm"
mv -f "$WASM_DIR/kvm.wasm.current" "$WASM_DIR/kvm.wasm"

# The flat driver built against the frozen wasmstack:driver@0.2.0, for the test that loads a
# 0.2.0 network driver beside current ones (it has no router calls); kept as flat-wit-0.2.wasm.
log "components: flat --features wit-v0-2 (kept as flat-wit-0.2.wasm)"
cp -f "$WASM_DIR/flat.wasm" "$WASM_DIR/flat.wasm.current"
cargo build --release --target wasm32-wasip2 -p flat --features wit-v0-2
mv -f "$WASM_DIR/flat.wasm" "$WASM_DIR/flat-wit-0.2.wasm"
# And against 0.3.0 (routers, no security groups); kept as flat-wit-0.3.wasm.
log "components: flat --features wit-v0-3 (kept as flat-wit-0.3.wasm)"
cargo build --release --target wasm32-wasip2 -p flat --features wit-v0-3
mv -f "$WASM_DIR/flat.wasm" "$WASM_DIR/flat-wit-0.3.wasm"
mv -f "$WASM_DIR/flat.wasm.current" "$WASM_DIR/flat.wasm"

log "web console: cargo build, wasm-bindgen, wasm-opt"
t0=$SECONDS
cargo build -p wasmstack-console --target wasm32-unknown-unknown --profile wasm-release
WEB_DIR=$CARGO_TARGET_DIR/release/web
rm -rf "$WEB_DIR.new"
mkdir -p "$WEB_DIR.new/pkg"
wasm-bindgen --target web --no-typescript --out-dir "$WEB_DIR.new/pkg" --out-name console \
  "$CARGO_TARGET_DIR/wasm32-unknown-unknown/wasm-release/wasmstack-console.wasm"
# wasm-opt from npm's binaryen (scripts/setup.sh); Debian's older one breaks some bundles.
node_dir=${WASMSTACK_NODE_DIR:-$HOME/.cache/wasmstack/node}
wasm_opt=$node_dir/node_modules/.bin/wasm-opt
"$wasm_opt" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals \
  -o "$WEB_DIR.new/pkg/console_bg.wasm" "$WEB_DIR.new/pkg/console_bg.wasm"
cp web/index.html web/style.css web/console.html "$WEB_DIR.new/"
# The VM console page: noVNC from npm, bundled with its script into one file.
NODE_PATH="$node_dir/node_modules" "$node_dir/node_modules/.bin/esbuild" web/vnc.js --bundle --minify \
  --format=iife --target=es2020 --log-level=warning --outfile="$WEB_DIR.new/vnc.js"
# Served as they are to browsers that take brotli or gzip (ServeDir's precompressed files);
# node's zlib makes the brotli ones, so no other tool is needed.
find "$WEB_DIR.new" -type f \( -name '*.html' -o -name '*.css' -o -name '*.js' -o -name '*.wasm' \) -exec gzip -9 -k {} +
find "$WEB_DIR.new" -type f \( -name '*.html' -o -name '*.css' -o -name '*.js' -o -name '*.wasm' \) -print0 |
  xargs -0 node -e '
    const fs = require("fs"), zlib = require("zlib");
    for (const f of process.argv.slice(1)) {
      const q = { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: fs.statSync(f).size } };
      fs.writeFileSync(f + ".br", zlib.brotliCompressSync(fs.readFileSync(f), q));
    }'
# Swapped in whole, so a running server never serves half of one build and half of another.
rm -rf "$WEB_DIR.old"
[ ! -d "$WEB_DIR" ] || mv "$WEB_DIR" "$WEB_DIR.old"
mv "$WEB_DIR.new" "$WEB_DIR"
rm -rf "$WEB_DIR.old"
first_page=$(cat "$WEB_DIR"/index.html.gz "$WEB_DIR"/style.css.gz "$WEB_DIR"/pkg/*.gz | wc -c)
first_page_br=$(cat "$WEB_DIR"/index.html.br "$WEB_DIR"/style.css.br "$WEB_DIR"/pkg/*.br | wc -c)
log "web console: $WEB_DIR in $((SECONDS - t0)) s; first page $first_page bytes gzip, $first_page_br brotli"

log "artifacts:"
for f in "$CARGO_TARGET_DIR/release/wasmstack" \
         "$CARGO_TARGET_DIR/release/web/index.html" "$CARGO_TARGET_DIR/release/web/pkg/console_bg.wasm" \
         "$WASM_DIR/kvm.wasm" "$WASM_DIR/kvm-wit-0.1.wasm" "$WASM_DIR/flat-wit-0.2.wasm" "$WASM_DIR/flat-wit-0.3.wasm" "$WASM_DIR/nfs.wasm" "$WASM_DIR/local.wasm" "$WASM_DIR/vlan.wasm" "$WASM_DIR/flat.wasm" "$WASM_DIR/future.wasm" "$WASM_DIR/roguestore.wasm" "$WASM_DIR/rogue-v1.wasm" \
         $(for v in $ROGUE_VARIANTS; do printf '%s ' "$WASM_DIR/rogue-$v.wasm"; done); do
  [ -f "$f" ] || { printf 'build: ERROR: missing %s\n' "$f" >&2; exit 1; }
  printf '  %s\n' "$f"
done
