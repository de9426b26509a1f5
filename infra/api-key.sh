#!/usr/bin/env bash
# API keys of a deployed pushpool: create | list | revoke (see infra/api-key.py).
#   infra/api-key.sh create --table <TableName output> [--region R] [--key KEY] NAME
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$("$here/tools.sh" sam)"   # any venv with boto3; this one is the deploy's
exec "$bin/python" "$here/api-key.py" "$@"
