//! Task runs: the run item with its state history in the run's partition, a uniqueness item
//! for `(flow_run_id, task_key, dynamic_key)`, state pointers, and two small listing entries
//! (all task runs; the task runs of one flow run), each keyed by the task run id so that a
//! `Query` in descending order is Prefect's default `ID_DESC`. No outbox item: task runs are
//! not submitted. The layout is in the crate docs.

use pushpool_core::state::State;
use pushpool_core::task_run::TaskRun;
use pushpool_store::{Result, StoreError, TaskRunFilter};
use uuid::Uuid;

use crate::DynamoStore;
use crate::error::DynamoError;
use crate::item::{
    BODY, Cond, Expr, FLOW_RUN_ID, HISTORY_SK, ID, Item, PK, RUN_ID, SK, STATE_ID, STATE_PREFIX,
    VERSION, composite, decode, encode, iso, key, n, opt_str, req_str, req_u64, req_uuid, s,
};
use crate::ops::{MAX_ATTEMPTS, Query, Tx, backoff, key_of, key_string};

/// The sk of a task run item.
const TASK_RUN_SK: &str = "TASKRUN";
/// The partition listing every task run (sk: the task run id).
const ALL_TASK_RUNS: &str = "TASKRUNS";
/// The sk prefix of a subflow link (`CHILD#<flow run id>`) in a task run's partition.
pub(crate) const CHILD_PREFIX: &str = "CHILD#";
/// Attribute: the pk of the task run's uniqueness item.
const RUN_KEY: &str = "run_key";

/// The pk of a task run's items.
pub(crate) fn task_run_pk(id: Uuid) -> String {
    format!("TASKRUN#{id}")
}

fn task_run_key(id: Uuid) -> Item {
    key(task_run_pk(id), TASK_RUN_SK)
}

/// The flow run part of the unique key and of the per-flow-run listing (`NONE` without one).
fn flow_run_part(run: &TaskRun) -> String {
    run.flow_run_id
        .map_or_else(|| "NONE".to_owned(), |f| f.to_string())
}

/// The pk of the uniqueness item of `(flow_run_id, task_key, dynamic_key)` (one partition
/// each: never listed).
fn unique_pk(run: &TaskRun) -> String {
    format!(
        "TASKRUNKEY#{}",
        composite(&[&flow_run_part(run), &run.task_key, &run.dynamic_key])
    )
}

fn unique_key_of(run: &TaskRun) -> Item {
    key(unique_pk(run), "TASKRUNKEY")
}

/// The listing entries of a task run: in the all-runs partition and in its flow run's.
fn listing_keys(id: Uuid, flow_run_part: &str) -> [Item; 2] {
    [
        key(ALL_TASK_RUNS, id.to_string()),
        key(format!("{ALL_TASK_RUNS}#{flow_run_part}"), id.to_string()),
    ]
}

fn state_pointer(state_id: Uuid) -> Item {
    key(format!("TASKRUNSTATE#{state_id}"), "STATE")
}

fn run_item(run: &TaskRun) -> Result<Item, DynamoError> {
    let mut item = task_run_key(run.id);
    item.insert(ID.into(), s(run.id.to_string()));
    item.insert(BODY.into(), s(encode(run, "task run")?));
    item.insert(VERSION.into(), n(run.version));
    item.insert(FLOW_RUN_ID.into(), s(flow_run_part(run)));
    item.insert(RUN_KEY.into(), s(unique_pk(run)));
    if let Some(state) = &run.state {
        item.insert(STATE_ID.into(), s(state.id.to_string()));
    }
    Ok(item)
}

fn run_from(item: &Item) -> Result<TaskRun, DynamoError> {
    let mut run: TaskRun = decode(item, BODY)?;
    run.version = req_u64(item, VERSION)?;
    Ok(run)
}

/// The history item and the pointer item of `state`, a state of task run `run_id`.
fn state_items(run_id: Uuid, state: &State) -> Result<(Item, Item), DynamoError> {
    let sk = format!("{STATE_PREFIX}{}#{}", iso(state.timestamp), state.id);
    let mut history = key(task_run_pk(run_id), sk.clone());
    history.insert(STATE_ID.into(), s(state.id.to_string()));
    history.insert(BODY.into(), s(encode(state, "state")?));
    let mut pointer = state_pointer(state.id);
    pointer.insert(RUN_ID.into(), s(run_id.to_string()));
    pointer.insert(HISTORY_SK.into(), s(sk));
    Ok((history, pointer))
}

fn not_found() -> StoreError {
    StoreError::NotFound("Task run not found".into())
}

impl DynamoStore {
    /// The task run the uniqueness item of `run`'s keys points to, if any.
    async fn task_run_by_keys(&self, run: &TaskRun) -> Result<Option<TaskRun>> {
        let Some(pointer) = self.get(unique_key_of(run)).await? else {
            return Ok(None);
        };
        let id = req_uuid(&pointer, ID)?;
        match self.get(task_run_key(id)).await? {
            Some(item) => Ok(Some(run_from(&item)?)),
            None => Ok(None),
        }
    }

    pub(crate) async fn create_task_run_items(&self, run: &TaskRun) -> Result<(TaskRun, bool)> {
        let mut run = run.clone();
        run.version = 1;
        if let Some(existing) = self.task_run_by_keys(&run).await? {
            return Ok((existing, false));
        }
        let mut unique = unique_key_of(&run);
        unique.insert(ID.into(), s(run.id.to_string()));
        let mut items = vec![
            self.put(run_item(&run)?, Some(Cond::absent()))?,
            self.put(unique, Some(Cond::absent()))?,
        ];
        for entry in listing_keys(run.id, &flow_run_part(&run)) {
            items.push(self.put(entry, None)?);
        }
        if let Some(state) = &run.state {
            let (history, pointer) = state_items(run.id, state)?;
            items.push(self.put(history, None)?);
            items.push(self.put(pointer, None)?);
        }
        for attempt in 0..MAX_ATTEMPTS {
            match self.transact(items.clone()).await? {
                Tx::Committed => return Ok((run, true)),
                Tx::Failed(failed) if Tx::failed_at(&failed, 1) => {
                    // Another writer created this task run first: theirs is the run.
                    if let Some(existing) = self.task_run_by_keys(&run).await? {
                        return Ok((existing, false));
                    }
                    backoff(attempt).await;
                }
                Tx::Failed(_) => {
                    return Err(StoreError::Conflict(
                        "A task run with this id already exists.".into(),
                    ));
                }
                Tx::Conflicted => backoff(attempt).await,
            }
        }
        Err(DynamoError::Contended {
            operation: "create task run",
            attempts: MAX_ATTEMPTS,
        }
        .into())
    }

    pub(crate) async fn read_task_run_item(&self, id: Uuid) -> Result<TaskRun> {
        match self.get(task_run_key(id)).await? {
            Some(item) => Ok(run_from(&item)?),
            None => Err(not_found()),
        }
    }

    pub(crate) async fn update_task_run_item(&self, run: &TaskRun) -> Result<TaskRun> {
        let mut next = run.clone();
        next.version = run.version + 1;
        for attempt in 0..MAX_ATTEMPTS {
            // As for flow runs: the read tells whether the state changed and `NotFound` from
            // `VersionConflict`; the version condition makes the write safe.
            let Some(current) = self.get(task_run_key(run.id)).await? else {
                return Err(not_found());
            };
            if req_u64(&current, VERSION)? != run.version {
                return Err(StoreError::VersionConflict(run.id));
            }
            let stored_state = opt_str(&current, STATE_ID)?.map(str::to_owned);
            // The unique key is fixed at creation: the stored one is kept.
            let mut item = run_item(&next)?;
            if let Some(k) = current.get(RUN_KEY) {
                item.insert(RUN_KEY.into(), k.clone());
            }
            let mut items = vec![self.put(item, Some(Cond::equals(&[(VERSION, n(run.version))])))?];
            if let Some(state) = &next.state {
                if stored_state.as_deref() != Some(state.id.to_string().as_str()) {
                    let (history, pointer) = state_items(next.id, state)?;
                    items.push(self.put(history, None)?);
                    items.push(self.put(pointer, None)?);
                }
            }
            match self.transact(items).await? {
                Tx::Committed => return Ok(next),
                Tx::Failed(failed) if Tx::failed_at(&failed, 0) => continue,
                Tx::Failed(_) => {
                    return Err(DynamoError::Cancelled {
                        operation: "update task run",
                        codes: "ConditionalCheckFailed on an unconditional item".into(),
                        transient: false,
                    }
                    .into());
                }
                Tx::Conflicted => backoff(attempt).await,
            }
        }
        Err(DynamoError::Contended {
            operation: "update task run",
            attempts: MAX_ATTEMPTS,
        }
        .into())
    }

    /// The history and pointer items of `state` for task run `task_run_id`, written only
    /// while the run item exists (puts of the same state are idempotent: same keys, same body).
    pub(crate) async fn add_task_run_state_items(
        &self,
        task_run_id: Uuid,
        state: &State,
    ) -> Result<()> {
        if self.get(task_run_key(task_run_id)).await?.is_none() {
            return Err(not_found());
        }
        if self.get(state_pointer(state.id)).await?.is_some() {
            return Ok(());
        }
        let (history, pointer) = state_items(task_run_id, state)?;
        let items = vec![self.put(history, None)?, self.put(pointer, None)?];
        for attempt in 0..MAX_ATTEMPTS {
            match self.transact(items.clone()).await? {
                Tx::Committed => return Ok(()),
                Tx::Failed(_) => {
                    return Err(DynamoError::Cancelled {
                        operation: "add task run state",
                        codes: "ConditionalCheckFailed on an unconditional item".into(),
                        transient: false,
                    }
                    .into());
                }
                Tx::Conflicted => backoff(attempt).await,
            }
        }
        Err(DynamoError::Contended {
            operation: "add task run state",
            attempts: MAX_ATTEMPTS,
        }
        .into())
    }

    /// Every item of a task run's partition (run, history, subflow links).
    async fn task_run_partition(&self, id: Uuid) -> Result<Vec<Item>> {
        let mut expr = Expr::default();
        let key_condition = format!("{} = {}", expr.name(PK), expr.value(s(task_run_pk(id))));
        Ok(self
            .query(
                &Query {
                    key_condition,
                    expr,
                    ..Query::default()
                },
                None,
            )
            .await?)
    }

    pub(crate) async fn delete_task_run_items(&self, id: Uuid) -> Result<()> {
        let items = self.task_run_partition(id).await?;
        let mut rest = Vec::new();
        let mut run = None;
        for item in &items {
            if req_str(item, SK)? == TASK_RUN_SK {
                run = Some(item);
                continue;
            }
            rest.push(key_of(item));
            if let Some(state_id) = opt_str(item, STATE_ID)? {
                if let Ok(state_id) = state_id.parse() {
                    rest.push(state_pointer(state_id));
                }
            }
        }
        let mut deleted = false;
        if let Some(item) = run {
            let mut tx = vec![self.delete(task_run_key(id), Some(Cond::equals(&[])))?];
            tx.push(self.delete(
                key(req_str(item, RUN_KEY)?, "TASKRUNKEY"),
                Some(Cond::absent_or_equals(ID, s(id.to_string()))),
            )?);
            for entry in listing_keys(id, req_str(item, FLOW_RUN_ID)?) {
                tx.push(self.delete(entry, None)?);
            }
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
        }
        self.batch_delete(rest).await?;
        if deleted { Ok(()) } else { Err(not_found()) }
    }

    pub(crate) async fn read_task_run_history(&self, id: Uuid) -> Result<Vec<State>> {
        let mut expr = Expr::default();
        let key_condition = format!(
            "{} = {} AND begins_with({}, {})",
            expr.name(PK),
            expr.value(s(task_run_pk(id))),
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

    pub(crate) async fn read_task_run_state_item(&self, state_id: Uuid) -> Result<State> {
        let missing = || StoreError::NotFound("State not found".into());
        let pointer = self
            .get(state_pointer(state_id))
            .await?
            .ok_or_else(missing)?;
        let run_id = req_uuid(&pointer, RUN_ID)?;
        let sk = req_str(&pointer, HISTORY_SK)?;
        let history = self
            .get(key(task_run_pk(run_id), sk))
            .await?
            .ok_or_else(missing)?;
        Ok(decode(&history, BODY)?)
    }

    /// Reads the task runs `ids` (strongly consistent), leaving out missing ones.
    async fn read_task_runs(&self, ids: &[Uuid]) -> Result<Vec<TaskRun>> {
        let keys: Vec<Item> = ids.iter().map(|id| task_run_key(*id)).collect();
        let found = self.batch_get(keys.clone()).await?;
        let mut out = Vec::with_capacity(keys.len());
        for k in &keys {
            if let Some(item) = found.get(&key_string(k)) {
                out.push(run_from(item)?);
            }
        }
        Ok(out)
    }

    /// The task run ids of listing partition `pk`, descending, at most `max`.
    async fn listed_ids(&self, pk: String, max: Option<usize>) -> Result<Vec<Uuid>> {
        let mut expr = Expr::default();
        let key_condition = format!("{} = {}", expr.name(PK), expr.value(s(pk)));
        let projection = Some(format!("{}, {}", expr.name(PK), expr.name(SK)));
        let items = self
            .query(
                &Query {
                    key_condition,
                    projection,
                    expr,
                    descending: true,
                    ..Query::default()
                },
                max,
            )
            .await?;
        items
            .iter()
            .map(|item| req_uuid(item, SK))
            .collect::<Result<Vec<_>, DynamoError>>()
            .map_err(Into::into)
    }

    pub(crate) async fn list_task_run_items(&self, filter: &TaskRunFilter) -> Result<Vec<TaskRun>> {
        let page = filter.page;
        let take = page.limit.unwrap_or(usize::MAX);
        let matches = |r: &TaskRun| {
            filter
                .flow_run_ids
                .as_ref()
                .is_none_or(|ids| r.flow_run_id.is_some_and(|f| ids.contains(&f)))
                && filter.ids.as_ref().is_none_or(|ids| ids.contains(&r.id))
        };
        let mut ids: Vec<Uuid> = if let Some(ids) = &filter.ids {
            let mut ids = ids.clone();
            ids.sort_unstable();
            ids.dedup();
            ids.reverse();
            let runs = self.read_task_runs(&ids).await?;
            let kept: Vec<TaskRun> = runs.into_iter().filter(matches).collect();
            return Ok(kept.into_iter().skip(page.offset).take(take).collect());
        } else {
            let max = page.limit.map(|l| page.offset.saturating_add(l));
            match &filter.flow_run_ids {
                Some(flow_run_ids) => {
                    let mut unique = flow_run_ids.clone();
                    unique.sort_unstable();
                    unique.dedup();
                    let mut all = Vec::new();
                    for f in unique {
                        all.extend(self.listed_ids(format!("{ALL_TASK_RUNS}#{f}"), max).await?);
                    }
                    all
                }
                None => self.listed_ids(ALL_TASK_RUNS.to_owned(), max).await?,
            }
        };
        ids.sort_unstable_by(|a, b| b.cmp(a));
        let ids: Vec<Uuid> = ids.into_iter().skip(page.offset).take(take).collect();
        Ok(self
            .read_task_runs(&ids)
            .await?
            .into_iter()
            .filter(matches)
            .collect())
    }
}
