//! Named leases against real databases: one holder at a time, taken over
//! once expired.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::{DateTime, Utc};
use ephemera_application::ports::Leases;
use ephemera_persistence::testing::TestDatabase;
use ephemera_persistence::{SqlLeases, backend_tests};

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(1_800_000_000 + secs, 0).unwrap()
}

async fn one_holder_at_a_time_until_the_lease_expires(t: TestDatabase) {
    let leases = SqlLeases::new(t.db.clone());
    let ttl = Duration::from_secs(60);
    assert!(
        leases
            .try_acquire("github-sync", "a", ttl, at(0))
            .await
            .unwrap()
    );
    assert!(
        !leases
            .try_acquire("github-sync", "b", ttl, at(30))
            .await
            .unwrap()
    );
    // The holder renews it.
    assert!(
        leases
            .try_acquire("github-sync", "a", ttl, at(50))
            .await
            .unwrap()
    );
    assert!(
        !leases
            .try_acquire("github-sync", "b", ttl, at(100))
            .await
            .unwrap()
    );
    // Another name is another lease.
    assert!(
        leases
            .try_acquire("other", "b", ttl, at(100))
            .await
            .unwrap()
    );
    // Expired (renewed at 50, so until 110): taken over.
    assert!(
        leases
            .try_acquire("github-sync", "b", ttl, at(111))
            .await
            .unwrap()
    );
    assert!(
        !leases
            .try_acquire("github-sync", "a", ttl, at(112))
            .await
            .unwrap()
    );
}

backend_tests!(one_holder_at_a_time_until_the_lease_expires);
