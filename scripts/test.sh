#!/usr/bin/env bash
# The test command: prepare the machine, build the test guest and everything else, run all tests.
#
#   scripts/test.sh [ARGS...]     ARGS go to the wasmstack `cargo test` (e.g. a test name filter)
#   scripts/test.sh --quick       only the quick tier (below), on a machine already set up
#
# The quick tier runs first: `cargo fmt --check`, `cargo clippy -D warnings`, the unit tests,
# and the orchestrator's tests in-process (tests/all/orchestrator.rs and public_ips.rs: the
# demo cloud on the Simulator, local storage, SQLite in memory). It needs no root, libvirtd or NFS.
#
# Then the real-client API suite: tests/clients (pytest, in the venv scripts/setup.sh makes),
# and the web console in headless Chromium: tests/console (node's test runner, playwright-core).
#
# Needs root on Debian 12; installs its own packages and starts libvirtd (see scripts/setup.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/wasmstack/target}"
export WASMSTACK_GUEST_DIR="${WASMSTACK_GUEST_DIR:-$HOME/.cache/wasmstack/guest}"
# The NFS export scripts/setup.sh serves: the storage tests use it over NFS and read its
# folder directly to check what the drivers left there.
export WASMSTACK_NFS_ROOT="${WASMSTACK_NFS_ROOT:-$HOME/.cache/wasmstack/nfs}"
export WASMSTACK_NFS_EXPORT_DIR="$WASMSTACK_NFS_ROOT/export"
export WASMSTACK_NFS_URL="nfs://127.0.0.1/export"
# A 64 MiB tmpfs export, for the tests that fill the storage up.
export WASMSTACK_NFS_SMALL_DIR="$WASMSTACK_NFS_ROOT/small"
export WASMSTACK_NFS_SMALL_URL="nfs://127.0.0.1/small"
# libvirt's LXC driver, in the daemon of its own that scripts/setup.sh starts
# (scripts/lxc-daemon.sh): the outside hypervisor driver's test runs containers there.
export WASMSTACK_LXC_URI="${WASMSTACK_LXC_URI:-$(bash scripts/lxc-daemon.sh --uri)}"

quick=false
if [ "${1:-}" = "--quick" ]; then
  quick=true
  shift
fi

# Packages, toolchains and services; the quick tier needs only the first two.
if ! $quick; then
  bash scripts/setup.sh
fi

# The quick tier first, so a formatting slip, a lint or a broken workflow fails the run in minutes.
t0=$SECONDS
printf 'test: quick tier: cargo fmt --check, cargo clippy\n'
cargo fmt --all -- --check
cargo clippy -p wasmstack --all-targets -- -D warnings
printf 'test: quick tier: the demo drivers, unit tests, the orchestrator in-process\n'
cargo build --release --target wasm32-wasip2 -p kvm -p local -p vlan
cargo test --release -p wasmstack --lib
cargo test --release -p wasmstack --test all -- orchestrator:: public_ips:: rules:: guest_access::
printf 'test: quick tier passed in %d s\n' $((SECONDS - t0))
if $quick; then
  exit 0
fi

bash scripts/guest-image.sh "$WASMSTACK_GUEST_DIR"
bash scripts/build.sh

failed=()
printf 'test: cargo test --release -p wasmstack %s (all but the in-process demo cloud tests)\n' "$*"
cargo test --release -p wasmstack "$@" -- --skip orchestrator:: --skip public_ips:: --skip rules:: --skip guest_access:: || failed+=(wasmstack)
printf 'test: cargo test --release -p kvm -p nfs -p local -p wasmstack-console\n'
cargo test --release -p kvm -p nfs -p local -p wasmstack-console || failed+=(drivers-and-console-units)

# The CloudStack API through real clients (cs, Libcloud, plain HTTP) against `wasmstack serve`,
# on SQLite and PostgreSQL; the venv and PostgreSQL come from scripts/setup.sh.
venv="${WASMSTACK_VENV:-$HOME/.cache/wasmstack/venv}"
printf 'test: pytest tests/clients\n'
"$venv/bin/python" -m pytest -q tests/clients || failed+=(clients)

# The console against `wasmstack serve --demo`, in Debian's chromium; playwright-core is
# in the npm folder scripts/setup.sh fills.
printf 'test: node --test tests/console\n'
NODE_PATH="${WASMSTACK_NODE_DIR:-$HOME/.cache/wasmstack/node}/node_modules" node --test tests/console/ || failed+=(console)

if [ ${#failed[@]} -gt 0 ]; then
  printf 'test: FAILED: %s\n' "${failed[*]}" >&2
  exit 1
fi
printf 'test: all passed\n'
