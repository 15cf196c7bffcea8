use async_trait::async_trait;

/// Whether what the service depends on answers.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait HealthProbe: Send + Sync {
    /// `Ok` when the database answers a trivial query.
    async fn check_database(&self) -> anyhow::Result<()>;
}
