//! Conformance checks of the log part of the port.

use chrono::{DateTime, Duration, Utc};
use pushpool_core::filter::Operator;
use pushpool_core::logs::{
    FlowRunIdFilter, LevelFilter, Log, LogFilter, LogSort, TaskRunIdFilter, TextFilter,
    TimestampFilter,
};
use uuid::Uuid;

use super::DynStore;
use crate::{LogQuery, Page};

fn line(
    at: DateTime<Utc>,
    flow_run_id: Option<Uuid>,
    task_run_id: Option<Uuid>,
    level: i64,
    message: &str,
) -> Log {
    let created = Utc::now();
    let created = DateTime::from_timestamp_micros(created.timestamp_micros()).unwrap_or(created);
    Log {
        id: Uuid::now_v7(),
        created,
        updated: created,
        name: if task_run_id.is_some() {
            "prefect.task_runs".into()
        } else {
            "prefect.flow_runs".into()
        },
        level,
        message: message.into(),
        timestamp: at,
        flow_run_id,
        task_run_id,
    }
}

/// Log lines: a batch is stored whole; reads by every criterion (flow run, task run, level,
/// timestamp, text, `or_`), both sorts and paging answer exactly what
/// [`LogQuery::matches`] passes in [`LogSort::apply`]'s order; lines of one timestamp are
/// ordered by id; flow runs are apart.
pub async fn logs_stored_and_read(store: DynStore) {
    let t0 = DateTime::parse_from_rfc3339("2026-03-01T10:00:00.123456Z")
        .unwrap()
        .with_timezone(&Utc);
    let t = |s: i64| t0 + Duration::seconds(s);
    let (a, b, task) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let lines = [
        line(t(2), Some(a), None, 20, "Beginning flow run 'a'"),
        line(t(0), Some(a), None, 10, "debug detail"),
        line(
            t(5),
            Some(a),
            Some(task),
            40,
            "Task failed: Connection timeout",
        ),
        line(t(5), Some(a), None, 20, "same second, stored after"),
        line(t(3), Some(b), None, 30, "Flow run b warns"),
        line(t(1), None, None, 20, "no flow run at all"),
    ];
    store
        .create_logs(&lines[..3], std::time::Duration::from_secs(3600))
        .await
        .unwrap();
    store
        .create_logs(&lines[3..], std::time::Duration::from_secs(3600))
        .await
        .unwrap();

    let by_run = |ids: Vec<Uuid>| LogFilter {
        flow_run_id: Some(FlowRunIdFilter { any_: Some(ids) }),
        ..LogFilter::default()
    };
    let q = |filter: LogFilter, sort: LogSort, offset: usize, limit: Option<usize>| LogQuery {
        filter,
        sort,
        page: Page { offset, limit },
    };
    let ids = |logs: &[Log]| logs.iter().map(|l| l.id).collect::<Vec<_>>();

    // A run's lines, oldest first; ties by id (stored order).
    let got = store
        .read_logs(&q(by_run(vec![a]), LogSort::TimestampAsc, 0, None))
        .await
        .unwrap();
    assert_eq!(
        ids(&got),
        vec![lines[1].id, lines[0].id, lines[2].id, lines[3].id]
    );
    assert_eq!(got[1], lines[0], "every field comes back as stored");
    let got = store
        .read_logs(&q(by_run(vec![a]), LogSort::TimestampDesc, 1, Some(2)))
        .await
        .unwrap();
    assert_eq!(ids(&got), vec![lines[2].id, lines[0].id]);

    let text = |q: &str| {
        Some(TextFilter {
            query: q.to_owned(),
        })
    };
    let cases = vec![
        LogFilter::default(),
        by_run(vec![a, b]),
        by_run(vec![]),
        LogFilter {
            level: Some(LevelFilter {
                ge_: Some(20),
                le_: Some(30),
            }),
            ..by_run(vec![a, b])
        },
        LogFilter {
            timestamp: Some(TimestampFilter {
                after_: Some(t(1)),
                before_: Some(t(3)),
            }),
            ..LogFilter::default()
        },
        LogFilter {
            task_run_id: Some(TaskRunIdFilter {
                any_: Some(vec![task]),
                is_null_: None,
            }),
            ..LogFilter::default()
        },
        LogFilter {
            task_run_id: Some(TaskRunIdFilter {
                any_: None,
                is_null_: Some(true),
            }),
            ..by_run(vec![a])
        },
        LogFilter {
            text: text("timeout -debug"),
            ..by_run(vec![a])
        },
        LogFilter {
            operator: Operator::Or,
            level: Some(LevelFilter {
                ge_: Some(40),
                le_: None,
            }),
            ..by_run(vec![b])
        },
        LogFilter {
            text: text("flow_runs"),
            ..LogFilter::default()
        },
    ];
    let mut expected_sizes = Vec::new();
    for filter in cases {
        for sort in [LogSort::TimestampAsc, LogSort::TimestampDesc] {
            for (offset, limit) in [(0, None), (1, Some(2)), (0, Some(0))] {
                let query = q(filter.clone(), sort, offset, limit);
                let want =
                    query.finish(lines.iter().filter(|l| query.matches(l)).cloned().collect());
                let got = store.read_logs(&query).await.unwrap();
                assert_eq!(ids(&got), ids(&want), "{query:?}");
                if offset == 0 && limit.is_none() && sort == LogSort::TimestampAsc {
                    expected_sizes.push(got.len());
                }
            }
        }
    }
    // The reference itself: each case selects what its criteria say.
    assert_eq!(expected_sizes, vec![6, 5, 0, 3, 3, 1, 3, 1, 2, 5]);
}
