#!/usr/bin/env bash
# The Lambda functions' zipped size and cold-start init time, in one command:
#
#   scripts/measure-functions.sh [--runs N] [--binaries DIR] [--json-out FILE]
#
# Without --binaries it first builds the release binaries of the four functions
# (`cargo build --release -p pushpool-api-function -p pushpool-submitter -p pushpool-reconciler
# -p pushpool-events-function`,
# with the workspace's release profile, into $CARGO_TARGET_DIR or target/), under `nice`.
# With --binaries DIR it reads DIR/pushpool-api-function, DIR/pushpool-submitter,
# DIR/pushpool-reconciler and DIR/pushpool-events-function (e.g. target/release, or the
# bootstraps of a deploy build); a function whose binary DIR lacks is reported as absent and
# skipped (a build from before the events function existed).
#
# For each function it prints the binary's size and the size of a zip holding it as
# `bootstrap` (deflate, level 6: what `sam deploy` uploads), then the init time: the p50 over N
# runs (default 20) from process start to the function's first
# `GET /2018-06-01/runtime/invocation/next` against a local Runtime API emulator
# (scripts/measure-init.py, which says what is and is not measured).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=20 binaries="" json_out=""
while [ "$#" -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --binaries) binaries="$2"; shift 2 ;;
    --json-out) json_out="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "measure-functions: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
command -v zip > /dev/null || { echo "measure-functions: needs zip (apt-get install zip)" >&2; exit 2; }
fns=(api submitter reconciler events)
declare -A bin=([api]=pushpool-api-function [submitter]=pushpool-submitter [reconciler]=pushpool-reconciler
  [events]=pushpool-events-function)
if [ -z "$binaries" ]; then
  echo "== building the functions' release binaries (cold on 2 cores: tens of minutes; see docs/benchmarks.md)"
  nice -n 19 cargo build --release -p pushpool-api-function -p pushpool-submitter -p pushpool-reconciler \
    -p pushpool-events-function
  binaries="${CARGO_TARGET_DIR:-target}/release"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
printf '%-12s %-24s %12s %12s %9s\n' function binary "bytes" "zip bytes" "zip MiB"
specs=()
for fn in "${fns[@]}"; do
  src="$binaries/${bin[$fn]}"
  if [ ! -x "$src" ]; then
    printf '%-12s %-24s %12s\n' "$fn" "${bin[$fn]}" absent
    continue
  fi
  mkdir -p "$work/$fn"
  cp "$src" "$work/$fn/bootstrap"
  (cd "$work/$fn" && zip -q -6 -X ../"$fn".zip bootstrap)
  size="$(stat -c %s "$src")"
  zsize="$(stat -c %s "$work/$fn.zip")"
  printf '%-12s %-24s %12d %12d %9.2f\n' "$fn" "${bin[$fn]}" "$size" "$zsize" "$(awk -v z="$zsize" 'BEGIN { print z / 1048576 }')"
  specs+=("$fn=$src")
done
[ "${#specs[@]}" -gt 0 ] || { echo "measure-functions: no function binary in $binaries" >&2; exit 1; }
echo
python3 scripts/measure-init.py --runs "$runs" ${json_out:+--json-out "$json_out"} "${specs[@]}"
