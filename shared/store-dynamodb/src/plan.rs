//! Flow run listings whose cost does not grow with the table: which index answers a query,
//! how a page is read from it, and the upgrade of format 1 items (the crate docs, "Flow run
//! queries", say why).
//!
//! A query is answered from one **source**: the partitions of one index (or of the tag
//! listing entries) that hold every run the query can match. When the source's order is the
//! query's sort (expected start time, or id descending), a page is read **in order**: each
//! partition is queried in that order, its runs read (strongly consistent) and tested with
//! the reference predicate [`FlowRunQuery::matches`], until `offset + limit` of them match
//! and the next index entry sorts after the last one kept (runs with the same expected
//! start time are all read, since their order by id is the other way round when
//! ascending); the partitions' runs are then merged by the sort. Each partition reads
//! `offset + limit` entries plus those the rest of the filter rejects, whatever the size of
//! the table. Otherwise the whole source is read and sorted in memory.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use pushpool_core::filter::{FlowRunSort, Operator};
use pushpool_core::model::FlowRun;
use pushpool_core::state::StateType;
use pushpool_store::{FlowRunQuery, Result};
use uuid::Uuid;

use crate::DynamoStore;
use crate::error::DynamoError;
use crate::item::{
    Cond, DEPLOYMENT_ID, EST, Expr, FLOW_ID, FORMAT, GSI_DEPLOYMENT, GSI_ID, GSI_POOL, GSI_TIME,
    GSI1, GSI1PK, GSI1SK, Item, PK, RUN_SK, RUNS, RUNS_PARTITION, SK, VERSION, WORK_POOL_NAME, iso,
    key, n, opt_str, req_str, req_u64, run_tag_pk, s,
};
use crate::ops::{Query, Tx, key_of};
use crate::runs::{
    ITEM_FORMAT, indexable_key, only_ids, only_parent_task_runs, only_state_types, run_from,
    run_item, run_key, state_partition, tag_entries,
};

/// At most this many partitions are read for one query (values of `deployment_id.any_`,
/// pool names, tags, state types); longer lists use another source.
const MAX_PARTITIONS: usize = 16;

/// Index entries asked for per `Query` call when reading a whole source.
const PAGE: usize = 1000;

/// The order of a source's partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    /// By expected start time (sort key `<time>`, ties in any order).
    Time,
    /// By id (sort key `<id>` or `RUN#<id>`).
    Id,
    /// No order a sort can use (the SCHEDULED partition of the run-state index).
    None,
}

/// Where a query's candidate runs come from.
#[derive(Debug, Clone)]
struct Source {
    /// The index, `None` for the table (tag listing entries).
    index: Option<&'static str>,
    /// Its partition key attribute.
    pk_attr: &'static str,
    /// Its sort key attribute.
    sk_attr: &'static str,
    /// The partitions (values of `pk_attr`), each holding a part of the candidates.
    partitions: Vec<String>,
    order: Order,
    /// Whether entries project `flow_id`, `deployment_id` and `work_pool_name`, so that
    /// the query's restrictions can reject an entry before its run is read.
    projects_restrictions: bool,
    /// A range of the sort key (inclusive), for an expected start time window.
    range: Option<(String, String)>,
}

impl Source {
    fn new(
        index: Option<&'static str>,
        pk_attr: &'static str,
        sk_attr: &'static str,
        partitions: Vec<String>,
        order: Order,
    ) -> Self {
        Self {
            index,
            pk_attr,
            sk_attr,
            partitions,
            order,
            projects_restrictions: index.is_some(),
            range: None,
        }
    }

    /// Whether reading the partitions in their order gives the query's sort, and in which
    /// direction (`Some(descending)`).
    fn serves(&self, sort: FlowRunSort) -> Option<bool> {
        match (self.order, sort) {
            (Order::Time, FlowRunSort::ExpectedStartTimeDesc) => Some(true),
            (Order::Time, FlowRunSort::ExpectedStartTimeAsc) => Some(false),
            (Order::Id, FlowRunSort::IdDesc) => Some(true),
            _ => None,
        }
    }

    /// The part of a sort key the sort compares first: the time of `<time>` (format 2)
    /// or `<time>#<id>` (the SCHEDULED partition of format 1), the whole id otherwise.
    fn primary<'a>(&self, sk: &'a str) -> &'a str {
        match self.order {
            Order::Time => sk.split('#').next().unwrap_or(sk),
            _ => sk,
        }
    }

    fn query(&self, partition: &str, descending: bool) -> Query {
        let mut expr = Expr::default();
        let mut key_condition =
            format!("{} = {}", expr.name(self.pk_attr), expr.value(s(partition)));
        if let Some((lo, hi)) = &self.range {
            key_condition = format!(
                "{key_condition} AND {} BETWEEN {} AND {}",
                expr.name(self.sk_attr),
                expr.value(s(lo.clone())),
                expr.value(s(hi.clone())),
            );
        }
        Query {
            index: self.index,
            key_condition,
            filter: None,
            projection: None,
            expr,
            descending,
        }
    }

    /// The run an entry names.
    fn run_key(&self, entry: &Item) -> Result<Option<Item>, DynamoError> {
        if self.index.is_some() {
            return Ok(Some(key_of(entry)));
        }
        // A tag listing entry: the run id is its sort key.
        Ok(req_str(entry, SK)?.parse::<Uuid>().ok().map(run_key))
    }
}

/// The query's `deployment_id` values, when every run it matches has one of them.
fn deployment_values(q: &FlowRunQuery) -> Option<Vec<String>> {
    if let Some(ids) = &q.deployment_ids {
        return Some(ids.iter().map(Uuid::to_string).collect());
    }
    let f = q.filter.deployment_id.as_ref()?;
    if f.operator == Operator::Or && f.is_null_.is_some() {
        return None;
    }
    Some(f.any_.as_ref()?.iter().map(Uuid::to_string).collect())
}

/// The query's work pool names, when every run it matches is in one of them.
fn pool_values(q: &FlowRunQuery) -> Option<Vec<String>> {
    let names = q.work_pool_names.clone()?;
    names.iter().all(|p| indexable_key(p)).then_some(names)
}

/// Tags of which every run the query matches has one.
fn tag_values(q: &FlowRunQuery) -> Option<Vec<String>> {
    let t = q.filter.tags.as_ref()?;
    let all = t.all_.as_ref().filter(|a| !a.is_empty());
    if let Some(any) = &t.any_ {
        if t.operator == Operator::And || (all.is_none() && t.is_null_.is_none()) {
            return Some(any.clone());
        }
    }
    if t.operator == Operator::And {
        return all.and_then(|a| a.first()).map(|first| vec![first.clone()]);
    }
    None
}

fn dedup(values: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    values
        .into_iter()
        .filter(|v| seen.insert(v.clone()))
        .collect()
}

/// The narrow sources of a query, most selective first: its deployments, pools, tags,
/// state types. `None` for `or_` filters and queries by id or parent task run.
fn narrow_sources(q: &FlowRunQuery) -> Option<Vec<Source>> {
    if q.filter.operator != Operator::And
        || only_ids(q).is_some()
        || only_parent_task_runs(q).is_some()
    {
        return None;
    }
    let fits = |v: &Vec<String>| v.len() <= MAX_PARTITIONS;
    let mut sources = Vec::new();
    if let Some(v) = deployment_values(q).map(dedup).filter(fits) {
        sources.push(Source::new(
            Some(GSI_DEPLOYMENT),
            DEPLOYMENT_ID,
            EST,
            v,
            Order::Time,
        ));
    }
    if let Some(v) = pool_values(q).map(dedup).filter(fits) {
        sources.push(Source::new(
            Some(GSI_POOL),
            WORK_POOL_NAME,
            EST,
            v,
            Order::Time,
        ));
    }
    if let Some(v) = tag_values(q).map(dedup).filter(fits) {
        let partitions = v.iter().map(|t| run_tag_pk(t)).collect();
        sources.push(Source::new(None, PK, SK, partitions, Order::Id));
    }
    if let Some(types) = only_state_types(q) {
        let unique: Vec<StateType> = {
            let mut seen = HashSet::new();
            types.iter().copied().filter(|t| seen.insert(*t)).collect()
        };
        let order = if unique.contains(&StateType::Scheduled) {
            Order::None
        } else {
            Order::Time
        };
        let partitions = unique
            .into_iter()
            .map(|t| state_partition(Some(t)))
            .collect();
        sources.push(Source::new(Some(GSI1), GSI1PK, GSI1SK, partitions, order));
    }
    Some(sources)
}

/// The sort key range of the query's `expected_start_time` window, if it has one.
fn time_range(q: &FlowRunQuery) -> Option<(String, String)> {
    let w = q.filter.expected_start_time.as_ref()?;
    if w.after_.is_none() && w.before_.is_none() {
        return None;
    }
    // `<time>` >= `<after>` exactly when time >= after (fixed width); <= `<before>$`
    // exactly when time <= before. "0" excludes the runs without a time (`!`), which no
    // window matches; "~" is above every time.
    let lo = w.after_.map_or_else(|| "0".to_owned(), iso);
    let hi = w
        .before_
        .map_or_else(|| "~".to_owned(), |b| format!("{}$", iso(b)));
    Some((lo, hi))
}

/// How to answer a query: a source, and whether it is read in order.
struct Plan {
    source: Source,
    /// `Some(descending)`: read in the sort's order, stopping when the page is full.
    ordered: Option<bool>,
}

/// The plan of a query, `None` when only the format 1 path answers it (`or_` filters,
/// queries by id or parent task run, sorts no source serves without a narrow source).
fn plan(q: &FlowRunQuery) -> Option<Plan> {
    let narrow = narrow_sources(q)?;
    let with_range = |mut source: Source| {
        if source.order == Order::Time {
            source.range = time_range(q);
        }
        source
    };
    // A narrow source in the sort's order.
    for source in &narrow {
        if let Some(descending) = source.serves(q.sort) {
            return Some(Plan {
                source: with_range(source.clone()),
                ordered: Some(descending),
            });
        }
    }
    // A deployment, pool or tag source in another order: read whole (they are the
    // selective criteria), sorted in memory.
    if let Some(source) = narrow.iter().find(|s| s.index != Some(GSI1)) {
        return Some(Plan {
            source: with_range(source.clone()),
            ordered: None,
        });
    }
    // Every run, in the sort's order.
    let all = match q.sort {
        FlowRunSort::ExpectedStartTimeAsc | FlowRunSort::ExpectedStartTimeDesc => Source::new(
            Some(GSI_TIME),
            RUNS,
            EST,
            vec![RUNS_PARTITION.to_owned()],
            Order::Time,
        ),
        FlowRunSort::IdDesc => Source::new(
            Some(GSI_ID),
            RUNS,
            PK,
            vec![RUNS_PARTITION.to_owned()],
            Order::Id,
        ),
        _ => {
            // The state partitions, whole, as format 1 did.
            let source = narrow.into_iter().next()?;
            return Some(Plan {
                source,
                ordered: None,
            });
        }
    };
    let descending = all.serves(q.sort)?;
    Some(Plan {
        source: with_range(all),
        ordered: Some(descending),
    })
}

/// The plan that reads every run of a query (a count): its narrowest source whole,
/// whatever the order, else every run.
fn plan_all(q: &FlowRunQuery) -> Option<Plan> {
    let narrow = narrow_sources(q)?;
    let source = match narrow.into_iter().next() {
        Some(mut source) => {
            if source.order == Order::Time {
                source.range = time_range(q);
            }
            source
        }
        None => {
            let mut source = Source::new(
                Some(GSI_TIME),
                RUNS,
                EST,
                vec![RUNS_PARTITION.to_owned()],
                Order::Time,
            );
            source.range = time_range(q);
            source
        }
    };
    Some(Plan {
        source,
        ordered: None,
    })
}

/// Whether the entries of `source` are exactly the runs of `q` (its sort and page aside):
/// `q` holds nothing but what picked the source (state types, deployments, pools, an
/// expected start time window on every run). Then a count counts index entries and reads no
/// run (eventually consistent, as the index is).
fn answers_exactly(q: &FlowRunQuery, source: &Source) -> bool {
    use pushpool_core::filter::{AnyNotAny, AnyOrNull, FlowRunFilter, FlowRunFilterState};
    let bare = FlowRunQuery {
        sort: FlowRunSort::default(),
        page: pushpool_store::Page::default(),
        ..q.clone()
    };
    let only = |filter: FlowRunFilter| FlowRunQuery {
        filter,
        ..FlowRunQuery::default()
    };
    let candidates: Vec<FlowRunQuery> = match source.index {
        Some(GSI1) => vec![only(FlowRunFilter {
            state: Some(FlowRunFilterState {
                r#type: Some(AnyNotAny {
                    any_: only_state_types(q).cloned(),
                    not_any_: None,
                }),
                ..FlowRunFilterState::default()
            }),
            ..FlowRunFilter::default()
        })],
        Some(GSI_DEPLOYMENT) => vec![
            FlowRunQuery {
                deployment_ids: q.deployment_ids.clone(),
                ..FlowRunQuery::default()
            },
            only(FlowRunFilter {
                deployment_id: Some(AnyOrNull {
                    operator: Operator::And,
                    any_: q.filter.deployment_id.as_ref().and_then(|d| d.any_.clone()),
                    is_null_: None,
                }),
                ..FlowRunFilter::default()
            }),
        ],
        Some(GSI_POOL) => vec![FlowRunQuery {
            work_pool_names: q.work_pool_names.clone(),
            ..FlowRunQuery::default()
        }],
        Some(GSI_TIME) => vec![only(FlowRunFilter {
            expected_start_time: q.filter.expected_start_time.clone(),
            ..FlowRunFilter::default()
        })],
        _ => Vec::new(),
    };
    candidates.contains(&bare)
}

/// Whether an index entry passes the query's restrictions (flows, deployments, pools),
/// from the attributes the index projects.
fn passes_restrictions(q: &FlowRunQuery, entry: &Item) -> Result<bool, DynamoError> {
    fn within(list: &Option<Vec<String>>, value: Option<&str>) -> bool {
        list.as_ref()
            .is_none_or(|l| value.is_some_and(|v| l.iter().any(|x| x == v)))
    }
    let ids = |v: &Option<Vec<Uuid>>| v.as_ref().map(|v| v.iter().map(Uuid::to_string).collect());
    // A pool name that cannot be a key is not on the item: such a list cannot prune.
    let pools = q
        .work_pool_names
        .clone()
        .filter(|names| names.iter().all(|p| indexable_key(p)));
    Ok(within(&ids(&q.flow_ids), opt_str(entry, FLOW_ID)?)
        && within(&ids(&q.deployment_ids), opt_str(entry, DEPLOYMENT_ID)?)
        && within(&pools, opt_str(entry, WORK_POOL_NAME)?))
}

impl DynamoStore {
    /// Whether the table's items are all at this release's format (the `META`/`FORMAT`
    /// item says so; remembered once seen).
    pub(crate) async fn items_upgraded(&self) -> Result<bool> {
        if self.upgraded.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let done = match self.get(meta_key()).await? {
            Some(item) => req_u64(&item, FORMAT)? >= ITEM_FORMAT,
            None => false,
        };
        if done {
            self.upgraded.store(true, Ordering::Relaxed);
        }
        Ok(done)
    }

    /// The runs of `q`'s page when a plan answers it: `None` when only the format 1 path
    /// does (see [`plan`]).
    pub(crate) async fn planned_page(&self, q: &FlowRunQuery) -> Result<Option<Vec<FlowRun>>> {
        let Some(plan) = plan(q) else {
            return Ok(None);
        };
        if !self.items_upgraded().await? {
            return Ok(None);
        }
        let need = match (plan.ordered, q.page.limit) {
            (Some(_), Some(limit)) => q.page.offset.saturating_add(limit),
            _ => usize::MAX,
        };
        let runs = self.read_source(q, &plan, need).await?;
        Ok(Some(
            runs.into_iter()
                .skip(q.page.offset)
                .take(q.page.limit.unwrap_or(usize::MAX))
                .collect(),
        ))
    }

    /// How many runs match `q`, when a plan answers it: index entries counted when the
    /// source answers it exactly ([`answers_exactly`]), else the runs read and tested.
    pub(crate) async fn planned_count(&self, q: &FlowRunQuery) -> Result<Option<u64>> {
        let Some(plan) = plan_all(q) else {
            return Ok(None);
        };
        if !self.items_upgraded().await? {
            return Ok(None);
        }
        if !answers_exactly(q, &plan.source) {
            return Ok(Some(
                self.read_source(q, &plan, usize::MAX).await?.len() as u64
            ));
        }
        let mut total = 0u64;
        for partition in &plan.source.partitions {
            let query = plan.source.query(partition, true);
            let mut start = None;
            loop {
                let (entries, next) = self.query_page(&query, Some(PAGE), start.take()).await?;
                total += entries.len() as u64;
                match next {
                    Some(k) => start = Some(k),
                    None => break,
                }
            }
        }
        Ok(Some(total))
    }

    /// The first `need` runs of `q` in its order (all of them with `usize::MAX`), from
    /// each partition of the plan's source, merged.
    async fn read_source(
        &self,
        q: &FlowRunQuery,
        plan: &Plan,
        need: usize,
    ) -> Result<Vec<FlowRun>> {
        let source = &plan.source;
        let descending = plan.ordered.unwrap_or(true);
        let mut runs: Vec<FlowRun> = Vec::new();
        for partition in &source.partitions {
            let query = source.query(partition, descending);
            let mut kept = 0usize;
            // The sort key's primary part of the `need`-th run kept: entries after it with
            // the same primary part may still sort before it (ties by id).
            let mut boundary: Option<String> = None;
            let mut start = None;
            'pages: loop {
                let limit = if need == usize::MAX {
                    PAGE
                } else {
                    need.saturating_sub(kept).saturating_add(1).min(PAGE)
                };
                let (entries, next) = self.query_page(&query, Some(limit), start.take()).await?;
                let mut candidates = Vec::with_capacity(entries.len());
                for entry in &entries {
                    if source.projects_restrictions && !passes_restrictions(q, entry)? {
                        // Still an entry in order: it may end the page.
                        candidates.push((source.primary(req_str(entry, source.sk_attr)?), None));
                        continue;
                    }
                    let primary = source.primary(req_str(entry, source.sk_attr)?);
                    candidates.push((primary, source.run_key(entry)?));
                }
                let keys: Vec<Item> = candidates.iter().filter_map(|(_, k)| k.clone()).collect();
                let found = self.read_runs(keys).await?;
                let mut found = found.into_iter().peekable();
                for (primary, k) in candidates {
                    if kept >= need && boundary.as_deref() != Some(primary) {
                        break 'pages;
                    }
                    let Some(k) = k else { continue };
                    // `read_runs` keeps `keys` order and leaves out missing runs.
                    let id = k.get(PK).and_then(|v| v.as_s().ok()).cloned();
                    let run = match found.peek() {
                        Some(r) if id.as_deref() == Some(crate::item::run_pk(r.id).as_str()) => {
                            found.next()
                        }
                        _ => None,
                    };
                    if let Some(run) = run.filter(|r| q.matches(r)) {
                        runs.push(run);
                        kept += 1;
                        if kept == need {
                            boundary = Some(primary.to_owned());
                        }
                    }
                }
                match next {
                    Some(k) => start = Some(k),
                    None => break,
                }
            }
        }
        runs.sort_by(|a, b| q.sort.compare(a, b));
        runs.dedup_by_key(|r| r.id);
        Ok(runs)
    }

    /// Rewrites the flow run items of an older format at [`ITEM_FORMAT`] (their tag
    /// listing entries included), then records in the `META`/`FORMAT` item that the table
    /// is upgraded, after which listings use the indexes format 2 added. Idempotent and
    /// safe while the service runs: each run is put on the condition that its `version` is
    /// still the one read (a run written meanwhile is already at the new format), its
    /// content unchanged (same version, no change in the feed). Once the `META` item says
    /// so, it reads that one item and returns. Run by [`DynamoStore::create_table`] and at
    /// the start of the reconciler.
    ///
    /// Cost: one `Scan` of the table and a write per format 1 run, once. Until the table
    /// has the indexes of format 2, ACTIVE, it only logs a warning and returns.
    ///
    /// # Errors
    /// As the store's other calls.
    pub async fn upgrade_items(&self) -> Result<()> {
        if self.items_upgraded().await? {
            return Ok(());
        }
        // The listings of format 2 query its indexes: until they are all there (a stack
        // update adds one at a time), format 1 listings stay, which work on both formats.
        let described = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| crate::error::sdk("DescribeTable", e))?;
        let active: Vec<&str> = described
            .table()
            .map(|t| t.global_secondary_indexes())
            .unwrap_or_default()
            .iter()
            .filter(|g| {
                matches!(
                    g.index_status(),
                    None | Some(aws_sdk_dynamodb::types::IndexStatus::Active)
                )
            })
            .filter_map(|g| g.index_name())
            .collect();
        let missing: Vec<&str> = [GSI1, GSI_DEPLOYMENT, GSI_POOL, GSI_TIME, GSI_ID]
            .into_iter()
            .filter(|i| !active.contains(i))
            .collect();
        if !missing.is_empty() {
            tracing::warn!(table = %self.table, missing = ?missing, "the table lacks indexes of item format {ITEM_FORMAT} (or they are still being built): flow run listings read as format 1 did until they are ACTIVE");
            return Ok(());
        }
        let mut start = None;
        let mut upgraded = 0u64;
        loop {
            let mut expr = Expr::default();
            let filter = format!(
                "{} = {} AND attribute_not_exists({})",
                expr.name(SK),
                expr.value(s(RUN_SK)),
                expr.name(FORMAT)
            );
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression(filter)
                .set_expression_attribute_names(expr.names())
                .set_expression_attribute_values(expr.values())
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| crate::error::sdk("Scan", e))?;
            for item in page.items.unwrap_or_default() {
                let run = run_from(&item)?;
                let version = req_u64(&item, VERSION)?;
                let idempotency_key = opt_str(&item, crate::item::IDEMPOTENCY_KEY)?;
                // Tag entries first (as every write does): harmless without the run.
                self.put_items(tag_entries(run.id, &run.tags)).await?;
                let tx = vec![self.put(
                    run_item(&run, idempotency_key)?,
                    Some(Cond::equals(&[(VERSION, n(version))])),
                )?];
                // A failed condition: the run was written (or deleted) meanwhile, by code
                // that writes the new format.
                if let Tx::Committed = self.transact(tx).await? {
                    upgraded += 1;
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        let mut meta = meta_key();
        meta.insert(FORMAT.into(), n(ITEM_FORMAT));
        self.transact(vec![self.put(meta, None)?]).await?;
        self.upgraded.store(true, Ordering::Relaxed);
        tracing::info!(table = %self.table, upgraded, format = ITEM_FORMAT, "flow run items upgraded");
        Ok(())
    }

    /// Loads `runs` as they are (run items and tag listing entries, no state history, no
    /// outbox entries, no idempotency keys, no conditions) by `BatchWriteItem`: seeding for
    /// benches and tests of listings, which would take minutes through `create_flow_run` on
    /// moto. Not a port operation.
    ///
    /// # Errors
    /// As the store's other calls.
    #[doc(hidden)]
    pub async fn bulk_load_flow_runs(&self, runs: &[FlowRun]) -> Result<()> {
        let mut items = Vec::new();
        for run in runs {
            items.push(run_item(run, None)?);
            items.extend(tag_entries(run.id, &run.tags));
        }
        self.batch_put(items).await?;
        Ok(())
    }
}

/// The key of the item that records the table's item format.
fn meta_key() -> Item {
    key("META", "FORMAT")
}

#[cfg(test)]
mod tests {
    use super::*;
    use pushpool_core::filter::FlowRunFilter;
    use pushpool_store::Page;
    use serde_json::json;

    fn q(body: serde_json::Value, sort: FlowRunSort) -> FlowRunQuery {
        FlowRunQuery {
            filter: serde_json::from_value::<FlowRunFilter>(body).unwrap(),
            sort,
            page: Page {
                offset: 0,
                limit: Some(200),
            },
            ..FlowRunQuery::default()
        }
    }

    fn chosen(q: &FlowRunQuery) -> Option<(Option<&'static str>, Vec<String>, Option<bool>)> {
        plan(q).map(|p| (p.source.index, p.source.partitions, p.ordered))
    }

    #[test]
    fn the_common_bodies_are_read_in_order() {
        let d = Uuid::new_v4();
        let all = vec![RUNS_PARTITION.to_owned()];
        assert_eq!(
            chosen(&q(json!({}), FlowRunSort::ExpectedStartTimeDesc)),
            Some((Some(GSI_TIME), all.clone(), Some(true)))
        );
        assert_eq!(
            chosen(&q(json!({}), FlowRunSort::IdDesc)),
            Some((Some(GSI_ID), all.clone(), Some(true)))
        );
        assert_eq!(
            chosen(&q(
                json!({"deployment_id": {"any_": [d]}}),
                FlowRunSort::ExpectedStartTimeDesc
            )),
            Some((Some(GSI_DEPLOYMENT), vec![d.to_string()], Some(true)))
        );
        assert_eq!(
            chosen(&q(
                json!({"state": {"type": {"any_": ["RUNNING", "PENDING"]}}}),
                FlowRunSort::ExpectedStartTimeDesc
            )),
            Some((
                Some(GSI1),
                vec!["RUNSTATE#RUNNING".to_owned(), "RUNSTATE#PENDING".to_owned()],
                Some(true)
            ))
        );
        assert_eq!(
            chosen(&q(
                json!({"tags": {"any_": ["nightly"]}}),
                FlowRunSort::IdDesc
            )),
            Some((None, vec!["RUNTAG#nightly".to_owned()], Some(true)))
        );
        let window = q(
            json!({"expected_start_time": {"after_": "2026-01-02T00:00:00Z", "before_": "2026-01-03T00:00:00Z"}}),
            FlowRunSort::ExpectedStartTimeAsc,
        );
        let p = plan(&window).unwrap();
        assert_eq!(p.source.index, Some(GSI_TIME));
        assert_eq!(p.ordered, Some(false));
        assert_eq!(
            p.source.range,
            Some((
                "2026-01-02T00:00:00.000000Z".to_owned(),
                "2026-01-03T00:00:00.000000Z$".to_owned()
            ))
        );
    }

    #[test]
    fn bodies_no_source_serves_keep_the_format_1_path() {
        assert!(
            chosen(&q(
                json!({"operator": "or_", "tags": {"any_": ["a"]}}),
                FlowRunSort::IdDesc
            ))
            .is_none()
        );
        assert!(
            chosen(&q(
                json!({"id": {"any_": [Uuid::new_v4()]}}),
                FlowRunSort::IdDesc
            ))
            .is_none()
        );
        assert!(chosen(&q(json!({}), FlowRunSort::NameAsc)).is_none());
        // An `or_` between any_ and is_null_ does not limit the deployments.
        let body = json!({"deployment_id": {"operator": "or_", "any_": [Uuid::new_v4()], "is_null_": true}});
        assert_eq!(
            chosen(&q(body, FlowRunSort::IdDesc)).map(|c| c.0),
            Some(Some(GSI_ID))
        );
        // SCHEDULED's partition is by due time: whole, not in order.
        let scheduled = q(
            json!({"state": {"type": {"any_": ["SCHEDULED"]}}}),
            FlowRunSort::NameAsc,
        );
        assert_eq!(chosen(&scheduled).map(|c| c.2), Some(None));
    }

    #[test]
    fn counts_read_only_index_entries_when_the_source_is_the_whole_answer() {
        let exact = |body: serde_json::Value| {
            let q = q(body, FlowRunSort::IdDesc);
            let plan = plan_all(&q).unwrap();
            answers_exactly(&q, &plan.source)
        };
        assert!(exact(json!({})));
        assert!(exact(
            json!({"state": {"type": {"any_": ["COMPLETED", "FAILED"]}}})
        ));
        assert!(exact(json!({"deployment_id": {"any_": [Uuid::new_v4()]}})));
        assert!(exact(
            json!({"expected_start_time": {"after_": "2026-01-01T00:00:00Z"}})
        ));
        assert!(!exact(
            json!({"state": {"type": {"any_": ["COMPLETED"]}}, "name": {"like_": "a"}})
        ));
        assert!(!exact(
            json!({"state": {"type": {"any_": ["COMPLETED"], "not_any_": ["FAILED"]}}})
        ));
        assert!(
            !exact(json!({"tags": {"any_": ["nightly"]}})),
            "tag entries may outlive a run"
        );
        assert!(!exact(
            json!({"deployment_id": {"any_": [Uuid::new_v4()]}, "tags": {"any_": ["a"]}})
        ));
        let pool = FlowRunQuery {
            work_pool_names: Some(vec!["p".into()]),
            ..q(json!({}), FlowRunSort::IdDesc)
        };
        assert!(answers_exactly(&pool, &plan_all(&pool).unwrap().source));
    }

    #[test]
    fn primary_parts() {
        let s = Source::new(Some(GSI_TIME), RUNS, EST, vec![], Order::Time);
        assert_eq!(
            s.primary("2026-01-01T00:00:00.000000Z"),
            "2026-01-01T00:00:00.000000Z"
        );
        assert_eq!(
            s.primary("2026-01-01T00:00:00.000000Z#abc"),
            "2026-01-01T00:00:00.000000Z"
        );
        assert_eq!(s.primary("!"), "!");
    }
}
