#!/usr/bin/env bash
# Builds pushpool, starts `pushpool serve` on its embedded default (SQLite, local process
# pool), deploys examples/hello.py with the real Prefect client, runs it once with
# `prefect deployment run`, prints the run's states as pushpool moves it along, then its log
# with `prefect flow-run logs` (pushpool's submission lines and the flow's own), and stops.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
port="${PUSHPOOL_DEMO_PORT:-4200}"
scripts/setup-test-tools.sh --demo
if curl -fs "http://127.0.0.1:${port}/api/health" > /dev/null 2>&1; then
  echo "== something already answers on port $port (a Prefect server?): stop it, or pick another" >&2
  echo "   port for the demo: PUSHPOOL_DEMO_PORT=4300 scripts/demo.sh" >&2
  exit 1
fi
# The demo's pool is a local process pool, so its build leaves out the ECS, Cloud Run and ACI
# providers and their SDKs (`--no-default-features`; a pool of a left-out type is refused
# with a message naming the cargo feature). cargo prints each package and a progress bar.
# Measured figures: docs/benchmarks.md, "Build time, memory and function size".
echo "== building pushpool with the local process pool only (cargo build -p pushpool --no-default-features):"
echo "   a first build takes a few minutes on 2 cores; later builds only recompile what changed"
cargo build -p pushpool --no-default-features
data="$(mktemp -d)"
export PREFECT_API_URL="http://127.0.0.1:${port}/api" PREFECT_HOME="$data/prefect-home"
export PATH="$root/.venv/bin:$PATH"   # the jobs of the process pool run `prefect flow-run execute`
bin="${CARGO_TARGET_DIR:-$root/target}/debug/pushpool"
"$bin" serve --bind "127.0.0.1:${port}" --data-dir "$data/pushpool" > "$data/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; echo "server log: $data/server.log (the demo'"'"'s data is kept in $data: delete it when done)"' EXIT
up=""
for _ in $(seq 100); do
  kill -0 $server 2>/dev/null || break   # exited: the port was taken, or the data dir unusable
  if curl -fs "$PREFECT_API_URL/health" > /dev/null; then up=1; break; fi
  sleep 0.1
done
kill -0 $server 2>/dev/null || up=""
if [ -z "$up" ]; then
  echo "== pushpool did not start; its log:" >&2
  cat "$data/server.log" >&2
  exit 1
fi
echo "== pushpool serving at $PREFECT_API_URL"
prefect --no-prompt work-pool create local --type process
python examples/hello.py
out="$(prefect deployment run hello/hello-local)"
echo "$out"
run_id="$(echo "$out" | sed -n 's/.*UUID: *\([0-9a-f-]*\).*/\1/p' | head -1)"
echo "== states of flow run $run_id"
last=""
for _ in $(seq 600); do
  state="$(curl -fs "$PREFECT_API_URL/flow_runs/$run_id" | python -c 'import json,sys; r=json.load(sys.stdin); print(r["state_type"], "-", r["state_name"], "-", r["infrastructure_pid"] or "")')"
  if [ "$state" != "$last" ]; then echo "   $state"; last="$state"; fi
  case "$state" in COMPLETED*|FAILED*|CRASHED*|CANCELLED*) break ;; esac
  sleep 0.1
done
echo "== state history (reported by pushpool and by the flow's engine)"
curl -fs "$PREFECT_API_URL/flow_run_states/?flow_run_id=$run_id" | python -c '
import json, sys
for s in json.load(sys.stdin):
    print("   %s  %-10s %s" % (s["timestamp"], s["type"], s["message"] or ""))'
# Stop only after the run's process has exited: the engine sends its last log lines as it
# exits (a server stopped earlier makes it print "Error logging to API").
pid="$(curl -fs "$PREFECT_API_URL/flow_runs/$run_id" | python -c 'import json,sys; print((json.load(sys.stdin)["infrastructure_pid"] or "").rsplit(":", 1)[-1])')"
for _ in $(seq 300); do
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
echo "== log of flow run $run_id (prefect flow-run logs)"
prefect flow-run logs "$run_id"
case "$last" in COMPLETED*) echo "== the flow run completed" ;; *) echo "== the flow run did not complete"; exit 1 ;; esac
echo "== Prefect's hints above (start a worker, use .serve) do not apply: pushpool submitted the run itself."
echo "   Next: README.md, \"Using it with the prefect CLI\". This build has the local process pool"
echo "   only; \`cargo build -p pushpool\` adds the ECS, Cloud Run and ACI push pools."

