#!/usr/bin/env python3
"""Checks the transformed template against what the Rust code expects (offline, no AWS).

    python infra/contract.py transformed.json [path/to/shared/store-dynamodb/src/item.rs]

No linter knows pushpool's contract, so this does:
  - the table is the one DynamoStore::create_table makes: pk/sk strings, the five indexes
    named, keyed and projected as in item.rs (GSI1 with GSI1_PROJECTED; GSI_DEPLOYMENT,
    GSI_POOL, GSI_TIME, GSI_ID with STABLE_PROJECTED),
    TTL on EXPIRES_AT, stream NEW_AND_OLD_IMAGES; plus on-demand, PITR, SSE-KMS with the
    stack's key, deletion protection;
  - the submitter's event source mapping reads that stream, filtered to outbox INSERTs
    (pk = OUTBOX), with ReportBatchItemFailures, bisect, bounded retries and an on-failure
    destination; the events function's (the stream's second and last consumer) reads it
    from LATEST, filtered to event INSERTs (pk begins with EVENT_PK_PREFIX of events.rs) and
    log line INSERTs (pk begins with LOG_PK_PREFIX of logs.rs);
  - every function is provided.al2023 / bootstrap with PUSHPOOL_TABLE and PUSHPOOL_PUBLIC_URL,
    and PUSHPOOL_EVENT_RETENTION_DAYS, the submitter and reconciler also PUSHPOOL_JOB_API_KEY
    and the three PUSHPOOL_DUE_TIMER_* variables, the events function
    PUSHPOOL_WEBSOCKET_ENDPOINT;
  - no IAM statement allows "*" (or "service:*") actions, and every iam:PassRole is limited
    to ecs-tasks.amazonaws.com;
  - the CloudFront distribution (infra/README.md, "The UI"): /api/* to the HTTP API with
    caching disabled and every viewer header but Host (Authorization included), the default
    behavior to the private UI bucket through Origin Access Control with the routing function
    on viewer requests, whose inline code is infra/cloudfront/ui-routing.js's; the functions'
    PUSHPOOL_PUBLIC_URL is the distribution's domain (jobs reach the API through it);
    /api/events/in, /api/events/out and /api/logs/out (ahead of /api/*) to the events
    WebSocket API through the rewrite function, whose inline code is
    infra/cloudfront/events-rewrite.js's.
Prints one line per failed expectation; exits 1 if any.
"""

import json
import re
import sys
from pathlib import Path


def rust_consts(path: Path) -> dict:
    src = path.read_text(encoding="utf-8")
    consts = dict(re.findall(r'const (\w+): &str = "([^"]*)";', src))
    for name in ("GSI1_PROJECTED", "STABLE_PROJECTED"):
        m = re.search(r"const " + name + r": &\[&str\] = &\[(.*?)\];", src, re.S)
        if not m:
            raise SystemExit(f"contract: {name} not found in {path}")
        consts[name] = [consts[n.strip()] for n in m.group(1).split(",") if n.strip()]
    return consts


def main(transformed: str, item_rs: str) -> int:
    t = json.loads(Path(transformed).read_text(encoding="utf-8"))
    c = rust_consts(Path(item_rs))
    # The event items' partition prefix (events.rs, next to item.rs).
    events_rs = (Path(item_rs).parent / "events.rs").read_text(encoding="utf-8")
    c.update(re.findall(r'const (\w+): &str = "([^"]*)";', events_rs))
    # The log items' partition prefix (logs.rs, next to item.rs).
    logs_rs = (Path(item_rs).parent / "logs.rs").read_text(encoding="utf-8")
    c.update(re.findall(r'const (\w+): &str = "([^"]*)";', logs_rs))
    res = t["Resources"]
    problems = []

    def expect(cond, what):
        if not cond:
            problems.append(what)

    tables = [r for r in res.values() if r["Type"] == "AWS::DynamoDB::Table"]
    expect(len(tables) == 1, f"exactly one table (found {len(tables)})")
    p = tables[0]["Properties"] if tables else {}
    attrs = {a["AttributeName"]: a["AttributeType"] for a in p.get("AttributeDefinitions", [])}
    keys = [(k["AttributeName"], k["KeyType"]) for k in p.get("KeySchema", [])]
    expect(keys == [(c["PK"], "HASH"), (c["SK"], "RANGE")], f"table key {c['PK']}/{c['SK']}: {keys}")
    for a in (c["PK"], c["SK"], c["GSI1PK"], c["GSI1SK"], c["DEPLOYMENT_ID"], c["WORK_POOL_NAME"], c["EST"], c["RUNS"]):
        expect(attrs.get(a) == "S", f"attribute {a} is a string: {attrs.get(a)}")
    # The indexes of DynamoStore::create_table (src/lib.rs): name, keys, projected attributes
    # (an index's own keys are not listed).
    wanted = [
        (c["GSI1"], c["GSI1PK"], c["GSI1SK"], c["GSI1_PROJECTED"]),
        (c["GSI_DEPLOYMENT"], c["DEPLOYMENT_ID"], c["EST"], c["STABLE_PROJECTED"]),
        (c["GSI_POOL"], c["WORK_POOL_NAME"], c["EST"], c["STABLE_PROJECTED"]),
        (c["GSI_TIME"], c["RUNS"], c["EST"], c["STABLE_PROJECTED"]),
        (c["GSI_ID"], c["RUNS"], c["PK"], c["STABLE_PROJECTED"]),
    ]
    gsis = {g["IndexName"]: g for g in p.get("GlobalSecondaryIndexes", [])}
    expect(list(gsis) == [w[0] for w in wanted], f"indexes {[w[0] for w in wanted]}: {list(gsis)}")
    for name, hash_key, range_key, projected in wanted:
        g = gsis.get(name, {})
        gkeys = [(k["AttributeName"], k["KeyType"]) for k in g.get("KeySchema", [])]
        expect(gkeys == [(hash_key, "HASH"), (range_key, "RANGE")], f"{name}: index keys: {gkeys}")
        proj = g.get("Projection", {})
        want = sorted(a for a in projected if a not in (hash_key, range_key))
        expect(proj.get("ProjectionType") == "INCLUDE"
               and sorted(proj.get("NonKeyAttributes", [])) == want,
               f"{name}: index projection INCLUDE {want}: {proj}")
    expect(p.get("StreamSpecification", {}).get("StreamViewType") == "NEW_AND_OLD_IMAGES", "stream NEW_AND_OLD_IMAGES")
    ttl = p.get("TimeToLiveSpecification", {})
    expect(ttl.get("Enabled") is True and ttl.get("AttributeName") == c["EXPIRES_AT"], f"TTL on {c['EXPIRES_AT']}: {ttl}")
    expect(p.get("BillingMode") == "PAY_PER_REQUEST", "on-demand billing")
    expect(p.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled") is True, "point-in-time recovery")
    sse = p.get("SSESpecification", {})
    expect(sse.get("SSEEnabled") is True and sse.get("SSEType") == "KMS" and sse.get("KMSMasterKeyId") == {"Ref": "Key"},
           f"SSE with the stack's KMS key: {sse}")
    expect(p.get("DeletionProtectionEnabled") is True, "deletion protection")

    esms = {n: r["Properties"] for n, r in res.items() if r["Type"] == "AWS::Lambda::EventSourceMapping"}
    expect(len(esms) == 2, f"two event source mappings, the stream's two consumers (found {len(esms)})")
    for n, m in esms.items():
        expect(m.get("EventSourceArn") == {"Fn::GetAtt": ["Table", "StreamArn"]}, f"{n} reads the table's stream")
    by_fn = {m.get("FunctionName", {}).get("Ref"): m for m in esms.values()}
    # The events function's fan-out: event INSERTs (EVENT_PK_PREFIX of events.rs) and log
    # line INSERTs (LOG_PK_PREFIX of logs.rs), new ones only.
    ev = by_fn.get("EventsFunction", {})
    ev_pats = [json.loads(f["Pattern"]) for f in ev.get("FilterCriteria", {}).get("Filters", [])]
    expect(ev_pats == [{"eventName": ["INSERT"], "dynamodb": {"Keys": {c["PK"]: {"S": [{"prefix": c[prefix]}]}}}}
                       for prefix in ("EVENT_PK_PREFIX", "LOG_PK_PREFIX")],
           f"events filter: event and log line INSERTs only: {ev_pats}")
    expect(ev.get("StartingPosition") == "LATEST", "the fan-out starts at the stream's end")
    expect(isinstance(ev.get("MaximumRetryAttempts"), int) and 0 <= ev["MaximumRetryAttempts"] <= 10, "events: bounded retries")
    e = by_fn.get("SubmitterFunction", {})
    pats = [json.loads(f["Pattern"]) for f in e.get("FilterCriteria", {}).get("Filters", [])]
    expect(pats == [{"eventName": ["INSERT"], "dynamodb": {"Keys": {c["PK"]: {"S": ["OUTBOX"]}}}}],
           f"filter: outbox INSERTs only: {pats}")
    expect(e.get("FunctionResponseTypes") == ["ReportBatchItemFailures"], "ReportBatchItemFailures")
    expect(e.get("BisectBatchOnFunctionError") is True, "bisect on function error")
    expect(isinstance(e.get("MaximumRetryAttempts"), int) and 0 <= e["MaximumRetryAttempts"] <= 10, "bounded retries")
    expect(bool(e.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")), "on-failure destination")

    fns = {n: r["Properties"] for n, r in res.items() if r["Type"] == "AWS::Lambda::Function"}
    expect(sorted(fns) == ["ApiFunction", "EventsFunction", "ReconcilerFunction", "SubmitterFunction"],
           f"four functions: {sorted(fns)}")
    for name, f in fns.items():
        expect(f.get("Runtime") == "provided.al2023" and f.get("Handler") == "bootstrap", f"{name}: provided.al2023/bootstrap")
        env = f.get("Environment", {}).get("Variables", {})
        # Every function writes events (flow run transitions, /events/in).
        want = {"PUSHPOOL_TABLE", "PUSHPOOL_PUBLIC_URL", "PUSHPOOL_EVENT_RETENTION_DAYS"}
        if name in ("SubmitterFunction", "ReconcilerFunction"):
            want.add("PUSHPOOL_JOB_API_KEY")
            want |= {"PUSHPOOL_DUE_TIMER_GROUP", "PUSHPOOL_DUE_TIMER_TARGET_ARN", "PUSHPOOL_DUE_TIMER_ROLE_ARN"}
        if name == "EventsFunction":
            want.add("PUSHPOOL_WEBSOCKET_ENDPOINT")
        expect(want <= set(env), f"{name}: environment {sorted(want - set(env))} missing")

    for name, r in res.items():
        docs = []
        if r["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            docs = [r["Properties"]["PolicyDocument"]]
        elif r["Type"] == "AWS::IAM::Role":
            docs = [pol["PolicyDocument"] for pol in r["Properties"].get("Policies", [])]
        for doc in docs:
            for st in doc["Statement"]:
                actions = st.get("Action", [])
                actions = [actions] if isinstance(actions, str) else actions
                for a in actions:
                    expect(a != "*" and not a.endswith(":*"), f"{name}: wildcard action {a!r}")
                if "iam:PassRole" in actions:
                    cond = st.get("Condition", {}).get("StringEquals", {}).get("iam:PassedToService")
                    if cond == "scheduler.amazonaws.com":
                        # The reconciler hands its due-timer role to EventBridge Scheduler.
                        expect(st.get("Resource") == {"Fn::GetAtt": ["DueTimerRole", "Arn"]},
                               f"{name}: iam:PassRole to the scheduler beyond DueTimerRole")
                        continue
                    expect(cond == "ecs-tasks.amazonaws.com", f"{name}: iam:PassRole not limited to ecs-tasks")
                    expect(st.get("Resource") == {"Ref": "PassRoleArns"}, f"{name}: iam:PassRole beyond PassRoleArns")

    ui_contract(res, expect)

    for what in problems:
        print(f"contract: {what}")
    return 1 if problems else 0


CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER_EXCEPT_HOST = "b689b0a8-53d0-40ab-baf2-68738e2966ac"


def code_lines(text: str) -> list:
    return [l.rstrip() for l in text.splitlines() if l.strip() and not l.startswith("//")]


def ui_contract(res: dict, expect) -> None:
    dists = [r["Properties"]["DistributionConfig"] for r in res.values() if r["Type"] == "AWS::CloudFront::Distribution"]
    expect(len(dists) == 1, f"one CloudFront distribution (found {len(dists)})")
    if not dists:
        return
    d = dists[0]
    origins = {o["Id"]: o for o in d.get("Origins", [])}
    api = origins.get("api", {})
    expect(api.get("DomainName") == {"Fn::Sub": "${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"}
           and api.get("CustomOriginConfig", {}).get("OriginProtocolPolicy") == "https-only",
           f"the api origin is the HTTP API over HTTPS: {api}")
    ui = origins.get("ui", {})
    expect(ui.get("DomainName") == {"Fn::GetAtt": ["UiBucket", "RegionalDomainName"]}
           and ui.get("OriginAccessControlId") == {"Fn::GetAtt": ["UiOriginAccessControl", "Id"]},
           f"the ui origin is UiBucket through its Origin Access Control: {ui}")
    behaviors = {b["PathPattern"]: b for b in d.get("CacheBehaviors", [])}
    b = behaviors.get("/api/*", {})
    expect(b.get("TargetOriginId") == "api" and b.get("CachePolicyId") == CACHING_DISABLED
           and b.get("OriginRequestPolicyId") == ALL_VIEWER_EXCEPT_HOST
           and set(b.get("AllowedMethods", [])) == {"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"},
           "/api/* goes to the api origin, uncached (CachingDisabled), with every viewer header "
           f"but Host (AllViewerExceptHostHeader) and every method: {b}")
    default = d.get("DefaultCacheBehavior", {})
    fns = default.get("FunctionAssociations", [])
    expect(default.get("TargetOriginId") == "ui" and fns == [{
        "EventType": "viewer-request",
        "FunctionARN": {"Fn::GetAtt": ["UiRoutingFunction", "FunctionMetadata.FunctionARN"]}}],
        f"the default behavior serves UiBucket with UiRoutingFunction on viewer requests: {default}")
    for name, r in res.items():
        if r["Type"] == "AWS::S3::Bucket":
            pab = r["Properties"].get("PublicAccessBlockConfiguration", {})
            expect(all(pab.get(k) is True for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")),
                   f"{name}: public access blocked: {pab}")
    ev = origins.get("events", {})
    expect(ev.get("DomainName") == {"Fn::Sub": "${EventsWebSocketApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"}
           and ev.get("CustomOriginConfig", {}).get("OriginProtocolPolicy") == "https-only"
           and "OriginPath" not in ev,
           f"the events origin is the WebSocket API over HTTPS, without an origin path: {ev}")
    order = [b["PathPattern"] for b in d.get("CacheBehaviors", [])]
    for path in ("/api/events/in", "/api/events/out", "/api/logs/out"):
        b = behaviors.get(path, {})
        expect(b.get("TargetOriginId") == "events" and b.get("CachePolicyId") == CACHING_DISABLED
               and b.get("OriginRequestPolicyId") == ALL_VIEWER_EXCEPT_HOST
               and b.get("FunctionAssociations") == [{
                   "EventType": "viewer-request",
                   "FunctionARN": {"Fn::GetAtt": ["EventsRewriteFunction", "FunctionMetadata.FunctionARN"]}}]
               and path in order and "/api/*" in order and order.index(path) < order.index("/api/*"),
               f"{path} goes to the events origin, uncached, through EventsRewriteFunction, before /api/*: {b}")
    for fn, file in (("UiRoutingFunction", "ui-routing.js"), ("EventsRewriteFunction", "events-rewrite.js")):
        source = Path(__file__).resolve().parent / "cloudfront" / file
        inline = res.get(fn, {}).get("Properties", {}).get("FunctionCode", "")
        expect(code_lines(inline) == code_lines(source.read_text(encoding="utf-8")),
               f"{fn}'s inline code is infra/cloudfront/{file}'s (without its comments)")
    for name, r in res.items():
        if r["Type"] == "AWS::Lambda::Function":
            url = r["Properties"].get("Environment", {}).get("Variables", {}).get("PUSHPOOL_PUBLIC_URL")
            expect(url == {"Fn::Sub": "https://${Distribution.DomainName}"},
                   f"{name}: PUSHPOOL_PUBLIC_URL is the CloudFront domain: {url}")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    root = Path(__file__).resolve().parent.parent
    item_rs = sys.argv[2] if len(sys.argv) == 3 else str(root / "shared/store-dynamodb/src/item.rs")
    sys.exit(main(sys.argv[1], item_rs))
