//! Task runs: Prefect 3.9.1's `TaskRun` resource (`TaskRunResponse` in the OpenAPI document)
//! and its `TaskRunCreate` input, serialised exactly as Prefect's server returns them.
//!
//! pushpool stores the task runs the flow engine creates over REST: the tracking task run of
//! a subflow (a flow called from a flow) and of `run_deployment` called inside a flow. The
//! engine's ordinary task runs arrive as events (a later issue). A subflow's flow run points
//! at its tracking task run with `parent_task_run_id`, and that task run's `flow_run_id` is
//! the parent flow run.

use chrono::{DateTime, Utc};
use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use uuid::Uuid;

use crate::model::Object;
use crate::state::{State, StateCreate, StateType};

/// Longest `cache_key` Prefect's server accepts (`PREFECT_SERVER_TASKS_MAX_CACHE_KEY_LENGTH`,
/// default 2000 characters).
pub const MAX_CACHE_KEY_LENGTH: usize = 2000;

/// Prefect's `TaskRunPolicy` (a task run's retries).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskRunPolicy {
    /// Deprecated alias of `retries`.
    pub max_retries: i64,
    /// Deprecated alias of `retry_delay`.
    pub retry_delay_seconds: f64,
    /// Retries allowed; `None` means the server never retries.
    pub retries: Option<i64>,
    /// Seconds between retries: a number, or a list indexed by the attempt (the last one
    /// repeats), as Prefect accepts it.
    pub retry_delay: Option<Value>,
    /// Relative jitter of the retry delay (Prefect's `clamped_poisson_interval`).
    pub retry_jitter_factor: Option<f64>,
}

impl Default for TaskRunPolicy {
    fn default() -> Self {
        Self {
            max_retries: 0,
            retry_delay_seconds: 0.0,
            retries: None,
            retry_delay: None,
            retry_jitter_factor: None,
        }
    }
}

impl TaskRunPolicy {
    /// Checks the policy as Prefect's validators do and fills the new fields from the
    /// deprecated ones (`set_run_policy_deprecated_fields`): `max_retries` → `retries`,
    /// `retry_delay_seconds` → `retry_delay` when the new field is unset or zero.
    ///
    /// # Errors
    /// A message naming the field: `retry_delay` not a number or a list of at most 50
    /// numbers, `retry_jitter_factor` negative.
    pub fn normalised(mut self) -> Result<Self, String> {
        if self.retries.unwrap_or(0) == 0 && self.max_retries != 0 {
            self.retries = Some(self.max_retries);
        }
        let delay_unset = match &self.retry_delay {
            None => true,
            Some(Value::Number(n)) => n.as_f64() == Some(0.0),
            Some(Value::Array(a)) => a.is_empty(),
            Some(_) => false,
        };
        if delay_unset && self.retry_delay_seconds != 0.0 {
            self.retry_delay = serde_json::Number::from_f64(self.retry_delay_seconds)
                .map(Value::Number)
                .or(self.retry_delay);
        }
        match &self.retry_delay {
            None | Some(Value::Number(_)) => {}
            Some(Value::Array(a)) => {
                if a.len() > 50 {
                    return Err(
                        "empirical_policy.retry_delay: can not configure more than 50 retry delays per task"
                            .into(),
                    );
                }
                if !a.iter().all(Value::is_number) {
                    return Err(
                        "empirical_policy.retry_delay: must be a number or a list of numbers"
                            .into(),
                    );
                }
            }
            Some(_) => {
                return Err(
                    "empirical_policy.retry_delay: must be a number or a list of numbers".into(),
                );
            }
        }
        if self.retry_jitter_factor.is_some_and(|j| j < 0.0) {
            return Err("empirical_policy.retry_jitter_factor: must be non-negative".into());
        }
        Ok(self)
    }

    /// The base delay before retry number `run_count` (1 for the first run), in seconds:
    /// `retry_delay[min(run_count - 1, len - 1)]` for a list, the number itself otherwise,
    /// 0 when unset (Prefect's `RetryFailedTasks`).
    pub fn base_delay(&self, run_count: i64) -> f64 {
        match &self.retry_delay {
            Some(Value::Array(a)) if !a.is_empty() => {
                let i = usize::try_from((run_count - 1).max(0))
                    .unwrap_or(0)
                    .min(a.len() - 1);
                a[i].as_f64().unwrap_or(0.0)
            }
            Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
            _ => 0.0,
        }
    }
}

/// One input of a task run (`task_inputs` values), tagged by `input_type` as Prefect sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "input_type", rename_all = "snake_case")]
pub enum TaskRunInput {
    /// `{"input_type": "task_run", "id": ...}`: the result of another task run.
    TaskRun {
        /// The task run.
        id: Uuid,
    },
    /// `{"input_type": "flow_run", "id": ...}`: the result of a flow run.
    FlowRun {
        /// The flow run.
        id: Uuid,
    },
    /// `{"input_type": "parameter", "name": ...}`: a flow parameter.
    Parameter {
        /// Parameter name.
        name: String,
    },
    /// `{"input_type": "constant", "type": ...}`: a constant of a Python type.
    Constant {
        /// Python type name.
        r#type: String,
    },
}

/// `task_inputs`: input name → its sources, in the order the client sent them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskInputs(pub Vec<(String, Vec<TaskRunInput>)>);

impl Serialize for TaskInputs {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for TaskInputs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = Object::deserialize(d)?;
        let mut out = Vec::with_capacity(map.len());
        for (k, v) in map {
            let inputs: Vec<TaskRunInput> = serde_json::from_value(v)
                .map_err(|e| D::Error::custom(format!("task_inputs.{k}: {e}")))?;
            out.push((k, inputs));
        }
        Ok(Self(out))
    }
}

/// A task run, with every field of Prefect's `TaskRun` response in its order, plus `version`,
/// the optimistic-concurrency counter every conditional write checks (not sent to clients).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRun {
    /// Id (UUIDv7 when the server makes it; the client may choose it).
    pub id: Uuid,
    /// Created at.
    pub created: DateTime<Utc>,
    /// Updated at.
    pub updated: DateTime<Utc>,
    /// Name (`my_subflow-0`; a generated `adjective-animal` when the client sends none).
    pub name: String,
    /// The flow run the task run belongs to.
    pub flow_run_id: Option<Uuid>,
    /// The task's identity (`module.function-<hash>`).
    pub task_key: String,
    /// Distinguishes runs of one task within one flow run (`"0"`, `"1"`, ...).
    pub dynamic_key: String,
    /// Cache key.
    pub cache_key: Option<String>,
    /// Cache expiry.
    pub cache_expiration: Option<DateTime<Utc>>,
    /// Task version.
    pub task_version: Option<String>,
    /// Retry policy.
    pub empirical_policy: TaskRunPolicy,
    /// Tags.
    pub tags: Vec<String>,
    /// Labels (`prefect.flow-run.id` and the flow run's labels added at creation).
    pub labels: Object,
    /// Current state id.
    pub state_id: Option<Uuid>,
    /// Where the inputs came from.
    pub task_inputs: TaskInputs,
    /// Current state type.
    pub state_type: Option<StateType>,
    /// Current state name.
    pub state_name: Option<String>,
    /// Times the run entered RUNNING (reset when it leaves a terminal state).
    pub run_count: i64,
    /// The flow run's `run_count` when this task run last entered RUNNING.
    pub flow_run_run_count: i64,
    /// When it was expected to start.
    pub expected_start_time: Option<DateTime<Utc>>,
    /// Next scheduled start (SCHEDULED only).
    pub next_scheduled_start_time: Option<DateTime<Utc>>,
    /// First RUNNING.
    pub start_time: Option<DateTime<Utc>>,
    /// Terminal state time.
    pub end_time: Option<DateTime<Utc>>,
    /// Seconds spent RUNNING.
    pub total_run_time: f64,
    /// Estimated run time (seconds): `total_run_time` as of the last transition.
    pub estimated_run_time: f64,
    /// Seconds between expected and actual start.
    pub estimated_start_time_delta: f64,
    /// Current state.
    pub state: Option<State>,
    /// Optimistic-concurrency version; incremented by every write.
    #[serde(skip_serializing, default)]
    pub version: u64,
}

impl TaskRun {
    /// A task run of `task_key`/`dynamic_key`, created at `now`, every other field at
    /// Prefect's default (no state yet: apply one with
    /// [`crate::task_orchestration::apply_task_state`]).
    pub fn new(
        id: Uuid,
        name: String,
        task_key: String,
        dynamic_key: String,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            created: now,
            updated: now,
            name,
            flow_run_id: None,
            task_key,
            dynamic_key,
            cache_key: None,
            cache_expiration: None,
            task_version: None,
            empirical_policy: TaskRunPolicy::default(),
            tags: Vec::new(),
            labels: Object::new(),
            state_id: None,
            task_inputs: TaskInputs::default(),
            state_type: None,
            state_name: None,
            run_count: 0,
            flow_run_run_count: 0,
            expected_start_time: None,
            next_scheduled_start_time: None,
            start_time: None,
            end_time: None,
            total_run_time: 0.0,
            estimated_run_time: 0.0,
            estimated_start_time_delta: 0.0,
            state: None,
            version: 0,
        }
    }
}

/// Prefect's `TaskRunCreate` (`POST /task_runs/`). Unknown fields are refused, as Prefect's
/// model forbids extra fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskRunCreate {
    /// Client-chosen id.
    #[serde(default)]
    pub id: Option<Uuid>,
    /// First state; PENDING when absent.
    #[serde(default)]
    pub state: Option<StateCreate>,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Flow run.
    #[serde(default)]
    pub flow_run_id: Option<Uuid>,
    /// Task key.
    pub task_key: String,
    /// Dynamic key.
    pub dynamic_key: String,
    /// Cache key (at most [`MAX_CACHE_KEY_LENGTH`] characters).
    #[serde(default)]
    pub cache_key: Option<String>,
    /// Cache expiry.
    #[serde(default)]
    pub cache_expiration: Option<DateTime<Utc>>,
    /// Task version.
    #[serde(default)]
    pub task_version: Option<String>,
    /// Retry policy.
    #[serde(default)]
    pub empirical_policy: Option<TaskRunPolicy>,
    /// Tags.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Labels (string, number or boolean values).
    #[serde(default)]
    pub labels: Option<Object>,
    /// Inputs.
    #[serde(default)]
    pub task_inputs: Option<TaskInputs>,
}

impl TaskRunCreate {
    /// The task run this creates at `now` (without its state, which the caller applies), with
    /// `flow_run_labels` (the parent flow run's labels) under the system label
    /// `prefect.flow-run.id` under the client's labels, as Prefect's
    /// `with_system_labels_for_task_run` layers them.
    ///
    /// # Errors
    /// A message naming the field: a `cache_key` longer than [`MAX_CACHE_KEY_LENGTH`], a label
    /// value that is not a string, number or boolean, a bad `empirical_policy`.
    pub fn into_task_run(
        self,
        now: DateTime<Utc>,
        flow_run_labels: Option<&Object>,
    ) -> Result<TaskRun, String> {
        if let Some(k) = &self.cache_key {
            if k.chars().count() > MAX_CACHE_KEY_LENGTH {
                return Err(format!(
                    "cache_key: Cache key exceeded maximum allowed length of {MAX_CACHE_KEY_LENGTH} characters."
                ));
            }
        }
        let client_labels = self.labels.unwrap_or_default();
        for (k, v) in &client_labels {
            if !(v.is_string() || v.is_number() || v.is_boolean()) {
                return Err(format!(
                    "labels.{k}: a label value must be a string, a number or a boolean"
                ));
            }
        }
        let mut labels = flow_run_labels.cloned().unwrap_or_default();
        if let Some(id) = self.flow_run_id {
            labels.insert("prefect.flow-run.id".into(), Value::String(id.to_string()));
        }
        labels.extend(client_labels);
        let mut run = TaskRun::new(
            self.id.unwrap_or_else(Uuid::now_v7),
            self.name.unwrap_or_else(crate::names::flow_run_name),
            self.task_key,
            self.dynamic_key,
            now,
        );
        run.flow_run_id = self.flow_run_id;
        run.cache_key = self.cache_key;
        run.cache_expiration = self.cache_expiration;
        run.task_version = self.task_version;
        run.empirical_policy = self.empirical_policy.unwrap_or_default().normalised()?;
        run.tags = self.tags.unwrap_or_default();
        run.labels = labels;
        run.task_inputs = self.task_inputs.unwrap_or_default();
        Ok(run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn task_inputs_keep_their_order_and_tags() {
        let raw = json!({"y": [{"input_type": "task_run", "id": "01a226d9-8168-7148-8000-000000000001"}],
                         "__parents__": [], "x": [{"input_type": "parameter", "name": "x"},
                         {"input_type": "constant", "type": "int"}]});
        let inputs: TaskInputs = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(inputs.0[0].0, "y");
        assert_eq!(
            inputs.0[2].1[1],
            TaskRunInput::Constant {
                r#type: "int".into()
            }
        );
        assert_eq!(serde_json::to_value(&inputs).unwrap(), raw);
        let bad: Result<TaskInputs, _> =
            serde_json::from_value(json!({"x": [{"input_type": "nope"}]}));
        assert!(
            bad.unwrap_err()
                .to_string()
                .starts_with("task_inputs.x: unknown variant `nope`")
        );
    }

    #[test]
    fn deprecated_policy_fields_fill_the_new_ones() {
        let p = TaskRunPolicy {
            max_retries: 2,
            retry_delay_seconds: 5.0,
            ..TaskRunPolicy::default()
        }
        .normalised()
        .unwrap();
        assert_eq!((p.retries, p.retry_delay), (Some(2), Some(json!(5.0))));
        let list = TaskRunPolicy {
            retry_delay: Some(json!([1, 10, 100])),
            ..TaskRunPolicy::default()
        };
        assert_eq!(
            [list.base_delay(1), list.base_delay(3), list.base_delay(9)],
            [1.0, 100.0, 100.0]
        );
        let bad = TaskRunPolicy {
            retry_delay: Some(json!("soon")),
            ..TaskRunPolicy::default()
        };
        assert_eq!(
            bad.normalised().unwrap_err(),
            "empirical_policy.retry_delay: must be a number or a list of numbers"
        );
    }

    #[test]
    fn labels_layer_flow_run_then_system_then_client() {
        let flow_run_id = Uuid::new_v4();
        let body: TaskRunCreate = serde_json::from_value(json!({
            "task_key": "k", "dynamic_key": "0", "flow_run_id": flow_run_id,
            "labels": {"team": "data"}
        }))
        .unwrap();
        let parent = json!({"prefect.flow.id": "f", "team": "ops"});
        let run = body.into_task_run(Utc::now(), parent.as_object()).unwrap();
        assert_eq!(
            Value::Object(run.labels),
            json!({"prefect.flow.id": "f", "team": "data", "prefect.flow-run.id": flow_run_id.to_string()})
        );
        let unknown: Result<TaskRunCreate, _> =
            serde_json::from_value(json!({"task_key": "k", "dynamic_key": "0", "color": 1}));
        assert!(
            unknown
                .unwrap_err()
                .to_string()
                .starts_with("unknown field `color`")
        );
    }
}
