#!/usr/bin/env bash
# The README's first command and `cargo install`, each cold in a fresh clone of
# this checkout with its own target directory (crates already downloaded), one
# after the other: wall time, crates compiled, binary size. Prints one line each.
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
first='--sim generate --image examples/assets/face.png --audio examples/assets/hello.wav --prompt "A friendly presenter" --out avatar.mp4'
run() { # name, command
  local name=$1 command=$2 dir=$work/$1
  git clone -q "$repo" "$dir"
  cd "$dir" || exit 1
  local start end
  start=$(date +%s.%N)
  eval "$command" > "$dir.log" 2>&1
  local status=$?
  end=$(date +%s.%N)
  printf '%-14s exit %s  %6.1f s  %s crates compiled%s\n' "$name" "$status" \
    "$(echo "$end - $start" | bc)" "$(grep -c '^ *Compiling ' "$dir.log")" \
    "$( [ -f avatar.mp4 ] && echo ", avatar.mp4 $(head -c 8 avatar.mp4 | tail -c 4)")"
  cd "$work" || exit 1
}
run first-lean "cargo run -p kling-cli --no-default-features -- $first"
run first-debug "cargo run -p kling-cli -- $first"
run first-release "cargo run --release -p kling-cli -- $first"
run install-full "cargo install --locked --path kling-cli --root $work/full"
run install-lean "cargo install --locked --path kling-cli --no-default-features --root $work/lean"
ls -l "$work/full/bin/kling" "$work/lean/bin/kling"
