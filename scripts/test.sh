#!/usr/bin/env bash
# The whole test suite: installs the test tools (moto server, the real Prefect client) into
# .venv, checks formatting and lints, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-test-tools.sh
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
infra/check.sh
echo "== cargo test"
cargo test --workspace
