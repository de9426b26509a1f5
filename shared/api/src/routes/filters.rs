//! Prefect's filter route bodies (`POST /<resource>/filter`, `/count`, `/paginate`), parsed
//! into typed structs that refuse what they do not know.
//!
//! - Every key of every filter model in a body must be one Prefect 3.9.1 defines (its OpenAPI
//!   document); anything else is a 422 that names its path (`flow_runs.tags.none_: unknown
//!   field ...`), as Prefect's models forbid extra keys. At the top level of a body, Prefect's
//!   server (FastAPI) silently drops keys it does not define, and its own client sends one
//!   (`"work_queues": null` to `/flows/filter`): pushpool accepts such a key when it is `null`
//!   and refuses it, naming it, otherwise.
//! - A key sent as `null` is the same as a key left out, as FastAPI treats body fields.
//! - `limit` follows Prefect's `LimitBody`: default and maximum 200
//!   (`PREFECT_SERVER_API_DEFAULT_LIMIT`), `422 "Invalid limit: must be less than or equal to
//!   200."` above it, `"... greater than or equal to 0."` below 0. `offset` is an integer ≥ 0,
//!   `page` an integer ≥ 1; anything else (a fraction, a string, a number past 2^63 - 1) is a
//!   422 naming the key.
//! - Criteria whose data pushpool does not hold yet are refused with a 422 that says so:
//!   `task_runs` (task runs are not filterable yet), `work_pool_queues` (Prefect joins runs
//!   and deployments to their queue by `work_queue_id`; runs stored before queues were
//!   modelled carry the default queue's id whatever their queue's name, so this join is not
//!   made yet: `work_queue_name` criteria of `flow_runs` and `deployments` are the way to
//!   select by queue). `POST /work_pools/{name}/queues/filter` takes `WorkQueueFilter`.

use axum::extract::{FromRequest, Request};
use pushpool_core::filter::{
    BlockDocumentFilter, BlockDocumentSort, BlockSchemaFilter, BlockTypeFilter, DeploymentFilter,
    DeploymentSort, FlowFilter, FlowRunFilter, FlowRunSort, FlowSort, WorkPoolFilter,
    WorkQueueFilter,
};
use pushpool_service::queries::Related;
use pushpool_store::Page;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::ApiError;

/// Prefect's default and maximum `limit` (`PREFECT_SERVER_API_DEFAULT_LIMIT`).
pub(crate) const MAX_LIMIT: u64 = 200;

/// A filter body: an empty body is `T::default()`; a malformed one is a 422 naming the path
/// of the offending key.
#[derive(Debug, Clone, Default)]
pub(crate) struct FilterBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for FilterBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if crate::extract::too_large(e.status(), &e.body_text()) {
                    ApiError::PayloadTooLarge
                } else {
                    ApiError::BadRequest(e.body_text())
                }
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(de).map(Self).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            // serde_json ends its messages with " at line L column C": of no use in an
            // API error whose path already names the key.
            let message = inner.to_string();
            let message = message
                .rsplit_once(" at line ")
                .map_or(message.as_str(), |(m, _)| m)
                .to_owned();
            if inner.is_syntax() || inner.is_eof() {
                ApiError::BadRequest(format!("Invalid request body: {inner}"))
            } else if path == "." {
                ApiError::Invalid(format!("Invalid request body: {message}"))
            } else {
                ApiError::Invalid(format!("{path}: {message}"))
            }
        })
    }
}

/// An integer body key kept raw, checked by [`limit`], [`offset`] or [`page`].
pub(crate) type RawNumber = Option<Value>;

fn integer(name: &str, raw: &RawNumber) -> Result<Option<i128>, ApiError> {
    match raw {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.is_f64() => {
            Err(ApiError::Invalid(format!("{name}: {n} is not an integer")))
        }
        Some(Value::Number(n)) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .filter(|v| *v <= i128::from(i64::MAX))
            .map(Some)
            .ok_or_else(|| {
                ApiError::Invalid(format!(
                    "{name}: {n} is not an integer between -2^63 and 2^63 - 1"
                ))
            }),
        Some(other) => Err(ApiError::Invalid(format!(
            "{name}: {other} is not an integer"
        ))),
    }
}

/// `limit` as Prefect's `LimitBody` checks it: default 200, between 0 and 200.
pub(crate) fn limit(raw: &RawNumber) -> Result<usize, ApiError> {
    match integer("limit", raw)? {
        None => Ok(MAX_LIMIT as usize),
        Some(l) if l < 0 => Err(ApiError::Invalid(
            "Invalid limit: must be greater than or equal to 0.".into(),
        )),
        Some(l) if l > i128::from(MAX_LIMIT) => Err(ApiError::Invalid(format!(
            "Invalid limit: must be less than or equal to {MAX_LIMIT}."
        ))),
        Some(l) => Ok(l as usize),
    }
}

/// `offset`: an integer ≥ 0, default 0.
pub(crate) fn offset(raw: &RawNumber) -> Result<usize, ApiError> {
    match integer("offset", raw)? {
        None => Ok(0),
        Some(o) if o < 0 => Err(ApiError::Invalid(
            "offset: must be greater than or equal to 0".into(),
        )),
        Some(o) => Ok(usize::try_from(o).unwrap_or(usize::MAX)),
    }
}

/// `page`: an integer ≥ 1, default 1.
pub(crate) fn page(raw: &RawNumber) -> Result<usize, ApiError> {
    match integer("page", raw)? {
        None => Ok(1),
        Some(p) if p < 1 => Err(ApiError::Invalid(
            "page: must be greater than or equal to 1".into(),
        )),
        Some(p) => Ok(usize::try_from(p).unwrap_or(usize::MAX)),
    }
}

/// The page of `offset`/`limit` keys.
pub(crate) fn offset_page(offset_raw: &RawNumber, limit_raw: &RawNumber) -> Result<Page, ApiError> {
    Ok(Page {
        offset: offset(offset_raw)?,
        limit: Some(limit(limit_raw)?),
    })
}

/// `offset`/`limit` of a body, after checking its other keys.
pub(crate) fn checked_page(
    other: &serde_json::Map<String, Value>,
    offset_raw: &RawNumber,
    limit_raw: &RawNumber,
) -> Result<Page, ApiError> {
    no_other_keys(other)?;
    offset_page(offset_raw, limit_raw)
}

/// Prefect's paginate response: `{results, count, limit, pages, page}`.
pub(crate) fn paginated<T: serde::Serialize>(
    results: Vec<T>,
    count: u64,
    limit: usize,
    page: usize,
) -> Value {
    let limit64 = limit as u64;
    let pages = if limit64 > 0 {
        count.div_ceil(limit64)
    } else {
        0
    };
    serde_json::json!({
        "results": results,
        "count": count,
        "limit": limit,
        "pages": pages,
        "page": page,
    })
}

/// Refuses a key of a body that Prefect's body for the route does not define, unless it is
/// `null`. Prefect's server (FastAPI) drops such keys silently, and its own client sends one
/// (`"work_queues": null` to `/flows/filter`): a `null` asks for nothing, anything else would
/// be a criterion answered by ignoring it, so it is a 422 naming the key.
pub(crate) fn no_other_keys(other: &serde_json::Map<String, Value>) -> Result<(), ApiError> {
    match other.iter().find(|(_, v)| !v.is_null()) {
        Some((key, _)) => Err(ApiError::Invalid(format!(
            "{key}: not a key of this route's body (Prefect's server would ignore it; pushpool refuses it)"
        ))),
        None => Ok(()),
    }
}

/// Refuses a criterion pushpool cannot answer yet.
fn refuse(present: bool, path: &str, why: &str) -> Result<(), ApiError> {
    if present {
        Err(ApiError::Invalid(format!("{path}: {why}")))
    } else {
        Ok(())
    }
}

const NO_TASK_RUNS: &str = "filtering by task runs is not supported by pushpool yet";

/// A body of one of the flow run, flow and deployment routes: the related filters, a sort,
/// and the paging keys its route takes.
#[derive(Debug, Default, Deserialize)]
#[serde(bound(deserialize = "S: Deserialize<'de>"))]
pub(crate) struct ListBody<S> {
    #[serde(default)]
    flows: Option<FlowFilter>,
    #[serde(default)]
    flow_runs: Option<FlowRunFilter>,
    #[serde(default)]
    task_runs: Option<Value>,
    #[serde(default)]
    deployments: Option<DeploymentFilter>,
    #[serde(default)]
    work_pools: Option<WorkPoolFilter>,
    #[serde(default)]
    work_pool_queues: Option<WorkQueueFilter>,
    #[serde(default)]
    sort: Option<S>,
    #[serde(default)]
    limit: RawNumber,
    #[serde(default)]
    offset: RawNumber,
    #[serde(default)]
    page: RawNumber,
    /// Keys Prefect's body does not define: accepted only as `null` (the Prefect client
    /// sends `"work_queues": null` to `/flows/filter`); see [`no_other_keys`].
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

/// What a list route needs: the filters, the sort, and its page.
pub(crate) struct Listing<S> {
    pub related: Related,
    pub sort: S,
    pub page: Page,
    /// `page` (paginate routes) and `limit`, for the paginate response.
    pub page_number: usize,
    pub limit: usize,
}

/// Which paging keys a route takes: `offset` (filter routes), `page` (paginate routes) or
/// none (count routes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Paging {
    Offset,
    Page,
    None,
}

impl<S: Default> ListBody<S> {
    /// Checks the body for a route with `paging`; the `flows`-filter route has no
    /// `work_pool_queues` key (Prefect's `Body_read_flows_flows_filter_post`).
    pub(crate) fn listing(self, paging: Paging, queues: bool) -> Result<Listing<S>, ApiError> {
        no_other_keys(&self.other)?;
        let unexpected = |present: bool, key: &str| {
            refuse(
                present,
                key,
                "this route does not take this key (Prefect's body for it has no such field)",
            )
        };
        unexpected(
            !queues && self.work_pool_queues.is_some(),
            "work_pool_queues",
        )?;
        match paging {
            Paging::Offset => unexpected(self.page.is_some(), "page")?,
            Paging::Page => unexpected(self.offset.is_some(), "offset")?,
            // Count routes: Prefect's body has only the filters, and Prefect's server
            // answers the total whatever paging keys come with them. Its UI sends its list's
            // `sort`, `offset`, `limit` and `page` to the count routes; the answer does not
            // depend on them, so they are checked as values and otherwise not used.
            Paging::None => {
                offset(&self.offset)?;
                page(&self.page)?;
            }
        }
        let limit = limit(&self.limit)?;
        let (page, page_number) = match paging {
            Paging::Offset => (
                Page {
                    offset: offset(&self.offset)?,
                    limit: Some(limit),
                },
                1,
            ),
            Paging::Page => {
                let n = page(&self.page)?;
                (
                    Page {
                        offset: (n - 1).saturating_mul(limit),
                        limit: Some(limit),
                    },
                    n,
                )
            }
            Paging::None => (Page::default(), 1),
        };
        refuse(self.task_runs.is_some(), "task_runs", NO_TASK_RUNS)?;
        Ok(Listing {
            related: Related {
                flows: self.flows,
                flow_runs: self.flow_runs,
                deployments: self.deployments,
                work_pools: self.work_pools,
                work_pool_queues: self.work_pool_queues,
            },
            sort: self.sort.unwrap_or_default(),
            page,
            page_number,
            limit,
        })
    }
}

/// `/flow_runs/filter`, `/count`, `/paginate`.
pub(crate) type FlowRunsBody = ListBody<FlowRunSort>;
/// `/flows/filter`, `/count`, `/paginate`.
pub(crate) type FlowsBody = ListBody<FlowSort>;
/// `/deployments/filter`, `/count`, `/paginate`.
pub(crate) type DeploymentsBody = ListBody<DeploymentSort>;

/// `/work_pools/filter` and `/count`: `{work_pools, offset, limit}`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct WorkPoolsBody {
    #[serde(default)]
    pub work_pools: Option<WorkPoolFilter>,
    #[serde(default)]
    pub offset: RawNumber,
    #[serde(default)]
    pub limit: RawNumber,
    /// Keys Prefect's body does not define: accepted only as `null` (the Prefect client
    /// sends `"work_queues": null` to `/flows/filter`); see [`no_other_keys`].
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

/// `/block_documents/filter` and `/count`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct BlockDocumentsBody {
    #[serde(default)]
    pub block_documents: Option<BlockDocumentFilter>,
    #[serde(default)]
    pub block_types: Option<BlockTypeFilter>,
    #[serde(default)]
    pub block_schemas: Option<BlockSchemaFilter>,
    #[serde(default)]
    pub include_secrets: Option<bool>,
    #[serde(default)]
    pub sort: Option<BlockDocumentSort>,
    #[serde(default)]
    pub offset: RawNumber,
    #[serde(default)]
    pub limit: RawNumber,
    /// Keys Prefect's body does not define: accepted only as `null` (the Prefect client
    /// sends `"work_queues": null` to `/flows/filter`); see [`no_other_keys`].
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

/// `/block_types/filter`: `{block_types, block_schemas, offset, limit}`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct BlockTypesBody {
    #[serde(default)]
    pub block_types: Option<BlockTypeFilter>,
    #[serde(default)]
    pub block_schemas: Option<BlockSchemaFilter>,
    #[serde(default)]
    pub offset: RawNumber,
    #[serde(default)]
    pub limit: RawNumber,
    /// Keys Prefect's body does not define: accepted only as `null` (the Prefect client
    /// sends `"work_queues": null` to `/flows/filter`); see [`no_other_keys`].
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

/// `/block_schemas/filter`: `{block_schemas, offset, limit}`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct BlockSchemasBody {
    #[serde(default)]
    pub block_schemas: Option<BlockSchemaFilter>,
    #[serde(default)]
    pub offset: RawNumber,
    #[serde(default)]
    pub limit: RawNumber,
    /// Keys Prefect's body does not define: accepted only as `null` (the Prefect client
    /// sends `"work_queues": null` to `/flows/filter`); see [`no_other_keys`].
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

impl ListBody<FlowRunSort> {
    /// `POST /ui/flow_runs/history`'s body (Prefect's `read_flow_run_history`): the flow-run
    /// filters, `sort` (default `EXPECTED_START_TIME_DESC`), `offset`, and `limit` up to 1000
    /// (default 1000); no `page`, no `work_pool_queues`.
    pub(crate) fn history_listing(mut self) -> Result<Listing<FlowRunSort>, ApiError> {
        const HISTORY_MAX: i128 = 1000;
        let limit = match integer("limit", &self.limit)? {
            None => HISTORY_MAX as usize,
            Some(l) if !(0..=HISTORY_MAX).contains(&l) => {
                return Err(ApiError::Invalid(format!(
                    "Invalid limit: must be between 0 and {HISTORY_MAX}."
                )));
            }
            Some(l) => l as usize,
        };
        self.limit = None;
        self.sort.get_or_insert(FlowRunSort::ExpectedStartTimeDesc);
        let mut listing = self.listing(Paging::Offset, false)?;
        listing.page.limit = Some(limit);
        listing.limit = limit;
        Ok(listing)
    }
}
