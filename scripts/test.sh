#!/usr/bin/env bash
# The whole test suite: installs the test tools (moto server, the real Prefect client) into
# .venv, checks formatting and lints, checks the AWS template offline, runs every test of the
# workspace, then builds the Lambda binaries and checks their glibc symbols.
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
# The Lambda bootstraps, built the way infra/deploy.sh builds them (cargo lambda, zig, glibc
# 2.34 symbols) with the quicker lambda-check profile: each must need no GLIBC_ newer than
# 2.34 (objdump -T); their sizes are printed.
echo "== Lambda binaries (glibc <= 2.34)"
infra/deploy.sh --build-only --profile lambda-check
