#!/usr/bin/env python3
"""Uploads the UI that `pushpool ui export` wrote to the stack's UI bucket (infra/deploy.sh).

    python infra/ui_upload.py --bucket BUCKET --dir DIR --manifest DIR.json [--endpoint-url URL]

Every file of the manifest (`pushpool ui export --manifest`) is put at its key with the
Content-Type and Cache-Control `pushpool serve` sends it with (the manifest says which), so
nothing is guessed here: hashed `assets/` files are cached for a year, `index.html`,
`ui-settings` and the other files are revalidated on each use. A hashed asset already in the
bucket with the same content (its ETag is the MD5 of a single-part SSE-S3 upload) is not sent
again. Objects the manifest does not list are left in place: a browser still holding the
previous index.html can load the previous release's chunks. Credentials and region: boto3's
defaults (AWS_PROFILE, AWS_REGION...); AWS_ENDPOINT_URL or --endpoint-url for a test server.
Prints one summary line; exits 1 (with the key) on the first failed upload.
"""

import argparse
import hashlib
import json
import sys
from pathlib import Path

import boto3
import botocore.exceptions

IMMUTABLE = "public, max-age=31536000, immutable"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--manifest", required=True, type=Path)
    parser.add_argument("--endpoint-url")
    args = parser.parse_args()

    files = json.loads(args.manifest.read_text(encoding="utf-8"))
    s3 = boto3.client("s3", endpoint_url=args.endpoint_url)
    existing = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=args.bucket):
        for obj in page.get("Contents", []):
            existing[obj["Key"]] = obj["ETag"].strip('"')
    uploaded = unchanged = size = 0
    for f in files:
        key = f["key"]
        body = (args.dir / key).read_bytes()
        if f["cache_control"] == IMMUTABLE and existing.get(key) == hashlib.md5(body, usedforsecurity=False).hexdigest():
            unchanged += 1
            continue
        try:
            s3.put_object(
                Bucket=args.bucket,
                Key=key,
                Body=body,
                ContentType=f["content_type"],
                CacheControl=f["cache_control"],
            )
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            print(f"ui upload: {key}: {e}", file=sys.stderr)
            return 1
        uploaded += 1
        size += len(body)
    print(f"ui upload: {uploaded} files uploaded ({size / 1048576:.1f} MiB), "
          f"{unchanged} unchanged, to s3://{args.bucket}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
