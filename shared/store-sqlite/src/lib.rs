//! The embedded adapter: one SQLite file (WAL, one writer connection), resources stored as
//! JSON documents with their unique keys in columns, flow runs in their own table with the
//! columns the submitter and reconciler query, and an `outbox` table that plays the role of
//! the DynamoDB stream. The file is created with mode 0600 (it holds block secrets).
//!
//! The SQLite adapter of the `Store` port (`pushpool-store`), for the embedded shape
//! (`pushpool serve`); it passes the port's conformance suite (`tests/sqlite_conformance.rs`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), pushpool_store::StoreError> {
//! use pushpool_store::Store;
//! use pushpool_store_sqlite::SqliteStore;
//! let store = SqliteStore::open("/tmp/pushpool.db")?;
//! let pools = store.list_work_pools(Default::default()).await?;
//! # let _ = pools; Ok(()) }
//! ```

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use pushpool_core::model::{
    ApiKey, Artifact, BlockDocument, BlockSchema, BlockType, Deployment, Flow, FlowRun, Variable,
    WorkPool, WorkQueue,
};
use pushpool_core::state::State;
use pushpool_core::task_run::TaskRun;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use uuid::Uuid;

use pushpool_store::{
    Change, CounterChange, FlowRunQuery, Page, Result, Store, StoreError, TaskRunFilter,
    Transaction,
};

mod concurrency;
mod events;
mod logs;
pub mod migrations;
mod query;
mod run_inputs;

pub use migrations::LATEST as SCHEMA_VERSION;

/// The SQLite store. Cheap to clone; all clones share one connection.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    notify: Arc<Notify>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(e))
}

/// The one place where SQLite's errors become [`StoreError`]s, by SQLite's primary result
/// code (<https://sqlite.org/rescode.html>):
/// - `SQLITE_BUSY`, `SQLITE_LOCKED`: [`StoreError::Transient`] (another writer holds the lock);
/// - `SQLITE_FULL` (the disk, or the [`SqliteOptions::max_pages`] limit, is full):
///   [`StoreError::Full`];
/// - `SQLITE_READONLY` (a read-only file, directory or mount), `SQLITE_IOERR` (the disk failed
///   a read or write), `SQLITE_CANTOPEN` (the file or its WAL cannot be opened) and
///   `SQLITE_CORRUPT`/`SQLITE_NOTADB`: [`StoreError::Unavailable`] with a reason fit for a
///   client;
/// - anything else: [`StoreError::Backend`].
///
/// In every case SQLite has rolled the failed statement (and our transaction, which is dropped
/// without commit) back: nothing acknowledged is lost and nothing half-written stays.
fn sql(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode as C;
    let unavailable = |reason: &'static str, e: rusqlite::Error| StoreError::Unavailable {
        reason,
        source: Box::new(e),
    };
    match e.sqlite_error_code() {
        Some(C::DatabaseBusy | C::DatabaseLocked) => StoreError::Transient(Box::new(e)),
        Some(C::DiskFull) => StoreError::Full(Box::new(e)),
        Some(C::ReadOnly) => unavailable("the database is read-only", e),
        Some(C::SystemIoFailure) => unavailable("the disk failed a read or write (I/O error)", e),
        Some(C::CannotOpen) => unavailable("the database file cannot be opened", e),
        Some(C::DatabaseCorrupt | C::NotADatabase) => {
            unavailable("the database file is damaged", e)
        }
        _ => backend(e),
    }
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation)
}

fn to_json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(backend)
}

fn from_json<T: DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(backend)
}

/// Flow run body: the public fields plus the internal ones `FlowRun` does not serialise.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredRun {
    #[serde(flatten)]
    run: FlowRun,
    #[serde(rename = "_submission_attempt", default)]
    submission_attempt: u32,
    #[serde(
        rename = "_slots",
        default,
        skip_serializing_if = "pushpool_core::model::ConcurrencySlots::is_empty"
    )]
    slots: pushpool_core::model::ConcurrencySlots,
}

fn run_body(run: &FlowRun) -> Result<String> {
    to_json(&StoredRun {
        run: run.clone(),
        submission_attempt: run.submission_attempt,
        slots: run.concurrency_slots.clone(),
    })
}

fn run_from(body: &str, version: i64) -> Result<FlowRun> {
    let stored: StoredRun = from_json(body)?;
    let mut run = stored.run;
    run.submission_attempt = stored.submission_attempt;
    run.concurrency_slots = stored.slots;
    run.version = version as u64;
    Ok(run)
}

/// How [`SqliteStore::open_with`] opens the database file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Open the file read-only (`SQLITE_OPEN_READ_ONLY`): reads work, every write is
    /// [`StoreError::Unavailable`] ("the database is read-only"). The file must exist and hold
    /// the schema.
    pub read_only: bool,
    /// A cap on the database size, in pages of 4096 bytes (SQLite's `max_page_count`): a write
    /// that would grow the file past it is [`StoreError::Full`], exactly as on a full disk.
    /// `None`: SQLite's own limit.
    pub max_pages: Option<u32>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`, in WAL mode, mode 0600.
    ///
    /// # Errors
    /// `Backend` (or `Unavailable`) when the file cannot be opened or the schema cannot be
    /// created.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// [`SqliteStore::open`] with [`SqliteOptions`] (a read-only file, a size cap).
    ///
    /// # Errors
    /// As [`SqliteStore::open`]; a read-only open of a missing file is `Unavailable`.
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self> {
        let path = path.as_ref();
        if options.read_only {
            let conn = Connection::open_with_flags(
                path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(sql)?;
            conn.busy_timeout(std::time::Duration::from_secs(5))
                .map_err(sql)?;
            // A read-only file cannot be migrated: it must already be at this schema.
            migrations::require_latest(&conn)?;
            return Ok(Self::from_conn(conn));
        }
        if !path.exists() {
            create_private_file(path)?;
        }
        let conn = Connection::open(path).map_err(sql)?;
        if let Some(pages) = options.max_pages {
            // Before the schema: a tiny cap then fails the open as the disk would.
            conn.pragma_update(None, "max_page_count", pages)
                .map_err(sql)?;
        }
        Self::init(conn)
    }

    fn from_conn(conn: Connection) -> Self {
        Self {
            conn: Arc::new(Mutex::new(conn)),
            notify: Arc::new(Notify::new()),
        }
    }

    /// An in-memory store, for tests and benchmarks.
    ///
    /// # Errors
    /// `Backend` when SQLite cannot create the schema.
    pub fn in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory().map_err(sql)?)
    }

    fn init(conn: Connection) -> Result<Self> {
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sql)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql)?;
        let mut conn = conn;
        migrations::migrate(&mut conn)?;
        Ok(Self::from_conn(conn))
    }

    async fn with<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| StoreError::Backend("sqlite connection mutex poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(backend)?
    }

    async fn insert_doc<T: Serialize>(
        &self,
        kind: &'static str,
        id: Uuid,
        key1: Option<String>,
        key2: Option<String>,
        doc: &T,
        conflict: String,
    ) -> Result<()> {
        let body = to_json(doc)?;
        let key2 = key2.unwrap_or_default();
        self.with(move |c| {
            match c.execute(
                "INSERT INTO documents (kind, id, key1, key2, body) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![kind, id.to_string(), key1, key2, body],
            ) {
                Ok(_) => Ok(()),
                Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(conflict)),
                Err(e) => Err(sql(e)),
            }
        })
        .await
    }

    async fn update_doc<T: Serialize>(
        &self,
        kind: &'static str,
        id: Uuid,
        key1: Option<String>,
        key2: Option<String>,
        doc: &T,
        missing: String,
    ) -> Result<()> {
        let body = to_json(doc)?;
        let key2 = key2.unwrap_or_default();
        self.with(move |c| {
            let n = c
                .execute(
                    "UPDATE documents SET key1 = ?3, key2 = ?4, body = ?5 WHERE kind = ?1 AND id = ?2",
                    params![kind, id.to_string(), key1, key2, body],
                )
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        StoreError::Conflict(format!("A {kind} with this name already exists."))
                    } else {
                        sql(e)
                    }
                })?;
            if n == 0 {
                Err(StoreError::NotFound(missing))
            } else {
                Ok(())
            }
        })
        .await
    }

    async fn get_doc<T: DeserializeOwned + Send + 'static>(
        &self,
        query: &'static str,
        args: Vec<String>,
        missing: String,
    ) -> Result<T> {
        let body: Option<String> = self
            .with(move |c| {
                c.query_row(query, rusqlite::params_from_iter(args.iter()), |r| r.get(0))
                    .optional()
                    .map_err(sql)
            })
            .await?;
        match body {
            Some(b) => from_json(&b),
            None => Err(StoreError::NotFound(missing)),
        }
    }

    async fn get_by_id<T: DeserializeOwned + Send + 'static>(
        &self,
        kind: &'static str,
        id: Uuid,
        missing: String,
    ) -> Result<T> {
        self.get_doc(
            "SELECT body FROM documents WHERE kind = ?1 AND id = ?2",
            vec![kind.into(), id.to_string()],
            missing,
        )
        .await
    }

    async fn delete_doc(
        &self,
        kind: &'static str,
        column: &'static str,
        value: String,
        missing: String,
    ) -> Result<()> {
        let query = format!("DELETE FROM documents WHERE kind = ?1 AND {column} = ?2");
        self.with(move |c| {
            let n = c.execute(&query, params![kind, value]).map_err(sql)?;
            if n == 0 {
                Err(StoreError::NotFound(missing))
            } else {
                Ok(())
            }
        })
        .await
    }

    async fn list_docs<T: DeserializeOwned + Send + 'static>(
        &self,
        kind: &'static str,
        page: Page,
    ) -> Result<Vec<T>> {
        let limit = page.limit.map_or(-1, |l| l as i64);
        let offset = page.offset as i64;
        let bodies: Vec<String> = self
            .with(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT body FROM documents WHERE kind = ?1 ORDER BY key1, key2, rowid LIMIT ?2 OFFSET ?3",
                    )
                    .map_err(sql)?;
                let rows = stmt
                    .query_map(params![kind, limit, offset], |r| r.get::<_, String>(0))
                    .map_err(sql)?;
                rows.collect::<std::result::Result<Vec<_>, _>>().map_err(sql)
            })
            .await?;
        bodies.iter().map(|b| from_json(b)).collect()
    }
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(backend)?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(|_| ())
        .map_err(backend)
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> Result<()> {
    std::fs::File::create(path).map(|_| ()).map_err(backend)
}

/// Writes `next` (body `body`) over the row at version `expected`, with its history entry and
/// its change; `VersionConflict` when the row moved on, `NotFound` when it is gone.
fn update_run_row(
    tx: &rusqlite::Transaction<'_>,
    next: &FlowRun,
    body: &str,
    expected: i64,
) -> Result<()> {
    let n = tx
        .execute(
            "UPDATE flow_runs SET deployment_id = ?2, work_pool_name = ?3, state_type = ?4, state_name = ?5,
             sort_time = ?6, version = ?7, body = ?8, name = ?10, expected_start_time = ?11,
             start_time = ?12, end_time = ?13, next_scheduled_start_time = ?14,
             parent_task_run_id = ?15
             WHERE id = ?1 AND version = ?9",
            params![
                next.id.to_string(),
                next.deployment_id.map(|d| d.to_string()),
                next.work_pool_name,
                next.state_type.map(|t| t.as_str()),
                next.state_name,
                sort_time(next),
                next.version as i64,
                body,
                expected,
                next.name,
                next.expected_start_time.map(query::ts),
                next.start_time.map(query::ts),
                next.end_time.map(query::ts),
                next.next_scheduled_start_time.map(query::ts),
                next.parent_task_run_id.map(|p| p.to_string()),
            ],
        )
        .map_err(sql)?;
    if n == 0 {
        let exists: Option<i64> = tx
            .query_row(
                "SELECT version FROM flow_runs WHERE id = ?1",
                params![next.id.to_string()],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql)?;
        return Err(match exists {
            Some(_) => StoreError::VersionConflict(next.id),
            None => StoreError::NotFound("Flow run not found".into()),
        });
    }
    insert_state(tx, next)?;
    insert_change(tx, next)?;
    Ok(())
}

/// Applies `change` to its counter within its bound ([`CounterChange::apply_to`]);
/// `LimitReached` otherwise.
fn apply_counter(tx: &rusqlite::Transaction<'_>, change: &CounterChange) -> Result<()> {
    let current: i64 = tx
        .query_row(
            "SELECT value FROM counters WHERE name = ?1",
            params![change.name],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql)?
        .unwrap_or_default();
    let Some(next) = change.apply_to(current) else {
        return Err(StoreError::LimitReached(change.name.clone()));
    };
    if change.delta != 0 {
        tx.execute(
            "INSERT INTO counters (name, value) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            params![change.name, next],
        )
        .map_err(sql)?;
    }
    Ok(())
}

fn insert_change(tx: &rusqlite::Transaction<'_>, run: &FlowRun) -> Result<()> {
    tx.execute(
        "INSERT INTO outbox (flow_run_id, state_type) VALUES (?1, ?2)",
        params![run.id.to_string(), run.state_type.map(|t| t.as_str())],
    )
    .map_err(sql)?;
    Ok(())
}

fn insert_state(tx: &rusqlite::Transaction<'_>, run: &FlowRun) -> Result<()> {
    if let Some(state) = &run.state {
        tx.execute(
            "INSERT OR IGNORE INTO flow_run_states (id, flow_run_id, body) VALUES (?1, ?2, ?3)",
            params![state.id.to_string(), run.id.to_string(), to_json(state)?],
        )
        .map_err(sql)?;
    }
    Ok(())
}

/// Runs the statement (selecting `body, version`) and decodes each row into a flow run.
/// The page of `q` read by SQLite alone (`plan` is `q`'s, and exact).
fn exact_page(c: &Connection, q: &FlowRunQuery, plan: &query::Plan) -> Result<Vec<FlowRun>> {
    let stmt = format!(
        "SELECT body, version FROM flow_runs {} {} LIMIT {} OFFSET {}",
        plan.where_,
        plan.order_by,
        q.page.limit.map_or(-1, |l| l.min(i64::MAX as usize) as i64),
        q.page.offset.min(i64::MAX as usize)
    );
    let mut stmt = c.prepare(&stmt).map_err(sql)?;
    query_runs(&mut stmt, rusqlite::params_from_iter(plan.params.iter()))
}

/// A run's or task run's state history (`table` is `flow_run_states` or `task_run_states`,
/// `column` its run column), oldest first.
fn state_history(c: &Connection, table: &str, column: &str, id: Uuid) -> Result<Vec<State>> {
    let mut stmt = c
        .prepare_cached(&format!(
            "SELECT body FROM {table} WHERE {column} = ?1 ORDER BY rowid"
        ))
        .map_err(sql)?;
    let rows = stmt
        .query_map(params![id.to_string()], |r| r.get::<_, String>(0))
        .map_err(sql)?;
    let bodies = rows
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(sql)?;
    bodies.iter().map(|b| from_json(b)).collect()
}

fn query_runs(
    stmt: &mut rusqlite::Statement<'_>,
    args: impl rusqlite::Params,
) -> Result<Vec<FlowRun>> {
    let rows = stmt
        .query_map(args, |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .map_err(sql)?;
    let mut out = Vec::new();
    for row in rows {
        let (body, version) = row.map_err(sql)?;
        out.push(run_from(&body, version)?);
    }
    Ok(out)
}

fn sort_time(run: &FlowRun) -> Option<String> {
    run.scheduled_time()
        .or(Some(run.created))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

// Task runs: their own table (the unique `(flow_run_id, task_key, dynamic_key)` in columns)
// and state history; no outbox rows.

fn task_run_from(body: &str, version: i64) -> Result<TaskRun> {
    let mut run: TaskRun = from_json(body)?;
    run.version = version as u64;
    Ok(run)
}

fn insert_task_run_state(tx: &rusqlite::Transaction<'_>, run: &TaskRun) -> Result<()> {
    if let Some(state) = &run.state {
        tx.execute(
            "INSERT OR IGNORE INTO task_run_states (id, task_run_id, body) VALUES (?1, ?2, ?3)",
            params![state.id.to_string(), run.id.to_string(), to_json(state)?],
        )
        .map_err(sql)?;
    }
    Ok(())
}

fn task_run_not_found() -> StoreError {
    StoreError::NotFound("Task run not found".into())
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_work_pool(&self, pool: &WorkPool) -> Result<()> {
        self.insert_doc(
            "work_pool",
            pool.id,
            Some(pool.name.clone()),
            None,
            pool,
            "A work pool with this name already exists.".into(),
        )
        .await
    }

    async fn read_work_pool(&self, name: &str) -> Result<WorkPool> {
        self.get_doc(
            "SELECT body FROM documents WHERE kind = 'work_pool' AND key1 = ?1",
            vec![name.into()],
            format!("Work pool \"{name}\" not found."),
        )
        .await
    }

    async fn read_work_pool_by_id(&self, id: Uuid) -> Result<WorkPool> {
        self.get_by_id("work_pool", id, format!("Work pool {id} not found."))
            .await
    }

    async fn update_work_pool(&self, pool: &WorkPool) -> Result<()> {
        self.update_doc(
            "work_pool",
            pool.id,
            Some(pool.name.clone()),
            None,
            pool,
            format!("Work pool \"{}\" not found.", pool.name),
        )
        .await
    }

    async fn delete_work_pool(&self, name: &str) -> Result<()> {
        self.delete_doc(
            "work_pool",
            "key1",
            name.into(),
            format!("Work pool \"{name}\" not found."),
        )
        .await
    }

    async fn list_work_pools(&self, page: Page) -> Result<Vec<WorkPool>> {
        self.list_docs("work_pool", page).await
    }

    async fn create_work_queue(&self, queue: &WorkQueue) -> Result<()> {
        self.insert_doc(
            "work_queue",
            queue.id,
            Some(queue.work_pool_id.to_string()),
            Some(queue.name.clone()),
            queue,
            format!(
                "A work queue with the name '{}' already exists in this work pool.",
                queue.name
            ),
        )
        .await
    }

    async fn read_work_queue(&self, id: Uuid) -> Result<WorkQueue> {
        self.get_by_id("work_queue", id, "Work queue not found".into())
            .await
    }

    async fn read_work_queue_by_name(&self, work_pool_id: Uuid, name: &str) -> Result<WorkQueue> {
        self.get_doc(
            "SELECT body FROM documents WHERE kind = 'work_queue' AND key1 = ?1 AND key2 = ?2",
            vec![work_pool_id.to_string(), name.into()],
            "Work queue not found".into(),
        )
        .await
    }

    async fn update_work_queue(&self, queue: &WorkQueue) -> Result<()> {
        self.update_doc(
            "work_queue",
            queue.id,
            Some(queue.work_pool_id.to_string()),
            Some(queue.name.clone()),
            queue,
            "Work queue not found".into(),
        )
        .await
    }

    async fn delete_work_queue(&self, id: Uuid) -> Result<()> {
        self.delete_doc(
            "work_queue",
            "id",
            id.to_string(),
            "Work queue not found".into(),
        )
        .await
    }

    async fn list_work_queues(&self, work_pool_id: Option<Uuid>) -> Result<Vec<WorkQueue>> {
        let queues: Vec<WorkQueue> = self.list_docs("work_queue", Page::default()).await?;
        Ok(queues
            .into_iter()
            .filter(|q| work_pool_id.is_none_or(|p| q.work_pool_id == p))
            .collect())
    }

    async fn create_block_type(&self, block_type: &BlockType) -> Result<()> {
        self.insert_doc(
            "block_type",
            block_type.id,
            Some(block_type.slug.clone()),
            None,
            block_type,
            format!(
                "Block type with slug \"{}\" already exists.",
                block_type.slug
            ),
        )
        .await
    }

    async fn read_block_type(&self, id: Uuid) -> Result<BlockType> {
        self.get_by_id("block_type", id, "Block type not found".into())
            .await
    }

    async fn read_block_type_by_slug(&self, slug: &str) -> Result<BlockType> {
        self.get_doc(
            "SELECT body FROM documents WHERE kind = 'block_type' AND key1 = ?1",
            vec![slug.into()],
            "Block type not found".into(),
        )
        .await
    }

    async fn update_block_type(&self, block_type: &BlockType) -> Result<()> {
        self.update_doc(
            "block_type",
            block_type.id,
            Some(block_type.slug.clone()),
            None,
            block_type,
            "Block type not found".into(),
        )
        .await
    }

    async fn list_block_types(&self, page: Page) -> Result<Vec<BlockType>> {
        self.list_docs("block_type", page).await
    }

    async fn create_block_schema(&self, schema: &BlockSchema) -> Result<()> {
        self.insert_doc(
            "block_schema",
            schema.id,
            Some(schema.checksum.clone()),
            Some(schema.version.clone()),
            schema,
            "Identical block schema already exists.".into(),
        )
        .await
    }

    async fn read_block_schema(&self, id: Uuid) -> Result<BlockSchema> {
        self.get_by_id("block_schema", id, "Block schema not found".into())
            .await
    }

    async fn read_block_schema_by_checksum(
        &self,
        checksum: &str,
        version: Option<&str>,
    ) -> Result<BlockSchema> {
        match version {
            Some(v) => {
                self.get_doc(
                    "SELECT body FROM documents WHERE kind = 'block_schema' AND key1 = ?1 AND key2 = ?2",
                    vec![checksum.into(), v.into()],
                    "Block schema not found".into(),
                )
                .await
            }
            None => {
                self.get_doc(
                    "SELECT body FROM documents WHERE kind = 'block_schema' AND key1 = ?1 ORDER BY rowid DESC LIMIT 1",
                    vec![checksum.into()],
                    "Block schema not found".into(),
                )
                .await
            }
        }
    }

    async fn list_block_schemas(&self, page: Page) -> Result<Vec<BlockSchema>> {
        self.list_docs("block_schema", page).await
    }

    async fn create_block_document(&self, document: &BlockDocument) -> Result<()> {
        self.insert_doc(
            "block_document",
            document.id,
            Some(document.block_type_id.to_string()),
            document.name.clone(),
            document,
            "Block already exists".into(),
        )
        .await
    }

    async fn read_block_document(&self, id: Uuid) -> Result<BlockDocument> {
        self.get_by_id("block_document", id, "Block document not found".into())
            .await
    }

    async fn read_block_document_by_name(
        &self,
        block_type_id: Uuid,
        name: &str,
    ) -> Result<BlockDocument> {
        self.get_doc(
            "SELECT body FROM documents WHERE kind = 'block_document' AND key1 = ?1 AND key2 = ?2",
            vec![block_type_id.to_string(), name.into()],
            "Block document not found".into(),
        )
        .await
    }

    async fn update_block_document(&self, document: &BlockDocument) -> Result<()> {
        self.update_doc(
            "block_document",
            document.id,
            Some(document.block_type_id.to_string()),
            document.name.clone(),
            document,
            "Block document not found".into(),
        )
        .await
    }

    async fn delete_block_document(&self, id: Uuid) -> Result<()> {
        self.delete_doc(
            "block_document",
            "id",
            id.to_string(),
            "Block document not found".into(),
        )
        .await
    }

    async fn list_block_documents(&self, page: Page) -> Result<Vec<BlockDocument>> {
        self.list_docs("block_document", page).await
    }

    async fn upsert_flow(&self, flow: &Flow) -> Result<(Flow, bool)> {
        match self
            .insert_doc(
                "flow",
                flow.id,
                Some(flow.name.clone()),
                None,
                flow,
                String::new(),
            )
            .await
        {
            Ok(()) => Ok((flow.clone(), true)),
            Err(StoreError::Conflict(_)) => Ok((self.read_flow_by_name(&flow.name).await?, false)),
            Err(e) => Err(e),
        }
    }

    async fn read_flow(&self, id: Uuid) -> Result<Flow> {
        self.get_by_id("flow", id, "Flow not found".into()).await
    }

    async fn read_flow_by_name(&self, name: &str) -> Result<Flow> {
        self.get_doc(
            "SELECT body FROM documents WHERE kind = 'flow' AND key1 = ?1",
            vec![name.into()],
            "Flow not found".into(),
        )
        .await
    }

    async fn delete_flow(&self, id: Uuid) -> Result<()> {
        self.delete_doc("flow", "id", id.to_string(), "Flow not found".into())
            .await
    }

    async fn list_flows(&self, page: Page) -> Result<Vec<Flow>> {
        self.list_docs("flow", page).await
    }

    async fn create_variable(&self, variable: &Variable) -> Result<()> {
        self.insert_doc(
            "variable",
            variable.id,
            Some(variable.name.clone()),
            None,
            variable,
            format!(
                "A variable with the name '{}' already exists.",
                variable.name
            ),
        )
        .await
    }

    async fn read_variable(&self, id: Uuid) -> Result<Variable> {
        self.get_by_id("variable", id, "Variable not found.".into())
            .await
    }

    async fn read_variable_by_name(&self, name: &str) -> Result<Variable> {
        self.get_doc(
            "SELECT body FROM documents WHERE kind = 'variable' AND key1 = ?1",
            vec![name.into()],
            "Variable not found.".into(),
        )
        .await
    }

    async fn update_variable(&self, variable: &Variable) -> Result<()> {
        self.update_doc(
            "variable",
            variable.id,
            Some(variable.name.clone()),
            None,
            variable,
            "Variable not found.".into(),
        )
        .await
    }

    async fn delete_variable(&self, id: Uuid) -> Result<()> {
        self.delete_doc(
            "variable",
            "id",
            id.to_string(),
            "Variable not found.".into(),
        )
        .await
    }

    async fn list_variables(&self, page: Page) -> Result<Vec<Variable>> {
        self.list_docs("variable", page).await
    }

    async fn create_artifact(&self, artifact: &Artifact) -> Result<()> {
        // key1 is the id: artifacts have no unique name, and a key is shared by a collection.
        self.insert_doc(
            "artifact",
            artifact.id,
            Some(artifact.id.to_string()),
            None,
            artifact,
            "Artifact already exists.".into(),
        )
        .await
    }

    async fn read_artifact(&self, id: Uuid) -> Result<Artifact> {
        self.get_by_id("artifact", id, "Artifact not found.".into())
            .await
    }

    async fn update_artifact(&self, artifact: &Artifact) -> Result<()> {
        self.update_doc(
            "artifact",
            artifact.id,
            Some(artifact.id.to_string()),
            None,
            artifact,
            "Artifact not found.".into(),
        )
        .await
    }

    async fn delete_artifact(&self, id: Uuid) -> Result<()> {
        self.delete_doc(
            "artifact",
            "id",
            id.to_string(),
            "Artifact not found.".into(),
        )
        .await
    }

    async fn list_artifacts(&self, page: Page) -> Result<Vec<Artifact>> {
        self.list_docs("artifact", page).await
    }

    async fn create_deployment(&self, deployment: &Deployment) -> Result<()> {
        self.insert_doc(
            "deployment",
            deployment.id,
            Some(deployment.flow_id.to_string()),
            Some(deployment.name.clone()),
            deployment,
            "A deployment with this name already exists for this flow.".into(),
        )
        .await
    }

    async fn read_deployment(&self, id: Uuid) -> Result<Deployment> {
        self.get_by_id("deployment", id, "Deployment not found".into())
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
        self.get_doc(
            "SELECT body FROM documents WHERE kind = 'deployment' AND key1 = ?1 AND key2 = ?2",
            vec![flow.id.to_string(), name.into()],
            "Deployment not found".into(),
        )
        .await
    }

    async fn update_deployment(&self, deployment: &Deployment) -> Result<()> {
        self.update_doc(
            "deployment",
            deployment.id,
            Some(deployment.flow_id.to_string()),
            Some(deployment.name.clone()),
            deployment,
            "Deployment not found".into(),
        )
        .await
    }

    async fn delete_deployment(&self, id: Uuid) -> Result<()> {
        self.delete_doc(
            "deployment",
            "id",
            id.to_string(),
            "Deployment not found".into(),
        )
        .await
    }

    async fn list_deployments(&self, page: Page) -> Result<Vec<Deployment>> {
        self.list_docs("deployment", page).await
    }

    async fn list_schedule_marks(&self) -> Result<Vec<pushpool_store::ScheduleMark>> {
        self.with(|c| {
            let mut stmt = c
                .prepare_cached("SELECT body FROM documents WHERE kind = 'schedule_mark'")
                .map_err(sql)?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(sql)?;
            let mut out = Vec::new();
            for body in rows {
                out.push(from_json(&body.map_err(sql)?)?);
            }
            Ok(out)
        })
        .await
    }

    async fn put_schedule_mark(&self, mark: &pushpool_store::ScheduleMark) -> Result<()> {
        let body = to_json(mark)?;
        let (deployment, schedule) = (mark.deployment_id.to_string(), mark.schedule_id.to_string());
        self.with(move |c| {
            c.prepare_cached(
                "INSERT INTO documents (kind, id, key1, key2, body) VALUES ('schedule_mark', ?1, ?2, ?1, ?3)
                 ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body",
            )
            .map_err(sql)?
            .execute(params![schedule, deployment, body])
            .map_err(sql)?;
            Ok(())
        })
        .await
    }

    async fn delete_schedule_marks(&self, deployment_id: Uuid) -> Result<()> {
        let deployment = deployment_id.to_string();
        self.with(move |c| {
            c.prepare_cached("DELETE FROM documents WHERE kind = 'schedule_mark' AND key1 = ?1")
                .map_err(sql)?
                .execute(params![deployment])
                .map_err(sql)?;
            Ok(())
        })
        .await
    }

    async fn create_flow_run_input(
        &self,
        input: &pushpool_core::run_input::FlowRunInput,
    ) -> Result<()> {
        self.insert_run_input(input).await
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

    async fn create_flow_run(&self, run: &FlowRun) -> Result<(FlowRun, bool)> {
        pushpool_store::check_run_size("flow run", run)?;
        let mut run = run.clone();
        run.version = 1;
        let body = run_body(&run)?;
        let notify = Arc::clone(&self.notify);
        let result = self
            .with(move |c| {
                let tx = c.transaction().map_err(sql)?;
                if let Some(key) = &run.idempotency_key {
                    let existing: Option<(String, i64)> = tx
                        .query_row(
                            "SELECT body, version FROM flow_runs WHERE flow_id = ?1 AND idempotency_key = ?2",
                            params![run.flow_id.to_string(), key],
                            |r| Ok((r.get(0)?, r.get(1)?)),
                        )
                        .optional()
                        .map_err(sql)?;
                    if let Some((body, version)) = existing {
                        return Ok((run_from(&body, version)?, false));
                    }
                }
                tx.execute(
                    "INSERT INTO flow_runs (id, flow_id, deployment_id, work_pool_name, state_type, state_name, idempotency_key, sort_time, version, body,
                     name, expected_start_time, start_time, end_time, next_scheduled_start_time, parent_task_run_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                    params![
                        run.id.to_string(),
                        run.flow_id.to_string(),
                        run.deployment_id.map(|d| d.to_string()),
                        run.work_pool_name,
                        run.state_type.map(|t| t.as_str()),
                        run.state_name,
                        run.idempotency_key,
                        sort_time(&run),
                        run.version as i64,
                        body,
                        run.name,
                        run.expected_start_time.map(query::ts),
                        run.start_time.map(query::ts),
                        run.end_time.map(query::ts),
                        run.next_scheduled_start_time.map(query::ts),
                        run.parent_task_run_id.map(|p| p.to_string()),
                    ],
                )
                .map_err(|e| if is_unique_violation(&e) {
                    StoreError::Conflict("A flow run with this id already exists.".into())
                } else {
                    sql(e)
                })?;
                insert_state(&tx, &run)?;
                insert_change(&tx, &run)?;
                tx.commit().map_err(sql)?;
                Ok((run, true))
            })
            .await?;
        if result.1 {
            notify.notify_one();
        }
        Ok(result)
    }

    async fn read_flow_run(&self, id: Uuid) -> Result<FlowRun> {
        let row: Option<(String, i64)> = self
            .with(move |c| {
                c.prepare_cached("SELECT body, version FROM flow_runs WHERE id = ?1")
                    .map_err(sql)?
                    .query_row(params![id.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
                    .map_err(sql)
            })
            .await?;
        match row {
            Some((body, version)) => run_from(&body, version),
            None => Err(StoreError::NotFound("Flow run not found".into())),
        }
    }

    async fn commit(&self, t: &Transaction) -> Result<Vec<FlowRun>> {
        t.check()?;
        let mut runs = Vec::with_capacity(t.flow_runs.len());
        for run in &t.flow_runs {
            pushpool_store::check_run_size("flow run", run)?;
            let mut next = run.clone();
            next.version = run.version + 1;
            let body = run_body(&next)?;
            runs.push((next, body, run.version as i64));
        }
        let counters = t.counters.clone();
        let wrote_runs = !runs.is_empty();
        let out = self
            .with(move |c| {
                // Dropping the transaction on an error rolls everything back.
                let tx = c.transaction().map_err(sql)?;
                let mut conflict = None;
                let mut written = Vec::with_capacity(runs.len());
                for (next, body, expected) in runs {
                    match update_run_row(&tx, &next, &body, expected) {
                        Ok(()) => written.push(next),
                        // A stale run wins over a counter at its bound: look at every run.
                        Err(e @ StoreError::VersionConflict(_)) => {
                            conflict.get_or_insert(e);
                        }
                        Err(e) => return Err(e),
                    }
                }
                if let Some(e) = conflict {
                    return Err(e);
                }
                for change in &counters {
                    apply_counter(&tx, change)?;
                }
                tx.commit().map_err(sql)?;
                Ok(written)
            })
            .await?;
        if wrote_runs {
            self.notify.notify_one();
        }
        Ok(out)
    }

    async fn read_counter(&self, name: &str) -> Result<i64> {
        let name = name.to_owned();
        self.with(move |c| {
            c.prepare_cached("SELECT value FROM counters WHERE name = ?1")
                .map_err(sql)?
                .query_row(params![name], |r| r.get::<_, i64>(0))
                .optional()
                .map_err(sql)
                .map(Option::unwrap_or_default)
        })
        .await
    }

    async fn delete_flow_run(&self, id: Uuid) -> Result<()> {
        self.with(move |c| {
            let tx = c.transaction().map_err(sql)?;
            let n = tx
                .execute(
                    "DELETE FROM flow_runs WHERE id = ?1",
                    params![id.to_string()],
                )
                .map_err(sql)?;
            tx.execute(
                "DELETE FROM flow_run_states WHERE flow_run_id = ?1",
                params![id.to_string()],
            )
            .map_err(sql)?;
            tx.commit().map_err(sql)?;
            if n == 0 {
                Err(StoreError::NotFound("Flow run not found".into()))
            } else {
                Ok(())
            }
        })
        .await
    }

    async fn list_flow_runs(&self, q: &FlowRunQuery) -> Result<Vec<FlowRun>> {
        let q = q.clone();
        self.with(move |c| {
            if let Some(parts) = query::split_by_state_type(&q) {
                // One index range per state type, each read in order, merged here: SQLite
                // would otherwise read every run of those states and sort them.
                let mut runs = Vec::new();
                for part in parts {
                    runs.extend(exact_page(c, &part, &query::plan(&part))?);
                }
                runs.sort_by(|a, b| q.sort.compare(a, b));
                return Ok(runs
                    .into_iter()
                    .skip(q.page.offset)
                    .take(q.page.limit.unwrap_or(usize::MAX))
                    .collect());
            }
            let plan = query::plan(&q);
            let take = q.page.limit.unwrap_or(usize::MAX);
            if plan.exact {
                return exact_page(c, &q, &plan);
            }
            // Part of the filter is not in the columns: read in order, keep what matches.
            let stmt = format!(
                "SELECT body, version FROM flow_runs {} {}",
                plan.where_, plan.order_by
            );
            let mut stmt = c.prepare(&stmt).map_err(sql)?;
            let mut rows = stmt
                .query(rusqlite::params_from_iter(plan.params))
                .map_err(sql)?;
            let mut out = Vec::new();
            let mut skipped = 0;
            while out.len() < take {
                let Some(row) = rows.next().map_err(sql)? else {
                    break;
                };
                let run = run_from(
                    &row.get::<_, String>(0).map_err(sql)?,
                    row.get(1).map_err(sql)?,
                )?;
                if !q.matches(&run) {
                    continue;
                }
                if skipped < q.page.offset {
                    skipped += 1;
                    continue;
                }
                out.push(run);
            }
            Ok(out)
        })
        .await
    }

    async fn count_flow_runs(&self, q: &FlowRunQuery) -> Result<u64> {
        let q = q.clone();
        self.with(move |c| {
            let plan = query::plan(&q);
            if plan.exact {
                let stmt = format!("SELECT count(*) FROM flow_runs {}", plan.where_);
                let n: i64 = c
                    .prepare(&stmt)
                    .map_err(sql)?
                    .query_row(rusqlite::params_from_iter(plan.params), |r| r.get(0))
                    .map_err(sql)?;
                return Ok(n as u64);
            }
            let stmt = format!("SELECT body, version FROM flow_runs {}", plan.where_);
            let mut stmt = c.prepare(&stmt).map_err(sql)?;
            let mut rows = stmt
                .query(rusqlite::params_from_iter(plan.params))
                .map_err(sql)?;
            let mut n = 0;
            while let Some(row) = rows.next().map_err(sql)? {
                let run = run_from(
                    &row.get::<_, String>(0).map_err(sql)?,
                    row.get(1).map_err(sql)?,
                )?;
                if q.matches(&run) {
                    n += 1;
                }
            }
            Ok(n)
        })
        .await
    }

    async fn list_due_flow_runs(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> Result<Vec<FlowRun>> {
        let before = before.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        self.with(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT body, version FROM flow_runs WHERE state_type = 'SCHEDULED' AND sort_time <= ?1 ORDER BY sort_time LIMIT ?2",
                )
                .map_err(sql)?;
            query_runs(&mut stmt, params![before, limit as i64])
        })
        .await
    }

    async fn read_flow_run_states(&self, id: Uuid) -> Result<Vec<State>> {
        self.with(move |c| state_history(c, "flow_run_states", "flow_run_id", id))
            .await
    }

    async fn read_state(&self, state_id: Uuid) -> Result<State> {
        let body: Option<String> = self
            .with(move |c| {
                c.query_row(
                    "SELECT body FROM flow_run_states WHERE id = ?1",
                    params![state_id.to_string()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql)
            })
            .await?;
        match body {
            Some(b) => from_json(&b),
            None => Err(StoreError::NotFound("State not found".into())),
        }
    }

    async fn create_task_run(&self, run: &TaskRun) -> Result<(TaskRun, bool)> {
        pushpool_store::check_run_size("task run", run)?;
        let mut run = run.clone();
        run.version = 1;
        let body = to_json(&run)?;
        self.with(move |c| {
            let tx = c.transaction().map_err(sql)?;
            let flow_run_id = run.flow_run_id.map(|f| f.to_string()).unwrap_or_default();
            let existing: Option<(String, i64)> = tx
                .query_row(
                    "SELECT body, version FROM task_runs WHERE flow_run_id = ?1 AND task_key = ?2 AND dynamic_key = ?3",
                    params![flow_run_id, run.task_key, run.dynamic_key],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(sql)?;
            if let Some((body, version)) = existing {
                return Ok((task_run_from(&body, version)?, false));
            }
            tx.execute(
                "INSERT INTO task_runs (id, flow_run_id, task_key, dynamic_key, version, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![run.id.to_string(), flow_run_id, run.task_key, run.dynamic_key, run.version as i64, body],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict("A task run with this id already exists.".into())
                } else {
                    sql(e)
                }
            })?;
            insert_task_run_state(&tx, &run)?;
            tx.commit().map_err(sql)?;
            Ok((run, true))
        })
        .await
    }

    async fn read_task_run(&self, id: Uuid) -> Result<TaskRun> {
        let row: Option<(String, i64)> = self
            .with(move |c| {
                c.prepare_cached("SELECT body, version FROM task_runs WHERE id = ?1")
                    .map_err(sql)?
                    .query_row(params![id.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
                    .map_err(sql)
            })
            .await?;
        match row {
            Some((body, version)) => task_run_from(&body, version),
            None => Err(task_run_not_found()),
        }
    }

    async fn update_task_run(&self, run: &TaskRun) -> Result<TaskRun> {
        pushpool_store::check_run_size("task run", run)?;
        let mut next = run.clone();
        next.version = run.version + 1;
        let body = to_json(&next)?;
        let expected = run.version as i64;
        self.with(move |c| {
            let tx = c.transaction().map_err(sql)?;
            // The unique key is fixed at creation: updates do not move it.
            let n = tx
                .execute(
                    "UPDATE task_runs SET version = ?2, body = ?3 WHERE id = ?1 AND version = ?4",
                    params![next.id.to_string(), next.version as i64, body, expected],
                )
                .map_err(sql)?;
            if n == 0 {
                let exists: Option<i64> = tx
                    .query_row(
                        "SELECT version FROM task_runs WHERE id = ?1",
                        params![next.id.to_string()],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(sql)?;
                return Err(match exists {
                    Some(_) => StoreError::VersionConflict(next.id),
                    None => task_run_not_found(),
                });
            }
            insert_task_run_state(&tx, &next)?;
            tx.commit().map_err(sql)?;
            Ok(next)
        })
        .await
    }

    async fn delete_task_run(&self, id: Uuid) -> Result<()> {
        self.with(move |c| {
            let tx = c.transaction().map_err(sql)?;
            let n = tx
                .execute(
                    "DELETE FROM task_runs WHERE id = ?1",
                    params![id.to_string()],
                )
                .map_err(sql)?;
            tx.execute(
                "DELETE FROM task_run_states WHERE task_run_id = ?1",
                params![id.to_string()],
            )
            .map_err(sql)?;
            tx.commit().map_err(sql)?;
            if n == 0 {
                Err(task_run_not_found())
            } else {
                Ok(())
            }
        })
        .await
    }

    async fn read_task_run_states(&self, id: Uuid) -> Result<Vec<State>> {
        // By timestamp, as Prefect reads them (`read_task_run_states`): the recorder can add
        // a state after a newer one. The sort is stable, so equal timestamps keep their order.
        let mut states = self
            .with(move |c| state_history(c, "task_run_states", "task_run_id", id))
            .await?;
        states.sort_by_key(|s| s.timestamp);
        Ok(states)
    }

    async fn read_task_run_state(&self, state_id: Uuid) -> Result<State> {
        self.get_doc(
            "SELECT body FROM task_run_states WHERE id = ?1",
            vec![state_id.to_string()],
            "State not found".into(),
        )
        .await
    }

    async fn add_task_run_state(&self, task_run_id: Uuid, state: &State) -> Result<()> {
        let body = to_json(state)?;
        let state_id = state.id;
        self.with(move |c| {
            let tx = c.transaction().map_err(sql)?;
            let exists: Option<i64> = tx
                .query_row(
                    "SELECT version FROM task_runs WHERE id = ?1",
                    params![task_run_id.to_string()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql)?;
            if exists.is_none() {
                return Err(task_run_not_found());
            }
            tx.execute(
                "INSERT OR IGNORE INTO task_run_states (id, task_run_id, body) VALUES (?1, ?2, ?3)",
                params![state_id.to_string(), task_run_id.to_string(), body],
            )
            .map_err(sql)?;
            tx.commit().map_err(sql)
        })
        .await
    }

    async fn list_task_runs(&self, filter: &TaskRunFilter) -> Result<Vec<TaskRun>> {
        let filter = filter.clone();
        self.with(move |c| {
            let mut clauses: Vec<String> = Vec::new();
            let mut args: Vec<String> = Vec::new();
            for (column, values) in [("id", &filter.ids), ("flow_run_id", &filter.flow_run_ids)] {
                if let Some(values) = values {
                    let marks: Vec<String> = values
                        .iter()
                        .map(|v| {
                            args.push(v.to_string());
                            format!("?{}", args.len())
                        })
                        .collect();
                    clauses.push(format!("{column} IN ({})", marks.join(", ")));
                }
            }
            let where_ = if clauses.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", clauses.join(" AND "))
            };
            let query = format!(
                "SELECT body, version FROM task_runs {where_} ORDER BY id DESC LIMIT {} OFFSET {}",
                filter.page.limit.map_or(-1, |l| l as i64),
                filter.page.offset
            );
            let mut stmt = c.prepare(&query).map_err(sql)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })
                .map_err(sql)?;
            let mut out = Vec::new();
            for row in rows {
                let (body, version) = row.map_err(sql)?;
                out.push(task_run_from(&body, version)?);
            }
            Ok(out)
        })
        .await
    }

    async fn list_subflow_runs(
        &self,
        parent_task_run_ids: &[Uuid],
        page: Page,
    ) -> Result<Vec<FlowRun>> {
        if parent_task_run_ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = parent_task_run_ids.iter().map(Uuid::to_string).collect();
        self.with(move |c| {
            let marks: Vec<String> = (1..=ids.len()).map(|i| format!("?{i}")).collect();
            let query = format!(
                "SELECT body, version FROM flow_runs WHERE parent_task_run_id IN ({})
                 ORDER BY sort_time DESC, id LIMIT {} OFFSET {}",
                marks.join(", "),
                page.limit.map_or(-1, |l| l as i64),
                page.offset
            );
            let mut stmt = c.prepare(&query).map_err(sql)?;
            query_runs(&mut stmt, rusqlite::params_from_iter(ids.iter()))
        })
        .await
    }

    async fn create_api_key(&self, key: &ApiKey) -> Result<()> {
        // key1 = hash (the lookup), key2 = name (unique per hash is trivially true, so the
        // name's uniqueness is checked first).
        if self
            .list_api_keys()
            .await?
            .iter()
            .any(|k| k.name == key.name)
        {
            return Err(StoreError::Conflict(format!(
                "An API key named \"{}\" already exists.",
                key.name
            )));
        }
        self.insert_doc(
            "api_key",
            key.id,
            Some(key.hash.clone()),
            None,
            key,
            "This API key already exists.".into(),
        )
        .await
    }

    async fn read_api_key_by_hash(&self, hash: &str) -> Result<ApiKey> {
        self.get_doc(
            "SELECT body FROM documents WHERE kind = 'api_key' AND key1 = ?1",
            vec![hash.into()],
            "API key not found".into(),
        )
        .await
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKey>> {
        let mut keys: Vec<ApiKey> = self.list_docs("api_key", Page::default()).await?;
        keys.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(keys)
    }

    async fn revoke_api_key(&self, id: Uuid) -> Result<()> {
        let mut key: ApiKey = self
            .get_by_id("api_key", id, format!("API key {id} not found"))
            .await?;
        key.revoked = true;
        self.update_doc(
            "api_key",
            id,
            Some(key.hash.clone()),
            None,
            &key,
            format!("API key {id} not found"),
        )
        .await
    }

    /// A lease is a `documents` row of kind `lease` (`id` = `key1` = the key), its body
    /// `{"holder": ..., "until_ms": <epoch ms>}`: one conditional upsert.
    async fn try_acquire_lease(
        &self,
        key: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<bool> {
        let (key, holder) = (key.to_owned(), holder.to_owned());
        let now = chrono::Utc::now().timestamp_millis();
        let until = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        let body = serde_json::json!({"holder": holder, "until_ms": until}).to_string();
        self.with(move |c| {
            let changed = c
                .execute(
                    "INSERT INTO documents (kind, id, key1, key2, body) VALUES ('lease', ?1, ?1, '', ?2) \
                     ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body \
                     WHERE json_extract(documents.body, '$.until_ms') < ?3 \
                        OR json_extract(documents.body, '$.holder') = ?4",
                    params![key, body, now, holder],
                )
                .map_err(sql)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn release_lease(&self, key: &str, holder: &str) -> Result<()> {
        let (key, holder) = (key.to_owned(), holder.to_owned());
        self.with(move |c| {
            c.execute(
                "DELETE FROM documents WHERE kind = 'lease' AND id = ?1 \
                 AND json_extract(body, '$.holder') = ?2",
                params![key, holder],
            )
            .map_err(sql)?;
            Ok(())
        })
        .await
    }

    async fn create_logs(
        &self,
        logs: &[pushpool_core::logs::Log],
        _retention: std::time::Duration,
    ) -> Result<()> {
        // Retention is the background task's: `delete_logs_created_before`.
        let logs = logs.to_vec();
        self.with(move |conn| logs::insert(conn, &logs)).await
    }

    async fn read_logs(
        &self,
        query: &pushpool_store::LogQuery,
    ) -> Result<Vec<pushpool_core::logs::Log>> {
        let query = query.clone();
        self.with(move |conn| logs::read(conn, &query)).await
    }

    async fn delete_logs_created_before(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64> {
        self.with(move |conn| logs::delete_created_before(conn, cutoff))
            .await
    }

    async fn create_events(
        &self,
        events: &[pushpool_core::events::Event],
        _retention: std::time::Duration,
    ) -> Result<()> {
        // Retention is the background task's: `delete_events_received_before`.
        let events = events.to_vec();
        self.with(move |conn| events::insert(conn, &events)).await
    }

    async fn read_events(
        &self,
        filter: &pushpool_core::events::EventFilter,
    ) -> Result<Vec<pushpool_core::events::Event>> {
        let filter = filter.clone();
        self.with(move |conn| events::read(conn, &filter)).await
    }

    async fn delete_events_received_before(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64> {
        self.with(move |conn| events::delete_received_before(conn, cutoff))
            .await
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
        self.with(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT seq, flow_run_id, state_type FROM outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                )
                .map_err(sql)?;
            let rows = stmt
                .query_map(params![after as i64, limit as i64], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                    ))
                })
                .map_err(sql)?;
            let mut out = Vec::new();
            for row in rows {
                let (seq, id, state) = row.map_err(sql)?;
                out.push(Change {
                    seq: seq as u64,
                    flow_run_id: id.parse().map_err(backend)?,
                    state_type: state.as_deref().and_then(pushpool_core::state::StateType::parse),
                });
            }
            Ok(out)
        })
        .await
    }

    async fn delete_changes(&self, upto: u64) -> Result<()> {
        self.with(move |c| {
            c.execute("DELETE FROM outbox WHERE seq <= ?1", params![upto as i64])
                .map(|_| ())
                .map_err(sql)
        })
        .await
    }

    fn change_notifier(&self) -> Option<Arc<Notify>> {
        Some(Arc::clone(&self.notify))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: std::ffi::c_int) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn sqlite_result_codes_map_to_the_callers_terms() {
        assert!(matches!(
            sql(failure(rusqlite::ffi::SQLITE_BUSY)),
            StoreError::Transient(_)
        ));
        assert!(matches!(
            sql(failure(rusqlite::ffi::SQLITE_FULL)),
            StoreError::Full(_)
        ));
        for (code, expected) in [
            (rusqlite::ffi::SQLITE_READONLY, "the database is read-only"),
            (
                rusqlite::ffi::SQLITE_READONLY_DBMOVED,
                "the database is read-only",
            ),
            (
                rusqlite::ffi::SQLITE_IOERR_WRITE,
                "the disk failed a read or write (I/O error)",
            ),
            (
                rusqlite::ffi::SQLITE_IOERR_FSYNC,
                "the disk failed a read or write (I/O error)",
            ),
            (
                rusqlite::ffi::SQLITE_CANTOPEN,
                "the database file cannot be opened",
            ),
            (
                rusqlite::ffi::SQLITE_CORRUPT,
                "the database file is damaged",
            ),
        ] {
            match sql(failure(code)) {
                StoreError::Unavailable { reason, .. } => assert_eq!(reason, expected, "{code}"),
                other => panic!("{code}: {other:?}"),
            }
        }
        assert!(matches!(
            sql(failure(rusqlite::ffi::SQLITE_MISMATCH)),
            StoreError::Backend(_)
        ));
    }
}
