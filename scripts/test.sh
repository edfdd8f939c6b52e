#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, checks formatting
# and lints, builds once and runs every test with cargo-nextest.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# Tests that need a server fail (instead of skipping) when it is missing.
export CAIRN_CI=1
CACHE=${CAIRN_CI_CACHE:-$HOME/.cache/cairn-ci}
mkdir -p "$CACHE"

step() { printf '\n== %s (%ss)\n' "$1" "$SECONDS"; }

step "tools"
command -v cargo-nextest >/dev/null 2>&1 || cargo install --locked cargo-nextest
command -v mkfs.ext4 >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq e2fsprogs >/dev/null; }

# Servers and packages the tests need. Each scripts/ci.d/*.sh is sourced in order: it installs
# what it needs (cached under $CACHE), starts its servers on loopback, exports the environment
# variables its tests read, and appends the servers' PIDs to CI_PIDS so they stop on exit.
CI_PIDS=()
cleanup() { for pid in "${CI_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
for setup in scripts/ci.d/*.sh; do
  [ -e "$setup" ] || continue
  step "setup ${setup##*/}"
  # shellcheck source=/dev/null
  source "$setup"
done

step "fmt"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build tests"
cargo nextest run --workspace --locked --no-run

step "tests"
cargo nextest run --workspace --locked --no-fail-fast
