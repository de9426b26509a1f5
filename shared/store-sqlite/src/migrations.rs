//! Schema versions of the SQLite file, kept in SQLite's own `PRAGMA user_version`.
//!
//! Each step runs once, in a transaction with the version bump, when the store opens a file
//! of an older version; a file of a newer version than this build knows is refused (an older
//! pushpool must not write a schema it does not understand). Steps are only ever appended.
//!
//! Why not `rusqlite_migration`: it is the library for exactly this, but its releases pin
//! rusqlite ≤ 0.40 and this workspace uses 0.43; the list below keeps the same model
//! (`user_version`, ordered steps, SQL or Rust) so switching later is mechanical.
//!
//! | version | what |
//! |---|---|
//! | 1 | the schema of the first releases (files written before versioning have `user_version` 0 and these tables already: every statement is `IF NOT EXISTS`) |
//! | 2 | flow run columns for filters and sorts (`name`, `expected_start_time`, `start_time`, `end_time`, `next_scheduled_start_time`, `parent_task_run_id`) filled from each run's body, and their indexes |
//! | 3 | task runs (`task_runs`, `task_run_states`) |
//! | 4 | named counters (`counters`) for [`pushpool_store::Store::commit`]'s bounded counter changes |
//! | 5 | flow run and task run log lines (`logs`) |
//! | 6 | events (`events`) |

use rusqlite::{Connection, Transaction, params};

use super::query::ts;
use super::{StoredRun, from_json, sql};
use pushpool_store::{Result, StoreError};

/// Version 1: the first releases' schema.
const V1: &str = r#"
CREATE TABLE IF NOT EXISTS documents (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    key1 TEXT NOT NULL,
    key2 TEXT NOT NULL, -- '' when the kind has one key: NULLs would not be unique
    body TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE UNIQUE INDEX IF NOT EXISTS documents_keys ON documents (kind, key1, key2);
CREATE TABLE IF NOT EXISTS flow_runs (
    id TEXT PRIMARY KEY,
    flow_id TEXT NOT NULL,
    deployment_id TEXT,
    work_pool_name TEXT,
    state_type TEXT,
    state_name TEXT,
    idempotency_key TEXT,
    sort_time TEXT,
    version INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS flow_runs_idempotency ON flow_runs (flow_id, idempotency_key);
CREATE INDEX IF NOT EXISTS flow_runs_state ON flow_runs (state_type, sort_time);
CREATE INDEX IF NOT EXISTS flow_runs_deployment ON flow_runs (deployment_id);
CREATE TABLE IF NOT EXISTS flow_run_states (
    id TEXT PRIMARY KEY,
    flow_run_id TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS flow_run_states_run ON flow_run_states (flow_run_id);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    flow_run_id TEXT NOT NULL,
    state_type TEXT
);
"#;

/// Version 2: filter and sort columns of flow runs.
fn v2(tx: &Transaction<'_>) -> Result<()> {
    tx.execute_batch(
        "ALTER TABLE flow_runs ADD COLUMN name TEXT;
         ALTER TABLE flow_runs ADD COLUMN expected_start_time TEXT;
         ALTER TABLE flow_runs ADD COLUMN start_time TEXT;
         ALTER TABLE flow_runs ADD COLUMN end_time TEXT;
         ALTER TABLE flow_runs ADD COLUMN next_scheduled_start_time TEXT;
         ALTER TABLE flow_runs ADD COLUMN parent_task_run_id TEXT;",
    )
    .map_err(sql)?;
    {
        let mut read = tx.prepare("SELECT id, body FROM flow_runs").map_err(sql)?;
        let rows = read
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(sql)?;
        let mut write = tx
            .prepare(
                "UPDATE flow_runs SET name = ?2, expected_start_time = ?3, start_time = ?4,
                 end_time = ?5, next_scheduled_start_time = ?6, parent_task_run_id = ?7
                 WHERE id = ?1",
            )
            .map_err(sql)?;
        for row in rows {
            let (id, body) = row.map_err(sql)?;
            let run = from_json::<StoredRun>(&body)?.run;
            write
                .execute(params![
                    id,
                    run.name,
                    run.expected_start_time.map(ts),
                    run.start_time.map(ts),
                    run.end_time.map(ts),
                    run.next_scheduled_start_time.map(ts),
                    run.parent_task_run_id.map(|p| p.to_string()),
                ])
                .map_err(sql)?;
        }
    }
    tx.execute_batch(
        "CREATE INDEX flow_runs_expected ON flow_runs (expected_start_time);
         CREATE INDEX flow_runs_state_expected ON flow_runs (state_type, expected_start_time);
         CREATE INDEX flow_runs_deployment_expected ON flow_runs (deployment_id, expected_start_time);
         CREATE INDEX flow_runs_pool_expected ON flow_runs (work_pool_name, expected_start_time);
         CREATE INDEX flow_runs_name ON flow_runs (name);
         CREATE INDEX flow_runs_start ON flow_runs (coalesce(start_time, expected_start_time));
         CREATE INDEX flow_runs_end ON flow_runs (end_time);
         CREATE INDEX flow_runs_next_scheduled ON flow_runs (next_scheduled_start_time);
         CREATE INDEX flow_runs_parent_task_run ON flow_runs (parent_task_run_id);
         DROP INDEX flow_runs_deployment;",
    )
    .map_err(sql)
}

/// Version 3: task runs and their state history. `flow_run_id` is `''` when a task run has
/// no flow run (NULLs would not be unique in the idempotency index).
const V3: &str = r#"
CREATE TABLE task_runs (
    id TEXT PRIMARY KEY,
    flow_run_id TEXT NOT NULL,
    task_key TEXT NOT NULL,
    dynamic_key TEXT NOT NULL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX task_runs_key ON task_runs (flow_run_id, task_key, dynamic_key);
CREATE TABLE task_run_states (
    id TEXT PRIMARY KEY,
    task_run_id TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX task_run_states_run ON task_run_states (task_run_id);
"#;

/// Version 4: named counters (a missing row is 0).
const V4: &str = r#"
CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"#;

/// Version 5: log lines. Times are ISO 8601 with microseconds and `Z` (string order is time
/// order); `flow_run_id`/`task_run_id` are NULL when the line has none.
const V5: &str = r#"
CREATE TABLE logs (
    id TEXT PRIMARY KEY,
    flow_run_id TEXT,
    task_run_id TEXT,
    name TEXT NOT NULL,
    level INTEGER NOT NULL,
    message TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE INDEX logs_flow_run ON logs (flow_run_id, timestamp, id);
CREATE INDEX logs_timestamp ON logs (timestamp, id);
CREATE INDEX logs_created ON logs (created);
"#;

/// Version 6: events (the whole event as JSON in `body`; `occurred` and `received` ISO 8601
/// with microseconds and `Z`, `resource_id` the primary resource's id).
const V6: &str = r#"
CREATE TABLE events (
    id TEXT PRIMARY KEY,
    occurred TEXT NOT NULL,
    event TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    received TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX events_occurred ON events (occurred);
CREATE INDEX events_resource ON events (resource_id, occurred);
CREATE INDEX events_received ON events (received);
"#;

type Step = fn(&Transaction<'_>) -> Result<()>;

/// The steps, version 1 first.
const STEPS: &[Step] = &[
    |tx| tx.execute_batch(V1).map_err(sql),
    v2,
    |tx| tx.execute_batch(V3).map_err(sql),
    |tx| tx.execute_batch(V4).map_err(sql),
    |tx| tx.execute_batch(V5).map_err(sql),
    |tx| tx.execute_batch(V6).map_err(sql),
];

/// The schema version this build writes.
pub const LATEST: i64 = STEPS.len() as i64;

/// Checks that a file opened read-only is at [`LATEST`] (it cannot be migrated).
///
/// # Errors
/// `Backend`, saying to open the file read-write once (or to upgrade pushpool).
pub(super) fn require_latest(conn: &Connection) -> Result<()> {
    let current: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(sql)?;
    if current == LATEST {
        return Ok(());
    }
    Err(StoreError::Backend(
        format!(
            "the database is at schema version {current} and this pushpool reads version {LATEST}; a read-only file cannot be migrated: open it read-write once{}",
            if current > LATEST { " with a pushpool as new as the one that wrote it" } else { "" }
        )
        .into(),
    ))
}

/// Brings `conn`'s file to [`LATEST`].
///
/// # Errors
/// `Backend` when a step fails (the file stays at the last complete version), or when the
/// file is newer than this build.
pub(super) fn migrate(conn: &mut Connection) -> Result<()> {
    let current: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(sql)?;
    if current > LATEST {
        return Err(StoreError::Backend(
            format!(
                "the database was written by a newer pushpool (schema version {current}; this one knows up to {LATEST}): upgrade pushpool"
            )
            .into(),
        ));
    }
    for (i, step) in STEPS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction().map_err(sql)?;
        step(&tx)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)
            .map_err(sql)?;
        tx.commit().map_err(sql)?;
    }
    Ok(())
}
