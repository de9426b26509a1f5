#!/usr/bin/env bash
# Measures a cargo build: total wall and CPU time, and each rustc invocation's wall time, CPU
# time and peak memory (maximum resident set size), then prints a table of the crates that
# took the most memory and the most time.
#
#   scripts/measure-build.sh [--top N] [--log FILE] -- COMMAND...
#
#   scripts/measure-build.sh -- cargo build -p pushpool
#   CARGO_TARGET_DIR=target-measure-debug scripts/measure-build.sh -- cargo build -p pushpool
#   scripts/measure-build.sh --top 20 -- cargo build --release -p pushpool --bins
#
# COMMAND is any command that runs cargo (cargo, cargo-zigbuild, cargo lambda...): this script
# sets RUSTC_WRAPPER to itself, and cargo then starts every rustc through it. Each rustc runs
# under GNU time (`/usr/bin/time`), which reports its peak RSS: that of rustc itself, or of the
# largest process it waited for (the linker, for a binary). A build is only measured cold if
# its target directory holds nothing of it: point CARGO_TARGET_DIR at a new directory (and
# delete it afterwards). Build scripts' runs (`build.rs`, e.g. the C compiles of aws-lc-sys and
# SQLite) are not rustc invocations: their time is in the totals, not in the per-crate tables.
#
# The machine may be busy with other work. Next to the times the script prints the load
# average (sampled every 5 s) and the share of the machine's CPU time that other processes
# used during the build (from /proc/stat): the build's own CPU time is the figure that does not
# depend on that load; its wall time does.
#
# Stopped with Ctrl-C, it still prints the tables of what was built until then.
#
# Options: --top N (rows per table, default 10); --log FILE (keep the per-invocation records,
# tab-separated: package, crate, crate types, wall s, user s, sys s, peak RSS KiB, start time).
# Needs GNU time at /usr/bin/time (Debian/Ubuntu: apt-get install time) and Linux's /proc.
set -euo pipefail

# ------------------------------------------------------------ wrapper mode (run by cargo)
if [ -n "${PUSHPOOL_MEASURE_LOG:-}" ] && [ "$#" -gt 0 ] && [ "${1:-}" != "--" ]; then
  rustc="$1"
  shift
  crate="" types=""
  prev=""
  for arg in "$@"; do
    case "$prev" in
      --crate-name) crate="$arg" ;;
      --crate-type) types="${types:+$types,}$arg" ;;
    esac
    prev="$arg"
  done
  # cargo also asks rustc for its version and target information (crate `___`): not measured.
  { [ -n "$crate" ] && [ "$crate" != ___ ]; } || exec "$rustc" "$@"
  out="$(mktemp "${TMPDIR:-/tmp}/measure-rustc.XXXXXX")"
  start="$(date +%s.%N)"
  status=0
  /usr/bin/time -f '%e %U %S %M' -o "$out" "$rustc" "$@" || status=$?
  # GNU time writes "Command exited with non-zero status N" before the figures on failure.
  read -r wall user sys rss < <(tail -n 1 "$out")
  rm -f "$out"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "${CARGO_PKG_NAME:-$crate}" "$crate" "${types:-lib}" \
    "$wall" "$user" "$sys" "$rss" "$start" >> "$PUSHPOOL_MEASURE_LOG"
  exit "$status"
fi

# ------------------------------------------------------------ driver mode
top=10 keep_log=""
while [ "$#" -gt 0 ]; do
  case "$1" in
    --top) top="$2"; shift 2 ;;
    --log) keep_log="$2"; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) break ;;
  esac
done
[ "$#" -gt 0 ] || { echo "usage: $0 [--top N] [--log FILE] -- COMMAND..." >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "measure-build: needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 2; }
if [ -n "${RUSTC_WRAPPER:-}" ]; then
  echo "measure-build: RUSTC_WRAPPER is already set ($RUSTC_WRAPPER); unset it (sccache would hide the compiles)" >&2
  exit 2
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/measure-build.XXXXXX")"
trap 'kill "$sampler" 2>/dev/null || true; rm -rf "$work"' EXIT
log="$work/rustc.tsv"
: > "$log"

cpu_busy_total() { # busy and total jiffies of all CPUs
  awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat
}
# Load average, every 5 s, while the build runs.
( while :; do cut -d' ' -f1 /proc/loadavg >> "$work/load"; sleep 5; done ) &
sampler=$!

read -r busy0 total0 < <(cpu_busy_total)
hz="$(getconf CLK_TCK)"
ncpu="$(getconf _NPROCESSORS_ONLN)"
echo "measure-build: $* (target dir ${CARGO_TARGET_DIR:-default}; $ncpu CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
status=0 interrupted=""
# Ctrl-C stops the build (cargo gets the signal too); the tables then cover what was built.
trap 'interrupted=1' INT TERM
self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
PUSHPOOL_MEASURE_LOG="$log" RUSTC_WRAPPER="$self" \
  /usr/bin/time -f '%e %U %S %M' -o "$work/total" "$@" || status=$?
read -r busy1 total1 < <(cpu_busy_total)
kill "$sampler" 2>/dev/null || true
read -r wall user sys _ < <(tail -n 1 "$work/total")
[ -z "$keep_log" ] || cp "$log" "$keep_log"

# CPU time other processes used on the machine during the build (machine busy - this build).
others="$(awk -v b="$((busy1 - busy0))" -v t="$((total1 - total0))" -v hz="$hz" -v u="$user" -v s="$sys" \
  'BEGIN { o = b / hz - (u + s); if (o < 0) o = 0; printf "%.0f CPU-s (%.0f %% of the machine)", o, (t > 0 ? 100 * o / (t / hz) : 0) }')"
load="$(sort -n "$work/load" | awk '{ a[NR] = $1; s += $1 } END { if (NR) printf "mean %.2f, max %.2f over %d samples", s / NR, a[NR], NR }')"

printf '\n== %s\n' "$*"
awk -F'\t' -v wall="$wall" -v user="$user" -v sys="$sys" -v n="$ncpu" '
  { count++; rcpu += $5 + $6; if ($7 > peak) { peak = $7; who = $2 } }
  END {
    printf "wall time            %8.1f s  (%.1f min)\n", wall, wall / 60
    printf "CPU time (user+sys)  %8.1f s  (%.1f min; all processes of the build: rustc, build scripts, linkers)\n", user + sys, (user + sys) / 60
    printf "rustc invocations    %8d     (their CPU time: %.1f s)\n", count, rcpu
    printf "largest rustc peak   %8.0f MiB (%s)\n", peak / 1024, who
  }' "$log"
echo "machine              $ncpu CPUs; load average $load; other processes used $others"
echo "exit status          $status${interrupted:+ (interrupted: the figures cover the part that was built)}"

table() { # $1: sort column (4 wall, 7 rss), $2: title
  printf '\n-- top %s crates by %s\n' "$top" "$2"
  printf '%-32s %-28s %-14s %9s %9s %10s\n' package crate types "wall s" "CPU s" "peak MiB"
  # awk stops printing rather than `head` closing the pipe: under pipefail, sort's SIGPIPE
  # would turn the script's exit status into 141.
  sort -t$'\t' -k"$1","$1" -g -r "$log" |
    awk -F'\t' -v n="$top" 'NR <= n { printf "%-32s %-28s %-14s %9.1f %9.1f %10.0f\n", $1, $2, $3, $4, $5 + $6, $7 / 1024 }'
}
table 7 "peak RSS"
table 4 "wall time"
exit "$status"
