#!/usr/bin/env bash
# API keys of a deployed pushpool: `pushpool api-key ... --table <TableName>`, built from this
# checkout (the same DynamoStore code the API function reads keys with).
#   infra/api-key.sh create <name> --table <TableName> [--region R] [--key-stdin]
#   infra/api-key.sh list --table <TableName> [--region R]
#   infra/api-key.sh revoke <id> --table <TableName> [--region R]
# AWS credentials and region come from the usual AWS variables and profile.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --region) export AWS_REGION="${2:?--region needs a value}"; shift ;;
    *) args+=("$1") ;;
  esac
  shift
done
cargo build --quiet --manifest-path "$here/../Cargo.toml" -p pushpool --bin pushpool
target="$(cargo metadata --format-version 1 --no-deps --manifest-path "$here/../Cargo.toml" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
exec "$target/debug/pushpool" api-key "${args[@]}"
