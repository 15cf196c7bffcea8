//! Retention: the delivery log, delivered outbox reports and the logs of
//! long-destroyed previews would otherwise grow forever. A periodic pass
//! removes what is older than the operator's settings.

use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::sync::watch;

use crate::ports::{Clock, Pruner, RepositoryError, WorkObserver};
use crate::worker::{self, Next};

/// How long each kind of record is kept (docs/configuration.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionConfig {
    /// Delivery-log entries (and with them the body digests that catch
    /// replays; older replays are caught by the staleness guards).
    pub deliveries: Duration,
    /// Reports to GitHub once delivered, superseded or given up.
    pub reports: Duration,
    /// Deployment logs, counted from the environment's destruction.
    pub logs_after_destroy: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        const DAY: u64 = 24 * 60 * 60;
        Self {
            deliveries: Duration::from_secs(30 * DAY),
            reports: Duration::from_secs(7 * DAY),
            logs_after_destroy: Duration::from_secs(14 * DAY),
        }
    }
}

/// What one pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub deliveries: u64,
    pub reports: u64,
    pub logs: u64,
}

#[derive(Debug, Error)]
pub enum RetentionError {
    #[error("retention pass failed")]
    Repository(#[from] RepositoryError),
    /// A retention so long that "now minus it" is before any date.
    #[error("retention of {0:?} is out of range")]
    OutOfRange(Duration),
}

#[derive(Clone)]
pub struct Retention {
    pruner: Arc<dyn Pruner>,
    clock: Arc<dyn Clock>,
    config: RetentionConfig,
    observer: Arc<dyn WorkObserver>,
}

impl std::fmt::Debug for Retention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retention")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Retention {
    pub fn new(
        pruner: Arc<dyn Pruner>,
        clock: Arc<dyn Clock>,
        config: RetentionConfig,
        observer: Arc<dyn WorkObserver>,
    ) -> Self {
        Self {
            pruner,
            clock,
            config,
            observer,
        }
    }

    fn before(&self, keep: Duration) -> Result<chrono::DateTime<chrono::Utc>, RetentionError> {
        chrono::Duration::from_std(keep)
            .ok()
            .and_then(|keep| self.clock.now().checked_sub_signed(keep))
            .ok_or(RetentionError::OutOfRange(keep))
    }

    /// Runs a pass every `every` until `stop` turns true.
    pub async fn run(&self, every: Duration, stop: watch::Receiver<bool>) {
        worker::run_until_stopped(None, stop, || async {
            if let Err(err) = self.run_once().await {
                tracing::warn!(error = %err, "retention pass failed");
            }
            Next::After(every)
        })
        .await;
    }

    /// One pass over every kind of record.
    #[tracing::instrument(skip(self))]
    pub async fn run_once(&self) -> Result<Pruned, RetentionError> {
        let deliveries = self
            .pruner
            .prune_deliveries(self.before(self.config.deliveries)?)
            .await?;
        let reports = self
            .pruner
            .prune_reports(self.before(self.config.reports)?)
            .await?;
        let days = self.config.logs_after_destroy.as_secs() / (24 * 60 * 60);
        let note = format!(
            "[logs removed {days} days after the preview was destroyed (EPHEMERA_RETENTION_LOGS)]"
        );
        let logs = self
            .pruner
            .prune_logs(self.before(self.config.logs_after_destroy)?, &note)
            .await?;
        let pruned = Pruned {
            deliveries,
            reports,
            logs,
        };
        for (kind, count) in [
            ("deliveries", deliveries),
            ("reports", reports),
            ("logs", logs),
        ] {
            self.observer.pruned(kind, count);
        }
        if pruned != Pruned::default() {
            tracing::info!(?pruned, "retention pass removed old records");
        }
        Ok(pruned)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::ports::{MockClock, MockPruner, NoObserver};

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    #[tokio::test]
    async fn each_kind_is_pruned_at_its_own_age() {
        const NOW: i64 = 1_800_000_000;
        const DAY: i64 = 86_400;
        let mut clock = MockClock::new();
        clock.expect_now().returning(|| at(NOW));
        let mut pruner = MockPruner::new();
        pruner
            .expect_prune_deliveries()
            .withf(|before| *before == at(NOW - 30 * DAY))
            .returning(|_| Ok(3));
        pruner
            .expect_prune_reports()
            .withf(|before| *before == at(NOW - 7 * DAY))
            .returning(|_| Ok(2));
        pruner
            .expect_prune_logs()
            .withf(|before, note| *before == at(NOW - 14 * DAY) && note.contains("14 days"))
            .returning(|_, _| Ok(1));
        let retention = Retention::new(
            Arc::new(pruner),
            Arc::new(clock),
            RetentionConfig::default(),
            Arc::new(NoObserver),
        );
        assert_eq!(
            retention.run_once().await.unwrap(),
            Pruned {
                deliveries: 3,
                reports: 2,
                logs: 1
            }
        );
    }

    #[tokio::test]
    async fn an_absurd_retention_is_an_error_not_a_panic() {
        let mut clock = MockClock::new();
        clock.expect_now().returning(|| at(1_800_000_000));
        let retention = Retention::new(
            Arc::new(MockPruner::new()),
            Arc::new(clock),
            RetentionConfig {
                deliveries: Duration::from_secs(u64::MAX),
                ..RetentionConfig::default()
            },
            Arc::new(NoObserver),
        );
        assert!(matches!(
            retention.run_once().await,
            Err(RetentionError::OutOfRange(_))
        ));
    }
}
