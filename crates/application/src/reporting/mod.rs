//! Delivering the outbox to GitHub: one sticky comment per PR, the
//! `ephemera/preview` commit status and GitHub Deployments, in order per PR,
//! retried with backoff while GitHub is slow, down or rate-limiting.

use std::sync::Arc;
use std::time::Duration;

use ephemera_domain::PreviewReport;
use tokio::sync::{Notify, watch};

mod comment;
mod ledger;

pub use comment::render_comment;
use ledger::is_going;
pub use ledger::{Retirement, commit_status, deployment_states, retirements};

use crate::ports::{
    Clock, DeploymentLedger, DeploymentState, GitHubReporter, PendingReport, PullRequestRef,
    ReportError, ReportOutbox, RepositoryError,
};

#[derive(Debug, Clone)]
pub struct ReportingConfig {
    pub worker_id: String,
    pub lease: Duration,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub poll: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportOutcome {
    Idle,
    Delivered(i64),
    Retrying { id: i64, after: Duration },
    Failed(i64),
}

#[derive(Clone)]
pub struct ReportDeliverer {
    outbox: Arc<dyn ReportOutbox>,
    github: Arc<dyn GitHubReporter>,
    clock: Arc<dyn Clock>,
    config: ReportingConfig,
}

impl std::fmt::Debug for ReportDeliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportDeliverer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The GitHub environment name of a PR's preview.
pub fn environment_name(report: &PreviewReport) -> String {
    format!("preview-pr-{}", report.pr_number)
}

impl ReportDeliverer {
    pub fn new(
        outbox: Arc<dyn ReportOutbox>,
        github: Arc<dyn GitHubReporter>,
        clock: Arc<dyn Clock>,
        config: ReportingConfig,
    ) -> Self {
        Self {
            outbox,
            github,
            clock,
            config,
        }
    }

    /// Delivers until `stop` turns true, waiting for `wake` or the poll
    /// interval when nothing is due.
    pub async fn run(&self, wake: Arc<Notify>, stop: watch::Receiver<bool>) {
        crate::worker::run_until_stopped(Some(&wake), stop, || async {
            match self.run_once().await {
                Ok(ReportOutcome::Idle) => crate::worker::Next::After(self.config.poll),
                Ok(_) => crate::worker::Next::Now,
                Err(err) => {
                    tracing::warn!(error = %err, "report delivery step failed");
                    crate::worker::Next::After(self.config.poll.max(Duration::from_secs(1)))
                }
            }
        })
        .await;
    }

    /// Delivers the next due report, if any.
    pub async fn run_once(&self) -> Result<ReportOutcome, RepositoryError> {
        let now = self.clock.now();
        let Some(pending) = self
            .outbox
            .claim(&self.config.worker_id, now, self.config.lease)
            .await?
        else {
            return Ok(ReportOutcome::Idle);
        };
        let id = pending.id;
        match self.deliver(&pending).await {
            Ok(()) => {
                self.outbox.delivered(id, self.clock.now()).await?;
                Ok(ReportOutcome::Delivered(id))
            }
            Err(ReportError::Retry { message, after }) => {
                let backoff = self.backoff(pending.attempts + 1);
                let after = after.map_or(backoff, |a| a.max(Duration::from_millis(1)));
                tracing::warn!(report = id, error = %message, ?after, "GitHub report will be retried");
                let at = self.clock.now() + chrono::Duration::from_std(after).unwrap_or_default();
                self.outbox.retry(id, message, at).await?;
                Ok(ReportOutcome::Retrying { id, after })
            }
            Err(err @ (ReportError::Gone(_) | ReportError::Refused(_))) => {
                tracing::warn!(report = id, error = %err, "GitHub report given up");
                self.outbox.failed(id, err.to_string()).await?;
                Ok(ReportOutcome::Failed(id))
            }
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        self.config
            .retry_base
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(16)))
            .min(self.config.retry_max)
    }

    /// Everything one report implies, idempotently: a retry redoes it all
    /// (edits, not new comments; the Deployment is created once).
    async fn deliver(&self, pending: &PendingReport) -> Result<(), ReportError> {
        let report = &pending.report;
        let pr = PullRequestRef {
            installation: report.installation_id,
            repository: report.repository.clone(),
            number: report.pr_number,
        };
        let comment_id = self
            .github
            .upsert_comment(&pr, pending.comment_id, &render_comment(report))
            .await?;
        if pending.comment_id != Some(comment_id) {
            self.store(
                self.outbox
                    .set_comment_id(report.environment_id, comment_id)
                    .await,
            )?;
        }

        // Each deployment's own truth, oldest first: its commit's status and
        // its GitHub Deployment, each brought to where it now belongs.
        let plan = retirements(&pending.ledger, is_going(report));
        for (entry, retirement) in pending.ledger.iter().zip(&plan) {
            self.settle(&pr, report, entry, *retirement == Retirement::Ephemera)
                .await?;
        }
        // The newest deployment's `success` has landed (settled last).
        for (entry, _) in pending.ledger.iter().zip(&plan).filter(|(e, r)| {
            **r == Retirement::GitHub && e.reported != Some(DeploymentState::Inactive)
        }) {
            self.store(
                self.outbox
                    .record_reported(entry.deployment_id, Some(DeploymentState::Inactive), None)
                    .await,
            )?;
        }
        Ok(())
    }

    /// Sends what GitHub does not know yet about one deployment, recording
    /// each step as it lands.
    async fn settle(
        &self,
        pr: &PullRequestRef,
        report: &PreviewReport,
        entry: &DeploymentLedger,
        superseded: bool,
    ) -> Result<(), ReportError> {
        let (state, description, target) = commit_status(entry, report);
        if entry.reported_commit != Some(state) {
            self.github
                .set_commit_status(pr, &entry.commit_sha, state, target, &description)
                .await?;
            self.store(
                self.outbox
                    .record_reported(entry.deployment_id, None, Some(state))
                    .await,
            )?;
        }
        let states = deployment_states(entry, superseded);
        let Some(first) = states.first() else {
            return Ok(());
        };
        let github_id = match entry.github_deployment_id {
            Some(id) => id,
            // Never shown on GitHub and nothing to show but its end.
            None if *first == DeploymentState::Inactive => {
                return self.store(
                    self.outbox
                        .record_reported(entry.deployment_id, Some(DeploymentState::Inactive), None)
                        .await,
                );
            }
            None => {
                let id = self
                    .github
                    .create_deployment(
                        pr,
                        &entry.commit_sha,
                        &environment_name(report),
                        &format!("ephemera preview of {}", entry.commit_sha.short()),
                    )
                    .await?;
                self.store(
                    self.outbox
                        .set_github_deployment_id(entry.deployment_id, id)
                        .await,
                )?;
                id
            }
        };
        for state in states {
            let (url, description) = match state {
                DeploymentState::Success => (report.url.clone(), "success".to_owned()),
                DeploymentState::InProgress => (None, entry.status.to_string()),
                DeploymentState::Failure => (None, "failed".to_owned()),
                DeploymentState::Inactive if is_going(report) => {
                    (None, "preview removed".to_owned())
                }
                DeploymentState::Inactive => (None, "superseded by a newer deployment".to_owned()),
            };
            self.github
                .create_deployment_status(pr, github_id, state, url, &description)
                .await?;
            self.store(
                self.outbox
                    .record_reported(entry.deployment_id, Some(state), None)
                    .await,
            )?;
        }
        Ok(())
    }

    /// Storing GitHub's ids failed: retry the report (it is idempotent).
    fn store(&self, result: Result<(), RepositoryError>) -> Result<(), ReportError> {
        result.map_err(|e| ReportError::Retry {
            message: format!("recording GitHub ids: {e}"),
            after: None,
        })
    }
}
