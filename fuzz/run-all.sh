#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 240) each, two at a time, on
# stable Rust (RUSTC_BOOTSTRAP lets cargo-fuzz pass its -Z sanitizer flags).
# Needs: cargo install cargo-fuzz. Prints executions and findings per target.
set -uo pipefail
cd "$(dirname "$0")"
SECONDS_EACH=${1:-240}
export RUSTC_BOOTSTRAP=1
cargo fuzz build >/dev/null
mkdir -p logs
run() {
  local target=$1
  mkdir -p "corpus/$target"
  cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 >"logs/$target.log" 2>&1
  local status=$?
  local execs
  execs=$(grep -Eo 'Done [0-9]+ runs' "logs/$target.log" | grep -Eo '[0-9]+' | tail -1)
  local crashes
  crashes=$(ls "artifacts/$target" 2>/dev/null | wc -l)
  printf '%-12s exit %s, %s executions, %s crash artifacts\n' "$target" "$status" "${execs:-?}" "$crashes"
}
targets=(envelope record result_json callback verify manifest)
for ((i = 0; i < ${#targets[@]}; i += 2)); do
  run "${targets[i]}" &
  [ -n "${targets[i+1]:-}" ] && run "${targets[i+1]}" &
  wait
done
