#!/usr/bin/env bash
# Cold build and spec-touch rebuild times, in a fresh clone with its own target
# directory (crates already downloaded). Usage: bench/build-times.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q "$repo" "$work/clone"
cd "$work/clone"
t() { local start end; start=$(date +%s.%N); "$@" >/dev/null 2>&1; end=$(date +%s.%N); echo "$end - $start" | bc; }
echo "cold cargo build --workspace:                     $(t cargo build --workspace) s"
echo "touch spec/ai-avatar-v1-pro.json, cargo build:    $(touch spec/ai-avatar-v1-pro.json; t cargo build --workspace) s"
rm -rf target
echo "cold cargo test --workspace --all-features --no-run: $(t cargo test --workspace --all-features --no-run) s"
echo "touch spec, cargo test --no-run:                  $(touch spec/ai-avatar-v1-pro.json; t cargo test --workspace --all-features --no-run) s"
echo "cold cargo build --release -p kling-cli:          $(rm -rf target; t cargo build --release -p kling-cli) s"
ls -l target/release/kling | awk '{printf "release kling binary: %.1f MB\n", $5 / 1e6}'
