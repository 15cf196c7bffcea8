//! Delivering the outbox to GitHub: one sticky comment per PR, the
//! `ephemera/preview` commit status, the "ephemera preview" check run and
//! GitHub Deployments, in order per PR, retried with backoff while GitHub
//! is slow, down or rate-limiting.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ephemera_domain::{InstallationId, PreviewReport};
use tokio::sync::watch;

mod check;
mod comment;
mod ledger;

pub use check::{APPROVE, CHECK_NAME, DESTROY, LOG_TAIL_BYTES, REDEPLOY, WAKE, check_run};
pub use comment::render_comment;
use ledger::is_going;
pub use ledger::{Retirement, commit_status, deployment_states, retirements};

use crate::ports::{
    CheckState, Clock, DeploymentLedger, DeploymentState, GitHubReporter, PendingReport,
    PullRequestRef, ReportError, ReportOutbox, RepositoryError,
};

/// How a commit's preview is shown on it: the `ephemera/preview` commit
/// status, the "ephemera preview" check run, or both (the default: branch
/// protection may require either).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReportingChannels {
    #[default]
    Both,
    Checks,
    Status,
}

impl std::str::FromStr for ReportingChannels {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "both" => Ok(Self::Both),
            "checks" => Ok(Self::Checks),
            "status" => Ok(Self::Status),
            other => Err(format!("`{other}` is not one of both, checks, status")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ReportingConfig {
    pub worker_id: String,
    pub lease: Duration,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub poll: Duration,
    pub channels: ReportingChannels,
}

/// Installations whose App lacks a permission for an optional feature
/// (check runs, reactions): the feature is off for them, said once in the
/// log, until the process restarts (after the permission is granted).
#[derive(Debug, Default)]
pub struct FeaturesOff(Mutex<HashSet<(InstallationId, &'static str)>>);

impl FeaturesOff {
    pub fn is_off(&self, installation: InstallationId, feature: &'static str) -> bool {
        self.0
            .lock()
            .is_ok_and(|off| off.contains(&(installation, feature)))
    }

    /// Turns `feature` off for `installation`; says so once.
    pub fn turn_off(&self, installation: InstallationId, feature: &'static str, why: &str) {
        let newly = self
            .0
            .lock()
            .is_ok_and(|mut off| off.insert((installation, feature)));
        if newly {
            tracing::warn!(
                installation = installation.get(),
                feature,
                error = why,
                "the GitHub App lacks a permission on this installation: {feature} are off for it \
                 until ephemera restarts with the permission granted (docs/github-app.md)"
            );
        }
    }
}

/// The optional feature check runs are.
pub const CHECK_RUNS: &str = "check runs";

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
    features_off: Arc<FeaturesOff>,
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
            features_off: Arc::default(),
        }
    }

    /// Delivers until `stop` turns true, waiting for `wake` or the poll
    /// interval when nothing is due.
    pub async fn run(&self, wake: crate::worker::Doorbell, stop: watch::Receiver<bool>) {
        crate::worker::run_until_stopped(Some(wake.listen()), stop, || async {
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
            Err(
                err @ (ReportError::Gone(_)
                | ReportError::Refused(_)
                | ReportError::NotPermitted(_)),
            ) => {
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
            .upsert_comment(
                &pr,
                pending.comment_id,
                &render_comment(report, &pending.commands),
            )
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
        let newest = pending.ledger.last().map(|e| e.deployment_id);
        for (entry, retirement) in pending.ledger.iter().zip(&plan) {
            self.settle(&pr, report, entry, *retirement == Retirement::Ephemera)
                .await?;
            self.check(&pr, report, entry, newest == Some(entry.deployment_id))
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
            // With checks only, the status is recorded as if told: the
            // ledger then moves on the same way.
            if self.config.channels.statuses() {
                self.github
                    .set_commit_status(pr, &entry.commit_sha, state, target, &description)
                    .await?;
            }
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

    /// Brings the check run of `entry`'s commit to what it should show;
    /// `newest`: the PR's latest deployment, whose run carries the buttons.
    /// An App without the Checks permission gets none, said once.
    async fn check(
        &self,
        pr: &PullRequestRef,
        report: &PreviewReport,
        entry: &DeploymentLedger,
        newest: bool,
    ) -> Result<(), ReportError> {
        let off_told = CheckState::Off.as_str();
        if entry.reported_check.as_deref() == Some(off_told) {
            return Ok(());
        }
        let off =
            !self.config.channels.checks() || self.features_off.is_off(pr.installation, CHECK_RUNS);
        // Those already on GitHub are still brought to their end.
        if off && entry.check_run_id.is_none() {
            return self.store(
                self.outbox
                    .record_check(entry.deployment_id, None, off_told)
                    .await,
            );
        }
        let run = check_run(entry, report, newest);
        let told = CheckState::told(&run);
        if entry.reported_check.as_deref() == Some(told.as_str()) {
            return Ok(());
        }
        let sent = match entry.check_run_id {
            Some(id) => self
                .github
                .update_check_run(pr, id, &run)
                .await
                .map(|()| id),
            None => {
                self.github
                    .create_check_run(pr, &entry.commit_sha, &run)
                    .await
            }
        };
        match sent {
            Ok(id) => self.store(
                self.outbox
                    .record_check(entry.deployment_id, Some(id), &told)
                    .await,
            ),
            Err(ReportError::NotPermitted(why)) => {
                self.features_off
                    .turn_off(pr.installation, CHECK_RUNS, &why);
                self.store(
                    self.outbox
                        .record_check(entry.deployment_id, None, off_told)
                        .await,
                )
            }
            // A check run deleted on GitHub is not made again.
            Err(ReportError::Gone(why)) if entry.check_run_id.is_some() => {
                tracing::warn!(error = %why, "the check run is gone on GitHub");
                self.store(
                    self.outbox
                        .record_check(entry.deployment_id, None, off_told)
                        .await,
                )
            }
            Err(err) => Err(err),
        }
    }

    /// Storing GitHub's ids failed: retry the report (it is idempotent).
    fn store(&self, result: Result<(), RepositoryError>) -> Result<(), ReportError> {
        result.map_err(|e| ReportError::Retry {
            message: format!("recording GitHub ids: {e}"),
            after: None,
        })
    }
}
