use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::RepositoryError;

/// Named leases in the shared database, for periodic jobs that must run on
/// one replica at a time.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait Leases: Send + Sync {
    /// Takes (or renews) lease `name` for `owner` until `now + ttl`, when
    /// it is free, expired or already `owner`'s; false when another owner
    /// holds it.
    async fn try_acquire(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, RepositoryError>;
}
