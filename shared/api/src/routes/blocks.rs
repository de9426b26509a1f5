//! Block types, block schemas and block documents.
//!
//! Block documents are stored with their secrets in plain text and answered with every
//! secret field (the schema's `secret_fields`) replaced by `"********"` unless the request
//! says `include_secrets=true`; create and update responses are always obfuscated (Prefect
//! 3.9.1 behaviour, recorded in scenarios b1–b6). Schema checksums are Prefect's own
//! ([`pushpool_core::blocks::schema_checksum`]), so the client finds the schema it computes.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::Utc;
use pushpool_core::blocks::{obfuscate, restore_obfuscated, schema_checksum};
use pushpool_core::model::{BlockDocument, BlockSchema, BlockType};
use pushpool_store::{Page, StoreError};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::filters::{
    BlockDocumentsBody, BlockSchemasBody, BlockTypesBody, FilterBody, checked_page, no_other_keys,
};
use super::{IncludeSecrets, parse_id};
use crate::extract::{Json, Query};
use crate::{ApiError, AppState};
use pushpool_service::queries;

#[derive(Debug, Deserialize)]
pub(crate) struct BlockTypeCreate {
    name: String,
    slug: String,
    #[serde(default)]
    logo_url: Option<String>,
    #[serde(default)]
    documentation_url: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    code_example: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct BlockTypeUpdate {
    #[serde(default, deserialize_with = "super::explicit")]
    logo_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::explicit")]
    documentation_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::explicit")]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::explicit")]
    code_example: Option<Option<String>>,
}

pub(crate) async fn create_block_type(
    State(state): State<AppState>,
    Json(body): Json<BlockTypeCreate>,
) -> Result<impl IntoResponse, ApiError> {
    crate::names::check("name", &body.name, crate::names::Rule::Name)?;
    crate::names::check("slug", &body.slug, crate::names::Rule::LowercaseDashes)?;
    let now = Utc::now();
    let bt = BlockType {
        id: Uuid::new_v4(),
        created: now,
        updated: now,
        name: body.name,
        slug: body.slug,
        logo_url: body.logo_url,
        documentation_url: body.documentation_url,
        description: body.description,
        code_example: body.code_example,
        is_protected: false,
    };
    state.store().create_block_type(&bt).await?;
    Ok((StatusCode::CREATED, axum::Json(bt)))
}

pub(crate) async fn read_block_type_by_slug(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<axum::Json<BlockType>, ApiError> {
    Ok(axum::Json(
        state.store().read_block_type_by_slug(&slug).await?,
    ))
}

pub(crate) async fn read_block_type(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<BlockType>, ApiError> {
    let id = parse_id("id", &id)?;
    Ok(axum::Json(state.store().read_block_type(id).await?))
}

pub(crate) async fn update_block_type(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<BlockTypeUpdate>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id("id", &id)?;
    let mut bt = state.store().read_block_type(id).await?;
    if let Some(v) = body.logo_url {
        bt.logo_url = v;
    }
    if let Some(v) = body.documentation_url {
        bt.documentation_url = v;
    }
    if let Some(v) = body.description {
        bt.description = v;
    }
    if let Some(v) = body.code_example {
        bt.code_example = v;
    }
    bt.updated = Utc::now();
    state.store().update_block_type(&bt).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /block_types/filter`: Prefect's `BlockTypeFilter`, and `block_schemas` (the type
/// must have a schema that passes), by name, `offset`/`limit`.
pub(crate) async fn filter_block_types(
    State(state): State<AppState>,
    FilterBody(body): FilterBody<BlockTypesBody>,
) -> Result<axum::Json<Vec<BlockType>>, ApiError> {
    let page = checked_page(&body.other, &body.offset, &body.limit)?;
    let with_schema: Option<std::collections::HashSet<Uuid>> = match &body.block_schemas {
        Some(f) => Some(
            state
                .store()
                .list_block_schemas(Page::default())
                .await?
                .into_iter()
                .filter(|s| f.matches(s))
                .map(|s| s.block_type_id)
                .collect(),
        ),
        None => None,
    };
    let mut types: Vec<BlockType> = state
        .store()
        .list_block_types(Page::default())
        .await?
        .into_iter()
        .filter(|t| body.block_types.as_ref().is_none_or(|f| f.matches(t)))
        .filter(|t| with_schema.as_ref().is_none_or(|ids| ids.contains(&t.id)))
        .collect();
    types.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| b.id.cmp(&a.id)));
    Ok(axum::Json(
        types
            .into_iter()
            .skip(page.offset)
            .take(page.limit.unwrap_or(usize::MAX))
            .collect(),
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct BlockSchemaCreate {
    fields: Value,
    block_type_id: Uuid,
    #[serde(default)]
    capabilities: Vec<String>,
    #[serde(default)]
    version: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct VersionQuery {
    #[serde(default)]
    version: Option<String>,
}

async fn with_block_type(
    state: &AppState,
    mut schema: BlockSchema,
) -> Result<BlockSchema, ApiError> {
    schema.block_type = Some(state.store().read_block_type(schema.block_type_id).await?);
    Ok(schema)
}

pub(crate) async fn create_block_schema(
    State(state): State<AppState>,
    Json(body): Json<BlockSchemaCreate>,
) -> Result<impl IntoResponse, ApiError> {
    if !body.fields.is_object() {
        return Err(ApiError::Invalid("fields: must be a JSON object".into()));
    }
    match state.store().read_block_type(body.block_type_id).await {
        Err(StoreError::NotFound(_)) => {
            return Err(ApiError::NotFound(format!(
                "block_type_id: block type {} not found",
                body.block_type_id
            )));
        }
        other => {
            other?;
        }
    }
    let checksum = schema_checksum(&body.fields);
    let version = body.version.unwrap_or_else(|| "non-versioned".into());
    if let Ok(existing) = state
        .store()
        .read_block_schema_by_checksum(&checksum, Some(&version))
        .await
    {
        return Ok((
            StatusCode::OK,
            axum::Json(with_block_type(&state, existing).await?),
        ));
    }
    let now = Utc::now();
    let schema = BlockSchema {
        id: Uuid::new_v4(),
        created: now,
        updated: now,
        checksum,
        fields: body.fields,
        block_type_id: body.block_type_id,
        block_type: None,
        capabilities: body.capabilities,
        version,
    };
    state.store().create_block_schema(&schema).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(with_block_type(&state, schema).await?),
    ))
}

pub(crate) async fn read_block_schema_by_checksum(
    State(state): State<AppState>,
    Path(checksum): Path<String>,
    Query(q): Query<VersionQuery>,
) -> Result<axum::Json<BlockSchema>, ApiError> {
    let schema = state
        .store()
        .read_block_schema_by_checksum(&checksum, q.version.as_deref())
        .await?;
    Ok(axum::Json(with_block_type(&state, schema).await?))
}

pub(crate) async fn read_block_schema(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<BlockSchema>, ApiError> {
    let id = parse_id("id", &id)?;
    let schema = state.store().read_block_schema(id).await?;
    Ok(axum::Json(with_block_type(&state, schema).await?))
}

/// `POST /block_schemas/filter`: Prefect's `BlockSchemaFilter`, newest first,
/// `offset`/`limit`.
pub(crate) async fn filter_block_schemas(
    State(state): State<AppState>,
    FilterBody(body): FilterBody<BlockSchemasBody>,
) -> Result<axum::Json<Vec<BlockSchema>>, ApiError> {
    let page = checked_page(&body.other, &body.offset, &body.limit)?;
    let mut schemas: Vec<BlockSchema> = state
        .store()
        .list_block_schemas(Page::default())
        .await?
        .into_iter()
        .filter(|s| body.block_schemas.as_ref().is_none_or(|f| f.matches(s)))
        .collect();
    schemas.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.id.cmp(&a.id)));
    let mut out = Vec::new();
    for s in schemas
        .into_iter()
        .skip(page.offset)
        .take(page.limit.unwrap_or(usize::MAX))
    {
        out.push(with_block_type(&state, s).await?);
    }
    Ok(axum::Json(out))
}

#[derive(Debug, Deserialize)]
pub(crate) struct BlockDocumentCreate {
    #[serde(default)]
    name: Option<String>,
    #[serde(default = "empty_object")]
    data: Value,
    block_schema_id: Uuid,
    block_type_id: Uuid,
    #[serde(default)]
    is_anonymous: bool,
}

fn empty_object() -> Value {
    json!({})
}

#[derive(Debug, Deserialize)]
pub(crate) struct BlockDocumentUpdate {
    #[serde(default)]
    block_schema_id: Option<Uuid>,
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    merge_existing_data: Option<bool>,
}

/// The response shape of a block document, secrets obfuscated unless `include_secrets`.
async fn document_response(
    state: &AppState,
    doc: &BlockDocument,
    include_secrets: bool,
) -> Result<Value, ApiError> {
    let schema = with_block_type(
        state,
        state.store().read_block_schema(doc.block_schema_id).await?,
    )
    .await?;
    let block_type = schema.block_type.clone();
    let data = if include_secrets {
        doc.data.clone()
    } else {
        obfuscate(&doc.data, &schema.secret_fields())
    };
    Ok(json!({
        "id": doc.id,
        "created": doc.created,
        "updated": doc.updated,
        "name": doc.name,
        "data": data,
        "block_schema_id": doc.block_schema_id,
        "block_schema": schema,
        "block_type_id": doc.block_type_id,
        "block_type_name": block_type.as_ref().map(|t| t.name.clone()),
        "block_type": block_type,
        "block_document_references": {},
        "is_anonymous": doc.is_anonymous,
    }))
}

pub(crate) async fn create_block_document(
    State(state): State<AppState>,
    Json(body): Json<BlockDocumentCreate>,
) -> Result<impl IntoResponse, ApiError> {
    if !body.data.is_object() {
        return Err(ApiError::Invalid("data: must be a JSON object".into()));
    }
    let schema = match state.store().read_block_schema(body.block_schema_id).await {
        Ok(s) => s,
        Err(StoreError::NotFound(_)) => {
            return Err(ApiError::NotFound(format!(
                "block_schema_id: block schema {} not found",
                body.block_schema_id
            )));
        }
        Err(e) => return Err(e.into()),
    };
    if schema.block_type_id != body.block_type_id {
        return Err(ApiError::Invalid(
            "block_type_id: does not match the block schema's block type".into(),
        ));
    }
    let name = match (body.name, body.is_anonymous) {
        (Some(n), _) => {
            crate::names::check("name", &n, crate::names::Rule::LowercaseDashes)?;
            Some(n)
        }
        (None, true) => Some(format!("anonymous-{}", Uuid::new_v4())),
        (None, false) => {
            return Err(ApiError::Invalid(
                "name: required for a block document that is not anonymous".into(),
            ));
        }
    };
    let now = Utc::now();
    let doc = BlockDocument {
        id: Uuid::new_v4(),
        created: now,
        updated: now,
        name,
        data: body.data,
        block_schema_id: body.block_schema_id,
        block_type_id: body.block_type_id,
        is_anonymous: body.is_anonymous,
    };
    state.store().create_block_document(&doc).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(document_response(&state, &doc, false).await?),
    ))
}

pub(crate) async fn read_block_document(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<IncludeSecrets>,
) -> Result<axum::Json<Value>, ApiError> {
    let id = parse_id("id", &id)?;
    let doc = state.store().read_block_document(id).await?;
    Ok(axum::Json(
        document_response(&state, &doc, q.include_secrets).await?,
    ))
}

pub(crate) async fn read_block_document_by_name(
    State(state): State<AppState>,
    Path((slug, name)): Path<(String, String)>,
    Query(q): Query<IncludeSecrets>,
) -> Result<axum::Json<Value>, ApiError> {
    let bt = state.store().read_block_type_by_slug(&slug).await?;
    let doc = state
        .store()
        .read_block_document_by_name(bt.id, &name)
        .await?;
    Ok(axum::Json(
        document_response(&state, &doc, q.include_secrets).await?,
    ))
}

pub(crate) async fn read_block_documents_of_type(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    Query(q): Query<IncludeSecrets>,
) -> Result<axum::Json<Vec<Value>>, ApiError> {
    let bt = state.store().read_block_type_by_slug(&slug).await?;
    let mut out = Vec::new();
    for doc in state.store().list_block_documents(Page::default()).await? {
        if doc.block_type_id == bt.id && !doc.is_anonymous {
            out.push(document_response(&state, &doc, q.include_secrets).await?);
        }
    }
    Ok(axum::Json(out))
}

pub(crate) async fn update_block_document(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<BlockDocumentUpdate>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id("id", &id)?;
    let mut doc = state.store().read_block_document(id).await?;
    if let Some(schema_id) = body.block_schema_id {
        state
            .store()
            .read_block_schema(schema_id)
            .await
            .map_err(|e| match e {
                StoreError::NotFound(_) => ApiError::NotFound(format!(
                    "block_schema_id: block schema {schema_id} not found"
                )),
                e => e.into(),
            })?;
        doc.block_schema_id = schema_id;
    }
    if let Some(mut data) = body.data {
        if !data.is_object() {
            return Err(ApiError::Invalid("data: must be a JSON object".into()));
        }
        let schema = state.store().read_block_schema(doc.block_schema_id).await?;
        restore_obfuscated(&mut data, &doc.data, &schema.secret_fields());
        if body.merge_existing_data.unwrap_or(true) {
            if let (Some(old), Some(new)) = (doc.data.as_object_mut(), data.as_object()) {
                for (k, v) in new {
                    old.insert(k.clone(), v.clone());
                }
            } else {
                doc.data = data;
            }
        } else {
            doc.data = data;
        }
    }
    doc.updated = Utc::now();
    state.store().update_block_document(&doc).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn delete_block_document(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id("id", &id)?;
    state.store().delete_block_document(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

impl BlockDocumentsBody {
    fn query(&self) -> queries::BlockDocumentQuery {
        queries::BlockDocumentQuery {
            block_documents: self.block_documents.clone().unwrap_or_default(),
            block_types: self.block_types.clone(),
            block_schemas: self.block_schemas.clone(),
        }
    }
}

/// `POST /block_documents/filter`: Prefect's `BlockDocumentFilter` (anonymous documents
/// hidden by default), `block_types` and `block_schemas`, every `BlockDocumentSort`,
/// `offset`/`limit`, and `include_secrets`.
pub(crate) async fn filter_block_documents(
    State(state): State<AppState>,
    FilterBody(body): FilterBody<BlockDocumentsBody>,
) -> Result<axum::Json<Vec<Value>>, ApiError> {
    let page = checked_page(&body.other, &body.offset, &body.limit)?;
    let docs = queries::read_block_documents(
        state.store().as_ref(),
        &body.query(),
        body.sort.unwrap_or_default(),
        page,
    )
    .await?;
    let mut out = Vec::with_capacity(docs.len());
    for doc in &docs {
        out.push(document_response(&state, doc, body.include_secrets.unwrap_or(false)).await?);
    }
    Ok(axum::Json(out))
}

/// `POST /block_documents/count`: `{block_documents, block_types, block_schemas}`. The
/// paging keys, `sort` and `include_secrets` that Prefect's UI sends with a count do not
/// change the total (Prefect's server ignores them too).
pub(crate) async fn count_block_documents(
    State(state): State<AppState>,
    FilterBody(body): FilterBody<BlockDocumentsBody>,
) -> Result<axum::Json<u64>, ApiError> {
    no_other_keys(&body.other)?;
    let docs = queries::read_block_documents(
        state.store().as_ref(),
        &body.query(),
        Default::default(),
        Page::default(),
    )
    .await?;
    Ok(axum::Json(docs.len() as u64))
}
