//! The task run recorder: task runs and their state history materialised from the engine's
//! `prefect.task-run.*` events, as Prefect 3.9.1's `TaskRunRecorder` service does
//! (`server/services/task_run_recorder.py`).
//!
//! The engine creates no ordinary task run over REST: for every state a task run enters it
//! emits an event (`emit_task_run_state_change_event`) on `WS /events/in`:
//! `event` `prefect.task-run.<state name>`, `id` the state's id, `occurred` its timestamp,
//! `resource` `prefect.task-run.<task run id>`, a related resource of role `flow-run`
//! (`prefect.flow-run.<id>`) when the task runs in a flow run, and a payload with
//! `validated_state` (`type`, `name`, `message`, `state_details`, `data`) and `task_run`
//! (the client's task run: name, keys, tags, labels, `run_count`, `start_time`, `end_time`,
//! `total_run_time`, ...).
//!
//! As Prefect's recorder does, each event becomes a task run whose current state is the
//! event's state, written only when the stored run's state is older (so an event that arrives
//! late or twice never moves the run back), and its state is added to the history whatever
//! the order (idempotent on the state id, which is the event id). A run is matched by id, then
//! by `(flow_run_id, task_key, dynamic_key)` (the id of the run that already holds the key
//! wins, as Prefect's `rewrite_id`). A batch is applied oldest state first.
//!
//! Choices where Prefect's storage differs: the run's key fields (`flow_run_id`, `task_key`,
//! `dynamic_key`) are those of its first event (the store fixes them at creation);
//! `estimated_run_time` is the recorded `total_run_time` and `estimated_start_time_delta` is
//! `start_time - expected_start_time` (0 before the run starts), computed when the event is
//! recorded (Prefect computes both on read). An event that is not a task run event is
//! ignored; a task run event that cannot be read (no task run id, no `validated_state`, no
//! `task_key`) is logged and dropped, as Prefect's recorder drops an event it cannot validate.

use chrono::{DateTime, Utc};
use pushpool_core::state::{State, StateType};
use pushpool_core::task_run::TaskRun;
use pushpool_store::StoreError;
use serde_json::{Map, Value};
use tracing::{debug, warn};
use uuid::Uuid;

use crate::write::retry_on_conflict;
use crate::{Service, TaskRunError};

/// Fields of the event's `task_run` payload that the server does not take from the client
/// (Prefect's `db_recordable_task_run_from_event` excludes them or sets them itself).
const SERVER_FIELDS: [&str; 11] = [
    "id",
    "created",
    "updated",
    "flow_run_id",
    "state_id",
    "state_type",
    "state_name",
    "state",
    "estimated_run_time",
    "estimated_start_time_delta",
    "version",
];

/// The UUID after `prefix` in a resource id (`prefect.task-run.<uuid>`).
fn object_id(resource: &Value, prefix: &str) -> Option<Uuid> {
    resource
        .get("prefect.resource.id")?
        .as_str()?
        .strip_prefix(prefix)?
        .strip_prefix('.')?
        .parse()
        .ok()
}

/// The task run an event describes, with its state (`None` when the event is not a
/// `prefect.task-run.*` event).
///
/// # Errors
/// A message naming what is missing or malformed.
pub fn task_run_from_event(event: &Value, now: DateTime<Utc>) -> Result<Option<TaskRun>, String> {
    let Some(name) = event.get("event").and_then(Value::as_str) else {
        return Ok(None);
    };
    if !name.starts_with("prefect.task-run") {
        return Ok(None);
    }
    let task_run_id = event
        .get("resource")
        .and_then(|r| object_id(r, "prefect.task-run"))
        .ok_or("resource: no prefect.task-run id")?;
    let flow_run_id = event
        .get("related")
        .and_then(Value::as_array)
        .and_then(|related| {
            related.iter().find(|r| {
                r.get("prefect.resource.role").and_then(Value::as_str) == Some("flow-run")
            })
        })
        .and_then(|r| object_id(r, "prefect.flow-run"));
    let event_id: Uuid = event
        .get("id")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .ok_or("id: not a UUID")?;
    let occurred: DateTime<Utc> = event
        .get("occurred")
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or("occurred: not a date-time")?;
    let payload = event.get("payload").ok_or("payload: missing")?;
    let Some(Value::Object(validated)) = payload.get("validated_state") else {
        return Err("payload.validated_state: missing".into());
    };
    let mut state = validated.clone();
    state.insert("id".into(), Value::String(event_id.to_string()));
    state.insert(
        "timestamp".into(),
        serde_json::to_value(occurred).map_err(|e| e.to_string())?,
    );
    if state.get("name").is_none_or(Value::is_null) {
        let r#type: StateType = state
            .get("type")
            .cloned()
            .and_then(|v| serde_json::from_value(v).ok())
            .ok_or("payload.validated_state.type: not a state type")?;
        state.insert("name".into(), Value::String(r#type.default_name().into()));
    }
    if state.get("state_details").is_some_and(Value::is_null) {
        state.remove("state_details");
    }
    let mut state: State = serde_json::from_value(Value::Object(state))
        .map_err(|e| format!("payload.validated_state: {e}"))?;
    state.state_details.task_run_id = Some(task_run_id);
    state.state_details.flow_run_id = flow_run_id;

    let Some(Value::Object(client)) = payload.get("task_run") else {
        return Err("payload.task_run: missing".into());
    };
    let key = |k: &str| {
        client
            .get(k)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("payload.task_run.{k}: missing"))
    };
    let defaults = TaskRun::new(
        task_run_id,
        key("name").unwrap_or_default(),
        key("task_key")?,
        key("dynamic_key")?,
        now,
    );
    let Value::Object(mut run) = serde_json::to_value(&defaults).map_err(|e| e.to_string())? else {
        return Err("task run: not an object".into());
    };
    let known: Map<String, Value> = client
        .iter()
        .filter(|(k, v)| {
            run.contains_key(*k) && !v.is_null() && !SERVER_FIELDS.contains(&k.as_str())
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    run.extend(known);
    let mut run: TaskRun =
        serde_json::from_value(Value::Object(run)).map_err(|e| format!("payload.task_run: {e}"))?;
    run.flow_run_id = flow_run_id;
    run.state_id = Some(state.id);
    run.state_type = Some(state.r#type);
    run.state_name = Some(state.name.clone());
    run.state = Some(state);
    run.estimated_run_time = run.total_run_time;
    run.estimated_start_time_delta = match (run.start_time, run.expected_start_time) {
        (Some(start), Some(expected)) => (start - expected).as_seconds_f64(),
        _ => 0.0,
    };
    Ok(Some(run))
}

impl Service {
    /// Records a batch of events (the JSON objects the engine sends on `WS /events/in`):
    /// every `prefect.task-run.*` event becomes its task run's state (see the module docs);
    /// other events are ignored. Never fails: an event that cannot be read or written is
    /// logged and dropped. Returns how many task run events were recorded.
    pub async fn record_task_run_events(&self, events: &[Value]) -> usize {
        let now = Utc::now();
        let mut runs: Vec<TaskRun> = Vec::new();
        for event in events {
            match task_run_from_event(event, now) {
                Ok(Some(run)) => runs.push(run),
                Ok(None) => {}
                Err(e) => {
                    let event_id = event.get("id").cloned().unwrap_or_default();
                    warn!(%event_id, error = %e, "dropped a task run event that could not be read");
                }
            }
        }
        runs.sort_by_key(|r| r.state.as_ref().map(|s| s.timestamp));
        let mut recorded = 0;
        for run in runs {
            match self.record_task_run(&run).await {
                Ok(()) => recorded += 1,
                Err(e) => warn!(task_run_id = %run.id, error = %e,
                    "could not record a task run event"),
            }
        }
        recorded
    }

    /// Records one task run (from one event): creates it, or writes it over the stored run
    /// when its state is newer, or adds its state to the history only.
    async fn record_task_run(&self, candidate: &TaskRun) -> Result<(), TaskRunError> {
        let Some(state) = candidate.state.clone() else {
            return Ok(());
        };
        retry_on_conflict("task run", candidate.id, || async {
            let existing = match self.store().read_task_run(candidate.id).await {
                Ok(run) => run,
                Err(StoreError::NotFound(_)) => {
                    let (stored, created) = self.store().create_task_run(candidate).await?;
                    if created {
                        debug!(task_run_id = %stored.id, state = %state.name, "task run recorded");
                        return Ok(());
                    }
                    stored
                }
                Err(e) => return Err(e.into()),
            };
            let mut state = state.clone();
            state.state_details.task_run_id = Some(existing.id);
            let newer = existing
                .state
                .as_ref()
                .is_none_or(|s| s.timestamp < state.timestamp);
            if !newer {
                self.store().add_task_run_state(existing.id, &state).await?;
                return Ok(());
            }
            let mut next = candidate.clone();
            next.id = existing.id;
            next.created = existing.created;
            next.updated = Utc::now();
            next.flow_run_id = existing.flow_run_id;
            next.task_key = existing.task_key.clone();
            next.dynamic_key = existing.dynamic_key.clone();
            next.version = existing.version;
            next.state = Some(state);
            self.store().update_task_run(&next).await?;
            Ok(())
        })
        .await
    }
}
