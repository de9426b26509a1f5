#!/usr/bin/env python3
"""Writes a deliberately broken copy of a SAM template, for check.sh's negative test.

    python infra/break.py infra/template.yaml > broken.json

The copy (JSON, which SAM, cfn-lint and checkov read like the YAML) carries six faults,
each of which one of the checks must report, so that the checks cannot pass vacuously:
  1. an IAM statement allowing every action on every resource ("Action": "*",
     "Resource": "*") in the submitter's policy             -> checkov (CKV_AWS_62/63/...)
  2. a write action on every resource: dynamodb:DeleteTable on "*", in the api's policy
                                                              -> checkov (CKV_AWS_111/355)
  3. a wrong property on a resource: the table's BillingMode "ON_DEMAND" (not a valid value)
                                                              -> cfn-lint (E3030) on the source
  4. a wrong property inside a Serverless resource: the api function's Timeout 1000 s
     (Lambda's maximum is 900) - invisible to cfn-lint on the SAM source since cfn-lint 1.54
                                                              -> cfn-lint (E3717) on the transform
  5. the run-state index no longer projects sort_time, which the store's filters read
                                                              -> contract.py
  6. the distribution's /api/* behavior caches (CachingOptimized), which would also drop the
     Authorization header the API's keys travel in             -> contract.py
"""

import json
import sys

from samtranslator.yaml_helper import yaml_parse


def main(path: str) -> int:
    with open(path, encoding="utf-8") as f:
        t = yaml_parse(f.read())
    res = t["Resources"]
    res["SubmitterPolicy"]["Properties"]["PolicyDocument"]["Statement"].append(
        {"Sid": "Everything", "Effect": "Allow", "Action": "*", "Resource": "*"}
    )
    res["ApiPolicy"]["Properties"]["PolicyDocument"]["Statement"].append(
        {"Sid": "DropAnyTable", "Effect": "Allow", "Action": "dynamodb:DeleteTable", "Resource": "*"}
    )
    res["Table"]["Properties"]["BillingMode"] = "ON_DEMAND"
    res["ApiFunction"]["Properties"]["Timeout"] = 1000
    index = res["Table"]["Properties"]["GlobalSecondaryIndexes"][0]
    index["Projection"]["NonKeyAttributes"].remove("sort_time")
    api_paths = res["Distribution"]["Properties"]["DistributionConfig"]["CacheBehaviors"]
    next(b for b in api_paths if b["PathPattern"] == "/api/*")["CachePolicyId"] = (
        "658327ea-f89d-4fab-a63d-7e88639e58f6"
    )
    json.dump(t, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
