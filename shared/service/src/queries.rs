//! The read use cases behind Prefect's filter routes: `POST /flow_runs/filter`, `/flows/filter`,
//! `/deployments/filter`, `/work_pools/filter`, `/block_documents/filter` and their `count`
//! and `paginate` siblings, in both shapes.
//!
//! Prefect answers a filter on one resource that names others (`/flow_runs/filter` with a
//! `deployments` filter, `/flows/filter` with a `flow_runs` filter, ...) with `EXISTS`
//! subqueries (`prefect/server/models/*.py`, `_apply_*_filters`). pushpool reads the small
//! collections (flows, deployments, work pools, block types and schemas) whole and tests them
//! with the typed predicates of [`pushpool_core::filter`]; the flow run side is one
//! [`FlowRunQuery`] that each store answers (SQLite in SQL where its columns allow). The
//! correlations Prefect's joins make are kept: for `/flows/filter`, one deployment must pass
//! both the `deployments` and the `work_pools` filter; `work_pools` reach runs and deployments
//! through their work pool, as Prefect's work queue join does (every queue here is its
//! pool's).

use std::collections::{HashMap, HashSet};

use pushpool_core::filter::{
    BlockDocumentFilter, BlockDocumentSort, BlockSchemaFilter, BlockTypeFilter, DeploymentFilter,
    DeploymentSort, FlowFilter, FlowRunFilter, FlowRunSort, FlowSort, WorkPoolFilter,
    WorkQueueFilter,
};
use pushpool_core::model::{BlockDocument, Deployment, Flow, FlowRun, WorkPool};
use pushpool_store::{FlowRunQuery, Page, Store, StoreError, TaskRunFilter};
use uuid::Uuid;

/// The filters a route takes besides its own resource's, each `None` when absent.
#[derive(Debug, Clone, Default)]
pub struct Related {
    /// `flows`.
    pub flows: Option<FlowFilter>,
    /// `flow_runs`.
    pub flow_runs: Option<FlowRunFilter>,
    /// `deployments`.
    pub deployments: Option<DeploymentFilter>,
    /// `work_pools`.
    pub work_pools: Option<WorkPoolFilter>,
    /// `work_pool_queues`: the run's (deployment's) work queue passes it (Prefect joins on
    /// `work_queue_id`). Runs are then read unpaged and filtered here before paging: exact,
    /// at the cost of reading every run the other filters match.
    pub work_pool_queues: Option<WorkQueueFilter>,
}

/// The ids of the work queues, of every pool, that pass `filter`.
async fn queue_ids(
    store: &dyn Store,
    filter: &WorkQueueFilter,
) -> Result<HashSet<Uuid>, StoreError> {
    Ok(store
        .list_work_queues(None)
        .await?
        .into_iter()
        .filter(|q| filter.matches(q.id, &q.name))
        .map(|q| q.id)
        .collect())
}

/// Reads what a flow run filter needs from other resources: the task runs of the flow runs
/// its `parent_flow_run_id` names (Prefect's join through `task_run`).
async fn resolve(store: &dyn Store, filter: &mut FlowRunFilter) -> Result<(), StoreError> {
    let Some(parents) = filter
        .parent_flow_run_id
        .as_ref()
        .and_then(|p| p.any_.clone())
    else {
        return Ok(());
    };
    let task_runs = if parents.is_empty() {
        Vec::new()
    } else {
        store
            .list_task_runs(&TaskRunFilter {
                flow_run_ids: Some(parents),
                ..TaskRunFilter::default()
            })
            .await?
            .into_iter()
            .map(|t| t.id)
            .collect()
    };
    filter.parent_task_runs = Some(task_runs);
    Ok(())
}

/// Applies a page to an ordered list.
fn page_of<T>(items: Vec<T>, page: Page) -> Vec<T> {
    items
        .into_iter()
        .skip(page.offset)
        .take(page.limit.unwrap_or(usize::MAX))
        .collect()
}

/// The names of the pools that pass `filter`.
async fn pool_names(
    store: &dyn Store,
    filter: &WorkPoolFilter,
) -> Result<HashSet<String>, StoreError> {
    Ok(store
        .list_work_pools(Page::default())
        .await?
        .into_iter()
        .filter(|p| filter.matches(p))
        .map(|p| p.name)
        .collect())
}

/// Flow names by id.
async fn flow_names(store: &dyn Store) -> Result<HashMap<Uuid, String>, StoreError> {
    Ok(store
        .list_flows(Page::default())
        .await?
        .into_iter()
        .map(|f| (f.id, f.name))
        .collect())
}

/// Deployments that pass `filter` (reading flow names only when the filter needs them).
async fn matching_deployments(
    store: &dyn Store,
    filter: Option<&DeploymentFilter>,
) -> Result<Vec<Deployment>, StoreError> {
    let all = store.list_deployments(Page::default()).await?;
    let Some(filter) = filter else {
        return Ok(all);
    };
    let names = if filter.needs_flow_names() {
        flow_names(store).await?
    } else {
        HashMap::new()
    };
    Ok(all
        .into_iter()
        .filter(|d| filter.matches(d, names.get(&d.flow_id).map(String::as_str)))
        .collect())
}

/// Flows that pass `filter`.
async fn matching_flows(
    store: &dyn Store,
    filter: Option<&FlowFilter>,
) -> Result<Vec<Flow>, StoreError> {
    let all = store.list_flows(Page::default()).await?;
    let Some(filter) = filter else {
        return Ok(all);
    };
    let with_deployments: HashSet<Uuid> = if filter.needs_deployments() {
        store
            .list_deployments(Page::default())
            .await?
            .into_iter()
            .map(|d| d.flow_id)
            .collect()
    } else {
        HashSet::new()
    };
    Ok(all
        .into_iter()
        .filter(|f| filter.matches(f, with_deployments.contains(&f.id)))
        .collect())
}

/// The flow run query of a `/flow_runs/filter` body: its `flow_runs` filter, with `flows`,
/// `deployments` and `work_pools` resolved to the ids and names runs must have.
///
/// # Errors
/// The store's.
pub async fn flow_run_query(
    store: &dyn Store,
    related: &Related,
    sort: FlowRunSort,
    page: Page,
) -> Result<FlowRunQuery, StoreError> {
    let mut query = FlowRunQuery {
        filter: related.flow_runs.clone().unwrap_or_default(),
        sort,
        page,
        ..FlowRunQuery::default()
    };
    resolve(store, &mut query.filter).await?;
    if let Some(flows) = &related.flows {
        query.flow_ids = Some(
            matching_flows(store, Some(flows))
                .await?
                .into_iter()
                .map(|f| f.id)
                .collect(),
        );
    }
    if let Some(deployments) = &related.deployments {
        query.deployment_ids = Some(
            matching_deployments(store, Some(deployments))
                .await?
                .into_iter()
                .map(|d| d.id)
                .collect(),
        );
    }
    if let Some(pools) = &related.work_pools {
        let mut names: Vec<String> = pool_names(store, pools).await?.into_iter().collect();
        names.sort();
        query.work_pool_names = Some(names);
    }
    Ok(query)
}

/// The flow runs of a `/flow_runs/filter` body, sorted and paged.
///
/// # Errors
/// The store's.
pub async fn read_flow_runs(
    store: &dyn Store,
    related: &Related,
    sort: FlowRunSort,
    page: Page,
) -> Result<Vec<FlowRun>, StoreError> {
    if let Some(queues) = &related.work_pool_queues {
        let ids = queue_ids(store, queues).await?;
        let query = flow_run_query(store, related, sort, Page::default()).await?;
        let mut runs = store.list_flow_runs(&query).await?;
        runs.retain(|r| r.work_queue_id.is_some_and(|q| ids.contains(&q)));
        return Ok(page_of(runs, page));
    }
    let query = flow_run_query(store, related, sort, page).await?;
    store.list_flow_runs(&query).await
}

/// How many flow runs a `/flow_runs/count` body matches.
///
/// # Errors
/// The store's.
pub async fn count_flow_runs(store: &dyn Store, related: &Related) -> Result<u64, StoreError> {
    if related.work_pool_queues.is_some() {
        let runs = read_flow_runs(store, related, FlowRunSort::default(), Page::default()).await?;
        return Ok(runs.len() as u64);
    }
    let query = flow_run_query(store, related, FlowRunSort::default(), Page::default()).await?;
    store.count_flow_runs(&query).await
}

/// The values of `field` over the runs that pass `filter` (for `EXISTS` on flow runs).
async fn run_field<T: Eq + std::hash::Hash>(
    store: &dyn Store,
    filter: &FlowRunFilter,
    field: impl Fn(&FlowRun) -> Option<T>,
) -> Result<HashSet<T>, StoreError> {
    let mut filter = filter.clone();
    resolve(store, &mut filter).await?;
    Ok(store
        .list_flow_runs(&FlowRunQuery::new(filter))
        .await?
        .iter()
        .filter_map(field)
        .collect())
}

/// Every flow of a `/flows/filter` body, sorted (unpaged).
async fn all_flows(
    store: &dyn Store,
    related: &Related,
    sort: FlowSort,
) -> Result<Vec<Flow>, StoreError> {
    let mut flows = matching_flows(store, related.flows.as_ref()).await?;
    if related.deployments.is_some() || related.work_pools.is_some() {
        let pools = match &related.work_pools {
            Some(f) => Some(pool_names(store, f).await?),
            None => None,
        };
        let with: HashSet<Uuid> = matching_deployments(store, related.deployments.as_ref())
            .await?
            .into_iter()
            .filter(|d| {
                pools
                    .as_ref()
                    .is_none_or(|p| d.work_pool_name.as_ref().is_some_and(|n| p.contains(n)))
            })
            .map(|d| d.flow_id)
            .collect();
        flows.retain(|f| with.contains(&f.id));
    }
    if let Some(runs) = &related.flow_runs {
        let with = run_field(store, runs, |r| Some(r.flow_id)).await?;
        flows.retain(|f| with.contains(&f.id));
    }
    flows.sort_by(|a, b| sort.compare(a, b));
    Ok(flows)
}

/// The flows of a `/flows/filter` body, sorted and paged.
///
/// # Errors
/// The store's.
pub async fn read_flows(
    store: &dyn Store,
    related: &Related,
    sort: FlowSort,
    page: Page,
) -> Result<Vec<Flow>, StoreError> {
    Ok(page_of(all_flows(store, related, sort).await?, page))
}

/// How many flows a `/flows/count` body matches.
///
/// # Errors
/// The store's.
pub async fn count_flows(store: &dyn Store, related: &Related) -> Result<u64, StoreError> {
    Ok(all_flows(store, related, FlowSort::default()).await?.len() as u64)
}

/// Every deployment of a `/deployments/filter` body, sorted (unpaged).
async fn all_deployments(
    store: &dyn Store,
    related: &Related,
    sort: DeploymentSort,
) -> Result<Vec<Deployment>, StoreError> {
    let mut deployments = matching_deployments(store, related.deployments.as_ref()).await?;
    if related.flows.is_some() {
        let flows: HashSet<Uuid> = matching_flows(store, related.flows.as_ref())
            .await?
            .into_iter()
            .map(|f| f.id)
            .collect();
        deployments.retain(|d| flows.contains(&d.flow_id));
    }
    if let Some(runs) = &related.flow_runs {
        let with = run_field(store, runs, |r| r.deployment_id).await?;
        deployments.retain(|d| with.contains(&d.id));
    }
    if let Some(pools) = &related.work_pools {
        let pools = pool_names(store, pools).await?;
        deployments.retain(|d| d.work_pool_name.as_ref().is_some_and(|n| pools.contains(n)));
    }
    if let Some(queues) = &related.work_pool_queues {
        let ids = queue_ids(store, queues).await?;
        deployments.retain(|d| d.work_queue_id.is_some_and(|q| ids.contains(&q)));
    }
    deployments.sort_by(|a, b| sort.compare(a, b));
    Ok(deployments)
}

/// The deployments of a `/deployments/filter` body, sorted and paged.
///
/// # Errors
/// The store's.
pub async fn read_deployments(
    store: &dyn Store,
    related: &Related,
    sort: DeploymentSort,
    page: Page,
) -> Result<Vec<Deployment>, StoreError> {
    Ok(page_of(all_deployments(store, related, sort).await?, page))
}

/// How many deployments a `/deployments/count` body matches.
///
/// # Errors
/// The store's.
pub async fn count_deployments(store: &dyn Store, related: &Related) -> Result<u64, StoreError> {
    Ok(all_deployments(store, related, DeploymentSort::default())
        .await?
        .len() as u64)
}

/// The work pools that pass `filter`, by name (Prefect's order), paged.
///
/// # Errors
/// The store's.
pub async fn read_work_pools(
    store: &dyn Store,
    filter: &WorkPoolFilter,
    page: Page,
) -> Result<Vec<WorkPool>, StoreError> {
    let mut pools: Vec<WorkPool> = store
        .list_work_pools(Page::default())
        .await?
        .into_iter()
        .filter(|p| filter.matches(p))
        .collect();
    pools.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(page_of(pools, page))
}

/// The block document filters of `/block_documents/filter` and `/count`.
#[derive(Debug, Clone, Default)]
pub struct BlockDocumentQuery {
    /// `block_documents` (its default hides anonymous documents).
    pub block_documents: BlockDocumentFilter,
    /// `block_types`: the document's type must pass.
    pub block_types: Option<BlockTypeFilter>,
    /// `block_schemas`: the document's schema must pass.
    pub block_schemas: Option<BlockSchemaFilter>,
}

/// The block documents of a query, sorted and paged.
///
/// # Errors
/// The store's.
pub async fn read_block_documents(
    store: &dyn Store,
    query: &BlockDocumentQuery,
    sort: BlockDocumentSort,
    page: Page,
) -> Result<Vec<BlockDocument>, StoreError> {
    let types: HashMap<Uuid, pushpool_core::model::BlockType> = store
        .list_block_types(Page::default())
        .await?
        .into_iter()
        .map(|t| (t.id, t))
        .collect();
    let schemas: HashMap<Uuid, pushpool_core::model::BlockSchema> = match &query.block_schemas {
        Some(_) => store
            .list_block_schemas(Page::default())
            .await?
            .into_iter()
            .map(|s| (s.id, s))
            .collect(),
        None => HashMap::new(),
    };
    let mut docs: Vec<BlockDocument> = store
        .list_block_documents(Page::default())
        .await?
        .into_iter()
        .filter(|d| query.block_documents.matches(d))
        .filter(|d| {
            query
                .block_types
                .as_ref()
                .is_none_or(|f| types.get(&d.block_type_id).is_some_and(|t| f.matches(t)))
        })
        .filter(|d| {
            query.block_schemas.as_ref().is_none_or(|f| {
                schemas
                    .get(&d.block_schema_id)
                    .is_some_and(|s| f.matches(s))
            })
        })
        .collect();
    let type_name = |d: &BlockDocument| {
        types
            .get(&d.block_type_id)
            .map(|t| t.name.clone())
            .unwrap_or_default()
    };
    docs.sort_by(|a, b| sort.compare((a, &type_name(a)), (b, &type_name(b))));
    Ok(page_of(docs, page))
}
