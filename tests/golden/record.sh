#!/usr/bin/env bash
# Records the golden transcripts: each scenario in tests/golden/scenarios/, driven by
# driver.py against a fresh Prefect server (`prefect server start`, the version installed in
# the project's virtualenv: 3.9.1), written to tests/fixtures/golden/<scenario>.json.
#
# Run once when a scenario changes: `bash tests/golden/record.sh [scenario ...]`.
# The test tests/tests/cli_golden.rs replays each scenario against pushpool (both shapes)
# and compares it with these files step by step.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
py="$root/.venv/bin/python"
prefect="$root/.venv/bin/prefect"
"$py" -c 'import prefect; assert prefect.__version__ == "3.9.1", prefect.__version__'
scenarios=("$@")
if [ ${#scenarios[@]} -eq 0 ]; then
  for f in "$root"/tests/golden/scenarios/*.py; do scenarios+=("$(basename "$f" .py)"); done
fi
for name in "${scenarios[@]}"; do
  work="$(mktemp -d)"
  port="$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  export PREFECT_HOME="$work/home" PREFECT_SERVER_ANALYTICS_ENABLED=false PREFECT_UI_ENABLED=false
  "$prefect" server start --host 127.0.0.1 --port "$port" >"$work/server.log" 2>&1 &
  server=$!
  trap 'kill $server 2>/dev/null || true' EXIT
  for _ in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:$port/api/health" >/dev/null 2>&1 && break
    sleep 0.5
  done
  PREFECT_API_URL="http://127.0.0.1:$port/api" PREFECT_HOME="$work/client" \
    "$py" "$root/tests/golden/driver.py" "$root/tests/golden/scenarios/$name.py" \
    "$root/tests/fixtures/golden/$name.json"
  kill "$server"; wait "$server" 2>/dev/null || true
  trap - EXIT
  rm -rf "$work"
  echo "recorded $name"
done
