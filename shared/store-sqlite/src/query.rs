//! Flow run queries in SQL: as much of a [`FlowRunQuery`] as the indexed columns can express
//! is pushed into the `WHERE` clause; when all of it can, the answer is exact and SQLite pages
//! and counts by itself, otherwise the rows come back in order and the rest of the filter
//! ([`FlowRunQuery::matches`]) runs on each decoded run.
//!
//! Columns (all times as fixed-width RFC 3339 with microseconds and `Z`, so that text order is
//! time order): `id`, `flow_id`, `deployment_id`, `work_pool_name`, `state_type`,
//! `state_name`, `idempotency_key`, `name`, `expected_start_time`, `start_time`, `end_time`,
//! `next_scheduled_start_time`, `parent_task_run_id`. Tags, `work_queue_name`,
//! `flow_version` and `created_by` live in the JSON body only.

use chrono::{DateTime, Utc};
use pushpool_core::filter::{
    AnyNotAny, AnyOrNull, FlowRunFilter, FlowRunSort, NameFilter, Operator, TimeRange,
    TimeRangeOrNull,
};
use rusqlite::types::Value;

use pushpool_store::FlowRunQuery;

/// More values than this in one list are filtered in Rust rather than bound as SQL
/// parameters (SQLite allows 32,766 per statement).
const MAX_LIST: usize = 1000;

/// A piece of SQL with its positional (`?`) parameters, in order.
#[derive(Debug, Clone)]
struct Frag(String, Vec<Value>);

impl Frag {
    fn always() -> Self {
        Frag("1".into(), Vec::new())
    }
    fn never() -> Self {
        Frag("0".into(), Vec::new())
    }
}

/// Combines fragments with `operator`; TRUE when there are none.
fn combine(parts: Vec<Frag>, operator: Operator) -> Frag {
    if parts.is_empty() {
        return Frag::always();
    }
    let joiner = match operator {
        Operator::And => " AND ",
        Operator::Or => " OR ",
    };
    let mut sql = Vec::with_capacity(parts.len());
    let mut params = Vec::new();
    for Frag(s, p) in parts {
        sql.push(format!("({s})"));
        params.extend(p);
    }
    Frag(sql.join(joiner), params)
}

/// `column IN (...)`; `None` past [`MAX_LIST`].
fn is_in(column: &str, values: &[String]) -> Option<Frag> {
    if values.is_empty() {
        return Some(Frag::never());
    }
    if values.len() > MAX_LIST {
        return None;
    }
    let marks = vec!["?"; values.len()].join(", ");
    Some(Frag(
        format!("{column} IN ({marks})"),
        values.iter().cloned().map(Value::Text).collect(),
    ))
}

/// `column NOT IN (...)`: a `NULL` column does not match, as in Prefect's SQL.
fn not_in(column: &str, values: &[String]) -> Option<Frag> {
    if values.len() > MAX_LIST {
        return None;
    }
    let marks = vec!["?"; values.len()].join(", ");
    Some(Frag(
        format!("{column} NOT IN ({marks})"),
        values.iter().cloned().map(Value::Text).collect(),
    ))
}

fn null(column: &str, flag: bool) -> Frag {
    Frag(
        format!("{column} IS {}NULL", if flag { "" } else { "NOT " }),
        Vec::new(),
    )
}

fn texts<T: ToString>(values: &[T]) -> Vec<String> {
    values.iter().map(ToString::to_string).collect()
}

/// A time as stored in the columns.
pub(super) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn cmp(expr: &str, op: &str, t: DateTime<Utc>) -> Frag {
    Frag(format!("{expr} {op} ?"), vec![Value::Text(ts(t))])
}

fn any_not_any<T: ToString>(column: &str, f: &AnyNotAny<T>) -> Option<Frag> {
    let mut parts = Vec::new();
    if let Some(any) = &f.any_ {
        parts.push(is_in(column, &texts(any))?);
    }
    if let Some(not) = f.not_any_.as_ref().filter(|l| !l.is_empty()) {
        parts.push(not_in(column, &texts(not))?);
    }
    Some(combine(parts, Operator::And))
}

fn any_or_null<T: ToString>(column: &str, f: &AnyOrNull<T>) -> Option<Frag> {
    let mut parts = Vec::new();
    if let Some(any) = &f.any_ {
        parts.push(is_in(column, &texts(any))?);
    }
    if let Some(flag) = f.is_null_ {
        parts.push(null(column, flag));
    }
    Some(combine(parts, f.operator))
}

fn name(f: &NameFilter) -> Option<Frag> {
    let mut parts = Vec::new();
    if let Some(any) = &f.any_ {
        parts.push(is_in("name", any)?);
    }
    if let Some(like) = f.like_.as_ref().filter(|l| !l.is_empty()) {
        // SQLite's LIKE folds ASCII case and knows `%` and `_`: Prefect's ILIKE on SQLite.
        parts.push(Frag(
            "name LIKE ('%' || ? || '%')".into(),
            vec![Value::Text(like.clone())],
        ));
    }
    Some(combine(parts, Operator::And))
}

fn range(expr: &str, f: &TimeRange) -> Frag {
    let mut parts = Vec::new();
    if let Some(b) = f.before_ {
        parts.push(cmp(expr, "<=", b));
    }
    if let Some(a) = f.after_ {
        parts.push(cmp(expr, ">=", a));
    }
    combine(parts, Operator::And)
}

fn range_or_null(expr: &str, own: &str, f: &TimeRangeOrNull) -> Frag {
    let mut parts = vec![range(
        expr,
        &TimeRange {
            before_: f.before_,
            after_: f.after_,
        },
    )];
    if let Some(flag) = f.is_null_ {
        parts.push(null(own, flag));
    }
    combine(parts, Operator::And)
}

/// The SQL of each criterion of `f` (`None` where the columns cannot express it).
fn criteria(f: &FlowRunFilter) -> Vec<Option<Frag>> {
    let mut out = Vec::new();
    if let Some(x) = &f.id {
        out.push(any_not_any("id", x));
    }
    if let Some(x) = &f.name {
        out.push(name(x));
    }
    if f.tags.is_some() || f.work_queue_name.is_some() || f.flow_version.is_some() {
        out.push(None);
    }
    if let Some(x) = &f.deployment_id {
        out.push(any_or_null("deployment_id", x));
    }
    if let Some(s) = &f.state {
        let mut parts = Vec::new();
        let mut ok = true;
        // Empty parts are skipped, as Prefect's FlowRunFilterState does.
        if let Some(t) = s
            .r#type
            .as_ref()
            .filter(|t| t.any_.is_some() || t.not_any_.as_ref().is_some_and(|l| !l.is_empty()))
        {
            match any_not_any(
                "state_type",
                &AnyNotAny {
                    any_: t
                        .any_
                        .as_ref()
                        .map(|l| l.iter().map(|x| x.as_str().to_owned()).collect::<Vec<_>>()),
                    not_any_: t
                        .not_any_
                        .as_ref()
                        .map(|l| l.iter().map(|x| x.as_str().to_owned()).collect::<Vec<_>>()),
                },
            ) {
                Some(frag) => parts.push(frag),
                None => ok = false,
            }
        }
        if let Some(n) = s
            .name
            .as_ref()
            .filter(|n| n.any_.is_some() || n.not_any_.as_ref().is_some_and(|l| !l.is_empty()))
        {
            match any_not_any("state_name", n) {
                Some(frag) => parts.push(frag),
                None => ok = false,
            }
        }
        out.push(ok.then(|| combine(parts, s.operator)));
    }
    if let Some(x) = &f.start_time {
        out.push(Some(range_or_null(
            "coalesce(start_time, expected_start_time)",
            "start_time",
            x,
        )));
    }
    if let Some(x) = &f.end_time {
        out.push(Some(range_or_null("end_time", "end_time", x)));
    }
    if let Some(x) = &f.expected_start_time {
        out.push(Some(range("expected_start_time", x)));
    }
    if let Some(x) = &f.next_scheduled_start_time {
        out.push(Some(range("next_scheduled_start_time", x)));
    }
    if let Some(x) = &f.parent_flow_run_id {
        // Resolved by the caller to the task runs of those flow runs (see
        // `FlowRunFilter::parent_task_runs`); unresolved, it is left to Rust (which refuses
        // nothing: the API resolves it or answers 422 before a query is planned).
        out.push(match (&x.any_, &f.parent_task_runs) {
            (None, _) => Some(Frag::always()),
            (Some(_), Some(resolved)) => is_in("parent_task_run_id", &texts(resolved)),
            (Some(_), None) => None,
        });
    }
    if let Some(x) = &f.parent_task_run_id {
        out.push(any_or_null("parent_task_run_id", x));
    }
    if f.created_by.is_some() {
        out.push(None);
    }
    if let Some(x) = &f.idempotency_key {
        out.push(any_not_any("idempotency_key", x));
    }
    out
}

/// What SQLite runs for a query.
#[derive(Debug)]
pub(super) struct Plan {
    /// `WHERE ...` (may be `WHERE (1)`).
    pub where_: String,
    /// Its parameters.
    pub params: Vec<Value>,
    /// `ORDER BY ...`.
    pub order_by: &'static str,
    /// Whether the `WHERE` clause is the whole query: SQLite may then page and count.
    pub exact: bool,
}

/// Plans `q`.
pub(super) fn plan(q: &FlowRunQuery) -> Plan {
    let translated = criteria(&q.filter);
    let exact_filter = translated.iter().all(Option::is_some);
    let filter = match q.filter.operator {
        Operator::And => combine(translated.into_iter().flatten().collect(), Operator::And),
        Operator::Or if exact_filter => {
            combine(translated.into_iter().flatten().collect(), Operator::Or)
        }
        Operator::Or => Frag::always(),
    };
    let mut parts = vec![filter];
    let mut exact = exact_filter;
    let restrictions = [
        ("flow_id", q.flow_ids.as_ref().map(|v| texts(v))),
        ("deployment_id", q.deployment_ids.as_ref().map(|v| texts(v))),
        ("work_pool_name", q.work_pool_names.clone()),
    ];
    for (column, values) in restrictions {
        if let Some(values) = values {
            match is_in(column, &values) {
                Some(frag) => parts.push(frag),
                None => exact = false,
            }
        }
    }
    let Frag(sql, params) = combine(parts, Operator::And);
    Plan {
        where_: format!("WHERE {sql}"),
        params,
        order_by: order_by(q.sort),
        exact,
    }
}

/// A paged query limited to two or more state types (`state.type.any_` under `and_`) and
/// sorted by a column, split into one query per state type, each asking for the first
/// `offset + limit` runs: merged by the sort, they give the same page as the whole query,
/// and each is one ordered range of the `(state_type, <column>)` indexes where the whole
/// query would read and sort every run of those states. `None` when the split does not
/// apply (other state criteria beside the types under `or_`, `not_any_`, an inexact plan,
/// the id sort, no limit).
pub(super) fn split_by_state_type(q: &FlowRunQuery) -> Option<Vec<FlowRunQuery>> {
    let limit = q.page.limit?;
    if q.filter.operator != Operator::And || q.sort == FlowRunSort::IdDesc {
        return None;
    }
    let state = q.filter.state.as_ref()?;
    if state.operator != Operator::And && state.name.is_some() {
        return None;
    }
    let types = state.r#type.as_ref()?;
    let any = types.any_.as_ref()?;
    if any.len() < 2 || types.not_any_.as_ref().is_some_and(|l| !l.is_empty()) {
        return None;
    }
    if !plan(q).exact {
        return None;
    }
    let mut seen = Vec::new();
    let parts = any
        .iter()
        .filter(|t| {
            let new = !seen.contains(*t);
            seen.push(**t);
            new
        })
        .map(|t| {
            let mut part = q.clone();
            if let Some(s) = part.filter.state.as_mut() {
                s.r#type = Some(AnyNotAny {
                    any_: Some(vec![*t]),
                    not_any_: None,
                });
            }
            part.page = pushpool_store::Page {
                offset: 0,
                limit: Some(q.page.offset.saturating_add(limit)),
            };
            part
        })
        .collect();
    Some(parts)
}

/// The `ORDER BY` of a sort: SQLite puts `NULL`s first ascending and last descending, as
/// [`FlowRunSort::compare`] does; ties by id descending.
fn order_by(sort: FlowRunSort) -> &'static str {
    match sort {
        FlowRunSort::IdDesc => "ORDER BY id DESC",
        FlowRunSort::StartTimeAsc => {
            "ORDER BY coalesce(start_time, expected_start_time) ASC, id DESC"
        }
        FlowRunSort::StartTimeDesc => {
            "ORDER BY coalesce(start_time, expected_start_time) DESC, id DESC"
        }
        FlowRunSort::ExpectedStartTimeAsc => "ORDER BY expected_start_time ASC, id DESC",
        FlowRunSort::ExpectedStartTimeDesc => "ORDER BY expected_start_time DESC, id DESC",
        FlowRunSort::NameAsc => "ORDER BY name ASC, id DESC",
        FlowRunSort::NameDesc => "ORDER BY name DESC, id DESC",
        FlowRunSort::NextScheduledStartTimeAsc => "ORDER BY next_scheduled_start_time ASC, id DESC",
        FlowRunSort::EndTimeDesc => "ORDER BY end_time DESC, id DESC",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pushpool_core::state::StateType;

    #[test]
    fn state_and_deployment_are_pushed_down_exactly() {
        let mut q = FlowRunQuery::new(FlowRunFilter::state_types(&[StateType::Running]));
        q.deployment_ids = Some(vec![uuid::Uuid::nil()]);
        let p = plan(&q);
        assert!(p.exact);
        assert_eq!(
            p.where_,
            "WHERE ((((state_type IN (?))))) AND (deployment_id IN (?))"
        );
        assert_eq!(p.params.len(), 2);
    }

    #[test]
    fn a_page_of_several_state_types_sorted_by_time_is_split_per_type() {
        let mut q = FlowRunQuery::new(FlowRunFilter::state_types(&[
            StateType::Running,
            StateType::Pending,
            StateType::Running,
        ]));
        q.sort = FlowRunSort::ExpectedStartTimeDesc;
        q.page = pushpool_store::Page {
            offset: 10,
            limit: Some(200),
        };
        let parts = split_by_state_type(&q).expect("split");
        let types: Vec<_> = parts
            .iter()
            .map(|p| {
                p.filter
                    .state
                    .as_ref()
                    .unwrap()
                    .r#type
                    .as_ref()
                    .unwrap()
                    .any_
                    .clone()
                    .unwrap()
            })
            .collect();
        assert_eq!(types, [vec![StateType::Running], vec![StateType::Pending]]);
        assert!(parts.iter().all(|p| p.page
            == pushpool_store::Page {
                offset: 0,
                limit: Some(210)
            }));
        // Not split: the id order, no limit, one state type.
        q.sort = FlowRunSort::IdDesc;
        assert!(split_by_state_type(&q).is_none());
        q.sort = FlowRunSort::NameAsc;
        q.page.limit = None;
        assert!(split_by_state_type(&q).is_none());
        let mut one = FlowRunQuery::new(FlowRunFilter::state_types(&[StateType::Running]));
        one.page.limit = Some(5);
        one.sort = FlowRunSort::NameAsc;
        assert!(split_by_state_type(&one).is_none());
    }

    #[test]
    fn tags_are_left_to_rust_and_or_with_them_pushes_nothing() {
        let f: FlowRunFilter = serde_json::from_value(serde_json::json!({
            "operator": "or_",
            "tags": {"any_": ["nightly"]},
            "name": {"any_": ["a"]}
        }))
        .unwrap();
        let p = plan(&FlowRunQuery::new(f));
        assert!(!p.exact);
        assert_eq!(p.where_, "WHERE (1)");
        assert!(p.params.is_empty());
    }
}
