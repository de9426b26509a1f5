//! The routes, one module per resource.

mod artifacts;
mod automations;
mod blocks;
mod concurrency_limits;
mod deployment_schedule;
mod deployments;
mod events;
mod filters;
mod flow_run_graph;
mod flow_runs;
mod flows;
pub(crate) mod logs;
mod meta;
mod run_inputs;
mod runner;
mod task_run_filter;
mod task_runs;
mod ui;
mod ui_schemas;
mod variables;
mod work_pools;
mod work_queues;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use serde_json::json;
use uuid::Uuid;

use crate::{ApiError, AppState};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(meta::health))
        .route("/ready", get(meta::health))
        .route("/admin/version", get(meta::version))
        .route("/admin/storage", get(meta::storage))
        .route("/csrf-token", get(meta::csrf_token))
        .route("/collections/views/{view}", get(meta::collections_view))
        .route(
            "/logs/",
            post(logs::create).layer(axum::extract::DefaultBodyLimit::max(
                logs::MAX_LOG_BATCH_BYTES,
            )),
        )
        .route("/logs/filter", post(logs::filter))
        .route("/logs/out", get(logs::logs_out))
        .route("/events/in", get(events::events_in))
        .route("/events/out", get(events::events_out))
        .route("/events/filter", post(events::filter))
        .route("/events/filter/next", get(events::filter_next))
        .route("/events/count-by/{countable}", post(events::count_by))
        .route("/v2/concurrency_limits/", post(concurrency_limits::create))
        .route(
            "/v2/concurrency_limits/filter",
            post(concurrency_limits::filter),
        )
        .route(
            "/v2/concurrency_limits/increment",
            post(concurrency_limits::increment),
        )
        .route(
            "/v2/concurrency_limits/increment-with-lease",
            post(concurrency_limits::increment_with_lease),
        )
        .route(
            "/v2/concurrency_limits/decrement",
            post(concurrency_limits::decrement),
        )
        .route(
            "/v2/concurrency_limits/decrement-with-lease",
            post(concurrency_limits::decrement_with_lease),
        )
        .route(
            "/v2/concurrency_limits/leases/{lease_id}/renew",
            post(concurrency_limits::renew),
        )
        .route(
            "/v2/concurrency_limits/{id_or_name}",
            get(concurrency_limits::read)
                .patch(concurrency_limits::update)
                .delete(concurrency_limits::delete),
        )
        .route("/concurrency_limits/", post(concurrency_limits::tag_create))
        .route(
            "/concurrency_limits/filter",
            post(concurrency_limits::tag_filter),
        )
        .route(
            "/concurrency_limits/increment",
            post(concurrency_limits::tag_increment),
        )
        .route(
            "/concurrency_limits/decrement",
            post(concurrency_limits::tag_decrement),
        )
        .route(
            "/concurrency_limits/tag/{tag}",
            get(concurrency_limits::tag_read_by_tag).delete(concurrency_limits::tag_delete_by_tag),
        )
        .route(
            "/concurrency_limits/tag/{tag}/reset",
            post(concurrency_limits::tag_reset),
        )
        .route(
            "/concurrency_limits/{id}",
            get(concurrency_limits::tag_read).delete(concurrency_limits::tag_delete),
        )
        .route("/work_pools/", post(work_pools::create))
        .route("/work_pools/filter", post(work_pools::filter))
        .route("/work_pools/count", post(work_pools::count))
        .route(
            "/work_pools/{name}",
            get(work_pools::read)
                .patch(work_pools::update)
                .delete(work_pools::delete),
        )
        .route(
            "/work_pools/{name}/workers/filter",
            post(work_pools::workers_filter),
        )
        .route("/work_pools/{name}/queues", post(work_queues::create))
        .route(
            "/work_pools/{name}/queues/filter",
            post(work_queues::filter),
        )
        .route(
            "/work_pools/{name}/queues/{queue_name}",
            get(work_queues::read)
                .patch(work_queues::update)
                .delete(work_queues::delete),
        )
        .route(
            "/work_pools/{name}/concurrency_status",
            post(work_pools::concurrency_status),
        )
        .route(
            "/work_pools/{name}/get_scheduled_flow_runs",
            post(work_pools::get_scheduled_flow_runs),
        )
        .route("/work_queues/filter", post(work_queues::filter_all))
        .route("/work_queues/", post(work_queues::create_pool_less))
        .route("/work_queues/name/{name}", get(work_queues::read_by_name))
        .route(
            "/work_queues/{id}",
            get(work_queues::read_by_id)
                .patch(work_queues::update_by_id)
                .delete(work_queues::delete_by_id),
        )
        .route("/work_queues/{id}/status", get(work_queues::status))
        .route("/work_queues/{id}/get_runs", post(work_queues::get_runs))
        .route(
            "/work_queues/{id}/concurrency_status",
            post(work_queues::concurrency_status),
        )
        .route("/block_types/", post(blocks::create_block_type))
        .route("/block_types/filter", post(blocks::filter_block_types))
        .route(
            "/block_types/slug/{slug}",
            get(blocks::read_block_type_by_slug),
        )
        .route(
            "/block_types/slug/{slug}/block_documents",
            get(blocks::read_block_documents_of_type),
        )
        .route(
            "/block_types/slug/{slug}/block_documents/name/{name}",
            get(blocks::read_block_document_by_name),
        )
        .route(
            "/block_types/{id}",
            get(blocks::read_block_type).patch(blocks::update_block_type),
        )
        .route("/block_schemas/", post(blocks::create_block_schema))
        .route("/block_schemas/filter", post(blocks::filter_block_schemas))
        .route(
            "/block_schemas/checksum/{checksum}",
            get(blocks::read_block_schema_by_checksum),
        )
        .route("/block_schemas/{id}", get(blocks::read_block_schema))
        .route("/block_documents/", post(blocks::create_block_document))
        .route(
            "/block_documents/filter",
            post(blocks::filter_block_documents),
        )
        .route(
            "/block_documents/count",
            post(blocks::count_block_documents),
        )
        .route(
            "/block_documents/{id}",
            get(blocks::read_block_document)
                .patch(blocks::update_block_document)
                .delete(blocks::delete_block_document),
        )
        .route("/flows/", post(flows::create))
        .route("/flows/filter", post(flows::filter))
        .route("/flows/count", post(flows::count))
        .route("/flows/paginate", post(flows::paginate))
        .route("/flows/name/{name}", get(flows::read_by_name))
        .route("/flows/{id}", get(flows::read).delete(flows::delete))
        .route("/deployments/", post(deployments::create))
        .route("/deployments/filter", post(deployments::filter))
        .route("/deployments/count", post(deployments::count))
        .route("/deployments/paginate", post(deployments::paginate))
        .route(
            "/deployments/get_scheduled_flow_runs",
            post(runner::get_scheduled_flow_runs),
        )
        .route(
            "/deployments/name/{flow_name}/{deployment_name}",
            get(deployments::read_by_name),
        )
        .route(
            "/deployments/{id}",
            get(deployments::read)
                .patch(deployments::update)
                .delete(deployments::delete),
        )
        .route(
            "/deployments/{id}/create_flow_run",
            post(deployments::create_flow_run),
        )
        .route(
            "/deployments/{id}/schedules",
            get(deployments::read_schedules).post(deployments::create_schedules),
        )
        .route(
            "/deployments/{id}/schedules/{schedule_id}",
            axum::routing::patch(deployments::update_schedule).delete(deployments::delete_schedule),
        )
        .route(
            "/deployments/{id}/schedule",
            post(deployment_schedule::schedule),
        )
        .route(
            "/deployments/{id}/pause_deployment",
            post(deployments::pause),
        )
        .route(
            "/deployments/{id}/resume_deployment",
            post(deployments::resume),
        )
        .route("/flow_runs/", post(flow_runs::create))
        .route("/flow_runs/filter", post(flow_runs::filter))
        .route("/flow_runs/count", post(flow_runs::count))
        .route("/flow_runs/paginate", post(flow_runs::paginate))
        .route(
            "/flow_runs/{id}",
            get(flow_runs::read)
                .patch(flow_runs::update)
                .delete(flow_runs::delete),
        )
        .route("/flow_runs/{id}/set_state", post(flow_runs::set_state))
        .route("/flow_runs/{id}/logs/download", get(logs::download))
        .route("/flow_runs/{id}/graph-v2", get(flow_run_graph::read))
        .route("/flow_run_states/", get(flow_runs::read_states))
        .route("/flow_run_states/{id}", get(flow_runs::read_state))
        .route("/flow_runs/{id}/labels", patch(flow_runs::update_labels))
        .route("/flow_runs/{id}/resume", post(run_inputs::resume))
        .route("/flow_runs/{id}/input", post(run_inputs::create))
        .route("/flow_runs/{id}/input/filter", post(run_inputs::filter))
        .route(
            "/flow_runs/{id}/input/{key}",
            get(run_inputs::read).delete(run_inputs::delete),
        )
        .route("/automations/", post(automations::create))
        .route("/automations/filter", post(automations::filter))
        .route("/automations/count", post(automations::count))
        .route(
            "/automations/related-to/{resource_id}",
            get(automations::related_to),
        )
        .route(
            "/automations/owned-by/{resource_id}",
            axum::routing::delete(automations::delete_owned_by),
        )
        .route(
            "/automations/{id}",
            get(automations::by_id)
                .put(automations::by_id)
                .patch(automations::by_id)
                .delete(automations::by_id),
        )
        .route("/artifacts/", post(artifacts::create))
        .route("/artifacts/filter", post(artifacts::filter))
        .route("/artifacts/count", post(artifacts::count))
        .route("/artifacts/latest/filter", post(artifacts::filter_latest))
        .route("/artifacts/latest/count", post(artifacts::count_latest))
        .route("/artifacts/{key}/latest", get(artifacts::read_latest))
        .route(
            "/artifacts/{id}",
            get(artifacts::read)
                .patch(artifacts::update)
                .delete(artifacts::delete),
        )
        .route("/variables/", post(variables::create))
        .route("/variables/filter", post(variables::filter))
        .route("/variables/count", post(variables::count))
        .route(
            "/variables/name/{name}",
            get(variables::read_by_name)
                .patch(variables::update_by_name)
                .delete(variables::delete_by_name),
        )
        .route(
            "/variables/{id}",
            get(variables::read)
                .patch(variables::update)
                .delete(variables::delete),
        )
        .route("/ui/flow_runs/history", post(ui::flow_run_history))
        .route("/flow_runs/lateness", post(ui::flow_run_lateness))
        .route("/ui/flow_runs/count-task-runs", post(ui::count_task_runs))
        .route("/ui/schemas/validate", post(ui_schemas::validate))
        .route("/admin/settings", get(ui::admin_settings))
        .route("/saved_searches/filter", post(ui::saved_searches_filter))
        .route("/saved_searches/", put(ui::create_saved_search))
        .route("/task_runs/", post(task_runs::create))
        .route("/task_runs/filter", post(task_runs::filter))
        .route("/task_runs/count", post(task_runs::count))
        .route("/task_runs/paginate", post(task_runs::paginate))
        .route("/task_runs/history", post(task_runs::history))
        .route(
            "/task_runs/{id}",
            get(task_runs::read)
                .patch(task_runs::update)
                .delete(task_runs::delete),
        )
        .route("/task_runs/{id}/set_state", post(task_runs::set_state))
        .route("/task_run_states/", get(task_runs::read_states))
        .route("/task_run_states/{id}", get(task_runs::read_state))
        .method_not_allowed_fallback(method_not_allowed)
}

/// `405 {"detail": "Method Not Allowed"}`, as FastAPI answers it.
pub(crate) async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        axum::Json(json!({"detail": "Method Not Allowed"})),
    )
        .into_response()
}

/// `404 {"detail": "Not Found"}` for every unknown path, as the Prefect server answers it.
pub(crate) async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"detail": "Not Found"})),
    )
        .into_response()
}

/// Parses the id segment of a path. A segment that is not a UUID is `404 {"detail": "Not
/// Found"}`, as on Prefect's server, whose routes only match `{id:uuid}` (so
/// `/flow_runs/count` is never read as a flow run id).
pub(crate) fn parse_id(_field: &str, raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound("Not Found".into()))
}

/// For `Option<Option<T>>` fields of PATCH bodies: absent stays `None` (via `default`),
/// an explicit `null` becomes `Some(None)` and clears the field, as Prefect's
/// `exclude_unset` updates do.
pub(crate) fn explicit<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    T::deserialize(d).map(Some)
}

/// `true` for `include_secrets=true` and friends.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct IncludeSecrets {
    #[serde(default)]
    pub include_secrets: bool,
}
