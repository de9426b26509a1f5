//! Global concurrency slots and leases through the use cases, run over any store:
//! `concurrency_limits.rs` runs them on SQLite, the DynamoDB adapter's
//! `concurrency_limits.rs` on moto (this file is included by both).

#![allow(dead_code)]

use std::sync::Arc;

use chrono::Utc;
use pushpool_core::concurrency::{LeaseHolder, LeaseHolderKind};
use pushpool_service::concurrency_limits::{
    AcquireMode, ConcurrencyError, ConcurrencyLimits, IdOrName, LimitCreate,
};
use pushpool_store::Store;
use uuid::Uuid;

/// A store under test.
pub type DynStore = Arc<dyn Store>;

fn limit(name: &str, limit: i64) -> LimitCreate {
    LimitCreate {
        name: name.into(),
        limit,
        active: true,
        active_slots: 0,
        denied_slots: 0,
        slot_decay_per_second: 0.0,
    }
}

async fn active_slots(limits: &ConcurrencyLimits, name: &str) -> i64 {
    limits
        .read(&IdOrName::Name(name.into()))
        .await
        .unwrap()
        .active_slots
}

/// A lease that lapses gives its slots back: in the reconciler's sweep, and lazily when
/// another acquisition names the limit.
pub async fn a_lapsed_lease_frees_its_slots(store: DynStore) {
    let limits = ConcurrencyLimits::new(store.clone());
    limits.create(limit("gate", 1)).await.unwrap();
    let holder = LeaseHolder {
        kind: LeaseHolderKind::FlowRun,
        id: Uuid::new_v4(),
    };
    let names = ["gate".to_owned()];
    let first = limits
        .increment(
            &names,
            1,
            AcquireMode::Concurrency,
            Some((60.0, Some(holder.clone()))),
        )
        .await
        .unwrap();
    let lease_id = first.lease_id.unwrap();
    let lease = store.read_concurrency_lease(lease_id).await.unwrap();
    assert_eq!(lease.holder, Some(holder));
    assert_eq!(lease.slots, 1);
    assert!(matches!(
        limits
            .increment(&names, 1, AcquireMode::Concurrency, Some((60.0, None)))
            .await,
        Err(ConcurrencyError::Locked {
            detail: None,
            retry_after: Some(_)
        })
    ));
    assert_eq!(limits.release_expired(Utc::now()).await.unwrap(), 0);
    assert_eq!(
        limits
            .release_expired(Utc::now() + chrono::Duration::seconds(61))
            .await
            .unwrap(),
        1
    );
    assert_eq!(active_slots(&limits, "gate").await, 0);
    assert!(store.list_concurrency_leases().await.unwrap().is_empty());
    assert!(matches!(
        limits.renew_lease(lease_id, 60.0).await,
        Err(ConcurrencyError::Gone(m)) if m == "Lease not found - it may have expired or been revoked"
    ));

    // Lazily: a lease stored as already lapsed is released by the next acquisition.
    let again = limits
        .increment(&names, 1, AcquireMode::Concurrency, Some((60.0, None)))
        .await
        .unwrap();
    let mut lease = store
        .read_concurrency_lease(again.lease_id.unwrap())
        .await
        .unwrap();
    lease.expires = Utc::now() - chrono::Duration::seconds(1);
    store
        .commit_concurrency(&pushpool_store::concurrency::ConcurrencyWrite {
            limits: vec![],
            leases: vec![pushpool_store::concurrency::LeaseWrite::Renew(lease)],
        })
        .await
        .unwrap();
    limits
        .increment(&names, 1, AcquireMode::Concurrency, Some((60.0, None)))
        .await
        .unwrap();
    assert_eq!(active_slots(&limits, "gate").await, 1);
    assert_eq!(store.list_concurrency_leases().await.unwrap().len(), 1);
}

/// Many concurrent acquisitions of a limit take exactly its slots; the others are told 423.
pub async fn concurrent_acquisitions_never_exceed_the_limit(store: DynStore) {
    const TAKERS: usize = 8;
    let limits = ConcurrencyLimits::new(store.clone());
    limits.create(limit("race", 2)).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..TAKERS {
        let limits = limits.clone();
        tasks.spawn(async move {
            limits
                .increment(
                    &["race".to_owned()],
                    1,
                    AcquireMode::Concurrency,
                    Some((60.0, None)),
                )
                .await
        });
    }
    let (mut won, mut locked) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            Ok(_) => won += 1,
            Err(ConcurrencyError::Locked { .. }) => locked += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!((won, locked), (2, TAKERS - 2));
    assert_eq!(active_slots(&limits, "race").await, 2);
    assert_eq!(store.list_concurrency_leases().await.unwrap().len(), 2);
}

/// Deleting a limit releases its leases, giving back their slots on the other limits they
/// hold.
pub async fn deleting_a_limit_releases_its_leases(store: DynStore) {
    let limits = ConcurrencyLimits::new(store.clone());
    limits.create(limit("a", 2)).await.unwrap();
    limits.create(limit("b", 2)).await.unwrap();
    let both = ["a".to_owned(), "b".to_owned()];
    limits
        .increment(&both, 1, AcquireMode::Concurrency, Some((60.0, None)))
        .await
        .unwrap();
    limits
        .increment(
            &["b".to_owned()],
            1,
            AcquireMode::Concurrency,
            Some((60.0, None)),
        )
        .await
        .unwrap();
    assert_eq!(active_slots(&limits, "b").await, 2);
    limits.delete(&IdOrName::Name("a".into())).await.unwrap();
    assert_eq!(active_slots(&limits, "b").await, 1);
    assert_eq!(store.list_concurrency_leases().await.unwrap().len(), 1);
}
