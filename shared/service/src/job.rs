//! Building the provider [`Job`] of a flow run: the pool's base job template rendered with
//! the layered job variables, block references resolved, and the flow run environment added
//! the way Prefect's `BaseJobConfiguration.prepare_for_flow_run` adds it.

use pushpool_core::model::{Deployment, FlowRun, Object, WorkPool};
use pushpool_core::template::{
    BaseJobTemplate, TemplateError, block_document_refs, merge_job_variables, render,
};
use pushpool_providers::Job;
use pushpool_store::{Store, StoreError};
use serde_json::Value;

/// Why a job could not be built. Each is permanent: the run ends CRASHED with the message.
#[derive(Debug, thiserror::Error)]
pub enum JobBuildError {
    /// The pool's template or the job variables are invalid.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// A `{"$ref": {"block_document_id": ...}}` names a missing block document.
    #[error("job variables reference block document {0}, which does not exist")]
    MissingBlockDocument(uuid::Uuid),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The default command of a flow run's job (Prefect's `_base_flow_run_command`).
pub const DEFAULT_COMMAND: &str = "prefect flow-run execute";

/// Renders the job of `run` in `pool`, with `deployment`'s job variables under the run's.
///
/// `env` of the result is, lowest first: `PREFECT_API_URL` (and, when a key is given,
/// `PREFECT_API_KEY` and `PREFECT_API_AUTH_STRING`, both the key), the
/// `PREFECT__FLOW_RUN_ID` family, then the rendered `env`; `null` values are dropped. `command` defaults to [`DEFAULT_COMMAND`], `name` to the run's name.
///
/// # Errors
/// [`JobBuildError`] when the template is invalid or a referenced block is missing.
pub async fn build_job(
    store: &dyn Store,
    pool: &WorkPool,
    template: &BaseJobTemplate,
    deployment: Option<&Deployment>,
    run: &FlowRun,
    api_url: &str,
    api_key: Option<&str>,
) -> Result<Job, JobBuildError> {
    let defaults = template.defaults();
    let empty = Object::new();
    let deployment_vars = deployment.map_or(&empty, |d| &d.job_variables);
    let mut values = merge_job_variables(&[&defaults, deployment_vars, &run.job_variables]);
    let mut documents = std::collections::HashMap::new();
    for id in block_document_refs(&values) {
        match store.read_block_document(id).await {
            Ok(doc) => documents.insert(id, doc.data),
            Err(StoreError::NotFound(_)) => return Err(JobBuildError::MissingBlockDocument(id)),
            Err(e) => return Err(e.into()),
        };
    }
    pushpool_core::template::resolve_block_document_refs(&mut values, |id| {
        documents
            .get(&id)
            .cloned()
            .ok_or(JobBuildError::MissingBlockDocument(id))
    })?;
    let mut configuration = render(template.job_configuration(), &values);

    let mut env = Object::new();
    env.insert("PREFECT_API_URL".into(), Value::String(api_url.to_owned()));
    if let Some(key) = api_key {
        env.insert("PREFECT_API_KEY".into(), Value::String(key.to_owned()));
        // Prefect 3.9.1's event sockets (`/events/in`, `/events/out`) authenticate with
        // `PREFECT_API_AUTH_STRING` only (`prefect/events/clients.py`): without it the engine's
        // events, task runs and cancellation observer are refused when keys are required.
        // Its HTTP client then sends `Basic base64(key)`, which the API accepts as the key.
        env.insert(
            "PREFECT_API_AUTH_STRING".into(),
            Value::String(key.to_owned()),
        );
    }
    env.insert(
        "PREFECT__FLOW_RUN_ID".into(),
        Value::String(run.id.to_string()),
    );
    env.insert(
        "PREFECT__FLOW_ID".into(),
        Value::String(run.flow_id.to_string()),
    );
    if let Some(d) = deployment {
        env.insert(
            "PREFECT__DEPLOYMENT_ID".into(),
            Value::String(d.id.to_string()),
        );
        env.insert(
            "PREFECT__DEPLOYMENT_NAME".into(),
            Value::String(d.name.clone()),
        );
    }
    if let Some(Value::Object(rendered)) = configuration.get("env") {
        for (k, v) in rendered {
            env.insert(k.clone(), v.clone());
        }
    }
    env.retain(|_, v| !v.is_null());
    configuration.insert("env".into(), Value::Object(env));

    let has_command = matches!(configuration.get("command"), Some(Value::String(s)) if !s.trim().is_empty())
        || matches!(configuration.get("command"), Some(Value::Array(a)) if !a.is_empty());
    if !has_command {
        configuration.insert("command".into(), Value::String(DEFAULT_COMMAND.into()));
    }
    if !matches!(configuration.get("name"), Some(Value::String(s)) if !s.is_empty()) {
        configuration.insert("name".into(), Value::String(run.name.clone()));
    }
    let mut labels = match configuration.remove("labels") {
        Some(Value::Object(l)) => l,
        _ => Object::new(),
    };
    labels.insert(
        "prefect.io/flow-run-id".into(),
        Value::String(run.id.to_string()),
    );
    labels.insert(
        "prefect.io/flow-run-name".into(),
        Value::String(run.name.clone()),
    );
    if let Some(d) = deployment {
        labels.insert(
            "prefect.io/deployment-id".into(),
            Value::String(d.id.to_string()),
        );
    }
    labels.insert(
        "prefect.io/work-pool-name".into(),
        Value::String(pool.name.clone()),
    );
    configuration.insert("labels".into(), Value::Object(labels));

    Ok(Job {
        flow_run_id: run.id,
        flow_run_name: run.name.clone(),
        pool_type: pool.r#type.clone(),
        configuration,
        idempotency_key: run.submission_key(),
    })
}
