//! Prefect 3.9.1's `TaskRunFilter` and `TaskRunSort` (`server/schemas/filters.py`,
//! `server/schemas/sorting.py`) and the bodies of `POST /task_runs/filter`, `/count` and
//! `/paginate`, answered over the task runs the store holds.
//!
//! Every criterion of `task_runs` is honoured, with Prefect's semantics: `id.any_`,
//! `name.any_`/`like_` (case-insensitive substring), `tags.all_`/`is_null_` (no tags),
//! `state.type.any_`, `state.name.any_`, `start_time`/`end_time` `before_`/`after_`
//! (inclusive)/`is_null_`, `expected_start_time.before_`/`after_`, `subflow_runs.exists_`
//! (whether a flow run has this task run as `parent_task_run_id`), `flow_run_id.any_`/
//! `is_null_` (`is_null_: false` without `any_` selects runs that have a flow run, as Prefect's
//! `TaskRunFilterFlowRunId`), and `operator` (`and_`/`or_`) at each level that has one. An
//! unknown key is a 422 naming its path. The related filters (`flows`, `flow_runs`,
//! `deployments`) select the task runs whose flow run passes them, as Prefect's join does.
//!
//! The store narrows by id and flow run when the top-level operator is `and_`; the rest is
//! matched, sorted and paged here. Sorts with ties are broken by id descending (Prefect
//! leaves their order to the database), and a missing time sorts as SQLite sorts NULL (first
//! ascending, last descending), as on Prefect's default database.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use pushpool_core::state::StateType;
use pushpool_core::task_run::TaskRun;
use pushpool_store::{Page, Store, TaskRunFilter as StoreFilter};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::filters::{RawNumber, limit, offset, page};
use crate::ApiError;

/// `and_` or `or_`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub(crate) enum Operator {
    #[default]
    #[serde(rename = "and_")]
    And,
    #[serde(rename = "or_")]
    Or,
}

impl Operator {
    fn combine(self, checks: &[Option<bool>]) -> bool {
        let set = checks.iter().flatten();
        match self {
            Self::And => set.clone().all(|c| *c),
            // Prefect's `or_` of no criterion is `true` (an empty filter matches everything).
            Self::Or => set.clone().count() == 0 || set.clone().any(|c| *c),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AnyUuid {
    #[serde(default)]
    any_: Option<Vec<Uuid>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NameCriterion {
    #[serde(default)]
    any_: Option<Vec<String>>,
    #[serde(default)]
    like_: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TagsCriterion {
    #[serde(default)]
    operator: Operator,
    #[serde(default)]
    all_: Option<Vec<String>>,
    #[serde(default)]
    is_null_: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StateTypeCriterion {
    #[serde(default)]
    any_: Option<Vec<StateType>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StateNameCriterion {
    #[serde(default)]
    any_: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StateCriterion {
    #[serde(default)]
    operator: Operator,
    #[serde(default)]
    r#type: Option<StateTypeCriterion>,
    #[serde(default)]
    name: Option<StateNameCriterion>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TimeCriterion {
    #[serde(default)]
    before_: Option<DateTime<Utc>>,
    #[serde(default)]
    after_: Option<DateTime<Utc>>,
    #[serde(default)]
    is_null_: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExpectedStartCriterion {
    #[serde(default)]
    before_: Option<DateTime<Utc>>,
    #[serde(default)]
    after_: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubflowRunsCriterion {
    #[serde(default)]
    exists_: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FlowRunIdCriterion {
    /// Accepted and without effect, as in Prefect: this criterion yields one condition at
    /// most (`is_null_` wins over `any_`), so there is nothing to combine.
    #[serde(default)]
    #[allow(dead_code)]
    operator: Operator,
    #[serde(default)]
    any_: Option<Vec<Uuid>>,
    #[serde(default)]
    is_null_: Option<bool>,
}

/// Prefect's `TaskRunFilter`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TaskRunFilter {
    #[serde(default)]
    operator: Operator,
    #[serde(default)]
    id: Option<AnyUuid>,
    #[serde(default)]
    name: Option<NameCriterion>,
    #[serde(default)]
    tags: Option<TagsCriterion>,
    #[serde(default)]
    state: Option<StateCriterion>,
    #[serde(default)]
    start_time: Option<TimeCriterion>,
    #[serde(default)]
    end_time: Option<TimeCriterion>,
    #[serde(default)]
    expected_start_time: Option<ExpectedStartCriterion>,
    #[serde(default)]
    subflow_runs: Option<SubflowRunsCriterion>,
    #[serde(default)]
    flow_run_id: Option<FlowRunIdCriterion>,
}

fn time_checks(c: &TimeCriterion, t: Option<DateTime<Utc>>) -> [Option<bool>; 3] {
    [
        c.before_.map(|b| t.is_some_and(|t| t <= b)),
        c.after_.map(|a| t.is_some_and(|t| t >= a)),
        c.is_null_.map(|null| t.is_none() == null),
    ]
}

impl TaskRunFilter {
    /// Whether `run` matches; `has_subflow` tells whether a flow run has `run` as its parent
    /// task run (only asked when `subflow_runs.exists_` is set).
    fn matches(&self, run: &TaskRun, has_subflow: &impl Fn(Uuid) -> bool) -> bool {
        let mut checks: Vec<Option<bool>> = Vec::new();
        if let Some(c) = &self.id {
            checks.push(c.any_.as_ref().map(|ids| ids.contains(&run.id)));
        }
        if let Some(c) = &self.name {
            let mut own = vec![c.any_.as_ref().map(|n| n.contains(&run.name))];
            if let Some(like) = c.like_.as_ref().filter(|l| !l.is_empty()) {
                own.push(Some(run.name.to_lowercase().contains(&like.to_lowercase())));
            }
            checks.push(Some(Operator::And.combine(&own)));
        }
        if let Some(c) = &self.tags {
            let own = [
                c.all_
                    .as_ref()
                    .map(|all| all.iter().all(|t| run.tags.contains(t))),
                c.is_null_.map(|null| run.tags.is_empty() == null),
            ];
            checks.push(Some(c.operator.combine(&own)));
        }
        if let Some(c) = &self.state {
            let own = [
                c.r#type.as_ref().and_then(|t| {
                    t.any_
                        .as_ref()
                        .map(|types| run.state_type.is_some_and(|s| types.contains(&s)))
                }),
                c.name.as_ref().and_then(|n| {
                    n.any_
                        .as_ref()
                        .map(|names| run.state_name.as_ref().is_some_and(|s| names.contains(s)))
                }),
            ];
            checks.push(Some(c.operator.combine(&own)));
        }
        if let Some(c) = &self.start_time {
            checks.push(Some(Operator::And.combine(&time_checks(c, run.start_time))));
        }
        if let Some(c) = &self.end_time {
            checks.push(Some(Operator::And.combine(&time_checks(c, run.end_time))));
        }
        if let Some(c) = &self.expected_start_time {
            let t = run.expected_start_time;
            let own = [
                c.before_.map(|b| t.is_some_and(|t| t <= b)),
                c.after_.map(|a| t.is_some_and(|t| t >= a)),
            ];
            checks.push(Some(Operator::And.combine(&own)));
        }
        if let Some(c) = &self.subflow_runs {
            checks.push(c.exists_.map(|e| has_subflow(run.id) == e));
        }
        if let Some(c) = &self.flow_run_id {
            let check = match (c.is_null_, &c.any_) {
                (Some(true), _) => Some(run.flow_run_id.is_none()),
                (Some(false), None) => Some(run.flow_run_id.is_some()),
                (_, Some(ids)) => Some(run.flow_run_id.is_some_and(|f| ids.contains(&f))),
                (None, None) => None,
            };
            checks.push(check);
        }
        self.operator.combine(&checks)
    }

    /// What the store can narrow by (`and_` only).
    fn store_filter(&self) -> StoreFilter {
        if self.operator != Operator::And {
            return StoreFilter::default();
        }
        StoreFilter {
            ids: self.id.as_ref().and_then(|c| c.any_.clone()),
            flow_run_ids: self
                .flow_run_id
                .as_ref()
                .filter(|c| c.is_null_ != Some(true))
                .and_then(|c| c.any_.clone()),
            page: Page::default(),
        }
    }

    fn needs_subflows(&self) -> bool {
        self.subflow_runs
            .as_ref()
            .is_some_and(|s| s.exists_.is_some())
    }
}

/// Prefect's `TaskRunSort`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[allow(clippy::upper_case_acronyms)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum TaskRunSort {
    #[default]
    IdDesc,
    ExpectedStartTimeAsc,
    ExpectedStartTimeDesc,
    NameAsc,
    NameDesc,
    NextScheduledStartTimeAsc,
    EndTimeDesc,
    DurationDesc,
    DurationAsc,
}

/// `None` first ascending (SQLite's NULL order).
fn opt<T: Ord>(a: &Option<T>, b: &Option<T>) -> Ordering {
    a.cmp(b)
}

impl TaskRunSort {
    fn compare(self, a: &TaskRun, b: &TaskRun) -> Ordering {
        let by_id = b.id.cmp(&a.id);
        let duration = |a: &TaskRun, b: &TaskRun| {
            a.estimated_run_time
                .partial_cmp(&b.estimated_run_time)
                .unwrap_or(Ordering::Equal)
        };
        let primary = match self {
            Self::IdDesc => Ordering::Equal,
            Self::ExpectedStartTimeAsc => opt(&a.expected_start_time, &b.expected_start_time),
            Self::ExpectedStartTimeDesc => opt(&b.expected_start_time, &a.expected_start_time),
            Self::NameAsc => a.name.cmp(&b.name),
            Self::NameDesc => b.name.cmp(&a.name),
            Self::NextScheduledStartTimeAsc => {
                opt(&a.next_scheduled_start_time, &b.next_scheduled_start_time)
            }
            Self::EndTimeDesc => opt(&b.end_time, &a.end_time),
            Self::DurationDesc => {
                duration(b, a).then_with(|| opt(&b.expected_start_time, &a.expected_start_time))
            }
            Self::DurationAsc => {
                duration(a, b).then_with(|| opt(&b.expected_start_time, &a.expected_start_time))
            }
        };
        primary.then(by_id)
    }
}

/// The body of `POST /task_runs/filter`, `/count` and `/paginate` (Prefect's
/// `Body_read_task_runs_task_runs_filter_post` and its siblings).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct TaskRunsBody {
    #[serde(default)]
    flows: Option<Value>,
    #[serde(default)]
    flow_runs: Option<Value>,
    #[serde(default)]
    task_runs: Option<TaskRunFilter>,
    #[serde(default)]
    deployments: Option<Value>,
    #[serde(default)]
    sort: Option<TaskRunSort>,
    #[serde(default)]
    limit: RawNumber,
    #[serde(default)]
    offset: RawNumber,
    #[serde(default)]
    page: RawNumber,
    #[serde(flatten)]
    other: serde_json::Map<String, Value>,
}

/// Which paging keys a route honours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Paging {
    /// `/filter`: `offset` and `limit`.
    Offset,
    /// `/paginate`: `page` and `limit`.
    Page,
    /// `/count`: none. The UI sends its list's paging and sort keys here too; Prefect's
    /// count route has no such fields and FastAPI drops them, so they are accepted and not
    /// used (they ask for no criterion).
    None,
}

/// A checked body: the matching runs, sorted and paged, with their total count.
pub(crate) struct Answer {
    pub runs: Vec<TaskRun>,
    pub count: u64,
    pub limit: usize,
    pub page: usize,
}

impl TaskRunsBody {
    /// Answers the body for a route with `paging` from `store`.
    ///
    /// # Errors
    /// A 422 naming the key: an unknown top-level key that is not `null`, a related filter
    /// that sets a criterion, a bad `limit`/`offset`/`page`; the store's errors.
    pub(crate) async fn answer(
        self,
        store: &dyn Store,
        paging: Paging,
    ) -> Result<Answer, ApiError> {
        super::filters::no_other_keys(&self.other)?;
        let refuse = |present: bool, key: &str| {
            if present {
                Err(ApiError::Invalid(format!(
                    "{key}: this route does not take this key (Prefect's body for it has no such field)"
                )))
            } else {
                Ok(())
            }
        };
        let (skip, limit_n, page_n) = match paging {
            Paging::Offset => {
                refuse(self.page.is_some(), "page")?;
                (offset(&self.offset)?, limit(&self.limit)?, 1)
            }
            Paging::Page => {
                refuse(self.offset.is_some(), "offset")?;
                let (n, l) = (page(&self.page)?, limit(&self.limit)?);
                ((n - 1).saturating_mul(l), l, n)
            }
            Paging::None => (0, 0, 1),
        };
        let runs = matching(
            store,
            [&self.flows, &self.flow_runs, &self.deployments],
            self.task_runs.unwrap_or_default(),
        )
        .await?;
        let count = runs.len() as u64;
        if paging == Paging::None {
            return Ok(Answer {
                runs: Vec::new(),
                count,
                limit: limit_n,
                page: 1,
            });
        }
        let sort = self.sort.unwrap_or_default();
        let mut runs = runs;
        runs.sort_by(|a, b| sort.compare(a, b));
        let runs = runs.into_iter().skip(skip).take(limit_n).collect();
        Ok(Answer {
            runs,
            count,
            limit: limit_n,
            page: page_n,
        })
    }
}

/// The task runs `filter` matches, and, when related filters (`flows`, `flow_runs`,
/// `deployments`) are given, whose flow run passes them (Prefect joins a task run to its
/// flow run; a task run without one then does not match).
async fn matching(
    store: &dyn Store,
    [flows, flow_runs, deployments]: [&Option<Value>; 3],
    filter: TaskRunFilter,
) -> Result<Vec<TaskRun>, ApiError> {
    fn parse<T: serde::de::DeserializeOwned>(
        key: &str,
        v: &Option<Value>,
    ) -> Result<Option<T>, ApiError> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(v) => serde_path_to_error::deserialize(v.clone())
                .map(Some)
                .map_err(|e| ApiError::Invalid(format!("{key}.{}: {}", e.path(), e.inner()))),
        }
    }
    let related = pushpool_service::queries::Related {
        flows: parse("flows", flows)?,
        flow_runs: parse("flow_runs", flow_runs)?,
        deployments: parse("deployments", deployments)?,
        work_pools: None,
        work_pool_queues: None,
    };
    let flow_run_ids: Option<std::collections::HashSet<Uuid>> = if related.flows.is_some()
        || related.flow_runs.is_some()
        || related.deployments.is_some()
    {
        Some(
            pushpool_service::queries::read_flow_runs(
                store,
                &related,
                pushpool_core::filter::FlowRunSort::default(),
                Page::default(),
            )
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect(),
        )
    } else {
        None
    };
    let mut runs = store.list_task_runs(&filter.store_filter()).await?;
    let with_subflows: Vec<Uuid> = if filter.needs_subflows() {
        let ids: Vec<Uuid> = runs.iter().map(|r| r.id).collect();
        store
            .list_subflow_runs(&ids, Page::default())
            .await?
            .into_iter()
            .filter_map(|f| f.parent_task_run_id)
            .collect()
    } else {
        Vec::new()
    };
    runs.retain(|r| filter.matches(r, &|id| with_subflows.contains(&id)));
    if let Some(ids) = &flow_run_ids {
        runs.retain(|r| r.flow_run_id.is_some_and(|id| ids.contains(&id)));
    }
    Ok(runs)
}

/// Prefect's most intervals in a history (`run_history`).
const MAX_INTERVALS: i64 = 500;

/// The body of `POST /task_runs/history` (Prefect's `Body_task_run_history_task_runs_history_post`).
#[derive(Debug, Deserialize)]
pub(crate) struct HistoryBody {
    history_start: DateTime<Utc>,
    history_end: DateTime<Utc>,
    history_interval_seconds: f64,
    #[serde(default)]
    flows: Option<Value>,
    #[serde(default)]
    flow_runs: Option<Value>,
    #[serde(default)]
    task_runs: Option<TaskRunFilter>,
    #[serde(default)]
    deployments: Option<Value>,
    #[serde(flatten)]
    other: serde_json::Map<String, Value>,
}

impl HistoryBody {
    /// Prefect's `run_history` for task runs: `ceil((end - start) / interval)` intervals (at
    /// most 500, none when `end <= start`) from `history_start`, each
    /// `{interval_start, interval_end, states}`, where `states` groups the matching runs whose
    /// `expected_start_time` falls in the interval by state type and name (ordered by type,
    /// then name; Prefect leaves the order to the database) with `count_runs`,
    /// `sum_estimated_run_time` and `sum_estimated_lateness` (seconds, negatives counted as 0).
    ///
    /// # Errors
    /// 422 "History interval must not be less than 1 second."; the filter's 422s.
    pub(crate) async fn answer(self, store: &dyn Store) -> Result<Value, ApiError> {
        super::filters::no_other_keys(&self.other)?;
        let secs = self.history_interval_seconds;
        if secs.is_nan() || secs < 1.0 || !secs.is_finite() {
            return Err(ApiError::Invalid(
                "History interval must not be less than 1 second.".into(),
            ));
        }
        // Saturating: an interval past i64::MAX microseconds is one interval.
        let interval_us = (secs * 1e6).round() as i64;
        let elapsed_us = (self.history_end - self.history_start)
            .num_microseconds()
            .unwrap_or(i64::MAX);
        let count = if elapsed_us > 0 {
            let n =
                (i128::from(elapsed_us) + i128::from(interval_us) - 1) / i128::from(interval_us);
            n.min(i128::from(MAX_INTERVALS)) as i64
        } else {
            0
        };
        if count == 0 {
            return Ok(Value::Array(Vec::new()));
        }
        let runs = matching(
            store,
            [&self.flows, &self.flow_runs, &self.deployments],
            self.task_runs.unwrap_or_default(),
        )
        .await?;
        type Key = (usize, String, String);
        let mut groups: std::collections::BTreeMap<Key, (u64, f64, f64, StateType)> =
            std::collections::BTreeMap::new();
        for run in &runs {
            let (Some(t), Some(state_type)) = (run.expected_start_time, run.state_type) else {
                continue;
            };
            let offset = (t - self.history_start).num_microseconds().unwrap_or(-1);
            if offset < 0 || i128::from(offset) >= i128::from(count) * i128::from(interval_us) {
                continue;
            }
            let bucket = (offset / interval_us) as usize;
            let name = run.state_name.clone().unwrap_or_default();
            let entry = groups
                .entry((bucket, state_type.as_str().to_owned(), name))
                .or_insert((0, 0.0, 0.0, state_type));
            entry.0 += 1;
            entry.1 += run.estimated_run_time.max(0.0);
            entry.2 += run.estimated_start_time_delta.max(0.0);
        }
        let start = self.history_start;
        let bound = |i: i64| {
            start
                .checked_add_signed(chrono::Duration::microseconds(
                    interval_us.saturating_mul(i),
                ))
                .unwrap_or(DateTime::<Utc>::MAX_UTC)
        };
        let mut out: Vec<Value> = (0..count)
            .map(|i| {
                serde_json::json!({
                    "interval_start": bound(i),
                    "interval_end": bound(i + 1),
                    "states": [],
                })
            })
            .collect();
        for ((bucket, _, name), (n, run_time, lateness, state_type)) in groups {
            if let Some(states) = out[bucket]["states"].as_array_mut() {
                states.push(serde_json::json!({
                    "state_type": state_type, "state_name": name, "count_runs": n,
                    "sum_estimated_run_time": run_time, "sum_estimated_lateness": lateness,
                }));
            }
        }
        Ok(Value::Array(out))
    }
}
