#!/usr/bin/env bash
# The CLI's start-up time: `kling --version` (argument parsing only) and
# `kling version` (the runtime too), 200 runs each, release build.
# Uses hyperfine when installed (apt-get install hyperfine), else a plain loop.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p kling-cli >/dev/null 2>&1
kling=target/release/kling
if command -v hyperfine >/dev/null; then
  hyperfine --warmup 20 --runs 200 -N "$kling --version" "$kling --no-json version"
else
  for args in "--version" "--no-json version"; do
    start=$(date +%s%N)
    for _ in $(seq 200); do $kling $args >/dev/null; done
    end=$(date +%s%N)
    echo "kling $args: $(( (end - start) / 200 / 1000 )) µs per run (mean of 200)"
  done
fi
