//! What Lambda's DynamoDB event source mapping does for the submitter, played by the test:
//! read the table's stream (moto's DynamoDB Streams, through `aws-sdk-dynamodbstreams`),
//! turn each record into the JSON Lambda delivers, keep the records the mapping's filter
//! lets through, and cut them into batches.

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_sdk_dynamodbstreams::Client;
use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use serde_json::{Map, Value, json};

/// The submitter trigger's filter in `infra/template.yaml` (`FilterCriteria`): outbox
/// inserts only.
pub const SUBMITTER_FILTER: &str =
    r#"{"eventName":["INSERT"],"dynamodb":{"Keys":{"pk":{"S":["OUTBOX"]}}}}"#;

/// The submitter trigger's `BatchSize`.
pub const BATCH_SIZE: usize = 25;

/// A reader of one table's stream that remembers how far it has read each shard.
pub struct StreamFeed {
    client: Client,
    stream_arn: String,
    /// The last sequence number read, per shard.
    positions: HashMap<String, String>,
}

impl StreamFeed {
    /// The stream of `table` (`ListStreams`), read from its start (`TRIM_HORIZON`).
    pub async fn open(config: &SdkConfig, table: &str) -> StreamFeed {
        let client = Client::new(config);
        let listed = client
            .list_streams()
            .table_name(table)
            .send()
            .await
            .expect("ListStreams");
        let stream_arn = listed
            .streams()
            .first()
            .and_then(|s| s.stream_arn())
            .unwrap_or_else(|| panic!("table {table} has no stream"))
            .to_owned();
        StreamFeed {
            client,
            stream_arn,
            positions: HashMap::new(),
        }
    }

    /// The stream's ARN (the records' `eventSourceARN`).
    pub fn arn(&self) -> &str {
        &self.stream_arn
    }

    /// Every record written since the last call, as Lambda delivers it (shard by shard, in
    /// stream order within a shard).
    pub async fn read_new(&mut self) -> Vec<Value> {
        let mut shards = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let described = self
                .client
                .describe_stream()
                .stream_arn(&self.stream_arn)
                .set_exclusive_start_shard_id(after.clone())
                .send()
                .await
                .expect("DescribeStream");
            let description = described
                .stream_description()
                .expect("DescribeStream answers a description");
            shards.extend(
                description
                    .shards()
                    .iter()
                    .filter_map(|s| s.shard_id().map(str::to_owned)),
            );
            match description.last_evaluated_shard_id() {
                Some(last) => after = Some(last.to_owned()),
                None => break,
            }
        }
        let mut out = Vec::new();
        for shard in shards {
            let request = self
                .client
                .get_shard_iterator()
                .stream_arn(&self.stream_arn)
                .shard_id(&shard);
            let request = match self.positions.get(&shard) {
                Some(seq) => request
                    .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                    .sequence_number(seq),
                None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            };
            let mut iterator = request
                .send()
                .await
                .expect("GetShardIterator")
                .shard_iterator()
                .map(str::to_owned);
            while let Some(it) = iterator {
                let page = self
                    .client
                    .get_records()
                    .shard_iterator(it)
                    .limit(1000)
                    .send()
                    .await
                    .expect("GetRecords");
                if page.records().is_empty() {
                    break;
                }
                for record in page.records() {
                    if let Some(seq) = record.dynamodb().and_then(|d| d.sequence_number()) {
                        self.positions.insert(shard.clone(), seq.to_owned());
                    }
                    out.push(lambda_record(record, &self.stream_arn));
                }
                iterator = page.next_shard_iterator().map(str::to_owned);
            }
        }
        out
    }
}

/// A stream record as the `Records[]` entry of Lambda's DynamoDB event.
pub fn lambda_record(record: &Record, stream_arn: &str) -> Value {
    let change = record
        .dynamodb()
        .expect("a stream record has a dynamodb part");
    let mut dynamodb = Map::new();
    if let Some(at) = change.approximate_creation_date_time() {
        dynamodb.insert("ApproximateCreationDateTime".into(), json!(at.secs()));
    }
    let images = [
        ("Keys", change.keys()),
        ("NewImage", change.new_image()),
        ("OldImage", change.old_image()),
    ];
    for (name, image) in images {
        if let Some(image) = image {
            dynamodb.insert(name.into(), item_json(image));
        }
    }
    if let Some(seq) = change.sequence_number() {
        dynamodb.insert("SequenceNumber".into(), json!(seq));
    }
    if let Some(size) = change.size_bytes() {
        dynamodb.insert("SizeBytes".into(), json!(size));
    }
    if let Some(view) = change.stream_view_type() {
        dynamodb.insert("StreamViewType".into(), json!(view.as_str()));
    }
    json!({
        "eventID": record.event_id().expect("a stream record has an eventID"),
        "eventName": record.event_name().expect("a stream record has an eventName").as_str(),
        "eventVersion": record.event_version().unwrap_or("1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.aws_region().unwrap_or(pushpool_tests::moto::TEST_REGION),
        "dynamodb": Value::Object(dynamodb),
        "eventSourceARN": stream_arn,
    })
}

/// An item in DynamoDB's JSON (`{"name": {"S": "..."}}`), attributes sorted by name.
pub fn item_json(item: &HashMap<String, AttributeValue>) -> Value {
    let mut names: Vec<&String> = item.keys().collect();
    names.sort();
    Value::Object(
        names
            .into_iter()
            .map(|name| (name.clone(), attribute_json(&item[name])))
            .collect(),
    )
}

/// One attribute value in DynamoDB's JSON: `{"S": "x"}`, `{"N": "1"}`, `{"B": "<base64>"}`,
/// `{"BOOL": true}`, `{"NULL": true}`, `{"M": {...}}`, `{"L": [...]}`, `{"SS"|"NS"|"BS": [...]}`.
pub fn attribute_json(value: &AttributeValue) -> Value {
    let b64 = |b: &aws_smithy_types::Blob| aws_smithy_types::base64::encode(b.as_ref());
    match value {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::B(b) => json!({ "B": b64(b) }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(b) => json!({ "NULL": b }),
        AttributeValue::Ss(v) => json!({ "SS": v }),
        AttributeValue::Ns(v) => json!({ "NS": v }),
        AttributeValue::Bs(v) => json!({ "BS": v.iter().map(b64).collect::<Vec<_>>() }),
        AttributeValue::L(v) => json!({ "L": v.iter().map(attribute_json).collect::<Vec<_>>() }),
        AttributeValue::M(m) => json!({ "M": item_json(m) }),
        other => panic!("an attribute value this test does not know: {other:?}"),
    }
}

/// Whether `event` matches an event filter `pattern` (the subset Lambda's `FilterCriteria`
/// use here: nested objects, and arrays of exact values, any of which must equal the field).
pub fn matches(pattern: &Value, event: &Value) -> bool {
    match pattern {
        Value::Object(fields) => fields
            .iter()
            .all(|(name, sub)| event.get(name).is_some_and(|value| matches(sub, value))),
        Value::Array(allowed) => match event {
            Value::Array(values) => values.iter().any(|v| allowed.contains(v)),
            value => allowed.contains(value),
        },
        other => panic!("unsupported filter pattern {other}"),
    }
}

/// The records the submitter's trigger delivers, in Lambda's batches.
pub fn submitter_batches(records: &[Value]) -> Vec<aws_lambda_events::dynamodb::Event> {
    let pattern: Value = serde_json::from_str(SUBMITTER_FILTER).expect("the filter is JSON");
    let passed: Vec<&Value> = records.iter().filter(|r| matches(&pattern, r)).collect();
    passed
        .chunks(BATCH_SIZE)
        .map(|chunk| {
            serde_json::from_value(json!({ "Records": chunk }))
                .expect("a batch decodes as Lambda's DynamoDB event")
        })
        .collect()
}
