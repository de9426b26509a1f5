#!/usr/bin/env bash
# Publishes Prefect's UI to a deployed pushpool stack: the bundles of this machine's prefect
# installation, prepared by `pushpool ui export` exactly as `pushpool serve --ui auto` serves
# them (placeholder replaced, /ui-settings with the stack's CloudFront API URL and
# auth BASIC), uploaded to the stack's UiBucket by infra/ui_upload.py. infra/deploy.sh runs it
# after each deploy; run it alone after upgrading prefect. See infra/README.md, "The UI".
#
#   infra/publish-ui.sh [--stack-name NAME] [--region REGION] [--ui auto|PATH]
#
#   --ui auto|PATH   where the UI comes from (default auto: the `prefect` package of the
#                    `python` on PATH, as `pushpool serve --ui auto`; or a site-packages,
#                    prefect or prefect/server directory) [PUSHPOOL_UI]
# PUSHPOOL_BIN: a `pushpool` binary to use instead of building it from this checkout.
# PUSHPOOL_PYTHON: a Python with boto3 to use instead of infra/.venv-sam's (the tests' venv).
#
# Exit status: 0 when published, and also when no prefect installation is found (the message
# says so and how to publish later); 1 on any other failure.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
die() { echo "publish-ui: $*" >&2; exit 1; }

stack="" region="" ui="${PUSHPOOL_UI:-auto}"
while [ $# -gt 0 ]; do
  case "$1" in
    --stack-name) stack="${2:?}"; shift ;;
    --region) region="${2:?}"; shift ;;
    --ui) ui="${2:?}"; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
  shift
done
[ -n "$region" ] && export AWS_REGION="$region" AWS_DEFAULT_REGION="$region"
stack="${stack:-$(sed -n 's/^stack_name *= *"\(.*\)"/\1/p' "$here/samconfig.toml" | head -1)}"
if [ -n "${PUSHPOOL_PYTHON:-}" ]; then
  py="$PUSHPOOL_PYTHON"
else
  py="$("$here/tools.sh" sam)/python" || die "could not install aws-sam-cli (its Python has boto3)"
fi

outputs="$("$py" - "$stack" <<'PY'
import sys, boto3
stack = boto3.client("cloudformation").describe_stacks(StackName=sys.argv[1])["Stacks"][0]
for o in stack.get("Outputs", []):
    print(o["OutputKey"], o["OutputValue"])
PY
)" || die "cannot read the outputs of the stack $stack"
out() { awk -v k="$1" '$1 == k { print $2 }' <<<"$outputs"; }
api_url="$(out ApiUrl)" ui_url="$(out UiUrl)" bucket="$(out UiBucketName)"
[ -n "$bucket" ] && [ -n "$ui_url" ] ||
  die "the stack $stack has no UiBucketName/UiUrl output (deployed from an older template? run infra/deploy.sh)"

pushpool="${PUSHPOOL_BIN:-}"
if [ -z "$pushpool" ]; then
  echo "publish-ui: building pushpool (cargo build -p pushpool --bin pushpool)"
  cargo build --quiet --manifest-path "$root/Cargo.toml" -p pushpool --bin pushpool
  target="$(cargo metadata --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
  pushpool="$target/debug/pushpool"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
status=0
"$pushpool" ui export --out "$work/site" --manifest "$work/manifest.json" \
  --api-url "$api_url" --ui "$ui" || status=$?
if [ "$status" = 3 ]; then
  echo "publish-ui: the UI was not published: no prefect installation was found (the python on"
  echo "  PATH cannot import prefect). The API works without it. To publish it later:"
  echo "  pip install prefect==3.9.1 && infra/publish-ui.sh --stack-name $stack${region:+ --region $region}"
  exit 0
fi
[ "$status" = 0 ] || die "pushpool ui export failed (status $status); the UI was not published"
"$py" "$here/ui_upload.py" --bucket "$bucket" --dir "$work/site" \
  --manifest "$work/manifest.json" || die "uploading the UI to s3://$bucket failed"
echo "publish-ui: Prefect's UI is at $ui_url (its login form asks for an API key)"
