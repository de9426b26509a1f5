//! Flow run inputs in SQLite: `documents` rows of kind `flow_run_input`, `key1` the flow run
//! id and `key2` the input key (the table's unique `(kind, key1, key2)` index makes a second
//! input of one key a conflict); listed in insertion order (`rowid`), which is creation order.

use pushpool_core::run_input::FlowRunInput;
use rusqlite::params;
use uuid::Uuid;

use super::{SqliteStore, from_json, sql};
use pushpool_store::{Result, StoreError};

const MISSING: &str = "Flow run input not found";

impl SqliteStore {
    pub(super) async fn insert_run_input(&self, input: &FlowRunInput) -> Result<()> {
        self.insert_doc(
            "flow_run_input",
            input.id,
            Some(input.flow_run_id.to_string()),
            Some(input.key.clone()),
            input,
            "A flow run input with this key already exists.".into(),
        )
        .await
    }

    pub(super) async fn get_run_input(&self, flow_run_id: Uuid, key: &str) -> Result<FlowRunInput> {
        self.get_doc(
            "SELECT body FROM documents WHERE kind = 'flow_run_input' AND key1 = ?1 AND key2 = ?2",
            vec![flow_run_id.to_string(), key.to_owned()],
            MISSING.into(),
        )
        .await
    }

    pub(super) async fn run_inputs(&self, flow_run_id: Uuid) -> Result<Vec<FlowRunInput>> {
        let run = flow_run_id.to_string();
        let bodies: Vec<String> = self
            .with(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT body FROM documents WHERE kind = 'flow_run_input' AND key1 = ?1 \
                         ORDER BY rowid",
                    )
                    .map_err(sql)?;
                let rows = stmt
                    .query_map(params![run], |r| r.get::<_, String>(0))
                    .map_err(sql)?;
                rows.collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(sql)
            })
            .await?;
        bodies.iter().map(|b| from_json(b)).collect()
    }

    pub(super) async fn remove_run_input(&self, flow_run_id: Uuid, key: &str) -> Result<()> {
        let (run, key) = (flow_run_id.to_string(), key.to_owned());
        self.with(move |c| {
            let n = c
                .prepare_cached(
                    "DELETE FROM documents WHERE kind = 'flow_run_input' AND key1 = ?1 AND key2 = ?2",
                )
                .map_err(sql)?
                .execute(params![run, key])
                .map_err(sql)?;
            if n == 0 {
                Err(StoreError::NotFound(MISSING.into()))
            } else {
                Ok(())
            }
        })
        .await
    }
}
