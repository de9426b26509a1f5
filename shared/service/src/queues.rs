//! A work pool's work queues, with Prefect's rules (`prefect/server/models/workers.py`):
//!
//! - every pool has a `default` queue, made with the pool (its id is the pool's
//!   `default_queue_id`, its description "The work pool's default queue."); a pool stored before
//!   queues were modelled gets it the first time its queues are read ([`default_queue`]);
//! - names are unique within a pool;
//! - priorities are unique positive integers within a pool, 1 the highest: a queue created
//!   without one takes the first free priority (the lowest unused, else the highest plus one);
//!   a queue given one (at creation or update) takes it and the queues at or after it move
//!   down as little as needed to stay unique, in order (`bulk_update_work_queue_priorities`);
//!   a deletion leaves the others as they are.
//!
//! These are read-modify-write sequences over a small collection: two concurrent priority
//! changes in one pool may leave two queues with one priority (the next change of a
//! priority in the pool makes them unique again). Prefect runs them in one transaction.

use chrono::Utc;
use pushpool_core::model::{WorkPool, WorkQueue};
use pushpool_store::{Store, StoreError};
use uuid::Uuid;

/// The default queue's name.
pub const DEFAULT_QUEUE_NAME: &str = "default";
/// The default queue's description (Prefect's).
pub const DEFAULT_QUEUE_DESCRIPTION: &str = "The work pool's default queue.";

/// What a new queue is made of (Prefect's `WorkQueueCreate`, `filter` aside).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueCreate {
    /// Name, unique within the pool.
    pub name: String,
    /// Description (`""` when not given, as Prefect).
    pub description: Option<String>,
    /// Paused: its runs wait.
    pub is_paused: bool,
    /// Concurrency limit: stored, not enforced yet.
    pub concurrency_limit: Option<i64>,
    /// Priority (positive); `None`: the first free one.
    pub priority: Option<i64>,
}

/// The pool's default queue, made (and stored) if the pool has none yet.
///
/// # Errors
/// Store failures.
pub async fn default_queue(store: &dyn Store, pool: &WorkPool) -> Result<WorkQueue, StoreError> {
    match store.read_work_queue(pool.default_queue_id).await {
        Ok(q) => return Ok(q),
        Err(StoreError::NotFound(_)) => {}
        Err(e) => return Err(e),
    }
    let queue = WorkQueue {
        id: pool.default_queue_id,
        created: pool.created,
        updated: pool.created,
        name: DEFAULT_QUEUE_NAME.into(),
        description: Some(DEFAULT_QUEUE_DESCRIPTION.into()),
        is_paused: false,
        concurrency_limit: None,
        priority: 1,
        work_pool_id: pool.id,
        last_polled: None,
    };
    match store.create_work_queue(&queue).await {
        Ok(()) => Ok(queue),
        // Made by a concurrent reader in the meantime.
        Err(StoreError::Conflict(_)) => store.read_work_queue(pool.default_queue_id).await,
        Err(e) => Err(e),
    }
}

/// The pool's queues by priority (then name), the default queue included.
///
/// # Errors
/// Store failures.
pub async fn pool_queues(store: &dyn Store, pool: &WorkPool) -> Result<Vec<WorkQueue>, StoreError> {
    default_queue(store, pool).await?;
    let mut queues = store.list_work_queues(Some(pool.id)).await?;
    queues.sort_by(|a, b| a.priority.cmp(&b.priority).then(a.name.cmp(&b.name)));
    Ok(queues)
}

/// The queue `name` of `pool`.
///
/// # Errors
/// `NotFound("Work pool queue '<pool>/<name>' not found.")` (Prefect's detail), store
/// failures.
pub async fn read_queue(
    store: &dyn Store,
    pool: &WorkPool,
    name: &str,
) -> Result<WorkQueue, StoreError> {
    if name == DEFAULT_QUEUE_NAME {
        default_queue(store, pool).await?;
    }
    store
        .read_work_queue_by_name(pool.id, name)
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => {
                StoreError::NotFound(format!("Work pool queue '{}/{name}' not found.", pool.name))
            }
            e => e,
        })
}

/// Creates a queue in `pool` with Prefect's priority rules.
///
/// # Errors
/// `Conflict("A work queue with this name already exists in work pool '<pool>'.")`, store
/// failures.
pub async fn create_queue(
    store: &dyn Store,
    pool: &WorkPool,
    create: QueueCreate,
) -> Result<WorkQueue, StoreError> {
    let existing = pool_queues(store, pool).await?;
    let priority = create.priority.unwrap_or_else(|| {
        let mut taken: Vec<i64> = existing.iter().map(|q| q.priority).collect();
        taken.sort_unstable();
        taken
            .iter()
            .enumerate()
            .find(|(i, p)| (*i as i64) + 1 != **p)
            .map_or_else(
                || taken.last().copied().unwrap_or(0).saturating_add(1),
                |(i, _)| i as i64 + 1,
            )
    });
    let now = Utc::now();
    let queue = WorkQueue {
        id: Uuid::new_v4(),
        created: now,
        updated: now,
        name: create.name,
        description: Some(create.description.unwrap_or_default()),
        is_paused: create.is_paused,
        concurrency_limit: create.concurrency_limit,
        priority,
        work_pool_id: pool.id,
        last_polled: None,
    };
    store.create_work_queue(&queue).await.map_err(|e| match e {
        StoreError::Conflict(_) => StoreError::Conflict(format!(
            "A work queue with this name already exists in work pool '{}'.",
            pool.name
        )),
        e => e,
    })?;
    if create.priority.is_some() {
        let mut all = existing;
        all.push(queue.clone());
        shift_priorities(store, all, queue.id, priority).await?;
    }
    Ok(queue)
}

/// The queue a deployment names: the pool's queue of that name, created (with the first
/// free priority) when missing, as Prefect's deployment create and update do.
///
/// # Errors
/// Store failures.
pub async fn queue_for_deployment(
    store: &dyn Store,
    pool: &WorkPool,
    name: &str,
) -> Result<WorkQueue, StoreError> {
    match read_queue(store, pool, name).await {
        Ok(q) => return Ok(q),
        Err(StoreError::NotFound(_)) => {}
        Err(e) => return Err(e),
    }
    let create = QueueCreate {
        name: name.into(),
        ..QueueCreate::default()
    };
    match create_queue(store, pool, create).await {
        Ok(q) => {
            tracing::info!(work_pool = %pool.name, work_queue = %q.name, "work queue created for a deployment");
            Ok(q)
        }
        Err(StoreError::Conflict(_)) => store.read_work_queue_by_name(pool.id, name).await,
        Err(e) => Err(e),
    }
}

/// Writes `queue` (already changed by the caller); when `new_priority` is given, it takes
/// that priority and the others of the pool shift as Prefect's
/// `bulk_update_work_queue_priorities` does.
///
/// # Errors
/// `Conflict` when a rename takes a name used in the pool, `NotFound`, store failures.
pub async fn update_queue(
    store: &dyn Store,
    pool: &WorkPool,
    mut queue: WorkQueue,
    new_priority: Option<i64>,
) -> Result<WorkQueue, StoreError> {
    queue.updated = Utc::now();
    if let Some(p) = new_priority {
        queue.priority = p;
    }
    store.update_work_queue(&queue).await.map_err(|e| match e {
        StoreError::Conflict(_) => StoreError::Conflict(format!(
            "A work queue with this name already exists in work pool '{}'.",
            pool.name
        )),
        e => e,
    })?;
    if let Some(p) = new_priority {
        let all = store.list_work_queues(Some(pool.id)).await?;
        shift_priorities(store, all, queue.id, p).await?;
    }
    Ok(queue)
}

/// Prefect's `bulk_update_work_queue_priorities` for one queue: `moved` takes `priority`,
/// placed before the first other queue at or after it; walking the queues in that order,
/// each whose priority is not above the previous one's takes the previous plus one. Writes
/// only the queues whose priority changed.
async fn shift_priorities(
    store: &dyn Store,
    queues: Vec<WorkQueue>,
    moved: Uuid,
    priority: i64,
) -> Result<(), StoreError> {
    let (mut placed, mut others): (Vec<WorkQueue>, Vec<WorkQueue>) =
        queues.into_iter().partition(|q| q.id == moved);
    others.sort_by_key(|q| q.priority);
    let original: std::collections::HashMap<Uuid, i64> =
        others.iter().map(|q| (q.id, q.priority)).collect();
    if let Some(mut q) = placed.pop() {
        q.priority = priority;
        if let Some(at) = others.iter().position(|o| o.priority >= priority) {
            others.insert(at, q);
        }
        // Prefect appends nothing when no queue is at or after it: it keeps its priority,
        // which is then already the largest.
    }
    let mut last = 0;
    for q in &mut others {
        if q.priority <= last {
            last = last.saturating_add(1);
            q.priority = last;
        } else {
            last = q.priority;
        }
        let changed = original.get(&q.id).is_none_or(|p| *p != q.priority);
        if changed && q.id != moved {
            q.updated = Utc::now();
            store.update_work_queue(q).await?;
        } else if q.id == moved && q.priority != priority {
            store.update_work_queue(q).await?;
        }
    }
    Ok(())
}

/// The queue of `run` (a run of `pool`) among `queues` (the pool's): the one of its
/// `work_queue_id`, else (no id, or the default queue's id, which runs stored before queues
/// were modelled carry whatever their queue's name) the one named by its
/// `work_queue_name` (`default` when it has none). `None`: a queue deleted since.
pub fn queue_of<'q>(
    run: &pushpool_core::model::FlowRun,
    pool: &WorkPool,
    queues: &'q [WorkQueue],
) -> Option<&'q WorkQueue> {
    match run.work_queue_id {
        Some(id) if id != pool.default_queue_id => queues.iter().find(|q| q.id == id),
        _ => {
            let name = run.work_queue_name.as_deref().unwrap_or(DEFAULT_QUEUE_NAME);
            queues.iter().find(|q| q.name == name)
        }
    }
}
