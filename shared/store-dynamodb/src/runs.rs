//! Flow runs, their state history, the run-state index and the outbox (the port's change
//! feed). The layout is in the crate docs.

use std::collections::HashSet;

use aws_sdk_dynamodb::types::TransactWriteItem;
use chrono::{DateTime, Utc};
use pushpool_core::filter::{FlowRunSort, Operator};
use pushpool_core::model::FlowRun;
use pushpool_core::state::{State, StateType};
use pushpool_store::{Change, FlowRunQuery, Page, Result, StoreError};
use uuid::Uuid;

use crate::DynamoStore;
use crate::error::DynamoError;
use crate::item::{
    BODY, Cond, DEPLOYMENT_ID, EST, EXPIRES_AT, Expr, FLOW_ID, FLOW_RUN_ID, FORMAT, GSI1, GSI1PK,
    GSI1SK, HISTORY_SK, ID, IDEMPOTENCY_KEY, Item, OUTBOX, PK, RUN_ID, RUN_SK, RUNS,
    RUNS_PARTITION, SEQ, SK, STATE_ID, STATE_PREFIX, STATE_TYPE, VERSION, WORK_POOL_NAME, decode,
    encode, iso, key, n, opt_str, outbox_sk, req_str, req_u64, req_uuid, run_key_key, run_pk,
    run_tag_pk, s, state_pointer_key,
};
use crate::ops::{MAX_ATTEMPTS, Query, Tx, backoff, key_of, key_string};
use crate::task_runs::{CHILD_PREFIX, task_run_pk};

/// At most this many values go into one `IN (...)` of a filter expression (DynamoDB's
/// limit); longer lists are only checked after the runs are read.
const MAX_IN_OPERANDS: usize = 100;

/// Flow run body: the public fields plus the internal ones `FlowRun` does not serialise
/// (the same document as the SQLite adapter's).
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredRun {
    #[serde(flatten)]
    run: FlowRun,
    #[serde(rename = "_submission_attempt", default)]
    submission_attempt: u32,
    #[serde(
        rename = "_slots",
        default,
        skip_serializing_if = "pushpool_core::model::ConcurrencySlots::is_empty"
    )]
    slots: pushpool_core::model::ConcurrencySlots,
}

/// What orders runs: the scheduled time, else the creation time.
fn sort_time(run: &FlowRun) -> String {
    iso(run.scheduled_time().unwrap_or(run.created))
}

/// The item format this release writes: 2 added `format`, `est`, `runs`, the
/// deployment, pool and all-runs indexes, tag listing entries, and the expected start time
/// as the sort key of the run-state index outside its SCHEDULED partition. Format 1 items
/// (no `format` attribute) are read as they are and rewritten by
/// [`DynamoStore::upgrade_items`].
pub const ITEM_FORMAT: u64 = 2;

/// The expected start time key of a run: its expected start time, or [`NO_TIME`] without
/// one. Index sort keys need not be unique: runs with the same time are read together and
/// ordered by id in memory.
pub(crate) fn est_key(run: &FlowRun) -> String {
    run.expected_start_time
        .map_or_else(|| NO_TIME.to_owned(), iso)
}

/// What stands for a missing time in [`est_key`]: below every ISO 8601 time.
pub(crate) const NO_TIME: &str = "!";

/// Whether a string can be an index key value: DynamoDB refuses empty ones and limits
/// partition keys to 2,048 bytes. A run whose pool name is not is left out of the pool
/// index, and a filter on such a name does not use it.
pub(crate) fn indexable_key(value: &str) -> bool {
    !value.is_empty() && value.len() <= 1024
}

/// The tag listing entries of `run` (one per distinct tag).
pub(crate) fn tag_entries(run_id: Uuid, tags: &[String]) -> Vec<Item> {
    let mut seen = HashSet::new();
    tags.iter()
        .filter(|t| seen.insert(t.as_str()))
        .map(|t| key(run_tag_pk(t), run_id.to_string()))
        .collect()
}

/// The tag listing entries that change between the stored run item `current` and `next`:
/// (to put, to delete). A format 1 item had no entries: all of `next`'s are put.
pub(crate) fn tag_changes(
    current: &Item,
    next: &FlowRun,
) -> Result<(Vec<Item>, Vec<Item>), DynamoError> {
    let old: Vec<String> = if current.contains_key(FORMAT) {
        run_from(current)?.tags
    } else {
        Vec::new()
    };
    let before: HashSet<&str> = old.iter().map(String::as_str).collect();
    let after: HashSet<&str> = next.tags.iter().map(String::as_str).collect();
    let entry = |tag: &&str| key(run_tag_pk(tag), next.id.to_string());
    Ok((
        after.difference(&before).map(entry).collect(),
        before.difference(&after).map(entry).collect(),
    ))
}

/// The run-state index partition of a state type (`RUNSTATE#NONE` for a run without state).
pub(crate) fn state_partition(state_type: Option<StateType>) -> String {
    format!("RUNSTATE#{}", state_type.map_or("NONE", StateType::as_str))
}

/// Every run-state index partition.
fn all_state_partitions() -> Vec<String> {
    StateType::ALL
        .into_iter()
        .map(Some)
        .chain([None])
        .map(state_partition)
        .collect()
}

pub(crate) fn run_key(id: Uuid) -> Item {
    key(run_pk(id), RUN_SK)
}

/// The run item; `idempotency_key` is the one its uniqueness item was written for.
pub(crate) fn run_item(run: &FlowRun, idempotency_key: Option<&str>) -> Result<Item, DynamoError> {
    let full = serde_json::to_value(StoredRun {
        run: run.clone(),
        submission_attempt: run.submission_attempt,
        slots: run.concurrency_slots.clone(),
    })
    .map_err(|source| DynamoError::Encode {
        what: "flow run",
        source,
    })?;

    let sort = sort_time(run);
    let est = est_key(run);
    let mut item = run_key(run.id);
    item.insert(VERSION.into(), n(run.version));
    item.insert(FORMAT.into(), n(ITEM_FORMAT));
    item.insert(FLOW_ID.into(), s(run.flow_id.to_string()));
    item.insert(GSI1PK.into(), s(state_partition(run.state_type)));
    // The SCHEDULED partition is the due index (by the time the run is due); the others
    // are by expected start time, the order the run listings ask for.
    let state_sk = if run.state_type == Some(StateType::Scheduled) {
        sort
    } else {
        est.clone()
    };
    item.insert(GSI1SK.into(), s(state_sk));
    item.insert(EST.into(), s(est));
    item.insert(RUNS.into(), s(RUNS_PARTITION));
    let optional = [
        (DEPLOYMENT_ID, run.deployment_id.map(|d| d.to_string())),
        (
            WORK_POOL_NAME,
            run.work_pool_name.clone().filter(|p| indexable_key(p)),
        ),
        (IDEMPOTENCY_KEY, idempotency_key.map(str::to_owned)),
    ];
    for (name, value) in optional {
        if let Some(v) = value {
            item.insert(name.into(), s(v));
        }
    }
    // The body leaves out what the item's attributes hold (read back from them).
    let mut body = crate::compact::compact(full);
    if let serde_json::Value::Object(fields) = &mut body {
        for (field, attr) in FROM_ATTRIBUTES {
            let held = match *attr {
                PK => Some(s(run.id.to_string())),
                a => item.get(a).cloned(),
            };
            let same = match (fields.get(*field), held) {
                (
                    Some(serde_json::Value::String(v)),
                    Some(aws_sdk_dynamodb::types::AttributeValue::S(a)),
                ) => *v == a,
                _ => false,
            };
            if same {
                fields.remove(*field);
            }
        }
    }
    item.insert(BODY.into(), s(encode(&body, "flow run")?));
    Ok(item)
}

/// Body fields a format 2 run item leaves out when an attribute holds the same string
/// (`pk` holds `RUN#<id>`): (field, attribute).
const FROM_ATTRIBUTES: &[(&str, &str)] = &[
    ("id", PK),
    ("flow_id", FLOW_ID),
    ("deployment_id", DEPLOYMENT_ID),
    ("work_pool_name", WORK_POOL_NAME),
];

/// Decodes a run item (body + version).
pub(crate) fn run_from(item: &Item) -> Result<FlowRun, DynamoError> {
    let mut compact: serde_json::Value = decode(item, BODY)?;
    if let serde_json::Value::Object(fields) = &mut compact {
        for (field, attr) in FROM_ATTRIBUTES {
            if fields.contains_key(*field) {
                continue;
            }
            let held = match *attr {
                PK => req_str(item, PK)?.strip_prefix("RUN#"),
                a => opt_str(item, a)?,
            };
            if let Some(v) = held {
                fields.insert((*field).to_owned(), serde_json::Value::String(v.to_owned()));
            }
        }
    }
    let stored: StoredRun = serde_json::from_value(crate::compact::expand(compact))
        .map_err(|e| DynamoError::decode(req_str(item, PK).unwrap_or("?"), BODY, &e))?;
    let mut run = stored.run;
    run.submission_attempt = stored.submission_attempt;
    run.concurrency_slots = stored.slots;
    run.version = req_u64(item, VERSION)?;
    Ok(run)
}

/// The history item and the pointer item of `state`, a state of run `run_id`.
pub(crate) fn state_items(run_id: Uuid, state: &State) -> Result<(Item, Item), DynamoError> {
    let sk = format!("{STATE_PREFIX}{}#{}", iso(state.timestamp), state.id);
    let mut history = key(run_pk(run_id), sk.clone());
    history.insert(STATE_ID.into(), s(state.id.to_string()));
    history.insert(BODY.into(), s(encode(state, "state")?));
    let mut pointer = state_pointer_key(state.id);
    pointer.insert(RUN_ID.into(), s(run_id.to_string()));
    pointer.insert(HISTORY_SK.into(), s(sk));
    Ok((history, pointer))
}

/// The index filter expression for the restrictions of a query (flow, deployment and pool
/// ids that other resources' filters resolved to), which the run-state index projects. Any
/// restriction is ANDed with the rest of the query, so narrowing the candidates by it is
/// always sound; the rest of the filter runs on the decoded runs.
pub(crate) fn index_filter(q: &FlowRunQuery, expr: &mut Expr) -> Option<String> {
    let mut parts = Vec::new();
    let mut add = |attr: &str, values: Option<Vec<String>>| {
        if let Some(values) = values.filter(|v| v.len() <= MAX_IN_OPERANDS) {
            if values.is_empty() {
                // Nothing can match an empty list: a condition that is always false.
                parts.push(format!("attribute_not_exists({})", expr.name(PK)));
            } else {
                parts.push(expr.any_of(attr, values));
            }
        }
    };
    let ids = |v: &Option<Vec<Uuid>>| v.as_ref().map(|v| v.iter().map(Uuid::to_string).collect());
    add(FLOW_ID, ids(&q.flow_ids));
    add(DEPLOYMENT_ID, ids(&q.deployment_ids));
    // Format 2 leaves a pool name that cannot be a key off the item: no pruning by it then.
    add(
        WORK_POOL_NAME,
        q.work_pool_names
            .clone()
            .filter(|names| names.iter().all(|p| indexable_key(p))),
    );
    (!parts.is_empty()).then(|| parts.join(" AND "))
}

/// The run ids a query is limited to (`id.any_` under an `and_` filter), if any.
pub(crate) fn only_ids(q: &FlowRunQuery) -> Option<&Vec<Uuid>> {
    (q.filter.operator == Operator::And)
        .then(|| q.filter.id.as_ref()?.any_.as_ref())
        .flatten()
}

/// The parent task runs a query is limited to (`parent_task_run_id.any_` under `and_`
/// filters), if any.
pub(crate) fn only_parent_task_runs(q: &FlowRunQuery) -> Option<&Vec<Uuid>> {
    if q.filter.operator != Operator::And {
        return None;
    }
    let parent = q.filter.parent_task_run_id.as_ref()?;
    if parent.operator != Operator::And && parent.is_null_.is_some() {
        return None;
    }
    parent.any_.as_ref()
}

/// The state types a query is limited to (`state.type.any_` under `and_` filters), if any.
pub(crate) fn only_state_types(q: &FlowRunQuery) -> Option<&Vec<StateType>> {
    if q.filter.operator != Operator::And {
        return None;
    }
    let state = q.filter.state.as_ref()?;
    if state.operator != Operator::And && state.name.is_some() {
        return None;
    }
    state.r#type.as_ref()?.any_.as_ref()
}

impl DynamoStore {
    /// The outbox item of a change of `run` numbered `seq`.
    fn outbox_item(&self, seq: u64, run: &FlowRun) -> Item {
        let expires = Utc::now() + self.outbox_retention;
        let mut item = key(OUTBOX, outbox_sk(seq));
        item.insert(SEQ.into(), n(seq));
        item.insert(FLOW_RUN_ID.into(), s(run.id.to_string()));
        item.insert(
            EXPIRES_AT.into(),
            n(u64::try_from(expires.timestamp()).unwrap_or(0)),
        );
        if let Some(t) = run.state_type {
            item.insert(STATE_TYPE.into(), s(t.as_str()));
        }
        item
    }

    /// The run an idempotency key of `flow_id` points to, if any.
    async fn run_by_idempotency_key(&self, flow_id: Uuid, k: &str) -> Result<Option<FlowRun>> {
        let Some(pointer) = self.get(run_key_key(flow_id, k)).await? else {
            return Ok(None);
        };
        let id = req_uuid(&pointer, ID)?;
        match self.get(run_key(id)).await? {
            Some(item) => Ok(Some(run_from(&item)?)),
            None => Ok(None),
        }
    }

    pub(crate) async fn create_run(&self, run: &FlowRun) -> Result<(FlowRun, bool)> {
        let mut run = run.clone();
        run.version = 1;
        let idempotency_key = run.idempotency_key.clone();
        if let Some(k) = &idempotency_key {
            if let Some(existing) = self.run_by_idempotency_key(run.flow_id, k).await? {
                return Ok((existing, false));
            }
        }
        let seq = self.next_seq().await?;
        let mut items = vec![self.put(
            run_item(&run, idempotency_key.as_deref())?,
            Some(Cond::absent()),
        )?];
        let key_position = match &idempotency_key {
            Some(k) => {
                let mut pointer = run_key_key(run.flow_id, k);
                pointer.insert(ID.into(), s(run.id.to_string()));
                items.push(self.put(pointer, Some(Cond::absent()))?);
                Some(items.len() - 1)
            }
            None => None,
        };
        if let Some(state) = &run.state {
            let (history, pointer) = state_items(run.id, state)?;
            items.push(self.put(history, None)?);
            items.push(self.put(pointer, None)?);
        }
        // Tag entries go first, outside the transaction: an entry is only a hint (listings
        // read the run and test its tags), so one without its run is harmless, while a run
        // must never lack the entry of a tag it has.
        self.put_items(tag_entries(run.id, &run.tags)).await?;
        if let Some(parent) = run.parent_task_run_id {
            // The subflow link: the engine finds this run by its parent task run.
            let link = key(task_run_pk(parent), format!("{CHILD_PREFIX}{}", run.id));
            items.push(self.put(link, None)?);
        }
        items.push(self.put(self.outbox_item(seq, &run), None)?);
        for attempt in 0..MAX_ATTEMPTS {
            match self.transact(items.clone()).await? {
                Tx::Committed => return Ok((run, true)),
                Tx::Failed(failed) => {
                    if let (Some(p), Some(k)) = (key_position, &idempotency_key) {
                        if Tx::failed_at(&failed, p) {
                            // Another writer took the key first: theirs is the run.
                            if let Some(existing) =
                                self.run_by_idempotency_key(run.flow_id, k).await?
                            {
                                return Ok((existing, false));
                            }
                            backoff(attempt).await;
                            continue;
                        }
                    }
                    return Err(StoreError::Conflict(
                        "A flow run with this id already exists.".into(),
                    ));
                }
                Tx::Conflicted => backoff(attempt).await,
            }
        }
        Err(DynamoError::Contended {
            operation: "create flow run",
            attempts: MAX_ATTEMPTS,
        }
        .into())
    }

    pub(crate) async fn read_run(&self, id: Uuid) -> Result<FlowRun> {
        match self.get(run_key(id)).await? {
            Some(item) => Ok(run_from(&item)?),
            None => Err(StoreError::NotFound("Flow run not found".into())),
        }
    }

    /// The stored run item of `id` (strongly consistent), for [`Store::commit`]'s read of
    /// the version and the state it writes over.
    ///
    /// [`Store::commit`]: pushpool_store::Store::commit
    pub(crate) async fn read_run_item(&self, id: Uuid) -> Result<Option<Item>> {
        Ok(self.get(run_key(id)).await?)
    }

    /// The transaction items that write `next` over `current` (the stored item, read at
    /// `next.version - 1`): the run on the condition `version = :expected` (always the
    /// first item), its history entry and state pointer when the state id changed, and the
    /// outbox item `seq`. The idempotency key stays the one the run was created with.
    pub(crate) fn run_update_items(
        &self,
        current: &Item,
        next: &FlowRun,
        seq: u64,
    ) -> Result<Vec<TransactWriteItem>> {
        // Format 2 items keep the state only in the body (no `state_id` attribute).
        let stored_state = run_from(current)?.state.map(|st| st.id.to_string());
        let idempotency_key = opt_str(current, IDEMPOTENCY_KEY)?;
        let mut items = vec![self.put(
            run_item(next, idempotency_key)?,
            Some(Cond::equals(&[(VERSION, n(next.version - 1))])),
        )?];
        if let Some(state) = &next.state {
            if stored_state.as_deref() != Some(state.id.to_string().as_str()) {
                let (history, pointer) = state_items(next.id, state)?;
                items.push(self.put(history, None)?);
                items.push(self.put(pointer, None)?);
            }
        }
        items.push(self.put(self.outbox_item(seq, next), None)?);
        Ok(items)
    }

    pub(crate) async fn delete_run(&self, id: Uuid) -> Result<()> {
        let mut expr = Expr::default();
        let key_condition = format!("{} = {}", expr.name(PK), expr.value(s(run_pk(id))));
        let items = self
            .query(
                &Query {
                    key_condition,
                    expr,
                    ..Query::default()
                },
                None,
            )
            .await?;
        let mut rest = Vec::new();
        let mut run = None;
        for item in &items {
            if req_str(item, SK)? == RUN_SK {
                run = Some(item);
                continue;
            }
            rest.push(key_of(item));
            if let Some(state_id) = opt_str(item, STATE_ID)? {
                if let Ok(state_id) = state_id.parse() {
                    rest.push(state_pointer_key(state_id));
                }
            }
        }
        if let Some(item) = run {
            if let Ok(stored) = run_from(item) {
                rest.extend(tag_entries(id, &stored.tags));
            }
        }
        let found = match run {
            Some(item) => {
                let mut tx = vec![self.delete(run_key(id), Some(Cond::equals(&[])))?];
                if let Some(k) = opt_str(item, IDEMPOTENCY_KEY)? {
                    let flow_id = req_uuid(item, FLOW_ID)?;
                    tx.push(self.delete(
                        run_key_key(flow_id, k),
                        Some(Cond::absent_or_equals(ID, s(id.to_string()))),
                    )?);
                }
                let mut deleted = false;
                for attempt in 0..MAX_ATTEMPTS {
                    match self.transact(tx.clone()).await? {
                        Tx::Committed => {
                            deleted = true;
                            break;
                        }
                        Tx::Failed(_) => break,
                        Tx::Conflicted => backoff(attempt).await,
                    }
                }
                deleted
            }
            None => false,
        };
        // The history goes whether or not the run was still there (as in SQLite).
        self.batch_delete(rest).await?;
        if found {
            Ok(())
        } else {
            Err(StoreError::NotFound("Flow run not found".into()))
        }
    }

    /// Reads the run items named by `keys` (strongly consistent), in `keys` order, leaving
    /// out missing ones.
    pub(crate) async fn read_runs(&self, keys: Vec<Item>) -> Result<Vec<FlowRun>> {
        let found = self.batch_get(keys.clone()).await?;
        let mut out = Vec::with_capacity(keys.len());
        for k in &keys {
            if let Some(item) = found.get(&key_string(k)) {
                out.push(run_from(item)?);
            }
        }
        Ok(out)
    }

    /// Every run that matches `q`, in its order (paging aside). Candidates come from the
    /// ids the query names, else from the run-state index partitions of the state types it
    /// is limited to (else all of them), narrowed by its restrictions; each candidate is read
    /// as it is now and tested against the whole query.
    async fn matching_runs(&self, q: &FlowRunQuery) -> Result<Vec<FlowRun>> {
        let keys: Vec<Item> = if let Some(parents) = only_parent_task_runs(q) {
            // The engine's subflow lookup: the links of the parent task runs.
            self.subflow_run_keys(parents).await?
        } else if let Some(ids) = only_ids(q) {
            let mut seen = HashSet::new();
            ids.iter()
                .filter(|id| seen.insert(**id))
                .map(|id| run_key(*id))
                .collect()
        } else {
            let partitions: Vec<String> = match only_state_types(q) {
                Some(types) => {
                    let unique: HashSet<StateType> = types.iter().copied().collect();
                    unique
                        .into_iter()
                        .map(|t| state_partition(Some(t)))
                        .collect()
                }
                None => all_state_partitions(),
            };
            let mut keys = Vec::new();
            for partition in partitions {
                let mut expr = Expr::default();
                let key_condition = format!("{} = {}", expr.name(GSI1PK), expr.value(s(partition)));
                let filter_expression = index_filter(q, &mut expr);
                let projection = Some(format!("{}, {}", expr.name(PK), expr.name(SK)));
                let query = Query {
                    index: Some(GSI1),
                    key_condition,
                    filter: filter_expression,
                    projection,
                    expr,
                    descending: true,
                };
                for item in self.query(&query, None).await? {
                    keys.push(key_of(&item));
                }
            }
            keys
        };
        let mut runs: Vec<FlowRun> = self
            .read_runs(keys)
            .await?
            .into_iter()
            .filter(|r| q.matches(r))
            .collect();
        runs.sort_by(|a, b| q.sort.compare(a, b));
        Ok(runs)
    }

    pub(crate) async fn list_runs(&self, q: &FlowRunQuery) -> Result<Vec<FlowRun>> {
        if let Some(runs) = self.planned_page(q).await? {
            return Ok(runs);
        }
        let page = q.page;
        Ok(self
            .matching_runs(q)
            .await?
            .into_iter()
            .skip(page.offset)
            .take(page.limit.unwrap_or(usize::MAX))
            .collect())
    }

    pub(crate) async fn count_runs(&self, q: &FlowRunQuery) -> Result<u64> {
        if let Some(count) = self.planned_count(q).await? {
            return Ok(count);
        }
        Ok(self.matching_runs(q).await?.len() as u64)
    }

    pub(crate) async fn list_due_runs(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<FlowRun>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let cutoff = iso(before);
        // `<time>#<id>` sorts below `<cutoff>$` exactly when time <= cutoff (`#` < `$`).
        let upper = format!("{cutoff}$");
        let mut fetch = limit;
        loop {
            let mut expr = Expr::default();
            let key_condition = format!(
                "{} = {} AND {} < {}",
                expr.name(GSI1PK),
                expr.value(s(state_partition(Some(StateType::Scheduled)))),
                expr.name(GSI1SK),
                expr.value(s(upper.clone())),
            );
            let projection = Some(format!("{}, {}", expr.name(PK), expr.name(SK)));
            let query = Query {
                index: Some(GSI1),
                key_condition,
                projection,
                expr,
                ..Query::default()
            };
            let candidates = self.query(&query, Some(fetch)).await?;
            let exhausted = candidates.len() < fetch;
            let keys = candidates.iter().map(key_of).collect();
            // The index may lag: keep the runs that are still SCHEDULED and due.
            let due: Vec<FlowRun> = self
                .read_runs(keys)
                .await?
                .into_iter()
                .filter(|r| r.state_type == Some(StateType::Scheduled) && sort_time(r) <= cutoff)
                .take(limit)
                .collect();
            if due.len() >= limit || exhausted {
                return Ok(due);
            }
            fetch = fetch.saturating_mul(2);
        }
    }

    pub(crate) async fn read_run_states(&self, id: Uuid) -> Result<Vec<State>> {
        let mut expr = Expr::default();
        let key_condition = format!(
            "{} = {} AND begins_with({}, {})",
            expr.name(PK),
            expr.value(s(run_pk(id))),
            expr.name(SK),
            expr.value(s(STATE_PREFIX)),
        );
        let items = self
            .query(
                &Query {
                    key_condition,
                    expr,
                    ..Query::default()
                },
                None,
            )
            .await?;
        Ok(items
            .iter()
            .map(|item| decode(item, BODY))
            .collect::<Result<Vec<State>, _>>()?)
    }

    pub(crate) async fn read_one_state(&self, state_id: Uuid) -> Result<State> {
        let missing = || StoreError::NotFound("State not found".into());
        let pointer = self
            .get(state_pointer_key(state_id))
            .await?
            .ok_or_else(missing)?;
        let run_id = req_uuid(&pointer, RUN_ID)?;
        let sk = req_str(&pointer, HISTORY_SK)?;
        let history = self
            .get(key(run_pk(run_id), sk))
            .await?
            .ok_or_else(missing)?;
        Ok(decode(&history, BODY)?)
    }

    pub(crate) async fn read_outbox(&self, after: u64, limit: usize) -> Result<Vec<Change>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut expr = Expr::default();
        let key_condition = format!(
            "{} = {} AND {} > {}",
            expr.name(PK),
            expr.value(s(OUTBOX)),
            expr.name(SK),
            expr.value(s(outbox_sk(after))),
        );
        let items = self
            .query(
                &Query {
                    key_condition,
                    expr,
                    ..Query::default()
                },
                Some(limit),
            )
            .await?;
        items
            .iter()
            .map(|item| {
                Ok(Change {
                    seq: req_u64(item, SEQ)?,
                    flow_run_id: req_uuid(item, FLOW_RUN_ID)?,
                    state_type: opt_str(item, STATE_TYPE)?.and_then(StateType::parse),
                })
            })
            .collect::<Result<Vec<_>, DynamoError>>()
            .map_err(Into::into)
    }

    pub(crate) async fn delete_outbox(&self, upto: u64) -> Result<()> {
        let mut expr = Expr::default();
        let key_condition = format!(
            "{} = {} AND {} <= {}",
            expr.name(PK),
            expr.value(s(OUTBOX)),
            expr.name(SK),
            expr.value(s(outbox_sk(upto))),
        );
        let projection = Some(format!("{}, {}", expr.name(PK), expr.name(SK)));
        let items = self
            .query(
                &Query {
                    key_condition,
                    projection,
                    expr,
                    ..Query::default()
                },
                None,
            )
            .await?;
        self.batch_delete(items.iter().map(key_of).collect())
            .await?;
        Ok(())
    }
}

// Subflow runs by their parent task run (the links `create_run` writes).
impl DynamoStore {
    /// The run keys the subflow links of these parent task runs point to.
    async fn subflow_run_keys(&self, parent_task_run_ids: &[Uuid]) -> Result<Vec<Item>> {
        let mut keys = Vec::new();
        let mut seen = HashSet::new();
        for parent in parent_task_run_ids {
            if !seen.insert(*parent) {
                continue;
            }
            let mut expr = Expr::default();
            let key_condition = format!(
                "{} = {} AND begins_with({}, {})",
                expr.name(PK),
                expr.value(s(task_run_pk(*parent))),
                expr.name(SK),
                expr.value(s(CHILD_PREFIX)),
            );
            let projection = Some(format!("{}, {}", expr.name(PK), expr.name(SK)));
            let links = self
                .query(
                    &Query {
                        key_condition,
                        projection,
                        expr,
                        ..Query::default()
                    },
                    None,
                )
                .await?;
            for link in &links {
                if let Some(id) = req_str(link, SK)?
                    .strip_prefix(CHILD_PREFIX)
                    .and_then(|id| id.parse::<Uuid>().ok())
                {
                    keys.push(run_key(id));
                }
            }
        }
        Ok(keys)
    }

    pub(crate) async fn list_subflow_run_items(
        &self,
        parent_task_run_ids: &[Uuid],
        page: Page,
    ) -> Result<Vec<FlowRun>> {
        let keys = self.subflow_run_keys(parent_task_run_ids).await?;
        // Deleted runs leave their link behind: reading the run tells.
        let mut runs = self.read_runs(keys).await?;
        runs.retain(|r| {
            r.parent_task_run_id
                .is_some_and(|p| parent_task_run_ids.contains(&p))
        });
        runs.sort_by(|a, b| FlowRunSort::ExpectedStartTimeDesc.compare(a, b));
        Ok(runs
            .into_iter()
            .skip(page.offset)
            .take(page.limit.unwrap_or(usize::MAX))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_type_has_an_index_partition() {
        let partitions = all_state_partitions();
        assert_eq!(partitions.len(), 10);
        assert_eq!(partitions[0], "RUNSTATE#SCHEDULED");
        assert_eq!(partitions[9], "RUNSTATE#NONE");
    }

    #[test]
    fn the_due_cutoff_includes_equal_times_only() {
        let t = "2024-05-01T10:00:00.000000Z";
        let upper = format!("{t}$");
        let id = Uuid::new_v4();
        assert!(format!("{t}#{id}") < upper);
        assert!(format!("2024-05-01T10:00:00.000001Z#{id}") > upper);
    }
}
