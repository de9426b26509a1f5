//! `GET /flow_runs/{id}/graph-v2`: the graph the web UI draws on a flow run's page (Prefect
//! 3.9.1 `api/flow_runs.py` `read_flow_run_graph_v2`, the query of
//! `database/query_components.py` `_build_flow_run_graph_v2_query`).
//!
//! A node per task run of the flow run that has a start time or an expected start time: a
//! task run that stands for a subflow run is that subflow run's node (kind `flow-run`, label
//! `<flow name> / <run name>`), the others are `task-run` nodes with the task run's name.
//! Edges come from the task runs' `task_inputs`: an input named `__parents__` is an
//! encapsulating task, any other input that names a run of the graph is a parent (and the
//! parent gets the child). Nodes that ended before `since` are left out. `root_node_ids` are
//! the nodes without a parent; `states` is the flow run's state history.
//!
//! Artifacts are not drawn: `artifacts` is empty for the graph and its nodes (pushpool stores
//! artifacts, but the graph's artifact markers are left for later).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use pushpool_core::state::StateType;
use pushpool_core::task_run::TaskRunInput;
use pushpool_store::TaskRunFilter;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::parse_id;
use crate::AppState;
use crate::error::ApiError;

/// The largest graph answered (Prefect's `PREFECT_API_MAX_FLOW_RUN_GRAPH_NODES` default).
pub(crate) const MAX_NODES: usize = 10_000;

/// The query: `since`, only nodes that end after it (default: all).
#[derive(Debug, Deserialize)]
pub(crate) struct GraphQuery {
    since: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize)]
struct Node {
    kind: &'static str,
    id: Uuid,
    label: String,
    state_type: Option<StateType>,
    start_time: DateTime<Utc>,
    end_time: Option<DateTime<Utc>>,
    parents: Vec<Value>,
    children: Vec<Value>,
    encapsulating: Vec<Value>,
    artifacts: Vec<Value>,
}

/// `GET /flow_runs/{id}/graph-v2`.
pub(crate) async fn read(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<GraphQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    let id = parse_id("id", &id)?;
    let store = state.store();
    let run = store.read_flow_run(id).await?;
    let task_runs = store
        .list_task_runs(&TaskRunFilter {
            flow_run_ids: Some(vec![id]),
            ..TaskRunFilter::default()
        })
        .await?;
    let ids: Vec<Uuid> = task_runs.iter().map(|t| t.id).collect();
    let subflows: HashMap<Uuid, _> = if ids.is_empty() {
        HashMap::new()
    } else {
        store
            .list_subflow_runs(&ids, pushpool_store::Page::default())
            .await?
            .into_iter()
            .filter_map(|r| r.parent_task_run_id.map(|t| (t, r)))
            .collect()
    };
    let mut flow_names: HashMap<Uuid, String> = HashMap::new();
    // (node, [(parent id, is encapsulating)])
    let mut nodes: Vec<(Node, Vec<(Uuid, bool)>)> = Vec::new();
    for task_run in &task_runs {
        let sub = subflows.get(&task_run.id);
        let start = sub
            .and_then(|s| s.start_time.or(s.expected_start_time))
            .or(task_run.start_time)
            .or(task_run.expected_start_time);
        let Some(start_time) = start else {
            continue;
        };
        let (kind, node_id, label, state_type, end_time) = match sub {
            Some(s) => {
                let flow = match flow_names.get(&s.flow_id) {
                    Some(name) => name.clone(),
                    None => {
                        let name = store.read_flow(s.flow_id).await?.name;
                        flow_names.insert(s.flow_id, name.clone());
                        name
                    }
                };
                (
                    "flow-run",
                    s.id,
                    format!("{flow} / {}", s.name),
                    s.state_type,
                    s.end_time,
                )
            }
            None => (
                "task-run",
                task_run.id,
                task_run.name.clone(),
                task_run.state_type,
                task_run
                    .end_time
                    .or((task_run.state_type == Some(StateType::Completed))
                        .then_some(task_run.expected_start_time)
                        .flatten()),
            ),
        };
        let mut refs = Vec::new();
        for (key, inputs) in &task_run.task_inputs.0 {
            for input in inputs {
                let parent = match input {
                    TaskRunInput::TaskRun { id } | TaskRunInput::FlowRun { id } => *id,
                    _ => continue,
                };
                refs.push((parent, key == "__parents__"));
            }
        }
        nodes.push((
            Node {
                kind,
                id: node_id,
                label,
                state_type,
                start_time,
                end_time,
                parents: Vec::new(),
                children: Vec::new(),
                encapsulating: Vec::new(),
                artifacts: Vec::new(),
            },
            refs,
        ));
    }
    let index: HashMap<Uuid, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, (n, _))| (n.id, i))
        .collect();
    let mut children: Vec<Vec<Uuid>> = vec![Vec::new(); nodes.len()];
    for (node, refs) in &mut nodes {
        for (parent, encapsulating) in refs.iter() {
            let Some(&p) = index.get(parent) else {
                continue;
            };
            let edge = json!({"id": parent});
            if *encapsulating {
                if !node.encapsulating.contains(&edge) {
                    node.encapsulating.push(edge);
                }
            } else {
                if !node.parents.contains(&edge) {
                    node.parents.push(edge);
                }
                if !children[p].contains(&node.id) {
                    children[p].push(node.id);
                }
            }
        }
    }
    let since = query.since;
    let mut out: Vec<Node> = nodes
        .into_iter()
        .zip(children)
        .map(|((mut node, _), kids)| {
            node.children = kids.into_iter().map(|id| json!({"id": id})).collect();
            node
        })
        .filter(|n| match (since, n.end_time) {
            (Some(since), Some(end)) => end >= since,
            _ => true,
        })
        .collect();
    if out.len() > MAX_NODES {
        return Err(ApiError::BadRequest(format!(
            "The graph of flow run {id} has more than {MAX_NODES} nodes."
        )));
    }
    out.sort_by_key(|n| (n.start_time, n.id));
    let root_node_ids: Vec<Uuid> = out
        .iter()
        .filter(|n| n.parents.is_empty())
        .map(|n| n.id)
        .collect();
    let states: Vec<Value> = store
        .read_flow_run_states(id)
        .await?
        .into_iter()
        .map(|s| json!({"id": s.id, "timestamp": s.timestamp, "type": s.r#type, "name": s.name}))
        .collect();
    Ok(axum::Json(json!({
        "start_time": run.start_time.or(run.expected_start_time),
        "end_time": run.end_time,
        "root_node_ids": root_node_ids,
        "nodes": out.into_iter().map(|n| json!([n.id, n])).collect::<Vec<_>>(),
        "artifacts": [],
        "states": states,
    })))
}
