use async_trait::async_trait;

/// Numbers for the metrics endpoint, read at scrape time.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait StatsProbe: Send + Sync {
    /// How many environments are in each status.
    async fn environments_by_status(&self) -> anyhow::Result<Vec<(String, i64)>>;

    /// Environments whose work is due now (the reconciler's backlog).
    async fn work_backlog(&self) -> anyhow::Result<i64>;

    /// Reports to GitHub not delivered yet (the outbox backlog).
    async fn report_backlog(&self) -> anyhow::Result<i64>;
}

/// Told how long each provisioner run took (for a duration histogram).
pub trait WorkObserver: Send + Sync {
    /// `action` is `provision` or `destroy`; `outcome` `ok` or `error`.
    fn observe(&self, provisioner: &str, action: &str, outcome: &str, seconds: f64);

    /// `count` records of `kind` (deliveries, reports, logs) were removed
    /// by the retention pass.
    fn pruned(&self, _kind: &str, _count: u64) {}
}

/// Told about every answer GitHub gives the GitHub adapter, for the
/// request counter and the rate-limit gauge. Both methods do nothing by
/// default.
pub trait GitHubObserver: Send + Sync {
    /// One request answered. `operation` is a fixed name per kind of call
    /// (GitHub's operationId, e.g. `issues/create-comment`), never a URL,
    /// so the label set stays small.
    fn request(&self, _operation: &str, _status: u16) {}

    /// GitHub's `x-ratelimit-remaining` on the latest answer that had one.
    fn rate_limit_remaining(&self, _remaining: u64) {}
}

/// Observes nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl WorkObserver for NoObserver {
    fn observe(&self, _: &str, _: &str, _: &str, _: f64) {}
}

impl GitHubObserver for NoObserver {}
