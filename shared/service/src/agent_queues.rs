//! Work queues addressed without a pool (Prefect's `api/work_queues.py`: `POST
//! /work_queues/`, `GET /work_queues/name/{name}`), which live in Prefect's default agent
//! pool (`models/work_queues.py`, `DEFAULT_AGENT_WORK_POOL_NAME`):
//!
//! - a queue created without a pool goes into the pool `default-agent-pool` (type
//!   `prefect-agent`, an empty base job template: a worker pool, whose runs pushpool does not
//!   submit), which is created, with its `default` queue, when missing; asking for a queue
//!   named `default` when that pool is created answers its default queue;
//! - a queue read by name is the default agent pool's queue of that name when that pool
//!   exists, else the first queue of that name in any pool (pools by name; Prefect's query
//!   has no order).

use chrono::Utc;
use pushpool_core::model::{WorkPool, WorkPoolStatus, WorkQueue};
use pushpool_store::{Page, Store, StoreError};
use uuid::Uuid;

use crate::queues::{self, DEFAULT_QUEUE_NAME, QueueCreate};

/// Prefect's `DEFAULT_AGENT_WORK_POOL_NAME`.
pub const DEFAULT_AGENT_POOL_NAME: &str = "default-agent-pool";
/// The type Prefect gives that pool.
pub const DEFAULT_AGENT_POOL_TYPE: &str = "prefect-agent";

/// The default agent pool, created (with its default queue) when missing; `true` when this
/// call created it.
///
/// # Errors
/// Store failures.
pub async fn default_agent_pool(store: &dyn Store) -> Result<(WorkPool, bool), StoreError> {
    match store.read_work_pool(DEFAULT_AGENT_POOL_NAME).await {
        Ok(p) => return Ok((p, false)),
        Err(StoreError::NotFound(_)) => {}
        Err(e) => return Err(e),
    }
    let now = Utc::now();
    let pool = WorkPool {
        id: Uuid::new_v4(),
        created: now,
        updated: now,
        name: DEFAULT_AGENT_POOL_NAME.into(),
        description: None,
        r#type: DEFAULT_AGENT_POOL_TYPE.into(),
        base_job_template: serde_json::json!({}),
        is_paused: false,
        concurrency_limit: None,
        status: WorkPoolStatus::NotReady,
        default_queue_id: Uuid::new_v4(),
        storage_configuration: Default::default(),
        active_slots: None,
    };
    match store.create_work_pool(&pool).await {
        Ok(()) => {
            queues::default_queue(store, &pool).await?;
            Ok((pool, true))
        }
        // Made by a concurrent request in the meantime.
        Err(StoreError::Conflict(_)) => {
            Ok((store.read_work_pool(DEFAULT_AGENT_POOL_NAME).await?, false))
        }
        Err(e) => Err(e),
    }
}

/// `POST /work_queues/`: creates the queue in the default agent pool (see the module docs)
/// with Prefect's priority rules.
///
/// # Errors
/// `Conflict("A work queue with this name already exists.")` (Prefect's detail for this
/// route); store failures.
pub async fn create_pool_less_queue(
    store: &dyn Store,
    create: QueueCreate,
) -> Result<(WorkQueue, WorkPool), StoreError> {
    let (pool, created) = default_agent_pool(store).await?;
    if created && create.name == DEFAULT_QUEUE_NAME {
        return Ok((queues::default_queue(store, &pool).await?, pool));
    }
    match queues::create_queue(store, &pool, create).await {
        Ok(q) => Ok((q, pool)),
        Err(StoreError::Conflict(_)) => Err(StoreError::Conflict(
            "A work queue with this name already exists.".into(),
        )),
        Err(e) => Err(e),
    }
}

/// `GET /work_queues/name/{name}` (see the module docs).
///
/// # Errors
/// `NotFound("work queue not found")` (Prefect's detail); store failures.
pub async fn read_queue_by_name(
    store: &dyn Store,
    name: &str,
) -> Result<(WorkQueue, WorkPool), StoreError> {
    let missing = || StoreError::NotFound("work queue not found".into());
    match store.read_work_pool(DEFAULT_AGENT_POOL_NAME).await {
        Ok(pool) => {
            return match store.read_work_queue_by_name(pool.id, name).await {
                Ok(q) => Ok((q, pool)),
                Err(StoreError::NotFound(_)) if name == DEFAULT_QUEUE_NAME => {
                    Ok((queues::default_queue(store, &pool).await?, pool))
                }
                Err(StoreError::NotFound(_)) => Err(missing()),
                Err(e) => Err(e),
            };
        }
        Err(StoreError::NotFound(_)) => {}
        Err(e) => return Err(e),
    }
    for pool in store.list_work_pools(Page::default()).await? {
        let found = queues::pool_queues(store, &pool)
            .await?
            .into_iter()
            .find(|q| q.name == name);
        if let Some(q) = found {
            return Ok((q, pool));
        }
    }
    Err(missing())
}
