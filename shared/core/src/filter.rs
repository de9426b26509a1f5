//! Prefect's filter and sort bodies, typed, with their exact meaning as predicates.
//!
//! `POST /flow_runs/filter`, `/flows/filter`, `/deployments/filter`, `/work_pools/filter`,
//! `/block_documents/filter` and their `count` / `paginate` siblings take Prefect 3.9.1's
//! filter models (`prefect/server/schemas/filters.py`). Each model here mirrors one of them
//! field for field and is deserialised with `deny_unknown_fields`, as Prefect's models forbid
//! extra keys: a criterion pushpool does not know is a 422 that names it, never ignored.
//! Criteria whose data pushpool does not hold yet are refused by [`FlowRunFilter::unsupported`]
//! and friends, again naming them.
//!
//! The predicates ([`FlowRunFilter::matches`], ...) follow Prefect's SQL exactly:
//! - a model's criteria combine with its `operator` (`and_`, the default, or `or_`); a model
//!   with no criterion set is `TRUE`, and a sub-model that is present but empty counts as a
//!   `TRUE` criterion of its parent (so `{"operator": "or_", "id": {}}` matches everything,
//!   as on Prefect's server), except inside `state`, which skips empty parts;
//! - `any_: []` matches nothing (SQL `IN ()`), while an empty `not_any_` or `all_` is no
//!   criterion (Prefect tests them for truthiness);
//! - a `NULL` column never matches `any_` nor `not_any_` (SQL three-valued logic);
//! - `like_` is Prefect's `ILIKE '%<like_>%'`: `%` and `_` in the value are wildcards, and
//!   case is folded for ASCII letters only (SQLite's `lower()`, Prefect's default database);
//! - `before_` / `after_` are inclusive; `start_time` compares `coalesce(start_time,
//!   expected_start_time)`, as Prefect does, while its `is_null_` looks at `start_time` alone.
//!
//! The one deliberate difference: Prefect ignores `deployments.concurrency_limit` (deprecated
//! there, its `_get_filter_list` returns nothing); pushpool stores the limit as a number and
//! honours `ge_`, `le_` and `is_null_` on it, since accepting a criterion and ignoring it
//! would return a wrong answer.
//!
//! Sorts ([`FlowRunSort`], [`FlowSort`], [`DeploymentSort`], [`BlockDocumentSort`]) order as
//! Prefect's `as_sql_sort` on SQLite: `NULL`s first when ascending, last when descending,
//! strings by their bytes. Prefect leaves ties in no particular order; pushpool breaks them by
//! id, descending, so that pages never overlap.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::model::{
    Artifact, BlockDocument, BlockSchema, BlockType, Deployment, Flow, FlowRun, Variable, WorkPool,
};
use crate::state::StateType;

/// How a model's criteria combine (`Operator`): `and_` (the default) or `or_`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operator {
    /// Every criterion must hold.
    #[default]
    #[serde(rename = "and_")]
    And,
    /// One criterion must hold.
    #[serde(rename = "or_")]
    Or,
}

/// The criteria of one model, each `None` when it is not set.
#[derive(Debug, Default)]
struct Criteria(Vec<bool>);

impl Criteria {
    fn push(&mut self, value: Option<bool>) {
        if let Some(v) = value {
            self.0.push(v);
        }
    }

    /// `None` when no criterion is set (the model is SQL `TRUE`).
    fn combine(self, operator: Operator) -> Option<bool> {
        if self.0.is_empty() {
            return None;
        }
        Some(match operator {
            Operator::And => self.0.iter().all(|v| *v),
            Operator::Or => self.0.iter().any(|v| *v),
        })
    }
}

/// A present sub-model: its value, `TRUE` when it has no criterion.
fn sub(value: Option<Option<bool>>) -> Option<bool> {
    value.map(|v| v.unwrap_or(true))
}

fn is_in<T: PartialEq>(list: &Option<Vec<T>>, value: Option<&T>) -> Option<bool> {
    list.as_ref().map(|l| value.is_some_and(|v| l.contains(v)))
}

fn not_in<T: PartialEq>(list: &Option<Vec<T>>, value: Option<&T>) -> Option<bool> {
    list.as_ref()
        .filter(|l| !l.is_empty())
        .map(|l| value.is_some_and(|v| !l.contains(v)))
}

fn is_null<T>(flag: Option<bool>, value: Option<&T>) -> Option<bool> {
    flag.map(|null| value.is_none() == null)
}

/// `ILIKE '%<pattern>%'`, as Prefect writes `like_` criteria: `%` matches any run of
/// characters, `_` one character, and ASCII letters match either case.
pub fn ilike_contains(value: &str, pattern: &str) -> bool {
    let text: Vec<char> = value.chars().map(|c| c.to_ascii_lowercase()).collect();
    let mut full: Vec<char> = vec!['%'];
    full.extend(pattern.chars().map(|c| c.to_ascii_lowercase()));
    full.push('%');
    like(&text, &full)
}

/// SQL `LIKE` without an escape character, by dynamic programming over (pattern, text).
fn like(text: &[char], pattern: &[char]) -> bool {
    // matched[j]: the pattern so far matches text[..j].
    let mut matched = vec![false; text.len() + 1];
    matched[0] = true;
    for p in pattern {
        let mut next = vec![false; text.len() + 1];
        match p {
            '%' => {
                let mut any = false;
                for j in 0..=text.len() {
                    any |= matched[j];
                    next[j] = any;
                }
            }
            _ => {
                for j in 0..text.len() {
                    if matched[j] && (*p == '_' || *p == text[j]) {
                        next[j + 1] = true;
                    }
                }
            }
        }
        matched = next;
    }
    matched[text.len()]
}

/// A truthy `like_` (Prefect skips `None` and `""`).
fn like_criterion(like: &Option<String>, value: Option<&str>) -> Option<bool> {
    like.as_deref()
        .filter(|l| !l.is_empty())
        .map(|l| value.is_some_and(|v| ilike_contains(v, l)))
}

/// `{any_, not_any_}` (`FlowRunFilterId`, `FlowFilterId`, `DeploymentFilterId`,
/// `FlowRunFilterIdempotencyKey`, `FlowRunFilterStateType`, `FlowRunFilterStateName`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "T: Deserialize<'de>"))]
pub struct AnyNotAny<T> {
    /// Values to include.
    #[serde(default)]
    pub any_: Option<Vec<T>>,
    /// Values to exclude.
    #[serde(default)]
    pub not_any_: Option<Vec<T>>,
}

impl<T: PartialEq> AnyNotAny<T> {
    fn eval(&self, value: Option<&T>) -> Option<bool> {
        let mut c = Criteria::default();
        c.push(is_in(&self.any_, value));
        c.push(not_in(&self.not_any_, value));
        c.combine(Operator::And)
    }
}

/// `{any_}` (`FlowRunFilterFlowVersion`, `WorkPoolFilterId`, `WorkPoolFilterName`,
/// `WorkPoolFilterType`, `DeploymentFilterWorkQueueName`, `BlockDocumentFilterId`, ...).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "T: Deserialize<'de>"))]
pub struct AnyOf<T> {
    /// Values to include.
    #[serde(default)]
    pub any_: Option<Vec<T>>,
}

impl<T: PartialEq> AnyOf<T> {
    fn eval(&self, value: Option<&T>) -> Option<bool> {
        is_in(&self.any_, value)
    }
}

/// `{any_, like_}` on a name (`FlowRunFilterName`, `FlowFilterName`, `DeploymentFilterName`,
/// `BlockDocumentFilterName`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameFilter {
    /// Exact names to include.
    #[serde(default)]
    pub any_: Option<Vec<String>>,
    /// A case-insensitive partial match (`ILIKE '%<like_>%'`).
    #[serde(default)]
    pub like_: Option<String>,
}

impl NameFilter {
    fn eval(&self, value: Option<&str>) -> Option<bool> {
        let mut c = Criteria::default();
        c.push(
            self.any_
                .as_ref()
                .map(|l| value.is_some_and(|v| l.iter().any(|x| x == v))),
        );
        c.push(like_criterion(&self.like_, value));
        c.combine(Operator::And)
    }
}

/// `{operator, any_, is_null_}` (`FlowRunFilterDeploymentId`, `FlowRunFilterWorkQueueName`,
/// `FlowRunFilterParentTaskRunId`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "T: Deserialize<'de>"))]
pub struct AnyOrNull<T> {
    /// How the criteria combine.
    #[serde(default)]
    pub operator: Operator,
    /// Values to include.
    #[serde(default)]
    pub any_: Option<Vec<T>>,
    /// `true`: only rows without a value; `false`: only rows with one.
    #[serde(default)]
    pub is_null_: Option<bool>,
}

impl<T: PartialEq> AnyOrNull<T> {
    fn eval(&self, value: Option<&T>) -> Option<bool> {
        let mut c = Criteria::default();
        c.push(is_in(&self.any_, value));
        c.push(is_null(self.is_null_, value));
        c.combine(self.operator)
    }
}

/// `{operator, any_}` (`FlowRunFilterParentFlowRunId`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "T: Deserialize<'de>"))]
pub struct OperatorAnyOf<T> {
    /// How the criteria combine.
    #[serde(default)]
    pub operator: Operator,
    /// Values to include.
    #[serde(default)]
    pub any_: Option<Vec<T>>,
}

/// `{operator, all_, any_, is_null_}` on tags (`FlowRunFilterTags`, `DeploymentFilterTags`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagsFilter {
    /// How the criteria combine.
    #[serde(default)]
    pub operator: Operator,
    /// The tags must be a superset of these (an empty list is no criterion).
    #[serde(default)]
    pub all_: Option<Vec<String>>,
    /// The tags must share one of these (an empty list matches nothing).
    #[serde(default)]
    pub any_: Option<Vec<String>>,
    /// `true`: only rows without tags; `false`: only rows with tags.
    #[serde(default)]
    pub is_null_: Option<bool>,
}

fn all_tags(all: &Option<Vec<String>>, tags: &[String]) -> Option<bool> {
    all.as_ref()
        .filter(|l| !l.is_empty())
        .map(|l| l.iter().all(|t| tags.contains(t)))
}

fn tags_null(flag: Option<bool>, tags: &[String]) -> Option<bool> {
    flag.map(|null| tags.is_empty() == null)
}

impl TagsFilter {
    fn eval(&self, tags: &[String]) -> Option<bool> {
        let mut c = Criteria::default();
        c.push(all_tags(&self.all_, tags));
        c.push(
            self.any_
                .as_ref()
                .map(|l| l.iter().any(|t| tags.contains(t))),
        );
        c.push(tags_null(self.is_null_, tags));
        c.combine(self.operator)
    }
}

/// `{operator, all_, is_null_}` on tags (`FlowFilterTags`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllTagsFilter {
    /// How the criteria combine.
    #[serde(default)]
    pub operator: Operator,
    /// The tags must be a superset of these (an empty list is no criterion).
    #[serde(default)]
    pub all_: Option<Vec<String>>,
    /// `true`: only rows without tags; `false`: only rows with tags.
    #[serde(default)]
    pub is_null_: Option<bool>,
}

impl AllTagsFilter {
    fn eval(&self, tags: &[String]) -> Option<bool> {
        let mut c = Criteria::default();
        c.push(all_tags(&self.all_, tags));
        c.push(tags_null(self.is_null_, tags));
        c.combine(self.operator)
    }
}

/// `{before_, after_}` on a time, both inclusive (`FlowRunFilterExpectedStartTime`,
/// `FlowRunFilterNextScheduledStartTime`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeRange {
    /// At or before this time.
    #[serde(default)]
    pub before_: Option<DateTime<Utc>>,
    /// At or after this time.
    #[serde(default)]
    pub after_: Option<DateTime<Utc>>,
}

impl TimeRange {
    fn criteria(&self, value: Option<DateTime<Utc>>) -> Criteria {
        let mut c = Criteria::default();
        c.push(self.before_.map(|b| value.is_some_and(|v| v <= b)));
        c.push(self.after_.map(|a| value.is_some_and(|v| v >= a)));
        c
    }

    fn eval(&self, value: Option<DateTime<Utc>>) -> Option<bool> {
        self.criteria(value).combine(Operator::And)
    }
}

/// `{before_, after_, is_null_}` on a time (`FlowRunFilterStartTime`, `FlowRunFilterEndTime`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeRangeOrNull {
    /// At or before this time.
    #[serde(default)]
    pub before_: Option<DateTime<Utc>>,
    /// At or after this time.
    #[serde(default)]
    pub after_: Option<DateTime<Utc>>,
    /// `true`: only rows without the time; `false`: only rows with it.
    #[serde(default)]
    pub is_null_: Option<bool>,
}

impl TimeRangeOrNull {
    /// `compared` is what `before_`/`after_` test, `own` what `is_null_` tests.
    fn eval(&self, compared: Option<DateTime<Utc>>, own: Option<DateTime<Utc>>) -> Option<bool> {
        let mut c = TimeRange {
            before_: self.before_,
            after_: self.after_,
        }
        .criteria(compared);
        c.push(is_null(self.is_null_, own.as_ref()));
        c.combine(Operator::And)
    }
}

/// `{eq_}` on a boolean (`DeploymentFilterPaused`, `BlockDocumentFilterIsAnonymous`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoolEq {
    /// The value to match.
    #[serde(default)]
    pub eq_: Option<bool>,
}

/// `FlowRunFilterState`: `{operator, type, name}`; empty parts are skipped.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowRunFilterState {
    /// How the parts combine.
    #[serde(default)]
    pub operator: Operator,
    /// State type criteria.
    #[serde(default)]
    pub r#type: Option<AnyNotAny<StateType>>,
    /// State name criteria.
    #[serde(default)]
    pub name: Option<AnyNotAny<String>>,
}

/// `FlowRunFilterCreatedBy`: `{operator, id_, type_, is_null_}` on `created_by`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatedByFilter {
    /// How the criteria combine.
    #[serde(default)]
    pub operator: Operator,
    /// Creator ids to include.
    #[serde(default)]
    pub id_: Option<Vec<Uuid>>,
    /// Creator types to include (`DEPLOYMENT`, `AUTOMATION`).
    #[serde(default)]
    pub type_: Option<Vec<String>>,
    /// `true`: only runs without a creator.
    #[serde(default)]
    pub is_null_: Option<bool>,
}

impl CreatedByFilter {
    fn eval(&self, created_by: Option<&Value>) -> Option<bool> {
        let created_by = created_by.filter(|v| !v.is_null());
        let field = |name: &str| {
            created_by
                .and_then(|c| c.get(name))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let mut c = Criteria::default();
        c.push(
            self.id_
                .as_ref()
                .map(|ids| field("id").is_some_and(|v| ids.iter().any(|id| id.to_string() == v))),
        );
        c.push(
            self.type_
                .as_ref()
                .map(|types| field("type").is_some_and(|v| types.contains(&v))),
        );
        c.push(is_null(self.is_null_, created_by));
        c.combine(self.operator)
    }
}

/// Prefect's `FlowRunFilter`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowRunFilter {
    /// How the criteria combine.
    #[serde(default)]
    pub operator: Operator,
    /// `FlowRun.id`.
    #[serde(default)]
    pub id: Option<AnyNotAny<Uuid>>,
    /// `FlowRun.name`.
    #[serde(default)]
    pub name: Option<NameFilter>,
    /// `FlowRun.tags`.
    #[serde(default)]
    pub tags: Option<TagsFilter>,
    /// `FlowRun.deployment_id`.
    #[serde(default)]
    pub deployment_id: Option<AnyOrNull<Uuid>>,
    /// `FlowRun.work_queue_name`.
    #[serde(default)]
    pub work_queue_name: Option<AnyOrNull<String>>,
    /// `FlowRun.state_type` and `state_name`.
    #[serde(default)]
    pub state: Option<FlowRunFilterState>,
    /// `FlowRun.flow_version`.
    #[serde(default)]
    pub flow_version: Option<AnyOf<String>>,
    /// `coalesce(start_time, expected_start_time)`; `is_null_` on `start_time`.
    #[serde(default)]
    pub start_time: Option<TimeRangeOrNull>,
    /// `FlowRun.end_time`.
    #[serde(default)]
    pub end_time: Option<TimeRangeOrNull>,
    /// `FlowRun.expected_start_time`.
    #[serde(default)]
    pub expected_start_time: Option<TimeRange>,
    /// `FlowRun.next_scheduled_start_time`.
    #[serde(default)]
    pub next_scheduled_start_time: Option<TimeRange>,
    /// Subflows of the given flow runs (through their parent task run).
    #[serde(default)]
    pub parent_flow_run_id: Option<OperatorAnyOf<Uuid>>,
    /// `FlowRun.parent_task_run_id`.
    #[serde(default)]
    pub parent_task_run_id: Option<AnyOrNull<Uuid>>,
    /// `FlowRun.idempotency_key`.
    #[serde(default)]
    pub idempotency_key: Option<AnyNotAny<String>>,
    /// `FlowRun.created_by`.
    #[serde(default)]
    pub created_by: Option<CreatedByFilter>,
    /// Not part of Prefect's body: the ids of the task runs of the flow runs named by
    /// `parent_flow_run_id.any_`, which the caller reads from the store before the filter is
    /// evaluated (Prefect joins `task_run` in SQL).
    #[serde(skip)]
    pub parent_task_runs: Option<Vec<Uuid>>,
}

impl FlowRunFilter {
    /// The first criterion that cannot be answered as it stands, as its path under
    /// `flow_runs`: `"parent_flow_run_id"` until [`FlowRunFilter::parent_task_runs`] holds
    /// the task runs of those parents (the caller reads them from the store), or `None`.
    pub fn unsupported(&self) -> Option<&'static str> {
        let unresolved = self
            .parent_flow_run_id
            .as_ref()
            .is_some_and(|p| p.any_.is_some() && self.parent_task_runs.is_none());
        unresolved.then_some("parent_flow_run_id")
    }

    /// Whether `run` passes the filter. [`FlowRunFilter::unsupported`] criteria count as
    /// `TRUE`: refuse them before calling this.
    pub fn matches(&self, run: &FlowRun) -> bool {
        let mut c = Criteria::default();
        c.push(sub(self.id.as_ref().map(|f| f.eval(Some(&run.id)))));
        c.push(sub(self.name.as_ref().map(|f| f.eval(Some(&run.name)))));
        c.push(sub(self.tags.as_ref().map(|f| f.eval(&run.tags))));
        c.push(sub(self
            .deployment_id
            .as_ref()
            .map(|f| f.eval(run.deployment_id.as_ref()))));
        c.push(sub(self
            .work_queue_name
            .as_ref()
            .map(|f| f.eval(run.work_queue_name.as_ref()))));
        c.push(sub(self.state.as_ref().map(|s| {
            let mut parts = Criteria::default();
            if let Some(t) = &s.r#type {
                parts.push(t.eval(run.state_type.as_ref()));
            }
            if let Some(n) = &s.name {
                parts.push(n.eval(run.state_name.as_ref()));
            }
            parts.combine(s.operator)
        })));
        c.push(sub(self
            .flow_version
            .as_ref()
            .map(|f| f.eval(run.flow_version.as_ref()))));
        c.push(sub(self.start_time.as_ref().map(|f| {
            f.eval(run.start_time.or(run.expected_start_time), run.start_time)
        })));
        c.push(sub(self
            .end_time
            .as_ref()
            .map(|f| f.eval(run.end_time, run.end_time))));
        c.push(sub(self
            .expected_start_time
            .as_ref()
            .map(|f| f.eval(run.expected_start_time))));
        c.push(sub(self
            .next_scheduled_start_time
            .as_ref()
            .map(|f| f.eval(run.next_scheduled_start_time))));
        c.push(sub(self.parent_flow_run_id.as_ref().map(|p| {
            // Prefect: the run's parent task run belongs to one of these flow runs.
            p.any_.as_ref().map(|_| {
                let resolved = self.parent_task_runs.as_deref().unwrap_or_default();
                run.parent_task_run_id
                    .is_some_and(|t| resolved.contains(&t))
            })
        })));
        c.push(sub(self
            .parent_task_run_id
            .as_ref()
            .map(|f| f.eval(run.parent_task_run_id.as_ref()))));
        c.push(sub(self
            .idempotency_key
            .as_ref()
            .map(|f| f.eval(run.idempotency_key.as_ref()))));
        c.push(sub(self
            .created_by
            .as_ref()
            .map(|f| f.eval(run.created_by.as_ref()))));
        c.combine(self.operator).unwrap_or(true)
    }

    /// A filter on state types only (`state.type.any_`), for the reconciler's scans.
    pub fn state_types(types: &[StateType]) -> Self {
        Self {
            state: Some(FlowRunFilterState {
                r#type: Some(AnyNotAny {
                    any_: Some(types.to_vec()),
                    not_any_: None,
                }),
                ..FlowRunFilterState::default()
            }),
            ..Self::default()
        }
    }

    /// A filter on run ids only (`id.any_`).
    pub fn ids(ids: &[Uuid]) -> Self {
        Self {
            id: Some(AnyNotAny {
                any_: Some(ids.to_vec()),
                not_any_: None,
            }),
            ..Self::default()
        }
    }
}

/// `FlowFilterDeployment`: `{operator, is_null_}`, flows with (or without) deployments.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowDeploymentFilter {
    /// How the criteria combine.
    #[serde(default)]
    pub operator: Operator,
    /// `true`: only flows without deployments; `false`: only flows with one.
    #[serde(default)]
    pub is_null_: Option<bool>,
}

/// Prefect's `FlowFilter`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowFilter {
    /// How the criteria combine.
    #[serde(default)]
    pub operator: Operator,
    /// `Flow.id`.
    #[serde(default)]
    pub id: Option<AnyNotAny<Uuid>>,
    /// Whether the flow has deployments.
    #[serde(default)]
    pub deployment: Option<FlowDeploymentFilter>,
    /// `Flow.name`.
    #[serde(default)]
    pub name: Option<NameFilter>,
    /// `Flow.tags`.
    #[serde(default)]
    pub tags: Option<AllTagsFilter>,
}

impl FlowFilter {
    /// Whether `flow` passes; `has_deployment` tells whether some deployment belongs to it.
    pub fn matches(&self, flow: &Flow, has_deployment: bool) -> bool {
        let mut c = Criteria::default();
        c.push(sub(self.id.as_ref().map(|f| f.eval(Some(&flow.id)))));
        c.push(sub(self.deployment.as_ref().map(|d| {
            let mut parts = Criteria::default();
            parts.push(d.is_null_.map(|null| has_deployment != null));
            parts.combine(d.operator)
        })));
        c.push(sub(self.name.as_ref().map(|f| f.eval(Some(&flow.name)))));
        c.push(sub(self.tags.as_ref().map(|f| f.eval(&flow.tags))));
        c.combine(self.operator).unwrap_or(true)
    }

    /// Whether the filter needs to know which flows have deployments.
    pub fn needs_deployments(&self) -> bool {
        self.deployment.is_some()
    }
}

/// Prefect's `VariableFilter`: `id` (`any_`), `name` (`any_`, `like_`), `tags` (`all_`,
/// `is_null_`), combined by `operator`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariableFilter {
    /// How the criteria combine.
    #[serde(default)]
    pub operator: Operator,
    /// `Variable.id`.
    #[serde(default)]
    pub id: Option<AnyOf<Uuid>>,
    /// `Variable.name`.
    #[serde(default)]
    pub name: Option<NameFilter>,
    /// `Variable.tags`.
    #[serde(default)]
    pub tags: Option<AllTagsFilter>,
}

impl VariableFilter {
    /// Whether `variable` passes.
    pub fn matches(&self, variable: &Variable) -> bool {
        let mut c = Criteria::default();
        c.push(sub(self.id.as_ref().map(|f| f.eval(Some(&variable.id)))));
        c.push(sub(self
            .name
            .as_ref()
            .map(|f| f.eval(Some(&variable.name)))));
        c.push(sub(self.tags.as_ref().map(|f| f.eval(&variable.tags))));
        c.combine(self.operator).unwrap_or(true)
    }
}

/// Prefect's `VariableSort`; the default is `NAME_ASC`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VariableSort {
    /// Created, newest first.
    CreatedDesc,
    /// Updated, newest first.
    UpdatedDesc,
    /// Name, descending.
    NameDesc,
    /// Name, ascending.
    #[default]
    NameAsc,
}

impl VariableSort {
    /// Every value, in Prefect's order.
    pub const ALL: [VariableSort; 4] = [
        Self::CreatedDesc,
        Self::UpdatedDesc,
        Self::NameDesc,
        Self::NameAsc,
    ];

    /// Orders two variables, ties broken by id descending (names are unique).
    pub fn compare(self, a: &Variable, b: &Variable) -> Ordering {
        let order = match self {
            Self::CreatedDesc => NamedOrder::CreatedDesc,
            Self::UpdatedDesc => NamedOrder::UpdatedDesc,
            Self::NameDesc => NamedOrder::NameDesc,
            Self::NameAsc => NamedOrder::NameAsc,
        };
        order.compare(
            Named::new(a.id, a.created, a.updated, &a.name),
            Named::new(b.id, b.created, b.updated, &b.name),
        )
    }
}

/// `ArtifactFilterKey`: `{any_, like_, exists_}` on an optional key.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactKeyFilter {
    /// Exact keys to include (a NULL key never matches).
    #[serde(default)]
    pub any_: Option<Vec<String>>,
    /// A case-insensitive partial match (`ILIKE '%<like_>%'`).
    #[serde(default)]
    pub like_: Option<String>,
    /// `true`: only artifacts with a key; `false`: only those without.
    #[serde(default)]
    pub exists_: Option<bool>,
}

impl ArtifactKeyFilter {
    fn eval(&self, key: Option<&String>) -> Option<bool> {
        let mut c = Criteria::default();
        c.push(
            self.any_
                .as_ref()
                .map(|l| key.is_some_and(|k| l.contains(k))),
        );
        c.push(like_criterion(&self.like_, key.map(String::as_str)));
        c.push(self.exists_.map(|e| key.is_some() == e));
        c.combine(Operator::And)
    }
}

/// Prefect's `ArtifactFilter` (`id` as `ArtifactFilterId`) and `ArtifactCollectionFilter`
/// (the same criteria with `latest_id` in its place): `key`, `flow_run_id`, `task_run_id`,
/// `type`, combined by `operator`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactFilter {
    /// How the criteria combine.
    #[serde(default)]
    pub operator: Operator,
    /// `Artifact.id` (on `/artifacts/filter`).
    #[serde(default)]
    pub id: Option<AnyOf<Uuid>>,
    /// `ArtifactCollection.latest_id` (on `/artifacts/latest/filter`).
    #[serde(default)]
    pub latest_id: Option<AnyOf<Uuid>>,
    /// `key`.
    #[serde(default)]
    pub key: Option<ArtifactKeyFilter>,
    /// `flow_run_id`.
    #[serde(default)]
    pub flow_run_id: Option<AnyOf<Uuid>>,
    /// `task_run_id`.
    #[serde(default)]
    pub task_run_id: Option<AnyOf<Uuid>>,
    /// `type`.
    #[serde(default)]
    pub r#type: Option<AnyNotAny<String>>,
}

impl ArtifactFilter {
    /// Whether `artifact` passes; `id` is the artifact's id on `/artifacts/filter` and the
    /// collection's latest id on `/artifacts/latest/filter` (the same value).
    pub fn matches(&self, artifact: &Artifact) -> bool {
        let mut c = Criteria::default();
        c.push(sub(self.id.as_ref().map(|f| f.eval(Some(&artifact.id)))));
        c.push(sub(self
            .latest_id
            .as_ref()
            .map(|f| f.eval(Some(&artifact.id)))));
        c.push(sub(self
            .key
            .as_ref()
            .map(|f| f.eval(artifact.key.as_ref()))));
        c.push(sub(self
            .flow_run_id
            .as_ref()
            .map(|f| f.eval(artifact.flow_run_id.as_ref()))));
        c.push(sub(self
            .task_run_id
            .as_ref()
            .map(|f| f.eval(artifact.task_run_id.as_ref()))));
        c.push(sub(self
            .r#type
            .as_ref()
            .map(|f| f.eval(artifact.r#type.as_ref()))));
        c.combine(self.operator).unwrap_or(true)
    }
}

/// Prefect's `ArtifactSort` and `ArtifactCollectionSort`; the default is `ID_DESC`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ArtifactSort {
    /// Created, newest first.
    CreatedDesc,
    /// Updated, newest first.
    UpdatedDesc,
    /// Id, descending.
    #[default]
    IdDesc,
    /// Key, descending (artifacts without a key last, as on Prefect's SQLite).
    KeyDesc,
    /// Key, ascending (artifacts without a key first).
    KeyAsc,
}

impl ArtifactSort {
    /// Every value, in Prefect's order.
    pub const ALL: [ArtifactSort; 5] = [
        Self::CreatedDesc,
        Self::UpdatedDesc,
        Self::IdDesc,
        Self::KeyDesc,
        Self::KeyAsc,
    ];

    /// Orders two artifacts (or collections, by their own times), ties broken by id
    /// descending.
    pub fn compare(self, a: &Artifact, b: &Artifact) -> Ordering {
        let primary = match self {
            Self::CreatedDesc => b.created.cmp(&a.created),
            Self::UpdatedDesc => b.updated.cmp(&a.updated),
            Self::IdDesc => Ordering::Equal,
            Self::KeyDesc => b.key.cmp(&a.key),
            Self::KeyAsc => a.key.cmp(&b.key),
        };
        primary.then_with(|| b.id.cmp(&a.id))
    }
}

/// `DeploymentOrFlowNameFilter`: `{like_}` on the deployment's or its flow's name.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowOrDeploymentName {
    /// A case-insensitive partial match on either name.
    #[serde(default)]
    pub like_: Option<String>,
}

/// `DeploymentFilterConcurrencyLimit`: `{ge_, le_, is_null_}` (honoured here; see the
/// module docs).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConcurrencyLimitFilter {
    /// Limit at least this.
    #[serde(default)]
    pub ge_: Option<i64>,
    /// Limit at most this.
    #[serde(default)]
    pub le_: Option<i64>,
    /// `true`: only deployments without a limit.
    #[serde(default)]
    pub is_null_: Option<bool>,
}

/// Prefect's `DeploymentFilter`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentFilter {
    /// How the criteria combine.
    #[serde(default)]
    pub operator: Operator,
    /// `Deployment.id`.
    #[serde(default)]
    pub id: Option<AnyNotAny<Uuid>>,
    /// `Deployment.name`.
    #[serde(default)]
    pub name: Option<NameFilter>,
    /// The deployment's or its flow's name.
    #[serde(default)]
    pub flow_or_deployment_name: Option<FlowOrDeploymentName>,
    /// `Deployment.paused`.
    #[serde(default)]
    pub paused: Option<BoolEq>,
    /// `Deployment.tags`.
    #[serde(default)]
    pub tags: Option<TagsFilter>,
    /// `Deployment.work_queue_name`.
    #[serde(default)]
    pub work_queue_name: Option<AnyOf<String>>,
    /// `Deployment.concurrency_limit`.
    #[serde(default)]
    pub concurrency_limit: Option<ConcurrencyLimitFilter>,
}

impl DeploymentFilter {
    /// Whether `deployment` passes; `flow_name` is the name of its flow, when known.
    pub fn matches(&self, deployment: &Deployment, flow_name: Option<&str>) -> bool {
        let mut c = Criteria::default();
        c.push(sub(self.id.as_ref().map(|f| f.eval(Some(&deployment.id)))));
        c.push(sub(self
            .name
            .as_ref()
            .map(|f| f.eval(Some(&deployment.name)))));
        c.push(sub(self.flow_or_deployment_name.as_ref().map(|f| {
            f.like_.as_deref().filter(|l| !l.is_empty()).map(|l| {
                ilike_contains(&deployment.name, l)
                    || flow_name.is_some_and(|n| ilike_contains(n, l))
            })
        })));
        c.push(sub(self
            .paused
            .as_ref()
            .map(|f| f.eq_.map(|v| deployment.paused == v))));
        c.push(sub(self.tags.as_ref().map(|f| f.eval(&deployment.tags))));
        c.push(sub(self
            .work_queue_name
            .as_ref()
            .map(|f| f.eval(deployment.work_queue_name.as_ref()))));
        c.push(sub(self.concurrency_limit.as_ref().map(|f| {
            let limit = deployment.concurrency_limit;
            let mut parts = Criteria::default();
            parts.push(f.ge_.map(|g| limit.is_some_and(|l| l >= g)));
            parts.push(f.le_.map(|g| limit.is_some_and(|l| l <= g)));
            parts.push(is_null(f.is_null_, limit.as_ref()));
            parts.combine(Operator::And)
        })));
        c.combine(self.operator).unwrap_or(true)
    }

    /// Whether the filter needs the deployment's flow name.
    pub fn needs_flow_names(&self) -> bool {
        self.flow_or_deployment_name.is_some()
    }
}

/// Prefect's `WorkPoolFilter`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkPoolFilter {
    /// How the criteria combine.
    #[serde(default)]
    pub operator: Operator,
    /// `WorkPool.id`.
    #[serde(default)]
    pub id: Option<AnyOf<Uuid>>,
    /// `WorkPool.name`.
    #[serde(default)]
    pub name: Option<AnyOf<String>>,
    /// `WorkPool.type`.
    #[serde(default)]
    pub r#type: Option<AnyOf<String>>,
}

impl WorkPoolFilter {
    /// Whether `pool` passes.
    pub fn matches(&self, pool: &WorkPool) -> bool {
        let mut c = Criteria::default();
        c.push(sub(self.id.as_ref().map(|f| f.eval(Some(&pool.id)))));
        c.push(sub(self.name.as_ref().map(|f| f.eval(Some(&pool.name)))));
        c.push(sub(self
            .r#type
            .as_ref()
            .map(|f| f.eval(Some(&pool.r#type)))));
        c.combine(self.operator).unwrap_or(true)
    }
}

/// Prefect's `WorkQueueFilterName`: `any_` (exact names) and `startswith_` (a name starting
/// with any of them, case-insensitively; Prefect's `ILIKE 'x%'`, where pushpool takes `%`
/// and `_` in the prefix literally).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkQueueFilterName {
    /// Exact names to include.
    #[serde(default)]
    pub any_: Option<Vec<String>>,
    /// Case-insensitive prefixes.
    #[serde(default)]
    pub startswith_: Option<Vec<String>>,
}

/// Prefect's `WorkQueueFilter` (`operator`, `id.any_`, `name.any_`/`name.startswith_`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkQueueFilter {
    /// How the criteria combine.
    #[serde(default)]
    pub operator: Operator,
    /// `WorkQueue.id`.
    #[serde(default)]
    pub id: Option<AnyOf<Uuid>>,
    /// `WorkQueue.name`.
    #[serde(default)]
    pub name: Option<WorkQueueFilterName>,
}

impl WorkQueueFilter {
    /// Whether the queue `(id, name)` passes.
    pub fn matches(&self, id: Uuid, name: &str) -> bool {
        let mut c = Criteria::default();
        c.push(sub(self.id.as_ref().map(|f| f.eval(Some(&id)))));
        c.push(sub(self.name.as_ref().map(|f| {
            let mut n = Criteria::default();
            n.push(f.any_.as_ref().map(|l| l.iter().any(|x| x == name)));
            n.push(f.startswith_.as_ref().map(|l| {
                let lower = name.to_lowercase();
                l.iter().any(|p| lower.starts_with(&p.to_lowercase()))
            }));
            n.combine(Operator::And)
        })));
        c.combine(self.operator).unwrap_or(true)
    }
}

fn not_anonymous() -> Option<BoolEq> {
    Some(BoolEq { eq_: Some(false) })
}

/// Prefect's `BlockDocumentFilter`. `is_anonymous` defaults to `{"eq_": false}` when the key
/// is absent (anonymous documents are hidden unless asked for); an explicit `null` lifts it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockDocumentFilter {
    /// How the criteria combine.
    #[serde(default)]
    pub operator: Operator,
    /// `BlockDocument.id`.
    #[serde(default)]
    pub id: Option<AnyOf<Uuid>>,
    /// `BlockDocument.is_anonymous`.
    #[serde(default = "not_anonymous")]
    pub is_anonymous: Option<BoolEq>,
    /// `BlockDocument.block_type_id`.
    #[serde(default)]
    pub block_type_id: Option<AnyOf<Uuid>>,
    /// `BlockDocument.name`.
    #[serde(default)]
    pub name: Option<NameFilter>,
}

impl Default for BlockDocumentFilter {
    /// What Prefect applies when no `block_documents` filter is sent: named documents only.
    fn default() -> Self {
        Self {
            operator: Operator::And,
            id: None,
            is_anonymous: not_anonymous(),
            block_type_id: None,
            name: None,
        }
    }
}

impl BlockDocumentFilter {
    /// Whether `document` passes.
    pub fn matches(&self, document: &BlockDocument) -> bool {
        let mut c = Criteria::default();
        c.push(sub(self.id.as_ref().map(|f| f.eval(Some(&document.id)))));
        c.push(sub(self
            .is_anonymous
            .as_ref()
            .map(|f| f.eq_.map(|v| document.is_anonymous == v))));
        c.push(sub(self
            .block_type_id
            .as_ref()
            .map(|f| f.eval(Some(&document.block_type_id)))));
        c.push(sub(self
            .name
            .as_ref()
            .map(|f| f.eval(document.name.as_deref()))));
        c.combine(self.operator).unwrap_or(true)
    }
}

/// `BlockTypeFilterName`: `{like_}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LikeFilter {
    /// A case-insensitive partial match.
    #[serde(default)]
    pub like_: Option<String>,
}

/// Prefect's `BlockTypeFilter` (its criteria always combine with `and_`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockTypeFilter {
    /// `BlockType.name`.
    #[serde(default)]
    pub name: Option<LikeFilter>,
    /// `BlockType.slug`.
    #[serde(default)]
    pub slug: Option<AnyOf<String>>,
}

impl BlockTypeFilter {
    /// Whether `block_type` passes.
    pub fn matches(&self, block_type: &BlockType) -> bool {
        let mut c = Criteria::default();
        c.push(sub(self
            .name
            .as_ref()
            .map(|f| like_criterion(&f.like_, Some(&block_type.name)))));
        c.push(sub(self
            .slug
            .as_ref()
            .map(|f| f.eval(Some(&block_type.slug)))));
        c.combine(Operator::And).unwrap_or(true)
    }
}

/// `BlockSchemaFilterCapabilities`: `{all_}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapabilitiesFilter {
    /// The capabilities must be a superset of these (an empty list is no criterion).
    #[serde(default)]
    pub all_: Option<Vec<String>>,
}

/// Prefect's `BlockSchemaFilter`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockSchemaFilter {
    /// How the criteria combine.
    #[serde(default)]
    pub operator: Operator,
    /// `BlockSchema.block_type_id`.
    #[serde(default)]
    pub block_type_id: Option<AnyOf<Uuid>>,
    /// `BlockSchema.capabilities`.
    #[serde(default)]
    pub block_capabilities: Option<CapabilitiesFilter>,
    /// `BlockSchema.id`.
    #[serde(default)]
    pub id: Option<AnyOf<Uuid>>,
    /// `BlockSchema.version`.
    #[serde(default)]
    pub version: Option<AnyOf<String>>,
}

impl BlockSchemaFilter {
    /// Whether `schema` passes.
    pub fn matches(&self, schema: &BlockSchema) -> bool {
        let mut c = Criteria::default();
        c.push(sub(self
            .block_type_id
            .as_ref()
            .map(|f| f.eval(Some(&schema.block_type_id)))));
        c.push(sub(self
            .block_capabilities
            .as_ref()
            .map(|f| all_tags(&f.all_, &schema.capabilities))));
        c.push(sub(self.id.as_ref().map(|f| f.eval(Some(&schema.id)))));
        c.push(sub(self
            .version
            .as_ref()
            .map(|f| f.eval(Some(&schema.version)))));
        c.combine(self.operator).unwrap_or(true)
    }
}

/// Compares two optional keys as SQLite orders them: `NULL` first.
fn nulls_first<T: Ord>(a: &Option<T>, b: &Option<T>) -> Ordering {
    a.cmp(b) // `None < Some(_)`
}

/// Prefect's `FlowRunSort`; the default is `ID_DESC`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FlowRunSort {
    /// Id, descending.
    #[default]
    IdDesc,
    /// `coalesce(start_time, expected_start_time)`, ascending.
    StartTimeAsc,
    /// `coalesce(start_time, expected_start_time)`, descending.
    StartTimeDesc,
    /// Expected start time, ascending.
    ExpectedStartTimeAsc,
    /// Expected start time, descending.
    ExpectedStartTimeDesc,
    /// Name, ascending.
    NameAsc,
    /// Name, descending.
    NameDesc,
    /// Next scheduled start time, ascending.
    NextScheduledStartTimeAsc,
    /// End time, descending.
    EndTimeDesc,
}

impl FlowRunSort {
    /// Every value, in Prefect's order.
    pub const ALL: [FlowRunSort; 9] = [
        Self::IdDesc,
        Self::StartTimeAsc,
        Self::StartTimeDesc,
        Self::ExpectedStartTimeAsc,
        Self::ExpectedStartTimeDesc,
        Self::NameAsc,
        Self::NameDesc,
        Self::NextScheduledStartTimeAsc,
        Self::EndTimeDesc,
    ];

    /// Orders two runs, ties broken by id descending.
    pub fn compare(self, a: &FlowRun, b: &FlowRun) -> Ordering {
        let start = |r: &FlowRun| r.start_time.or(r.expected_start_time);
        let primary = match self {
            Self::IdDesc => Ordering::Equal,
            Self::StartTimeAsc => nulls_first(&start(a), &start(b)),
            Self::StartTimeDesc => nulls_first(&start(b), &start(a)),
            Self::ExpectedStartTimeAsc => {
                nulls_first(&a.expected_start_time, &b.expected_start_time)
            }
            Self::ExpectedStartTimeDesc => {
                nulls_first(&b.expected_start_time, &a.expected_start_time)
            }
            Self::NameAsc => a.name.cmp(&b.name),
            Self::NameDesc => b.name.cmp(&a.name),
            Self::NextScheduledStartTimeAsc => {
                nulls_first(&a.next_scheduled_start_time, &b.next_scheduled_start_time)
            }
            Self::EndTimeDesc => nulls_first(&b.end_time, &a.end_time),
        };
        primary.then_with(|| b.id.cmp(&a.id))
    }
}

/// Prefect's `FlowSort`; the default is `NAME_ASC`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FlowSort {
    /// Created, newest first.
    CreatedDesc,
    /// Updated, newest first.
    UpdatedDesc,
    /// Name, ascending.
    #[default]
    NameAsc,
    /// Name, descending.
    NameDesc,
}

impl FlowSort {
    /// Every value, in Prefect's order.
    pub const ALL: [FlowSort; 4] = [
        Self::CreatedDesc,
        Self::UpdatedDesc,
        Self::NameAsc,
        Self::NameDesc,
    ];

    /// Orders two flows, ties broken by id descending.
    pub fn compare(self, a: &Flow, b: &Flow) -> Ordering {
        let order = match self {
            Self::CreatedDesc => NamedOrder::CreatedDesc,
            Self::UpdatedDesc => NamedOrder::UpdatedDesc,
            Self::NameAsc => NamedOrder::NameAsc,
            Self::NameDesc => NamedOrder::NameDesc,
        };
        order.compare(
            Named::new(a.id, a.created, a.updated, &a.name),
            Named::new(b.id, b.created, b.updated, &b.name),
        )
    }
}

/// The four orders Prefect's sorts of named resources share (`FlowSort`, `DeploymentSort`,
/// `VariableSort`): created or updated newest first, name either way; ties by id descending.
#[derive(Debug, Clone, Copy)]
enum NamedOrder {
    CreatedDesc,
    UpdatedDesc,
    NameAsc,
    NameDesc,
}

/// What [`NamedOrder`] compares of a resource.
struct Named<'a> {
    id: Uuid,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
    name: &'a str,
}

impl<'a> Named<'a> {
    fn new(id: Uuid, created: DateTime<Utc>, updated: DateTime<Utc>, name: &'a str) -> Self {
        Self {
            id,
            created,
            updated,
            name,
        }
    }
}

impl NamedOrder {
    fn compare(self, a: Named<'_>, b: Named<'_>) -> Ordering {
        let primary = match self {
            Self::CreatedDesc => b.created.cmp(&a.created),
            Self::UpdatedDesc => b.updated.cmp(&a.updated),
            Self::NameAsc => a.name.cmp(b.name),
            Self::NameDesc => b.name.cmp(a.name),
        };
        primary.then_with(|| b.id.cmp(&a.id))
    }
}

/// Prefect's `DeploymentSort`; the default is `NAME_ASC`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploymentSort {
    /// Created, newest first.
    CreatedDesc,
    /// Updated, newest first.
    UpdatedDesc,
    /// Name, ascending.
    #[default]
    NameAsc,
    /// Name, descending.
    NameDesc,
}

impl DeploymentSort {
    /// Every value, in Prefect's order.
    pub const ALL: [DeploymentSort; 4] = [
        Self::CreatedDesc,
        Self::UpdatedDesc,
        Self::NameAsc,
        Self::NameDesc,
    ];

    /// Orders two deployments, ties broken by id descending.
    pub fn compare(self, a: &Deployment, b: &Deployment) -> Ordering {
        let order = match self {
            Self::CreatedDesc => NamedOrder::CreatedDesc,
            Self::UpdatedDesc => NamedOrder::UpdatedDesc,
            Self::NameAsc => NamedOrder::NameAsc,
            Self::NameDesc => NamedOrder::NameDesc,
        };
        order.compare(
            Named::new(a.id, a.created, a.updated, &a.name),
            Named::new(b.id, b.created, b.updated, &b.name),
        )
    }
}

/// Prefect's `BlockDocumentSort`; the default is `NAME_ASC`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BlockDocumentSort {
    /// Name, descending.
    NameDesc,
    /// Name, ascending.
    #[default]
    NameAsc,
    /// Block type name, then name, ascending.
    BlockTypeAndNameAsc,
}

impl BlockDocumentSort {
    /// Every value, in Prefect's order.
    pub const ALL: [BlockDocumentSort; 3] =
        [Self::NameDesc, Self::NameAsc, Self::BlockTypeAndNameAsc];

    /// Orders two documents given their block type names; ties broken by id descending.
    pub fn compare(self, a: (&BlockDocument, &str), b: (&BlockDocument, &str)) -> Ordering {
        let primary = match self {
            Self::NameDesc => nulls_first(&b.0.name, &a.0.name),
            Self::NameAsc => nulls_first(&a.0.name, &b.0.name),
            Self::BlockTypeAndNameAsc => {
                a.1.cmp(b.1).then_with(|| nulls_first(&a.0.name, &b.0.name))
            }
        };
        primary.then_with(|| b.0.id.cmp(&a.0.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_is_a_case_insensitive_contains_with_sql_wildcards() {
        assert!(ilike_contains("Nightly-ETL", "etl"));
        assert!(ilike_contains("nightly", "NIGHT"));
        assert!(ilike_contains("a-b", "a_b"));
        assert!(ilike_contains("axxb", "a%b"));
        assert!(!ilike_contains("ab", "a_b"));
        assert!(!ilike_contains("nightly", "daily"));
        assert!(ilike_contains("anything", ""));
        // ASCII folding only, like SQLite's lower().
        assert!(!ilike_contains("É", "é"));
    }

    #[test]
    fn an_empty_sub_filter_is_true_under_or() {
        let f: FlowRunFilter = serde_json::from_value(serde_json::json!({
            "operator": "or_", "id": {}, "name": {"any_": ["nope"]}
        }))
        .unwrap();
        let run = FlowRun::new(Uuid::new_v4(), Uuid::new_v4(), "x".into(), Utc::now());
        assert!(f.matches(&run));
        let f: FlowRunFilter = serde_json::from_value(serde_json::json!({
            "operator": "and_", "id": {}, "name": {"any_": ["nope"]}
        }))
        .unwrap();
        assert!(!f.matches(&run));
    }

    #[test]
    fn unknown_criteria_are_refused() {
        let err = serde_json::from_value::<FlowRunFilter>(serde_json::json!({
            "tags": {"any_": ["a"], "none_": ["b"]}
        }))
        .unwrap_err();
        assert!(err.to_string().contains("unknown field `none_`"), "{err}");
    }
}
