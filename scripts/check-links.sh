#!/usr/bin/env bash
# Each function links only what it calls: the crates each binary's normal (non-dev)
# dependency graph must not hold, and, so that the check cannot pass vacuously, some it must
# hold. Reads `cargo tree` (offline, from Cargo.lock; compiles nothing: about a second).
# Run by scripts/test.sh; exits 1 naming the package and the crate on any violation.
#
#   pushpool-api-function    no provider SDK (ECS/EC2, Google, Azure), no process provider
#                            (nix), no SQLite: the API only checks job variables
#                            (pushpool_providers::limit_checks) and opens DynamoDB
#   pushpool-submitter,      the push providers, not SQLite nor the process provider
#   pushpool-reconciler
#   pushpool-service,        the ports only (pushpool-store, pushpool-providers): no adapter
#   pushpool-api
#   pushpool --no-default-features
#                            the embedded binary without its ecs, cloud-run and aci features:
#                            no provider SDK
set -euo pipefail
cd "$(dirname "$0")/.."

target="${PUSHPOOL_LINK_CHECK_TARGET:-x86_64-unknown-linux-gnu}"
failed=0

# deps PACKAGE [CARGO TREE ARGS...]: the package's normal dependencies, one name a line.
deps() {
  local package="$1"
  shift
  cargo tree --offline -e normal -p "$package" --target "$target" \
    --prefix none --format '{p}' "$@" | awk '{print $1}' | sort -u
}

# check LABEL DEPS_FILE must-not|must CRATE...
check() {
  local label="$1" list="$2" rule="$3"
  shift 3
  local crate
  for crate in "$@"; do
    if grep -qx -- "$crate" "$list"; then
      [ "$rule" = must-not ] && { echo "FAIL  $label links $crate"; failed=1; }
    else
      [ "$rule" = must ] && { echo "FAIL  $label does not link $crate (is the check still reading the graph?)"; failed=1; }
    fi
  done
  return 0
}

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

provider_sdks=(aws-sdk-ecs aws-sdk-ec2 gcp_auth oci-spec azure_identity azure_core)
adapters=(pushpool-provider-ecs pushpool-provider-cloud-run pushpool-provider-aci
  pushpool-provider-process pushpool-push-providers pushpool-store-sqlite)

deps pushpool-api-function > "$tmp/api"
check pushpool-api-function "$tmp/api" must-not "${provider_sdks[@]}" "${adapters[@]}" rusqlite nix
check pushpool-api-function "$tmp/api" must pushpool-providers pushpool-store-dynamodb aws-sdk-dynamodb

deps pushpool-events-function > "$tmp/events"
check pushpool-events-function "$tmp/events" must-not "${provider_sdks[@]}" "${adapters[@]}" rusqlite nix
check pushpool-events-function "$tmp/events" must pushpool-store-dynamodb aws-sdk-apigatewaymanagement

for f in pushpool-submitter pushpool-reconciler; do
  deps "$f" > "$tmp/$f"
  check "$f" "$tmp/$f" must-not rusqlite nix pushpool-store-sqlite pushpool-provider-process
  check "$f" "$tmp/$f" must aws-sdk-ecs gcp_auth azure_identity pushpool-provider-ecs
done

for port_user in pushpool-service pushpool-api; do
  deps "$port_user" > "$tmp/$port_user"
  check "$port_user" "$tmp/$port_user" must-not "${provider_sdks[@]}" "${adapters[@]}" \
    rusqlite nix pushpool-store-dynamodb aws-sdk-dynamodb
  check "$port_user" "$tmp/$port_user" must pushpool-store pushpool-providers
done

deps pushpool --no-default-features > "$tmp/pushpool-bare"
check "pushpool --no-default-features" "$tmp/pushpool-bare" must-not "${provider_sdks[@]}" \
  pushpool-provider-ecs pushpool-provider-cloud-run pushpool-provider-aci
check "pushpool --no-default-features" "$tmp/pushpool-bare" must \
  pushpool-provider-process nix rusqlite pushpool-push-providers

deps pushpool > "$tmp/pushpool"
check pushpool "$tmp/pushpool" must "${provider_sdks[@]}" rusqlite nix

if [ "$failed" -ne 0 ]; then
  echo "link check: failed (see above; a function links a crate it should not)"
  exit 1
fi
echo "link check: passed"
