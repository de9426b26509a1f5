//! Conformance checks of the event part of the port.

use chrono::{DateTime, Duration, Utc};
use pushpool_core::events::{
    Event, EventFilter, EventOrder, NameFilter, OccurredFilter, RESOURCE_ID, RESOURCE_ROLE,
    Resource, ResourceFilter,
};
use uuid::Uuid;

use super::DynStore;

fn ev(at: DateTime<Utc>, name: &str, resource: &str, related: &[(&str, &str)]) -> Event {
    let mut r = Resource::new();
    r.insert(RESOURCE_ID.into(), resource.into());
    Event {
        occurred: at,
        event: name.into(),
        resource: r,
        related: related
            .iter()
            .map(|(id, role)| {
                Resource::from([
                    (RESOURCE_ID.to_owned(), (*id).to_owned()),
                    (RESOURCE_ROLE.to_owned(), (*role).to_owned()),
                ])
            })
            .collect(),
        payload: serde_json::json!({"k": "v"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        id: Uuid::now_v7(),
        follows: None,
        received: at,
    }
}

fn window(since: DateTime<Utc>, until: DateTime<Utc>) -> OccurredFilter {
    OccurredFilter {
        since: Some(since),
        until: Some(until),
    }
}

/// Events: stored whole (payload, related resources), read back within the `occurred`
/// window (inclusive, across UTC days) in both orders; criteria by resource id and name
/// answer exactly what [`EventFilter::matches`] passes; storing an id again does not
/// duplicate it.
pub async fn events_stored_and_read(store: DynStore) {
    let t0 = DateTime::parse_from_rfc3339("2026-03-01T23:59:59.500000Z")
        .unwrap()
        .with_timezone(&Utc);
    let t = |ms: i64| t0 + Duration::milliseconds(ms);
    let a = "prefect.flow-run.a";
    let b = "prefect.flow-run.b";
    let events = [
        ev(
            t(0),
            "prefect.flow-run.Pending",
            a,
            &[("prefect.flow.f", "flow")],
        ),
        ev(t(1000), "prefect.flow-run.Running", a, &[]),
        ev(t(2000), "prefect.flow-run.Running", b, &[]),
        ev(t(-1000), "prefect.task-run.Running", a, &[]),
    ];
    let week = std::time::Duration::from_secs(7 * 86_400);
    store.create_events(&events, week).await.unwrap();
    store.create_events(&events[..1], week).await.unwrap();

    let all = EventFilter {
        occurred: window(t(-1000), t(2000)),
        order: EventOrder::Asc,
        ..EventFilter::default()
    };
    let got = store.read_events(&all).await.unwrap();
    assert_eq!(
        got,
        vec![
            events[3].clone(),
            events[0].clone(),
            events[1].clone(),
            events[2].clone()
        ]
    );
    let desc = EventFilter {
        order: EventOrder::Desc,
        occurred: window(t(0), t(1000)),
        ..EventFilter::default()
    };
    let got: Vec<Uuid> = store
        .read_events(&desc)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(got, vec![events[1].id, events[0].id]);

    let by_resource = EventFilter {
        resource: Some(ResourceFilter {
            id: Some(vec![a.into()]),
            ..ResourceFilter::default()
        }),
        event: Some(NameFilter {
            prefix: Some(vec!["prefect.flow-run.".into()]),
            ..NameFilter::default()
        }),
        ..all.clone()
    };
    let got: Vec<Uuid> = store
        .read_events(&by_resource)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(got, vec![events[0].id, events[1].id]);

    let before = EventFilter {
        occurred: window(t(-5000), t(-2000)),
        ..EventFilter::default()
    };
    assert_eq!(store.read_events(&before).await.unwrap(), Vec::new());
}
