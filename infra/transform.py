#!/usr/bin/env python3
"""Offline SAM -> CloudFormation transform (no AWS call, no credentials, no network).

    python infra/transform.py infra/template.yaml > transformed.json

Why: cfn-lint >= 1.54 no longer expands AWS::Serverless::* resources, and checkov's IAM and
Lambda-permission checks only see plain CloudFormation resources, so check.sh lints and scans
this output as well as the source. Local CodeUri paths become a placeholder s3:// URI, as
`sam validate` does internally; the boto3 session only tells the translator the region (for
the partition). The template uses no AWS-managed policy, so the managed-policy map is empty:
a policy template or managed policy name that needs one fails the transform.
"""

import json
import sys

import boto3
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

PLACEHOLDER = "s3://pushpool-placeholder-bucket/code.zip"


def main(path: str) -> int:
    with open(path, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            props = resource.setdefault("Properties", {})
            if isinstance(props.get("CodeUri", ""), str):
                props["CodeUri"] = PLACEHOLDER
    translator = Translator(None, Parser(), boto_session=boto3.Session(region_name="us-east-1"))
    try:
        out = translator.translate(
            template, parameter_values={}, passthrough_metadata=True, get_managed_policy_map=dict
        )
    except InvalidDocumentException as e:
        for cause in e.causes:
            print(f"transform: {cause.message}", file=sys.stderr)
        return 1
    json.dump(out, sys.stdout, indent=1, sort_keys=True, default=str)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
