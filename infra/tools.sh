#!/usr/bin/env bash
# Installs the infra tools into virtualenvs of their own, pinned, idempotently.
#
#   infra/tools.sh sam        aws-sam-cli (sam validate --lint, sam deploy)     -> infra/.venv-sam
#   infra/tools.sh lambda     + cargo-lambda and ziglang (the Lambda builds)    -> infra/.venv-sam
#   infra/tools.sh zigbuild   + cargo-zigbuild and ziglang (the test build, scripts/test.sh)
#   infra/tools.sh checkov    checkov                                           -> infra/.venv-checkov
#
# Prints the venv's bin directory. Why not the project's .venv (scripts/setup-test-tools.sh):
# checkov pins boto3==1.35.49, networkx<2.7 and packaging<24, which clash with moto and
# prefect-aws there; aws-sam-cli pins click==8.1.8 and pulls ~40 packages (boto3 stubs, an
# older boto3) that would silently change the environment the Prefect end-to-end tests run
# in. cfn-lint and aws-sam-translator, which fit, are in the project's pins and used from
# .venv by check.sh. Versions are the ones tested in shared/reference/iac/REPORT.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-python3}"

SAM_PINS=("aws-sam-cli==1.170.0")
LAMBDA_PINS=("cargo-lambda==1.9.2" "ziglang==0.17.1")
ZIGBUILD_PINS=("cargo-zigbuild==0.24.1" "ziglang==0.17.1")
CHECKOV_PINS=("checkov==3.3.30")

ensure() { # ensure VENV PIN...
  local venv="$1"; shift
  local stamp="$venv/.pushpool-pins" missing=() p
  # A pin whose version changed: start the venv afresh rather than pile versions up.
  for p in "$@"; do
    if [ -f "$stamp" ] && grep -q "^${p%%==*}==" "$stamp" && ! grep -qxF "$p" "$stamp"; then
      echo "tools: $p changed; recreating $venv" >&2
      rm -rf "$venv"
    fi
  done
  if [ ! -x "$venv/bin/python" ]; then
    echo "tools: creating $venv" >&2
    "$python" -m venv "$venv" >&2
  fi
  for p in "$@"; do
    grep -qxF "$p" "$stamp" 2>/dev/null || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "tools: installing ${missing[*]} into $venv" >&2
    # Install everything this venv has had, so that pip resolves them together.
    local all=("$@")
    [ -f "$stamp" ] && mapfile -t -O "${#all[@]}" all < "$stamp"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${all[@]}" >&2
    printf '%s\n' "${all[@]}" | sort -u > "$stamp"
  fi
  echo "$venv/bin"
}

case "${1:-}" in
  sam) ensure "$here/.venv-sam" "${SAM_PINS[@]}" ;;
  lambda) ensure "$here/.venv-sam" "${SAM_PINS[@]}" "${LAMBDA_PINS[@]}" ;;
  zigbuild) ensure "$here/.venv-sam" "${SAM_PINS[@]}" "${ZIGBUILD_PINS[@]}" ;;
  checkov) ensure "$here/.venv-checkov" "${CHECKOV_PINS[@]}" ;;
  *) echo "usage: $0 sam|lambda|zigbuild|checkov" >&2; exit 2 ;;
esac
