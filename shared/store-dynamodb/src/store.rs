//! Resources stored as documents with unique keys (pools, blocks, flows, deployments, API
//! keys), and the [`Store`] implementation, which delegates flow runs and the change feed to
//! [`crate::runs`].

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pushpool_core::model::{
    ApiKey, Artifact, BlockDocument, BlockSchema, BlockType, Deployment, Flow, FlowRun, Variable,
    WorkPool, WorkQueue,
};
use pushpool_core::state::State;
use pushpool_core::task_run::TaskRun;
use pushpool_store::{
    Change, FlowRunQuery, Page, Result, Store, StoreError, TaskRunFilter, Transaction,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::DynamoStore;
use crate::error::DynamoError;
use crate::item::{
    API_KEY, ARTIFACT, BLOCK_DOCUMENT, BLOCK_SCHEMA, BLOCK_TYPE, BODY, CREATED, Cond, DEPLOYMENT,
    Expr, FLOW, ID, Item, Kind, PK, SK, VARIABLE, WORK_POOL, WORK_QUEUE, composite, decode, encode,
    escape, iso, opt_str, req_str, req_uuid, resource_key, s, unique_attr, unique_key,
};
use crate::ops::{MAX_ATTEMPTS, Query, Tx, backoff, key_string};

/// A document to write: its kind, id, unique keys (one per `kind.uniques`), creation time and
/// JSON body.
struct Doc {
    kind: Kind,
    id: Uuid,
    keys: Vec<String>,
    created: DateTime<Utc>,
    body: String,
}

impl Doc {
    fn new<T: Serialize>(
        kind: Kind,
        id: Uuid,
        keys: Vec<String>,
        created: DateTime<Utc>,
        value: &T,
    ) -> Result<Self, DynamoError> {
        Ok(Self {
            kind,
            id,
            keys,
            created,
            body: encode(value, kind.label)?,
        })
    }

    /// The resource item.
    fn resource(&self) -> Item {
        let mut item = resource_key(self.kind, self.id);
        item.insert(ID.into(), s(self.id.to_string()));
        item.insert(BODY.into(), s(self.body.clone()));
        for (i, k) in self.keys.iter().enumerate() {
            item.insert(unique_attr(i).into(), s(k.clone()));
        }
        item
    }

    /// The uniqueness item of key `i`.
    fn unique(&self, i: usize) -> Item {
        let mut item = unique_key(self.kind, i, self.keys.get(i).map_or("", String::as_str));
        item.insert(ID.into(), s(self.id.to_string()));
        item.insert(CREATED.into(), s(iso(self.created)));
        item
    }
}

/// The unique keys recorded on a stored resource item.
fn stored_keys(kind: Kind, item: &Item) -> Result<Vec<String>, DynamoError> {
    (0..kind.uniques.len())
        .map(|i| Ok(opt_str(item, unique_attr(i))?.unwrap_or("").to_owned()))
        .collect()
}

impl DynamoStore {
    /// Creates a document with its uniqueness items; `Conflict(conflicts[i])` when unique key
    /// `i` is taken (`conflicts[0]` when the id is).
    async fn insert_doc(&self, doc: Doc, conflicts: &[String]) -> Result<()> {
        let mut items = vec![self.put(doc.resource(), Some(Cond::absent()))?];
        for i in 0..doc.keys.len() {
            items.push(self.put(doc.unique(i), Some(Cond::absent()))?);
        }
        let conflict = |i: usize| conflicts.get(i).cloned().unwrap_or_default();
        for attempt in 0..MAX_ATTEMPTS {
            match self.transact(items.clone()).await? {
                Tx::Committed => return Ok(()),
                Tx::Failed(failed) => {
                    let which = (0..doc.keys.len())
                        .find(|i| Tx::failed_at(&failed, i + 1))
                        .unwrap_or(0);
                    return Err(StoreError::Conflict(conflict(which)));
                }
                Tx::Conflicted => backoff(attempt).await,
            }
        }
        Err(contended("create"))
    }

    /// Reads a document by id.
    async fn get_doc<T: DeserializeOwned>(
        &self,
        kind: Kind,
        id: Uuid,
        missing: String,
    ) -> Result<T> {
        match self.get(resource_key(kind, id)).await? {
            Some(item) => Ok(decode(&item, BODY)?),
            None => Err(StoreError::NotFound(missing)),
        }
    }

    /// The id unique key `index` of `kind` points to.
    async fn resolve(&self, kind: Kind, index: usize, value: &str) -> Result<Option<Uuid>> {
        match self.get(unique_key(kind, index, value)).await? {
            Some(item) => Ok(Some(req_uuid(&item, ID)?)),
            None => Ok(None),
        }
    }

    /// Reads a document by unique key `index`.
    async fn get_doc_by_key<T: DeserializeOwned>(
        &self,
        kind: Kind,
        index: usize,
        value: &str,
        missing: String,
    ) -> Result<T> {
        match self.resolve(kind, index, value).await? {
            Some(id) => self.get_doc(kind, id, missing).await,
            None => Err(StoreError::NotFound(missing)),
        }
    }

    /// Replaces a document (matched by id), moving the uniqueness items of changed keys in
    /// the same transaction.
    async fn update_doc(&self, doc: Doc, missing: String) -> Result<()> {
        let kind = doc.kind;
        for attempt in 0..MAX_ATTEMPTS {
            let Some(current) = self.get(resource_key(kind, doc.id)).await? else {
                return Err(StoreError::NotFound(missing));
            };
            let old = stored_keys(kind, &current)?;
            let guard: Vec<(&str, _)> = old
                .iter()
                .enumerate()
                .map(|(i, k)| (unique_attr(i), s(k.clone())))
                .collect();
            let mut items = vec![self.put(doc.resource(), Some(Cond::equals(&guard)))?];
            let mut new_unique_positions = Vec::new();
            for (i, key) in doc.keys.iter().enumerate() {
                let previous = old.get(i).map_or("", String::as_str);
                if key != previous {
                    new_unique_positions.push(items.len());
                    items.push(self.put(doc.unique(i), Some(Cond::absent()))?);
                    items.push(self.delete(
                        unique_key(kind, i, previous),
                        Some(Cond::absent_or_equals(ID, s(doc.id.to_string()))),
                    )?);
                }
            }
            match self.transact(items).await? {
                Tx::Committed => return Ok(()),
                Tx::Failed(failed)
                    if new_unique_positions
                        .iter()
                        .any(|p| Tx::failed_at(&failed, *p)) =>
                {
                    return Err(StoreError::Conflict(format!(
                        "A {} with this name already exists.",
                        kind.label
                    )));
                }
                // Changed or deleted since it was read: read it again.
                Tx::Failed(_) | Tx::Conflicted => backoff(attempt).await,
            }
        }
        Err(contended("update"))
    }

    /// Deletes a document and its uniqueness items.
    async fn delete_doc(&self, kind: Kind, id: Uuid, missing: String) -> Result<()> {
        for attempt in 0..MAX_ATTEMPTS {
            let Some(current) = self.get(resource_key(kind, id)).await? else {
                return Err(StoreError::NotFound(missing));
            };
            let keys = stored_keys(kind, &current)?;
            let guard: Vec<(&str, _)> = keys
                .iter()
                .enumerate()
                .map(|(i, k)| (unique_attr(i), s(k.clone())))
                .collect();
            let mut items = vec![self.delete(resource_key(kind, id), Some(Cond::equals(&guard)))?];
            for (i, key) in keys.iter().enumerate() {
                items.push(self.delete(
                    unique_key(kind, i, key),
                    Some(Cond::absent_or_equals(ID, s(id.to_string()))),
                )?);
            }
            match self.transact(items).await? {
                Tx::Committed => return Ok(()),
                Tx::Failed(_) | Tx::Conflicted => backoff(attempt).await,
            }
        }
        Err(contended("delete"))
    }

    /// Lists documents in the order of their listing key, paged.
    async fn list_docs<T: DeserializeOwned>(&self, kind: Kind, page: Page) -> Result<Vec<T>> {
        self.list_docs_from(kind, None, page).await
    }

    /// [`Self::list_docs`], only those whose listing key starts with `prefix` when given
    /// (one `begins_with` query: the work queues of one pool).
    async fn list_docs_from<T: DeserializeOwned>(
        &self,
        kind: Kind,
        prefix: Option<&str>,
        page: Page,
    ) -> Result<Vec<T>> {
        let partition = kind.uniques.first().copied().unwrap_or("UNIQUE");
        let mut expr = Expr::default();
        let mut key_condition = format!("{} = {}", expr.name(PK), expr.value(s(partition)));
        if let Some(prefix) = prefix {
            key_condition = format!(
                "{key_condition} AND begins_with({}, {})",
                expr.name(SK),
                expr.value(s(prefix))
            );
        }
        let projection = Some(expr.name(ID));
        let query = Query {
            key_condition,
            projection,
            expr,
            ..Query::default()
        };
        let max = page.limit.map(|l| page.offset.saturating_add(l));
        let pointers = self.query(&query, max).await?;
        let ids = pointers
            .iter()
            .skip(page.offset)
            .map(|p| req_uuid(p, ID))
            .collect::<Result<Vec<_>, _>>()?;
        let keys: Vec<Item> = ids.iter().map(|id| resource_key(kind, *id)).collect();
        let found = self.batch_get(keys.clone()).await?;
        let mut out = Vec::with_capacity(keys.len());
        for k in &keys {
            // A resource deleted between the two reads is left out.
            if let Some(item) = found.get(&key_string(k)) {
                out.push(decode(item, BODY)?);
            }
        }
        Ok(out)
    }

    /// The newest block schema with `checksum` (the last created).
    async fn newest_block_schema(&self, checksum: &str) -> Result<BlockSchema> {
        let missing = || StoreError::NotFound("Block schema not found".into());
        let mut expr = Expr::default();
        let key_condition = format!(
            "{} = {} AND begins_with({}, {})",
            expr.name(PK),
            expr.value(s(BLOCK_SCHEMA.uniques[0])),
            expr.name(SK),
            expr.value(s(format!("{}#", escape(checksum)))),
        );
        let query = Query {
            key_condition,
            expr,
            ..Query::default()
        };
        let mut newest: Option<(String, Uuid)> = None;
        for item in self.query(&query, None).await? {
            let created = req_str(&item, CREATED)?.to_owned();
            let id = req_uuid(&item, ID)?;
            if newest.as_ref().is_none_or(|(c, _)| created >= *c) {
                newest = Some((created, id));
            }
        }
        let (_, id) = newest.ok_or_else(missing)?;
        self.get_doc(BLOCK_SCHEMA, id, "Block schema not found".into())
            .await
    }
}

fn contended(operation: &'static str) -> StoreError {
    DynamoError::Contended {
        operation,
        attempts: MAX_ATTEMPTS,
    }
    .into()
}

fn work_pool_doc(pool: &WorkPool) -> Result<Doc, DynamoError> {
    Doc::new(
        WORK_POOL,
        pool.id,
        vec![pool.name.clone()],
        pool.created,
        pool,
    )
}

fn work_queue_key(work_pool_id: Uuid, name: &str) -> String {
    composite(&[&work_pool_id.to_string(), name])
}

fn work_queue_doc(q: &WorkQueue) -> Result<Doc, DynamoError> {
    let key = work_queue_key(q.work_pool_id, &q.name);
    Doc::new(WORK_QUEUE, q.id, vec![key], q.created, q)
}

/// An artifact's unique key is its id: the listing partition then holds every artifact.
fn artifact_doc(a: &Artifact) -> Result<Doc, DynamoError> {
    Doc::new(ARTIFACT, a.id, vec![a.id.to_string()], a.created, a)
}

fn variable_doc(v: &Variable) -> Result<Doc, DynamoError> {
    Doc::new(VARIABLE, v.id, vec![v.name.clone()], v.created, v)
}

fn block_type_doc(bt: &BlockType) -> Result<Doc, DynamoError> {
    Doc::new(BLOCK_TYPE, bt.id, vec![bt.slug.clone()], bt.created, bt)
}

fn block_document_key(block_type_id: Uuid, name: &str) -> String {
    composite(&[&block_type_id.to_string(), name])
}

fn block_document_doc(doc: &BlockDocument) -> Result<Doc, DynamoError> {
    let key = block_document_key(doc.block_type_id, doc.name.as_deref().unwrap_or(""));
    Doc::new(BLOCK_DOCUMENT, doc.id, vec![key], doc.created, doc)
}

fn deployment_key(flow_id: Uuid, name: &str) -> String {
    composite(&[&flow_id.to_string(), name])
}

fn deployment_doc(d: &Deployment) -> Result<Doc, DynamoError> {
    let key = deployment_key(d.flow_id, &d.name);
    Doc::new(DEPLOYMENT, d.id, vec![key], d.created, d)
}

fn api_key_doc(key: &ApiKey) -> Result<Doc, DynamoError> {
    Doc::new(
        API_KEY,
        key.id,
        vec![key.name.clone(), key.hash.clone()],
        key.created,
        key,
    )
}

#[async_trait]
impl Store for DynamoStore {
    async fn create_work_pool(&self, pool: &WorkPool) -> Result<()> {
        self.insert_doc(
            work_pool_doc(pool)?,
            &["A work pool with this name already exists.".into()],
        )
        .await
    }

    async fn read_work_pool(&self, name: &str) -> Result<WorkPool> {
        self.get_doc_by_key(
            WORK_POOL,
            0,
            name,
            format!("Work pool \"{name}\" not found."),
        )
        .await
    }

    async fn read_work_pool_by_id(&self, id: Uuid) -> Result<WorkPool> {
        self.get_doc(WORK_POOL, id, format!("Work pool {id} not found."))
            .await
    }

    async fn update_work_pool(&self, pool: &WorkPool) -> Result<()> {
        self.update_doc(
            work_pool_doc(pool)?,
            format!("Work pool \"{}\" not found.", pool.name),
        )
        .await
    }

    async fn delete_work_pool(&self, name: &str) -> Result<()> {
        let missing = format!("Work pool \"{name}\" not found.");
        match self.resolve(WORK_POOL, 0, name).await? {
            Some(id) => self.delete_doc(WORK_POOL, id, missing).await,
            None => Err(StoreError::NotFound(missing)),
        }
    }

    async fn list_work_pools(&self, page: Page) -> Result<Vec<WorkPool>> {
        self.list_docs(WORK_POOL, page).await
    }

    async fn create_work_queue(&self, queue: &WorkQueue) -> Result<()> {
        self.insert_doc(
            work_queue_doc(queue)?,
            &[format!(
                "A work queue with the name '{}' already exists in this work pool.",
                queue.name
            )],
        )
        .await
    }

    async fn read_work_queue(&self, id: Uuid) -> Result<WorkQueue> {
        self.get_doc(WORK_QUEUE, id, "Work queue not found".into())
            .await
    }

    async fn read_work_queue_by_name(&self, work_pool_id: Uuid, name: &str) -> Result<WorkQueue> {
        self.get_doc_by_key(
            WORK_QUEUE,
            0,
            &work_queue_key(work_pool_id, name),
            "Work queue not found".into(),
        )
        .await
    }

    async fn update_work_queue(&self, queue: &WorkQueue) -> Result<()> {
        self.update_doc(work_queue_doc(queue)?, "Work queue not found".into())
            .await
    }

    async fn delete_work_queue(&self, id: Uuid) -> Result<()> {
        self.delete_doc(WORK_QUEUE, id, "Work queue not found".into())
            .await
    }

    async fn list_work_queues(&self, work_pool_id: Option<Uuid>) -> Result<Vec<WorkQueue>> {
        // A queue's listing key is `<pool id>#<name>` (ids hold no `#` to escape).
        let prefix = work_pool_id.map(|p| format!("{p}#"));
        let queues: Vec<WorkQueue> = self
            .list_docs_from(WORK_QUEUE, prefix.as_deref(), Page::default())
            .await?;
        Ok(queues
            .into_iter()
            .filter(|q| work_pool_id.is_none_or(|p| q.work_pool_id == p))
            .collect())
    }

    async fn create_block_type(&self, block_type: &BlockType) -> Result<()> {
        self.insert_doc(
            block_type_doc(block_type)?,
            &[format!(
                "Block type with slug \"{}\" already exists.",
                block_type.slug
            )],
        )
        .await
    }

    async fn read_block_type(&self, id: Uuid) -> Result<BlockType> {
        self.get_doc(BLOCK_TYPE, id, "Block type not found".into())
            .await
    }

    async fn read_block_type_by_slug(&self, slug: &str) -> Result<BlockType> {
        self.get_doc_by_key(BLOCK_TYPE, 0, slug, "Block type not found".into())
            .await
    }

    async fn update_block_type(&self, block_type: &BlockType) -> Result<()> {
        self.update_doc(block_type_doc(block_type)?, "Block type not found".into())
            .await
    }

    async fn list_block_types(&self, page: Page) -> Result<Vec<BlockType>> {
        self.list_docs(BLOCK_TYPE, page).await
    }

    async fn create_block_schema(&self, schema: &BlockSchema) -> Result<()> {
        let key = composite(&[&schema.checksum, &schema.version]);
        let doc = Doc::new(BLOCK_SCHEMA, schema.id, vec![key], schema.created, schema)?;
        self.insert_doc(doc, &["Identical block schema already exists.".into()])
            .await
    }

    async fn read_block_schema(&self, id: Uuid) -> Result<BlockSchema> {
        self.get_doc(BLOCK_SCHEMA, id, "Block schema not found".into())
            .await
    }

    async fn read_block_schema_by_checksum(
        &self,
        checksum: &str,
        version: Option<&str>,
    ) -> Result<BlockSchema> {
        match version {
            Some(v) => {
                self.get_doc_by_key(
                    BLOCK_SCHEMA,
                    0,
                    &composite(&[checksum, v]),
                    "Block schema not found".into(),
                )
                .await
            }
            None => self.newest_block_schema(checksum).await,
        }
    }

    async fn list_block_schemas(&self, page: Page) -> Result<Vec<BlockSchema>> {
        self.list_docs(BLOCK_SCHEMA, page).await
    }

    async fn create_block_document(&self, document: &BlockDocument) -> Result<()> {
        self.insert_doc(
            block_document_doc(document)?,
            &["Block already exists".into()],
        )
        .await
    }

    async fn read_block_document(&self, id: Uuid) -> Result<BlockDocument> {
        self.get_doc(BLOCK_DOCUMENT, id, "Block document not found".into())
            .await
    }

    async fn read_block_document_by_name(
        &self,
        block_type_id: Uuid,
        name: &str,
    ) -> Result<BlockDocument> {
        self.get_doc_by_key(
            BLOCK_DOCUMENT,
            0,
            &block_document_key(block_type_id, name),
            "Block document not found".into(),
        )
        .await
    }

    async fn update_block_document(&self, document: &BlockDocument) -> Result<()> {
        self.update_doc(
            block_document_doc(document)?,
            "Block document not found".into(),
        )
        .await
    }

    async fn delete_block_document(&self, id: Uuid) -> Result<()> {
        self.delete_doc(BLOCK_DOCUMENT, id, "Block document not found".into())
            .await
    }

    async fn list_block_documents(&self, page: Page) -> Result<Vec<BlockDocument>> {
        self.list_docs(BLOCK_DOCUMENT, page).await
    }

    async fn upsert_flow(&self, flow: &Flow) -> Result<(Flow, bool)> {
        let doc = Doc::new(FLOW, flow.id, vec![flow.name.clone()], flow.created, flow)?;
        match self.insert_doc(doc, &[String::new()]).await {
            Ok(()) => Ok((flow.clone(), true)),
            Err(StoreError::Conflict(_)) => Ok((self.read_flow_by_name(&flow.name).await?, false)),
            Err(e) => Err(e),
        }
    }

    async fn read_flow(&self, id: Uuid) -> Result<Flow> {
        self.get_doc(FLOW, id, "Flow not found".into()).await
    }

    async fn read_flow_by_name(&self, name: &str) -> Result<Flow> {
        self.get_doc_by_key(FLOW, 0, name, "Flow not found".into())
            .await
    }

    async fn delete_flow(&self, id: Uuid) -> Result<()> {
        self.delete_doc(FLOW, id, "Flow not found".into()).await
    }

    async fn list_flows(&self, page: Page) -> Result<Vec<Flow>> {
        self.list_docs(FLOW, page).await
    }

    async fn create_variable(&self, variable: &Variable) -> Result<()> {
        self.insert_doc(
            variable_doc(variable)?,
            &[format!(
                "A variable with the name '{}' already exists.",
                variable.name
            )],
        )
        .await
    }

    async fn read_variable(&self, id: Uuid) -> Result<Variable> {
        self.get_doc(VARIABLE, id, "Variable not found.".into())
            .await
    }

    async fn read_variable_by_name(&self, name: &str) -> Result<Variable> {
        self.get_doc_by_key(VARIABLE, 0, name, "Variable not found.".into())
            .await
    }

    async fn update_variable(&self, variable: &Variable) -> Result<()> {
        self.update_doc(variable_doc(variable)?, "Variable not found.".into())
            .await
    }

    async fn delete_variable(&self, id: Uuid) -> Result<()> {
        self.delete_doc(VARIABLE, id, "Variable not found.".into())
            .await
    }

    async fn list_variables(&self, page: Page) -> Result<Vec<Variable>> {
        self.list_docs(VARIABLE, page).await
    }

    async fn create_artifact(&self, artifact: &Artifact) -> Result<()> {
        self.insert_doc(
            artifact_doc(artifact)?,
            &["Artifact already exists.".into()],
        )
        .await
    }

    async fn read_artifact(&self, id: Uuid) -> Result<Artifact> {
        self.get_doc(ARTIFACT, id, "Artifact not found.".into())
            .await
    }

    async fn update_artifact(&self, artifact: &Artifact) -> Result<()> {
        self.update_doc(artifact_doc(artifact)?, "Artifact not found.".into())
            .await
    }

    async fn delete_artifact(&self, id: Uuid) -> Result<()> {
        self.delete_doc(ARTIFACT, id, "Artifact not found.".into())
            .await
    }

    async fn list_artifacts(&self, page: Page) -> Result<Vec<Artifact>> {
        self.list_docs(ARTIFACT, page).await
    }

    async fn create_deployment(&self, deployment: &Deployment) -> Result<()> {
        self.insert_doc(
            deployment_doc(deployment)?,
            &["A deployment with this name already exists for this flow.".into()],
        )
        .await
    }

    async fn read_deployment(&self, id: Uuid) -> Result<Deployment> {
        self.get_doc(DEPLOYMENT, id, "Deployment not found".into())
            .await
    }

    async fn read_deployment_by_name(&self, flow_name: &str, name: &str) -> Result<Deployment> {
        let flow = match self.read_flow_by_name(flow_name).await {
            Ok(f) => f,
            Err(StoreError::NotFound(_)) => {
                return Err(StoreError::NotFound("Deployment not found".into()));
            }
            Err(e) => return Err(e),
        };
        self.get_doc_by_key(
            DEPLOYMENT,
            0,
            &deployment_key(flow.id, name),
            "Deployment not found".into(),
        )
        .await
    }

    async fn update_deployment(&self, deployment: &Deployment) -> Result<()> {
        self.update_doc(deployment_doc(deployment)?, "Deployment not found".into())
            .await
    }

    async fn delete_deployment(&self, id: Uuid) -> Result<()> {
        self.delete_doc(DEPLOYMENT, id, "Deployment not found".into())
            .await
    }

    async fn list_deployments(&self, page: Page) -> Result<Vec<Deployment>> {
        self.list_docs(DEPLOYMENT, page).await
    }

    async fn create_flow_run(&self, run: &FlowRun) -> Result<(FlowRun, bool)> {
        pushpool_store::check_run_size("flow run", run)?;
        self.create_run(run).await
    }

    async fn read_flow_run(&self, id: Uuid) -> Result<FlowRun> {
        self.read_run(id).await
    }

    async fn commit(&self, tx: &Transaction) -> Result<Vec<FlowRun>> {
        for run in &tx.flow_runs {
            pushpool_store::check_run_size("flow run", run)?;
        }
        self.commit_transaction(tx).await
    }

    async fn create_flow_run_input(
        &self,
        input: &pushpool_core::run_input::FlowRunInput,
    ) -> Result<()> {
        self.put_run_input(input).await
    }

    async fn read_flow_run_input(
        &self,
        flow_run_id: Uuid,
        key: &str,
    ) -> Result<pushpool_core::run_input::FlowRunInput> {
        self.get_run_input(flow_run_id, key).await
    }

    async fn list_flow_run_inputs(
        &self,
        flow_run_id: Uuid,
    ) -> Result<Vec<pushpool_core::run_input::FlowRunInput>> {
        self.run_inputs(flow_run_id).await
    }

    async fn delete_flow_run_input(&self, flow_run_id: Uuid, key: &str) -> Result<()> {
        self.remove_run_input(flow_run_id, key).await
    }

    async fn list_schedule_marks(&self) -> Result<Vec<pushpool_store::ScheduleMark>> {
        Ok(self.list_marks().await?)
    }

    async fn put_schedule_mark(&self, mark: &pushpool_store::ScheduleMark) -> Result<()> {
        Ok(self.put_mark(mark).await?)
    }

    async fn delete_schedule_marks(&self, deployment_id: Uuid) -> Result<()> {
        Ok(self.delete_marks(deployment_id).await?)
    }

    async fn read_counter(&self, name: &str) -> Result<i64> {
        self.counter_value(name).await
    }

    async fn delete_flow_run(&self, id: Uuid) -> Result<()> {
        self.delete_run(id).await
    }

    async fn list_flow_runs(&self, query: &FlowRunQuery) -> Result<Vec<FlowRun>> {
        self.list_runs(query).await
    }

    async fn count_flow_runs(&self, query: &FlowRunQuery) -> Result<u64> {
        self.count_runs(query).await
    }

    async fn list_due_flow_runs(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> Result<Vec<FlowRun>> {
        self.list_due_runs(before, limit).await
    }

    async fn read_flow_run_states(&self, id: Uuid) -> Result<Vec<State>> {
        self.read_run_states(id).await
    }

    async fn read_state(&self, state_id: Uuid) -> Result<State> {
        self.read_one_state(state_id).await
    }

    async fn create_task_run(&self, run: &TaskRun) -> Result<(TaskRun, bool)> {
        pushpool_store::check_run_size("task run", run)?;
        self.create_task_run_items(run).await
    }

    async fn read_task_run(&self, id: Uuid) -> Result<TaskRun> {
        self.read_task_run_item(id).await
    }

    async fn update_task_run(&self, run: &TaskRun) -> Result<TaskRun> {
        pushpool_store::check_run_size("task run", run)?;
        self.update_task_run_item(run).await
    }

    async fn delete_task_run(&self, id: Uuid) -> Result<()> {
        self.delete_task_run_items(id).await
    }

    async fn read_task_run_states(&self, id: Uuid) -> Result<Vec<State>> {
        self.read_task_run_history(id).await
    }

    async fn read_task_run_state(&self, state_id: Uuid) -> Result<State> {
        self.read_task_run_state_item(state_id).await
    }

    async fn list_task_runs(&self, filter: &TaskRunFilter) -> Result<Vec<TaskRun>> {
        self.list_task_run_items(filter).await
    }

    async fn add_task_run_state(&self, task_run_id: Uuid, state: &State) -> Result<()> {
        self.add_task_run_state_items(task_run_id, state).await
    }

    async fn list_subflow_runs(
        &self,
        parent_task_run_ids: &[Uuid],
        page: Page,
    ) -> Result<Vec<FlowRun>> {
        self.list_subflow_run_items(parent_task_run_ids, page).await
    }

    async fn create_api_key(&self, key: &ApiKey) -> Result<()> {
        // Unique key 0 is the name, 1 the hash: a key whose name and hash are both taken
        // reports the name, as the SQLite adapter does.
        self.insert_doc(
            api_key_doc(key)?,
            &[
                format!("An API key named \"{}\" already exists.", key.name),
                "This API key already exists.".into(),
            ],
        )
        .await
    }

    async fn read_api_key_by_hash(&self, hash: &str) -> Result<ApiKey> {
        self.get_doc_by_key(API_KEY, 1, hash, "API key not found".into())
            .await
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKey>> {
        self.list_docs(API_KEY, Page::default()).await
    }

    async fn revoke_api_key(&self, id: Uuid) -> Result<()> {
        let missing = format!("API key {id} not found");
        let mut key: ApiKey = self.get_doc(API_KEY, id, missing.clone()).await?;
        key.revoked = true;
        self.update_doc(api_key_doc(&key)?, missing).await
    }

    async fn create_logs(
        &self,
        logs: &[pushpool_core::logs::Log],
        retention: std::time::Duration,
    ) -> Result<()> {
        Ok(self.put_logs(logs, retention).await?)
    }

    async fn read_logs(
        &self,
        query: &pushpool_store::LogQuery,
    ) -> Result<Vec<pushpool_core::logs::Log>> {
        Ok(self.query_logs(query).await?)
    }

    async fn delete_logs_created_before(
        &self,
        _cutoff: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64> {
        // The table's TTL deletes lines (`expires_at`, set when they are written).
        Ok(0)
    }

    async fn create_events(
        &self,
        events: &[pushpool_core::events::Event],
        retention: std::time::Duration,
    ) -> Result<()> {
        Ok(self.put_events(events, retention).await?)
    }

    async fn read_events(
        &self,
        filter: &pushpool_core::events::EventFilter,
    ) -> Result<Vec<pushpool_core::events::Event>> {
        Ok(self.query_events(filter).await?)
    }

    async fn delete_events_received_before(
        &self,
        _cutoff: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64> {
        // The table's TTL deletes events (`expires_at`, set when they are written).
        Ok(0)
    }

    async fn try_acquire_lease(
        &self,
        key: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<bool> {
        self.acquire_lease(key, holder, ttl).await
    }

    async fn release_lease(&self, key: &str, holder: &str) -> Result<()> {
        self.give_up_lease(key, holder).await
    }

    async fn create_concurrency_limit(
        &self,
        limit: &pushpool_core::concurrency::ConcurrencyLimit,
    ) -> Result<()> {
        self.cl_create(limit).await
    }

    async fn read_concurrency_limit(
        &self,
        id: Uuid,
    ) -> Result<pushpool_core::concurrency::ConcurrencyLimit> {
        self.cl_read(id).await
    }

    async fn read_concurrency_limit_by_name(
        &self,
        name: &str,
    ) -> Result<pushpool_core::concurrency::ConcurrencyLimit> {
        self.cl_read_by_name(name).await
    }

    async fn list_concurrency_limits(
        &self,
    ) -> Result<Vec<pushpool_core::concurrency::ConcurrencyLimit>> {
        self.cl_list().await
    }

    async fn update_concurrency_limit(
        &self,
        limit: &pushpool_core::concurrency::ConcurrencyLimit,
    ) -> Result<()> {
        self.cl_update(limit).await
    }

    async fn delete_concurrency_limit(&self, id: Uuid) -> Result<()> {
        self.cl_delete(id).await
    }

    async fn commit_concurrency(
        &self,
        write: &pushpool_store::concurrency::ConcurrencyWrite,
    ) -> Result<()> {
        self.cl_commit(write).await
    }

    async fn read_concurrency_lease(
        &self,
        id: Uuid,
    ) -> Result<pushpool_core::concurrency::ConcurrencyLease> {
        self.cl_read_lease(id).await
    }

    async fn list_concurrency_leases(
        &self,
    ) -> Result<Vec<pushpool_core::concurrency::ConcurrencyLease>> {
        self.cl_list_leases().await
    }

    async fn read_changes(&self, after: u64, limit: usize) -> Result<Vec<Change>> {
        self.read_outbox(after, limit).await
    }

    async fn delete_changes(&self, upto: u64) -> Result<()> {
        self.delete_outbox(upto).await
    }

    fn change_notifier(&self) -> Option<Arc<tokio::sync::Notify>> {
        // The feed is the table's stream, consumed by another process.
        None
    }
}
