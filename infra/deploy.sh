#!/usr/bin/env bash
# pushpool's one-command deploy to AWS: builds the three Lambda functions and deploys
# infra/template.yaml with SAM. See infra/README.md.
#
#   infra/deploy.sh --pass-role-arns arn:aws:iam::123456789012:role/prefect-task,arn:...:role/ecs-exec
#   infra/deploy.sh --build-only          # build and check the binaries; no AWS call at all
#
# Options (environment variable in brackets):
#   --build-only                 stop after building and checking the binaries
#   --profile NAME               Cargo profile of the build (default release)
#   --binaries DIR               do not build: check (and with --build-only, only check) the
#                                binaries pushpool-api-function, pushpool-submitter,
#                                pushpool-reconciler and pushpool-events-function already built in DIR. The test command uses
#                                it on the debug binaries its own zig-linked test build made
#                                (scripts/test.sh), so the workspace is compiled once
#   --arch x86_64|arm64          CPU architecture (default x86_64) [PUSHPOOL_ARCH]; arm64 needs
#                                the aarch64-unknown-linux-gnu Rust target (installed if missing)
#   --pass-role-arns A,B         the ECS task/execution roles pools may name: the only
#                                iam:PassRole resources [PUSHPOOL_PASS_ROLE_ARNS]; required on
#                                the first deploy, kept from the last deploy otherwise
#   --job-api-key KEY            the API key jobs get as PREFECT_API_KEY [PUSHPOOL_JOB_API_KEY];
#                                generated (and printed once) on the first deploy if not given
#   --ecs-cluster-arns A,B       clusters pools may use (default: any in the account/region)
#   --log-retention-days N       default 30
#   --schedule EXPR              the reconciler's schedule, default rate(1 minute)
#   --alarm-topic-arn ARN        SNS topic for the alarms (default: none)
#   --provider-retry-budget N    seconds provider calls are retried on throttling (default 75, 1-180)
#   --stack-name NAME            default pushpool (samconfig.toml)
#   --region REGION              default: the AWS CLI/SDK configuration
#   --ui auto|off|PATH           Prefect's UI, published after the deploy by infra/publish-ui.sh
#                                from this machine's prefect installation (default auto: the
#                                `python` on PATH's, as `pushpool serve --ui auto`; without one
#                                the deploy succeeds without the UI) [PUSHPOOL_UI]
#   -- ARGS...                   passed on to `sam deploy` (e.g. --no-execute-changeset)
#
# Tools: aws-sam-cli, cargo-lambda and ziglang are installed on first use into
# infra/.venv-sam (infra/tools.sh). The Rust build uses its own target directory
# (target/lambda-build, or PUSHPOOL_LAMBDA_TARGET_DIR) so it never waits on, or invalidates,
# the workspace's ordinary target/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"

die() { echo "deploy: $*" >&2; exit 1; }
# The caller's PATH: the UI comes from the prefect of *its* `python` (the tools' venv comes
# first on PATH below).
user_path="$PATH"

build_only=0
binaries=""
profile=release
arch="${PUSHPOOL_ARCH:-x86_64}"
pass_roles="${PUSHPOOL_PASS_ROLE_ARNS:-}"
job_key="${PUSHPOOL_JOB_API_KEY:-}"
clusters="" retention="" schedule="" alarm_topic="" retry_budget="" stack="" region=""
ui="${PUSHPOOL_UI:-auto}"
sam_extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build-only) build_only=1 ;;
    --profile) profile="${2:?--profile needs a name}"; shift ;;
    --binaries) binaries="${2:?--binaries needs a directory}"; shift ;;
    --arch) arch="${2:?--arch needs a value}"; shift ;;
    --pass-role-arns) pass_roles="${2:?}"; shift ;;
    --job-api-key) job_key="${2:?}"; shift ;;
    --ecs-cluster-arns) clusters="${2:?}"; shift ;;
    --log-retention-days) retention="${2:?}"; shift ;;
    --schedule) schedule="${2:?}"; shift ;;
    --alarm-topic-arn) alarm_topic="${2:?}"; shift ;;
    --provider-retry-budget) retry_budget="${2:?}"; shift ;;
    --stack-name) stack="${2:?}"; shift ;;
    --region) region="${2:?}"; shift ;;
    --ui) ui="${2:?}"; shift ;;
    --) shift; sam_extra=("$@"); break ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
  shift
done

case "$arch" in
  x86_64) triple=x86_64-unknown-linux-gnu ;;
  arm64) triple=aarch64-unknown-linux-gnu ;;
  *) die "--arch must be x86_64 or arm64, not $arch" ;;
esac

# ------------------------------------------------------------------ tools
if [ -n "$binaries" ] && [ "$build_only" = 1 ]; then
  : # only checking binaries built elsewhere: no tool to install
elif [ -n "$binaries" ]; then
  tools_bin="$("$here/tools.sh" sam)" || die "could not install aws-sam-cli"
  export PATH="$tools_bin:$PATH" SAM_CLI_TELEMETRY=0
else
  tools_bin="$("$here/tools.sh" lambda)" || die "could not install aws-sam-cli/cargo-lambda/ziglang"
  # cargo-lambda finds Zig through `python3 -m ziglang`: this venv's python3 must come first.
  export PATH="$tools_bin:$PATH" SAM_CLI_TELEMETRY=0
  if ! rustup target list --installed 2>/dev/null | grep -qx "$triple"; then
    echo "deploy: adding the Rust target $triple"
    rustup target add "$triple" || die "could not install the Rust target $triple (rustup target add $triple)"
  fi
fi
command -v objdump >/dev/null || command -v readelf >/dev/null ||
  die "objdump/readelf not found (apt-get install binutils)"

# ------------------------------------------------------------------ build
# function directory -> Cargo binary (functions/*/Cargo.toml)
fns=(api submitter reconciler events)
declare -A bin=([api]=pushpool-api-function [submitter]=pushpool-submitter [reconciler]=pushpool-reconciler [events]=pushpool-events-function)

if [ -n "$binaries" ]; then
  [ -d "$binaries" ] || die "--binaries: $binaries is not a directory"
  echo "deploy: checking the binaries in $binaries (no build)"
  bootstrap_of() { echo "$binaries/${bin[$1]}"; }
else
  export CARGO_TARGET_DIR="${PUSHPOOL_LAMBDA_TARGET_DIR:-$root/target/lambda-build}"
  echo "deploy: building ${bin[*]} for $arch (cargo lambda, profile $profile, glibc <= 2.34; target dir $CARGO_TARGET_DIR)"
  start=$SECONDS
  # The .2.34 suffix makes zig link against glibc 2.34's symbols (Amazon Linux 2023's glibc):
  # a call to anything newer fails at link time instead of at cold start.
  (cd "$root" && cargo lambda build --profile "$profile" --output-format binary --target "$triple.2.34" \
    --bin pushpool-api-function --bin pushpool-submitter --bin pushpool-reconciler --bin pushpool-events-function)
  echo "deploy: built in $((SECONDS - start)) s"
  bootstrap_of() { echo "$CARGO_TARGET_DIR/lambda/${bin[$1]}/bootstrap"; }
fi

glibc_max() { # the newest GLIBC_x.y version the binary needs
  { objdump -T "$1" 2>/dev/null || readelf -W --dyn-syms -V "$1"; } |
    grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -Vu | tail -1
}
want_machine="$([ "$arch" = arm64 ] && echo AArch64 || echo 'X86-64')"
printf '%-11s %-24s %10s %8s  %s\n' function binary bytes MiB "max GLIBC_"
for fn in "${fns[@]}"; do
  src="$(bootstrap_of "$fn")"
  [ -f "$src" ] || die "$src was not built"
  mkdir -p "$here/build/$fn"
  install -m 0755 "$src" "$here/build/$fn/bootstrap"
  out="$here/build/$fn/bootstrap"
  machine="$(readelf -h "$out" | sed -n 's/^ *Machine: *//p')"
  case "$machine" in *"$want_machine"*) ;; *) die "$out is for '$machine', not $arch" ;; esac
  max="$(glibc_max "$out")"
  [ -n "$max" ] || die "$out: no GLIBC_ version found (is it dynamically linked against glibc?)"
  if [ "$(printf '%s\n' "$max" 2.34 | sort -V | tail -1)" != 2.34 ]; then
    die "$out needs GLIBC_$max; Amazon Linux 2023 (provided.al2023) has glibc 2.34"
  fi
  size=$(stat -c %s "$out")
  printf '%-11s %-24s %10d %8s  GLIBC_%s (<= 2.34: ok)\n' "$fn" "${bin[$fn]}" "$size" \
    "$(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1048576 }')" "$max"
done
echo "deploy: binaries in infra/build/{api,submitter,reconciler,events}/bootstrap"
if [ "$build_only" = 1 ]; then
  echo "deploy: --build-only: stopping before any AWS call"
  exit 0
fi

# ------------------------------------------------------------------ deploy
[ -n "$region" ] && export AWS_REGION="$region" AWS_DEFAULT_REGION="$region"
stack="${stack:-$(sed -n 's/^stack_name *= *"\(.*\)"/\1/p' "$here/samconfig.toml" | head -1)}"
# Who and where: fail early, with a clear message, without credentials or a region.
state="$("$tools_bin/python" - "$stack" <<'EOF'
import sys
import boto3, botocore.exceptions
session = boto3.Session()
if not session.region_name:
    sys.exit("no AWS region: pass --region or configure one (AWS_REGION, aws configure)")
try:
    who = session.client("sts").get_caller_identity()
except botocore.exceptions.NoCredentialsError:
    sys.exit("no AWS credentials (aws configure, AWS_PROFILE, or the AWS_* variables)")
except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
    sys.exit(f"cannot use AWS: {e}")
try:
    session.client("cloudformation").describe_stacks(StackName=sys.argv[1])
    exists = "update"
except botocore.exceptions.ClientError as e:
    if "does not exist" not in str(e):
        sys.exit(f"cannot read the stack {sys.argv[1]}: {e}")
    exists = "create"
print(f"{who['Account']} {session.region_name} {exists}")
EOF
)" || die "AWS check failed"
read -r account region action <<<"$state"
echo "deploy: account $account, region $region, stack $stack ($action)"

overrides=("Architecture=$arch")
if [ "$action" = create ]; then
  [ -n "$pass_roles" ] || die "the first deploy needs --pass-role-arns (the ECS task and execution role ARNs pools may name)"
  if [ -z "$job_key" ]; then
    job_key="$("$tools_bin/python" -c 'import secrets; print("pp_" + secrets.token_urlsafe(32))')"
    generated_key=1
  fi
fi
[ -n "$pass_roles" ] && overrides+=("PassRoleArns=$pass_roles")
[ -n "$job_key" ] && overrides+=("JobApiKey=$job_key")
[ -n "$clusters" ] && overrides+=("EcsClusterArns=$clusters")
[ -n "$retention" ] && overrides+=("LogRetentionDays=$retention")
[ -n "$schedule" ] && overrides+=("ScheduleExpression=$schedule")
[ -n "$alarm_topic" ] && overrides+=("AlarmTopicArn=$alarm_topic")
[ -n "$retry_budget" ] && overrides+=("ProviderRetryBudget=$retry_budget")

# Deploys the prebuilt binaries directly: `sam deploy` zips each CodeUri directory
# (build/<fn>/, holding only `bootstrap`) and uploads it. No `sam build`: it would rebuild
# with its own flags, and a stale .aws-sam/build/template.yaml would win over template.yaml,
# hence the explicit --template-file.
# One --parameter-overrides string of Key="value" pairs (values may hold commas and spaces).
override_arg=""
for o in "${overrides[@]}"; do
  case "$o" in *'"'*) die "parameter values cannot contain double quotes: ${o%%=*}" ;; esac
  override_arg+="${override_arg:+ }${o%%=*}=\"${o#*=}\""
done
(cd "$here" && sam deploy --config-file samconfig.toml --template-file template.yaml \
  --stack-name "$stack" --region "$region" \
  --parameter-overrides "$override_arg" "${sam_extra[@]}")

outputs="$("$tools_bin/python" - "$stack" <<'EOF'
import sys, boto3
stack = boto3.client("cloudformation").describe_stacks(StackName=sys.argv[1])["Stacks"][0]
for o in stack.get("Outputs", []):
    print(o["OutputKey"], o["OutputValue"])
EOF
)"
api_url="$(awk '$1 == "ApiUrl" { print $2 }' <<<"$outputs")"
table="$(awk '$1 == "TableName" { print $2 }' <<<"$outputs")"
echo
echo "$outputs" | sed 's/^/  /'
echo
echo "pushpool is deployed. Point Prefect at it (CloudFront; jobs get the same URL):"
echo "  export PREFECT_API_URL=$api_url"
echo
echo "Every route but /api/health needs an API key (Authorization: Bearer, i.e. PREFECT_API_KEY)."
echo "Keys live hashed in the table; create one with:"
echo "  infra/api-key.sh create <name> --table $table --region $region"
if [ "${generated_key:-0}" = 1 ]; then
  # The jobs' key goes to the table on standard input (never on a command line).
  printf '%s\n' "$job_key" | "$here/api-key.sh" create jobs --key-stdin --table "$table" --region "$region" \
    || die "registering the jobs' API key failed; register it with: infra/api-key.sh create jobs --key-stdin --table $table"
  echo
  echo "The jobs' API key was generated for this stack and registered as the key 'jobs'"
  echo "(shown once; NoEcho in CloudFormation):"
  echo "  $job_key"
fi

# ------------------------------------------------------------------ the UI
echo
if [ "$ui" = off ]; then
  echo "deploy: --ui off: Prefect's UI is not published (infra/publish-ui.sh publishes it later)"
else
  PATH="$user_path" "$here/publish-ui.sh" --stack-name "$stack" --region "$region" --ui "$ui" ||
    die "the stack is deployed, but publishing the UI failed (retry: infra/publish-ui.sh --stack-name $stack --region $region)"
fi
