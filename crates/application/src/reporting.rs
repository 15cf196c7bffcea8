//! Delivering the outbox to GitHub: one sticky comment per PR, the
//! `ephemera/preview` commit status and GitHub Deployments, in order per PR,
//! retried with backoff while GitHub is slow, down or rate-limiting.

use std::sync::Arc;
use std::time::Duration;

use ephemera_domain::{DeploymentStatus, EnvironmentStatus, PreviewReport};
use tokio::sync::{Notify, watch};

use crate::ports::{
    Clock, CommitState, DeploymentLedger, DeploymentState, GitHubReporter, PendingReport,
    PullRequestRef, ReportError, ReportOutbox, RepositoryError,
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

fn title(status: EnvironmentStatus) -> &'static str {
    match status {
        EnvironmentStatus::Pending => "⏳ Queued",
        EnvironmentStatus::Provisioning => "🚧 Creating",
        EnvironmentStatus::Updating => "🔄 Updating",
        EnvironmentStatus::Ready => "✅ Ready",
        EnvironmentStatus::Failed => "❌ Failed",
        EnvironmentStatus::Destroying => "🧹 Being removed",
        EnvironmentStatus::Destroyed => "🗑️ Removed",
    }
}

/// The sticky comment's body (the adapter adds the hidden marker).
pub fn render_comment(report: &PreviewReport) -> String {
    let mut out = String::from("### Preview environment\n\n| | |\n|---|---|\n");
    out.push_str(&format!("| Status | **{}** |\n", title(report.status)));
    if let (Some(url), EnvironmentStatus::Ready | EnvironmentStatus::Updating) =
        (&report.url, report.status)
    {
        out.push_str(&format!("| Preview | {url} |\n"));
    }
    out.push_str(&format!("| Commit | `{}` |\n", report.commit_sha.short()));
    if let Some(d) = &report.deployment {
        let took = d
            .duration_seconds
            .map(|s| format!(" in {s:.1}s"))
            .unwrap_or_default();
        out.push_str(&format!(
            "| Last deployment | {} of `{}`{took} |\n",
            d.status,
            d.commit_sha.short()
        ));
    }
    out.push_str(&format!("| Namespace | `{}` |\n", report.namespace));
    if let Some(vouched) = &report.vouched_sha {
        out.push_str(&format!(
            "| Vouched for | `{}` (a maintainer's label covers this commit only) |\n",
            vouched.short()
        ));
    }
    if let (Some(note), true) = (&report.reason, report.status.is_active())
        && report.status != EnvironmentStatus::Destroying
    {
        out.push_str(&format!("\n> {note}\n"));
    }
    if let Some(error) = report
        .error
        .as_deref()
        .filter(|_| report.status == EnvironmentStatus::Failed)
    {
        out.push_str(&format!(
            "\n> {}\n",
            error.lines().next().unwrap_or_default()
        ));
    }
    match report.status {
        EnvironmentStatus::Destroyed => {
            out.push_str("\nThe preview is gone");
            if let Some(reason) = &report.reason {
                out.push_str(&format!(" ({reason})"));
            }
            out.push_str(". It comes back when the PR is reopened or receives a new commit.\n");
        }
        EnvironmentStatus::Destroying => out.push_str("\nThe preview is being removed.\n"),
        _ => {}
    }
    out.push_str("\n<sub>Kept up to date by ephemera.</sub>\n");
    out
}

/// The commit status a deployment's commit should end with (or show now):
/// state, description and target URL.
pub fn commit_status(
    entry: &DeploymentLedger,
    report: &PreviewReport,
) -> (CommitState, String, Option<String>) {
    let sha = entry.commit_sha.short();
    match entry.status {
        DeploymentStatus::Queued | DeploymentStatus::InProgress => (
            CommitState::Pending,
            format!("Deploying {sha} to a preview"),
            None,
        ),
        DeploymentStatus::Success => (
            CommitState::Success,
            "Preview ready".to_owned(),
            report.url.clone(),
        ),
        DeploymentStatus::Failed => (
            CommitState::Failure,
            format!(
                "Preview failed: {}",
                entry
                    .error
                    .as_deref()
                    .and_then(|e| e.lines().next())
                    .unwrap_or("see the deployment logs")
            ),
            None,
        ),
        DeploymentStatus::Cancelled if !report.status.is_active() || is_going(report) => (
            CommitState::Error,
            format!("Not deployed: the preview was removed before {sha} was live"),
            None,
        ),
        DeploymentStatus::Cancelled => (
            CommitState::Error,
            format!("Not deployed: {sha} was superseded by a newer commit"),
            None,
        ),
    }
}

fn is_going(report: &PreviewReport) -> bool {
    matches!(
        report.status,
        EnvironmentStatus::Destroying | EnvironmentStatus::Destroyed
    )
}

/// The GitHub Deployment states a deployment still has to pass through, in
/// order, after what GitHub was last told: its own outcome, then
/// `inactive` once a newer deployment replaced it or the preview is gone.
pub fn deployment_states(entry: &DeploymentLedger, superseded: bool) -> Vec<DeploymentState> {
    let own = match entry.status {
        DeploymentStatus::Queued | DeploymentStatus::InProgress => {
            Some(DeploymentState::InProgress)
        }
        DeploymentStatus::Success => Some(DeploymentState::Success),
        DeploymentStatus::Failed => Some(DeploymentState::Failure),
        DeploymentStatus::Cancelled => None,
    };
    // A deployment under way is not replaced yet: it ends cancelled first.
    let ended = !matches!(
        entry.status,
        DeploymentStatus::Queued | DeploymentStatus::InProgress
    );
    let retire = entry.status == DeploymentStatus::Cancelled || (superseded && ended);
    let done = entry.reported.map(DeploymentState::rank);
    own.into_iter()
        .chain(retire.then_some(DeploymentState::Inactive))
        .filter(|state| done.is_none_or(|done| state.rank() > done))
        .collect()
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
        let newest = pending.ledger.last().map(|entry| entry.deployment_id);
        for entry in &pending.ledger {
            let superseded = is_going(report) || Some(entry.deployment_id) != newest;
            self.settle(&pr, report, entry, superseded).await?;
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

#[cfg(test)]
mod tests {
    use ephemera_domain::{CommitSha, DeploymentId};

    use super::*;
    use DeploymentState::{Failure, InProgress, Inactive, Success};
    use DeploymentStatus::{Cancelled, Failed, Queued};

    fn entry(status: DeploymentStatus, reported: Option<DeploymentState>) -> DeploymentLedger {
        DeploymentLedger {
            deployment_id: DeploymentId::new(1).unwrap(),
            commit_sha: CommitSha::parse(&"a".repeat(40)).unwrap(),
            status,
            error: None,
            github_deployment_id: None,
            reported,
            reported_commit: None,
        }
    }

    #[test]
    fn each_deployment_moves_forward_to_its_final_state_on_github() {
        // (status, last told, replaced by a newer one or the preview gone) → still to send
        let table: &[(
            DeploymentStatus,
            Option<DeploymentState>,
            bool,
            &[DeploymentState],
        )] = &[
            (Queued, None, false, &[InProgress]),
            (Queued, Some(InProgress), false, &[]),
            (DeploymentStatus::InProgress, None, true, &[InProgress]),
            (DeploymentStatus::Success, None, false, &[Success]),
            (
                DeploymentStatus::Success,
                Some(InProgress),
                false,
                &[Success],
            ),
            (DeploymentStatus::Success, None, true, &[Success, Inactive]),
            (DeploymentStatus::Success, Some(Success), true, &[Inactive]),
            (DeploymentStatus::Success, Some(Inactive), true, &[]),
            (Failed, Some(InProgress), false, &[Failure]),
            (Failed, Some(Failure), true, &[Inactive]),
            (Cancelled, None, false, &[Inactive]),
            (Cancelled, Some(InProgress), true, &[Inactive]),
            (Cancelled, Some(Inactive), true, &[]),
        ];
        for (status, reported, superseded, expected) in table {
            assert_eq!(
                deployment_states(&entry(*status, *reported), *superseded),
                *expected,
                "{status:?} told {reported:?}, superseded {superseded}"
            );
        }
    }
}
