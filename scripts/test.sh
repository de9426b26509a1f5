#!/usr/bin/env bash
# The whole test suite: installs the test tools (moto server, the real Prefect client) into
# .venv, checks formatting and lints, checks which crates each function links
# (scripts/check-links.sh), checks the AWS template offline, runs every test of the
# workspace, then checks the Lambda binaries' glibc symbols.
#
# One build serves the lints, the tests and the Lambda check: clippy and the tests are built
# with cargo-zigbuild for <host triple>.2.34, i.e. linked by zig against glibc 2.34's symbols
# (Amazon Linux 2023's, what the Lambda functions run on), into target/<triple>/debug. The
# three function binaries that build makes for the tests are the ones the Lambda check reads
# (infra/deploy.sh --binaries), so nothing is compiled a second time for it, and clippy shares
# the C libraries the build scripts compile (SQLite, aws-lc). A deploy builds its own release
# binaries the same way (zig, glibc 2.34) and checks them with the same code.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-test-tools.sh
# cargo-zigbuild and Zig, pinned, into infra/.venv-sam (infra/tools.sh; the infra checks use
# that virtualenv's aws-sam-cli too).
zig_tools="$(infra/tools.sh zigbuild)"
export CARGO_ZIGBUILD_PYTHON_PATH="$zig_tools/python" # runs Zig as `python -m ziglang`
case "$(uname -s)/$(uname -m)" in
  Linux/x86_64) triple=x86_64-unknown-linux-gnu arch=x86_64 ;;
  Linux/aarch64) triple=aarch64-unknown-linux-gnu arch=arm64 ;;
  *) echo "test: the test suite runs on Linux (x86_64 or aarch64), not $(uname -sm)" >&2; exit 1 ;;
esac
zigbuild() { "$zig_tools/cargo-zigbuild" "$@"; }
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy (target $triple.2.34)"
zigbuild clippy --workspace --all-targets --target "$triple.2.34" -- -D warnings
echo "== link check (each function links only what it calls)"
scripts/check-links.sh
infra/check.sh
echo "== cargo test (target $triple.2.34)"
zigbuild test --workspace --target "$triple.2.34"
# The Lambda bootstraps the test build made: each must need no GLIBC_ newer than 2.34
# (objdump -T); their sizes (debug builds, so larger than a release's) are printed.
echo "== Lambda binaries (glibc <= 2.34)"
infra/deploy.sh --build-only --arch "$arch" --binaries "${CARGO_TARGET_DIR:-target}/$triple/debug"
