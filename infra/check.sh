#!/usr/bin/env bash
# Offline checks of infra/template.yaml: no AWS account, no credentials, no network needed
# (once the tools are installed). Run by scripts/test.sh before `cargo test`.
#
# For the template, each of these must pass:
#   sam-validate          sam validate --lint: SAM's own validation and cfn-lint on the source
#                         (the pinned cfn-lint; .cfnlintrc would apply)
#   transform             infra/transform.py: the SAM transform, offline (aws-sam-translator)
#   cfn-lint-transformed  cfn-lint on the transformed template: cfn-lint >= 1.54 no longer
#                         expands AWS::Serverless::*, so only this sees inside the functions,
#                         the HTTP API and the event source mapping
#   checkov               checkov on the source and the transformed template, zero failed
#                         checks (skips and their reasons: infra/.checkov.yaml)
#   contract              infra/contract.py: the table, stream filter, environment and IAM
#                         match what the Rust crates expect (shared/store-dynamodb/src/item.rs),
#                         and the CloudFront distribution routes /api/* and the UI as designed
# Then the negative test: infra/break.py writes a broken copy (an "Action: *, Resource: *"
# statement, a write action on "*", an invalid property on the table, an out-of-range one
# inside a Serverless function, an index projection missing an attribute the store reads,
# a cached /api/* behavior);
# the same steps run on it and each fault must be reported by the step meant to catch it, so
# the checks cannot pass vacuously.
#
# Last, with node installed: infra/cloudfront/ui-routing.test.js (the UI's edge routing) and
# infra/cloudfront/events-rewrite.test.js (the sockets' paths onto the WebSocket API).
#
# Prints PASS/FAIL per check and "infra check: N passed, M failed"; exits 1 on any failure.
# Outputs and logs: infra/.out/.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
venv="${PUSHPOOL_VENV:-$root/.venv}"
out="$here/.out"
started=$SECONDS
export SAM_CLI_TELEMETRY=0 AWS_EC2_METADATA_DISABLED=true PYTHONDONTWRITEBYTECODE=1

passed=0
failed=0
pass() { echo "PASS  $*"; passed=$((passed + 1)); }
fail() { echo "FAIL  $*"; failed=$((failed + 1)); }
summary() {
  echo "infra check: $passed passed, $failed failed ($((SECONDS - started)) s)"
  [ "$failed" -eq 0 ]
}

# Tools: cfn-lint and aws-sam-translator from the project's venv (scripts/setup-test-tools.sh
# pins them); aws-sam-cli and checkov from venvs of their own (see infra/tools.sh for why).
py="$venv/bin/python"
if ! "$py" -c 'import samtranslator, cfnlint' 2>/dev/null; then
  fail "tools: cfn-lint and aws-sam-translator missing from $venv (run scripts/setup-test-tools.sh)"
  summary; exit 1
fi
rm -rf "$out"
mkdir -p "$out"
# Both installs at once (a no-op once installed; about 2 minutes the first time).
"$here/tools.sh" sam > "$out/tools.sam" & sam_pid=$!
"$here/tools.sh" checkov > "$out/tools.checkov" & checkov_pid=$!
if ! wait "$sam_pid" || ! wait "$checkov_pid"; then
  fail "tools: could not install aws-sam-cli / checkov (infra/tools.sh)"
  summary; exit 1
fi
sam_bin="$(cat "$out/tools.sam")"
checkov_bin="$(cat "$out/tools.checkov")"

# step NAME STEP CMD...: runs CMD from infra/, output to $out/NAME.STEP.log, rc to .rc.
step() {
  local name="$1" what="$2"
  shift 2
  (cd "$here" && "$@") > "$out/$name.$what.log" 2>&1
  echo $? > "$out/$name.$what.rc"
}
rc() { cat "$out/$1.$2.rc"; }
log() { cat "$out/$1.$2.log"; }

# run_steps NAME TEMPLATE: every step on one template (all of them, even after a failure).
run_steps() {
  local name="$1" tpl="$2" tr="$out/$1.transformed.json"
  step "$name" sam-validate "$sam_bin/sam" validate --lint --template-file "$tpl"
  step "$name" transform bash -c '"$1" transform.py "$2" > "$3"' _ "$py" "$tpl" "$tr"
  step "$name" cfn-lint-transformed "$venv/bin/cfn-lint" -- "$tr"
  step "$name" checkov "$checkov_bin/checkov" --config-file .checkov.yaml -f "$tpl" -f "$tr"
  step "$name" contract "$py" contract.py "$tr"
}

# Both suites at once (the template's and the negative test's broken copy): their outputs
# are separate files, and on two idle cores this halves the time.
if ! "$py" "$here/break.py" "$here/template.yaml" > "$out/broken.json" 2> "$out/broken.break.log"; then
  fail "negative: could not write the broken copy: $(cat "$out/broken.break.log")"
  summary; exit 1
fi
run_steps template "$here/template.yaml" &
run_steps broken "$out/broken.json" &
wait

echo "== infra check: template.yaml"
for s in sam-validate transform cfn-lint-transformed checkov contract; do
  if [ "$(rc template $s)" = 0 ]; then
    extra=""
    [ $s = checkov ] && extra=" ($(log template checkov | grep -m1 -o 'Passed checks: .*'))"
    pass "template: $s$extra"
  else
    fail "template: $s (rc $(rc template $s)); its output:"
    log template $s | tail -40 | sed 's/^/      /'
  fi
done
"$py" - "$here/template.yaml" "$here/.checkov.yaml" <<'EOF'
import sys
from samtranslator.yaml_helper import yaml_parse
res = yaml_parse(open(sys.argv[1]).read())["Resources"]
local = [f"{s['id']} on {n}" for n, r in res.items() for s in r.get("Metadata", {}).get("checkov", {}).get("skip", [])]
glob = yaml_parse(open(sys.argv[2]).read()).get("skip-check", [])
print(f"      checkov skips: {', '.join(glob) or 'none'} (global); {', '.join(local) or 'none'} (per resource)."
      " Reasons: infra/.checkov.yaml")
EOF

echo "== infra check: negative test (infra/break.py: a deliberately broken copy)"

# expect_caught STEP PATTERN WHAT: STEP must fail and its output must match PATTERN (grep -E,
# over the output with each checkov "Check:" line joined to its result line).
expect_caught() {
  local s="$1" pattern="$2" what="$3"
  if [ "$(rc broken "$s")" != 0 ] &&
     { log broken "$s" | grep -Eq "$pattern" ||
       log broken "$s" | awk '/^Check:/ { c = $0; next } { print c " " $0 }' | grep -Eq "$pattern"; }; then
    pass "negative: $s catches $what"
  else
    fail "negative: $s did not catch $what (rc $(rc broken "$s"), expected /$pattern/)"
    log broken "$s" | tail -20 | sed 's/^/      /'
  fi
}
if [ "$(rc broken transform)" = 0 ]; then
  pass "negative: the broken copy transforms (so the transformed-template checks really ran)"
else
  fail "negative: the broken copy did not transform: $(log broken transform | tail -3)"
fi
expect_caught sam-validate "E3030.*'ON_DEMAND'" "the invalid BillingMode on the table (cfn-lint on the source)"
expect_caught cfn-lint-transformed 'E3717 1000 is greater than the maximum' "Timeout 1000 inside the Serverless function"
expect_caught checkov 'CKV_AWS_62:.*FAILED for resource: AWS::IAM::Policy.SubmitterPolicy' '"Action: *" on "Resource: *"'
expect_caught checkov 'CKV_AWS_111:.*FAILED for resource: AWS::IAM::Policy.ApiPolicy' 'a write action (dynamodb:DeleteTable) on "Resource: *"'
expect_caught contract 'index projection' "the index projection missing sort_time"
expect_caught contract "wildcard action '\\*'" '"Action: *"'
expect_caught contract '/api/\* goes to the api origin, uncached' 'the /api/* behavior caching (and dropping Authorization)'

echo "== infra check: the UI's edge routing (infra/cloudfront/ui-routing.js)"
if command -v node >/dev/null; then
  if node "$here/cloudfront/ui-routing.test.js" > "$out/ui-routing.log" 2>&1; then
    pass "ui-routing: $(tail -1 "$out/ui-routing.log")"
  else
    fail "ui-routing: infra/cloudfront/ui-routing.test.js failed:"
    tail -20 "$out/ui-routing.log" | sed 's/^/      /'
  fi
else
  echo "SKIP  ui-routing: node is not installed (the same cases run in Rust: edge_serves_file)"
fi

echo "== infra check: the sockets' edge rewrite (infra/cloudfront/events-rewrite.js)"
if command -v node >/dev/null; then
  if node "$here/cloudfront/events-rewrite.test.js" > "$out/events-rewrite.log" 2>&1; then
    pass "events-rewrite: $(tail -1 "$out/events-rewrite.log")"
  else
    fail "events-rewrite: infra/cloudfront/events-rewrite.test.js failed:"
    tail -20 "$out/events-rewrite.log" | sed 's/^/      /'
  fi
else
  echo "SKIP  events-rewrite: node is not installed"
fi

summary
