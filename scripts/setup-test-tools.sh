#!/usr/bin/env bash
# Installs the tools pushpool's tests drive, into a virtualenv inside the project (.venv):
#   - moto server (the AWS API emulator the DynamoDB/ECS tests talk to)
#   - the real Prefect client (prefect 3.9.1 with prefect-aws 0.7.12, prefect-gcp 0.6.22 and
#     prefect-azure 0.4.13, for their credential blocks) the end-to-end tests use.
# and into a second one (.venv-fuzz, apart so that its dependencies never move Prefect's):
#   - schemathesis, the fuzzer `functions/pushpool/tests/fuzz.rs` runs against `pushpool serve`.
# and, for the browser test of Prefect's UI (tests/tests/ui_browser.rs), selenium into .venv and
# Debian's chromium and chromium-driver (apt-get, as root or with sudo) when they are missing.
# Idempotent: a second run only checks that the pinned versions are there.
# With --demo (scripts/demo.sh), only .venv: no fuzzer, no chromium.
set -euo pipefail
demo=0
if [ "${1:-}" = "--demo" ]; then demo=1; fi
here="$(cd "$(dirname "$0")/.." && pwd)"
venv="${PUSHPOOL_VENV:-$here/.venv}"
python="${PYTHON:-python3}"

pins=(
  "prefect==3.9.1"
  "prefect-aws==0.7.12"
  "prefect-gcp==0.6.22"
  "prefect-azure==0.4.13"
  "moto[server]==5.2.5"
  "cfn-lint==1.58.0"
  "aws-sam-translator==1.115.0"
  "selenium==4.51.0"
)

if [ ! -x "$venv/bin/python" ]; then
  echo "setup-test-tools: creating $venv"
  "$python" -m venv "$venv"
fi
if [ "$demo" = 0 ]; then
  # The fuzzer's own virtualenv.
  fuzz_venv="${PUSHPOOL_FUZZ_VENV:-$here/.venv-fuzz}"
  fuzz_pin="schemathesis==4.32.5"
  if [ ! -x "$fuzz_venv/bin/python" ]; then
    echo "setup-test-tools: creating $fuzz_venv"
    "$python" -m venv "$fuzz_venv"
  fi
  if [ "$(cat "$fuzz_venv/.pushpool-pins" 2>/dev/null)" != "$fuzz_pin" ]; then
    echo "setup-test-tools: installing $fuzz_pin into $fuzz_venv"
    "$fuzz_venv/bin/python" -m pip install --quiet --disable-pip-version-check "$fuzz_pin"
    echo "$fuzz_pin" > "$fuzz_venv/.pushpool-pins"
  fi

  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    echo "setup-test-tools: installing Debian's chromium and chromium-driver"
    as_root=""
    if [ "$(id -u)" -ne 0 ]; then as_root="sudo"; fi
    $as_root apt-get update -q
    DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -q --no-install-recommends \
      chromium chromium-driver
  fi
fi

stamp="$venv/.pushpool-pins"
want="$(printf '%s\n' "${pins[@]}")"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "setup-test-tools: installing ${pins[*]}"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${pins[@]}"
printf '%s\n' "$want" > "$stamp"
echo "setup-test-tools: ready ($("$venv/bin/prefect" --version), moto $("$venv/bin/python" -c 'import moto; print(moto.__version__)'))"
