//! The block types of Prefect's integration collections (prefect-aws's `AWS Credentials`,
//! prefect-gcp's `GCP Credentials`, prefect-azure's `Azure Container Instance Credentials`,
//! ...), registered at start from the user's `prefect` installation as Prefect's server does
//! (Prefect 3.9.1 `prefect/server/models/block_registration.py`,
//! `_register_collection_blocks`): the file `prefect/server/collection_blocks_data.json` of
//! the installed package lists every collection's block types with their schemas. So the
//! web UI's block catalog offers them and its forms can create their block documents (the
//! push-pool guide's first step) without installing the collections.
//!
//! As on Prefect's server: a block type whose slug exists is updated (logo, documentation
//! URL, description, code example), else created; a schema is created unless one with its
//! checksum and version exists. Nothing of the file is copied into this repository: it is
//! read where `pushpool serve` finds Prefect's UI ([`crate::UiSource`]); without an
//! installation nothing is registered (`prefect block register -m prefect_aws` does it).

use std::path::Path;

use anyhow::Context;
use chrono::Utc;
use pushpool_core::model::{BlockSchema, BlockType};
use pushpool_store::{Store, StoreError};
use serde::Deserialize;
use uuid::Uuid;

/// The file's name in the `prefect/server` directory.
pub const FILE: &str = "collection_blocks_data.json";

#[derive(Debug, Deserialize)]
struct Data {
    collections: std::collections::BTreeMap<String, Collection>,
}

#[derive(Debug, Deserialize)]
struct Collection {
    block_types: std::collections::BTreeMap<String, CollectionBlockType>,
}

#[derive(Debug, Deserialize)]
struct CollectionBlockType {
    name: String,
    slug: String,
    logo_url: Option<String>,
    documentation_url: Option<String>,
    description: Option<String>,
    code_example: Option<String>,
    block_schema: CollectionBlockSchema,
}

#[derive(Debug, Deserialize)]
struct CollectionBlockSchema {
    checksum: String,
    fields: serde_json::Value,
    #[serde(default)]
    capabilities: Vec<String>,
    version: Option<String>,
}

/// What [`register`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Registered {
    /// Block types created.
    pub block_types_created: usize,
    /// Block types that existed and were updated.
    pub block_types_updated: usize,
    /// Block schemas created.
    pub block_schemas_created: usize,
}

/// Registers the block types and schemas of `server_dir/collection_blocks_data.json`;
/// `Ok(None)` when the file is not there.
///
/// # Errors
/// When the file cannot be read or parsed, or a store call fails.
pub async fn register(store: &dyn Store, server_dir: &Path) -> anyhow::Result<Option<Registered>> {
    let path = server_dir.join(FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let data: Data = serde_json::from_str(&text).with_context(|| path.display().to_string())?;
    let mut done = Registered::default();
    for block in data
        .collections
        .into_values()
        .flat_map(|c| c.block_types.into_values())
    {
        let now = Utc::now();
        let block_type_id = match store.read_block_type_by_slug(&block.slug).await {
            Ok(existing) => {
                let updated = BlockType {
                    updated: now,
                    logo_url: block.logo_url,
                    documentation_url: block.documentation_url,
                    description: block.description,
                    code_example: block.code_example,
                    ..existing.clone()
                };
                if updated.logo_url != existing.logo_url
                    || updated.documentation_url != existing.documentation_url
                    || updated.description != existing.description
                    || updated.code_example != existing.code_example
                {
                    store.update_block_type(&updated).await?;
                    done.block_types_updated += 1;
                }
                existing.id
            }
            Err(StoreError::NotFound(_)) => {
                let created = BlockType {
                    id: Uuid::new_v4(),
                    created: now,
                    updated: now,
                    name: block.name,
                    slug: block.slug,
                    logo_url: block.logo_url,
                    documentation_url: block.documentation_url,
                    description: block.description,
                    code_example: block.code_example,
                    is_protected: false,
                };
                store.create_block_type(&created).await?;
                done.block_types_created += 1;
                created.id
            }
            Err(e) => return Err(e.into()),
        };
        let schema = block.block_schema;
        let version = schema.version.unwrap_or_else(|| "non-versioned".into());
        match store
            .read_block_schema_by_checksum(&schema.checksum, Some(&version))
            .await
        {
            Ok(_) => {}
            Err(StoreError::NotFound(_)) => {
                store
                    .create_block_schema(&BlockSchema {
                        id: Uuid::new_v4(),
                        created: now,
                        updated: now,
                        checksum: schema.checksum,
                        fields: schema.fields,
                        block_type_id,
                        block_type: None,
                        capabilities: schema.capabilities,
                        version,
                    })
                    .await?;
                done.block_schemas_created += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Some(done))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pushpool_store_sqlite::SqliteStore;

    const DATA: &str = r#"{"collections": {"prefect-aws": {"block_types": {
        "aws-credentials": {"name": "AWS Credentials", "slug": "aws-credentials",
            "logo_url": "https://example.com/aws.png", "documentation_url": null,
            "description": "AWS auth", "code_example": "AwsCredentials.load('x')",
            "block_schema": {"checksum": "sha256:abc", "version": "0.7.12",
                "capabilities": [],
                "fields": {"title": "AwsCredentials", "type": "object",
                    "properties": {"aws_secret_access_key": {"type": "string", "format": "password", "writeOnly": true}},
                    "block_type_slug": "aws-credentials",
                    "secret_fields": ["aws_secret_access_key"],
                    "block_schema_references": {}}}}}}}}"#;

    #[tokio::test]
    async fn the_installed_collections_block_types_are_registered_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::in_memory().unwrap();
        assert_eq!(register(&store, dir.path()).await.unwrap(), None);

        std::fs::write(dir.path().join(FILE), DATA).unwrap();
        assert_eq!(
            register(&store, dir.path()).await.unwrap(),
            Some(Registered {
                block_types_created: 1,
                block_types_updated: 0,
                block_schemas_created: 1
            })
        );
        let block_type = store
            .read_block_type_by_slug("aws-credentials")
            .await
            .unwrap();
        assert_eq!(
            (
                block_type.name.as_str(),
                block_type.description.as_deref(),
                block_type.is_protected
            ),
            ("AWS Credentials", Some("AWS auth"), false)
        );
        let schema = store
            .read_block_schema_by_checksum("sha256:abc", Some("0.7.12"))
            .await
            .unwrap();
        assert_eq!(schema.block_type_id, block_type.id);
        assert_eq!(schema.secret_fields(), vec!["aws_secret_access_key"]);

        // A restart: nothing new.
        assert_eq!(
            register(&store, dir.path()).await.unwrap(),
            Some(Registered::default())
        );
        // A newer installation with another description updates the type, as Prefect does.
        std::fs::write(
            dir.path().join(FILE),
            DATA.replace("AWS auth", "AWS authentication"),
        )
        .unwrap();
        assert_eq!(
            register(&store, dir.path()).await.unwrap(),
            Some(Registered {
                block_types_created: 0,
                block_types_updated: 1,
                block_schemas_created: 0
            })
        );
        assert_eq!(
            store
                .read_block_type_by_slug("aws-credentials")
                .await
                .unwrap()
                .description
                .as_deref(),
            Some("AWS authentication")
        );
    }
}
