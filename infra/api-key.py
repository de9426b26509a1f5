#!/usr/bin/env python3
"""API keys of a deployed pushpool (the DynamoDB table), the AWS counterpart of
`pushpool api-key create|list|revoke` (which manages the embedded server's SQLite file).

    infra/api-key.sh create --table TABLE [--region R] [--key KEY] NAME   # prints the key once
    infra/api-key.sh list   --table TABLE [--region R]
    infra/api-key.sh revoke --table TABLE [--region R] ID

Writes the items exactly as pushpool's DynamoStore does (shared/store-dynamodb: item.rs,
store.rs), so the API finds the key by its hash:
  resource    pk APIKEY#<id>        sk APIKEY   id, body (the ApiKey JSON), uk0 = name, uk1 = hash
  uniqueness  pk UNIQUE#APIKEYNAME  sk <name>   id, created
  uniqueness  pk UNIQUE#APIKEY      sk <hash>   id, created
in one transaction, each put conditioned on the item not existing (a taken name fails).
The hash is the hex SHA-256 of the key; a generated key is `pp_` + 40 alphanumerics, like
`pushpool api-key create`. Needs credentials allowed dynamodb:TransactWriteItems (PutItem),
GetItem, Query, BatchGetItem and UpdateItem/PutItem on the table, and kms:Decrypt /
kms:GenerateDataKey on the stack's key (the account root administers it).
"""

import argparse
import datetime
import hashlib
import json
import secrets
import string
import sys
import uuid

import boto3

NAME_PARTITION = "UNIQUE#APIKEYNAME"
HASH_PARTITION = "UNIQUE#APIKEY"


def iso(t: datetime.datetime) -> str:
    """item.rs `iso`: RFC 3339, microseconds, Z."""
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def generate_key() -> str:
    alphabet = string.ascii_letters + string.digits
    return "pp_" + "".join(secrets.choice(alphabet) for _ in range(40))


def create(db, table: str, name: str, key: str | None) -> int:
    if not name:
        sys.exit("api-key: the name cannot be empty")
    key = key or generate_key()
    record = {
        "id": str(uuid.uuid4()),
        "name": name,
        "hash": hashlib.sha256(key.encode()).hexdigest(),
        "created": iso(datetime.datetime.now(datetime.timezone.utc)),
        "revoked": False,
    }
    s = lambda v: {"S": v}  # noqa: E731
    absent = {"ConditionExpression": "attribute_not_exists(pk)"}
    items = [
        {"pk": s(f"APIKEY#{record['id']}"), "sk": s("APIKEY"), "id": s(record["id"]),
         "body": s(json.dumps(record, separators=(",", ":"))),
         "uk0": s(record["name"]), "uk1": s(record["hash"])},
        {"pk": s(NAME_PARTITION), "sk": s(record["name"]), "id": s(record["id"]), "created": s(record["created"])},
        {"pk": s(HASH_PARTITION), "sk": s(record["hash"]), "id": s(record["id"]), "created": s(record["created"])},
    ]
    try:
        db.transact_write_items(
            TransactItems=[{"Put": {"TableName": table, "Item": item, **absent}} for item in items]
        )
    except db.exceptions.TransactionCanceledException as e:
        reasons = [r.get("Code") for r in e.response.get("CancellationReasons", [])]
        if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
            sys.exit(f"api-key: an API key named {name!r} already exists")
        if len(reasons) > 2 and reasons[2] == "ConditionalCheckFailed":
            sys.exit("api-key: this key is already registered")
        raise
    print(f"created API key {name!r} ({record['id']}); it is shown once:", file=sys.stderr)
    print(key)
    return 0


def load_keys(db, table: str) -> list[dict]:
    ids, kwargs = [], {}
    while True:
        page = db.query(
            TableName=table,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": NAME_PARTITION}},
            ConsistentRead=True,
            **kwargs,
        )
        ids += [item["id"]["S"] for item in page["Items"]]
        if "LastEvaluatedKey" not in page:
            break
        kwargs = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
    keys = []
    for i in range(0, len(ids), 100):
        request = {table: {"Keys": [{"pk": {"S": f"APIKEY#{k}"}, "sk": {"S": "APIKEY"}} for k in ids[i:i + 100]],
                           "ConsistentRead": True}}
        while request:
            got = db.batch_get_item(RequestItems=request)
            keys += [json.loads(item["body"]["S"]) for item in got["Responses"].get(table, [])]
            request = got.get("UnprocessedKeys") or None
    return sorted(keys, key=lambda k: k["name"])


def list_keys(db, table: str) -> int:
    for k in load_keys(db, table):
        print(f"{k['id']}  {k['name']:<24} {k['created']}  {'revoked' if k['revoked'] else 'active'}")
    return 0


def revoke(db, table: str, key_id: str) -> int:
    key = {"pk": {"S": f"APIKEY#{uuid.UUID(key_id)}"}, "sk": {"S": "APIKEY"}}
    item = db.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
    if not item:
        sys.exit(f"api-key: no API key {key_id}")
    record = json.loads(item["body"]["S"])
    record["revoked"] = True
    item["body"] = {"S": json.dumps(record, separators=(",", ":"))}
    db.put_item(
        TableName=table,
        Item=item,
        ConditionExpression="uk0 = :uk0 AND uk1 = :uk1",
        ExpressionAttributeValues={":uk0": item["uk0"], ":uk1": item["uk1"]},
    )
    print(f"revoked API key {record['name']!r} ({record['id']})", file=sys.stderr)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["create", "list", "revoke"])
    parser.add_argument("arg", nargs="?", help="create: the key's name; revoke: its id")
    parser.add_argument("--table", required=True, help="the stack's TableName output")
    parser.add_argument("--region", help="default: the AWS configuration")
    parser.add_argument("--key", help="create: register this key instead of generating one")
    args = parser.parse_intermixed_args()
    db = boto3.client("dynamodb", region_name=args.region)
    if args.command == "create":
        return create(db, args.table, args.arg or "", args.key)
    if args.command == "list":
        return list_keys(db, args.table)
    if not args.arg:
        parser.error("revoke needs the key's id (see list)")
    return revoke(db, args.table, args.arg)


if __name__ == "__main__":
    sys.exit(main())
