//! Healing what webhooks missed: a periodic sync asks GitHub about every
//! live environment's PR (closed → destroy, newer head → deploy, gone →
//! destroy), and asks GitHub to redeliver failed webhook deliveries that
//! ephemera never recorded — within GitHub's 3-day window, an outage of
//! ephemera heals itself.

use std::sync::Arc;

use ephemera_domain::{DeliveryId, DeliveryOutcome, EnvironmentStatus};
use thiserror::Error;

use crate::PageRequest;
use crate::commands::{CommandError, EnvironmentCommands, MissedHead};
use crate::ports::{
    Clock, DeliveryHeader, DeliveryLog, EnvironmentFilter, EnvironmentRepository, GitHubReader,
    PullRequestRef, ReportError, WebhookStore,
};

/// How a redelivery request is noted in the delivery log.
const REQUESTED: &str = "missed; redelivery requested";

#[derive(Debug, Error)]
pub enum SyncError {
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// What one pass changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncSummary {
    pub checked: usize,
    pub destroyed: usize,
    pub redeployed: usize,
    /// New heads the deploy policy held back (an unvouched fork commit, a
    /// suspended installation).
    pub held: usize,
    pub redelivered: Vec<String>,
}

#[derive(Clone)]
pub struct GitHubSync {
    github: Arc<dyn GitHubReader>,
    environments: Arc<dyn EnvironmentRepository>,
    deliveries: Arc<dyn DeliveryLog>,
    store: Arc<dyn WebhookStore>,
    commands: EnvironmentCommands,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for GitHubSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubSync").finish_non_exhaustive()
    }
}

fn unexpected(err: impl std::fmt::Display) -> SyncError {
    SyncError::Unexpected(anyhow::anyhow!("{err}"))
}

fn command(err: CommandError) -> Option<SyncError> {
    match err {
        // Someone else destroyed or moved it meanwhile: nothing to repair.
        CommandError::Conflict(_) | CommandError::NotFound(_) => None,
        other => Some(unexpected(other)),
    }
}

impl GitHubSync {
    pub fn new(
        github: Arc<dyn GitHubReader>,
        environments: Arc<dyn EnvironmentRepository>,
        deliveries: Arc<dyn DeliveryLog>,
        store: Arc<dyn WebhookStore>,
        commands: EnvironmentCommands,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            github,
            environments,
            deliveries,
            store,
            commands,
            clock,
        }
    }

    /// Compares every live environment with its PR on GitHub.
    #[tracing::instrument(skip(self))]
    pub async fn sync_pull_requests(&self) -> Result<SyncSummary, SyncError> {
        let mut summary = SyncSummary::default();
        let filter = EnvironmentFilter {
            active_only: true,
            ..Default::default()
        };
        let mut page = PageRequest::parse(Some(200), None).map_err(unexpected)?;
        loop {
            let rows = self
                .environments
                .list(&filter, page)
                .await
                .map_err(unexpected)?;
            let result = page.into_page(rows, |e| e.id.get());
            for env in &result.items {
                if matches!(
                    env.status,
                    EnvironmentStatus::Destroying | EnvironmentStatus::Destroyed
                ) {
                    continue;
                }
                let Some(installation) = env.installation_id else {
                    continue;
                };
                summary.checked += 1;
                let pr = PullRequestRef {
                    installation,
                    repository: env.repository.clone(),
                    number: env.pr_number,
                };
                match self.github.pull_request(&pr).await {
                    Ok(state) if !state.open => {
                        match self
                            .commands
                            .destroy_because(
                                env.id,
                                "PR closed on GitHub (found by the sync; the webhook was missed)",
                            )
                            .await
                        {
                            Ok(_) => summary.destroyed += 1,
                            Err(e) => {
                                if let Some(e) = command(e) {
                                    return Err(e);
                                }
                            }
                        }
                    }
                    Ok(state) => match self.commands.deploy_missed_head(env.id, &state).await {
                        Ok(MissedHead::Deployed) => summary.redeployed += 1,
                        Ok(MissedHead::Destroyed(reason)) => {
                            tracing::info!(environment = %env.id, %reason, "sync: the policy no longer allows this preview");
                            summary.destroyed += 1;
                        }
                        Ok(MissedHead::Held(reason)) => {
                            tracing::info!(environment = %env.id, %reason, "sync: new head held back by the policy");
                            summary.held += 1;
                        }
                        Ok(MissedHead::UpToDate) => {}
                        Err(e) => {
                            if let Some(e) = command(e) {
                                return Err(e);
                            }
                        }
                    },
                    Err(ReportError::Gone(why)) => {
                        tracing::info!(environment = %env.id, %why, "PR no longer visible on GitHub");
                        match self
                            .commands
                            .destroy_because(
                                env.id,
                                "the PR or its repository is no longer visible to the App",
                            )
                            .await
                        {
                            Ok(_) => summary.destroyed += 1,
                            Err(e) => {
                                if let Some(e) = command(e) {
                                    return Err(e);
                                }
                            }
                        }
                    }
                    // GitHub unavailable or refusing: try again next pass.
                    Err(err) => {
                        tracing::warn!(environment = %env.id, error = %err, "sync skipped a PR")
                    }
                }
            }
            match result.next {
                Some(next) => page.after = Some(next),
                None => break,
            }
        }
        Ok(summary)
    }

    /// Asks GitHub to redeliver failed deliveries ephemera never recorded,
    /// and records that it asked (as a `failed` delivery-log entry, which a
    /// redelivery then applies afresh).
    #[tracing::instrument(skip(self))]
    pub async fn redeliver_missed(&self) -> Result<Vec<String>, SyncError> {
        let since = self.clock.now() - chrono::Duration::days(3);
        let deliveries = match self.github.recent_deliveries(since).await {
            Ok(d) => d,
            Err(err) => {
                tracing::warn!(error = %err, "cannot list the App's deliveries");
                return Ok(Vec::new());
            }
        };
        let mut asked = Vec::new();
        for delivery in deliveries {
            if (200..300).contains(&delivery.status_code) {
                continue;
            }
            let Ok(guid) = DeliveryId::parse(&delivery.guid) else {
                continue;
            };
            // Skip what ephemera applied, ignored, or already asked for; a
            // delivery it answered with an error is asked for again.
            if let Some(seen) = self.deliveries.get(&guid).await.map_err(unexpected)? {
                let asked = seen
                    .reason
                    .as_deref()
                    .is_some_and(|r| r.starts_with(REQUESTED));
                if seen.outcome != DeliveryOutcome::Failed || asked {
                    continue;
                }
            }
            let header = DeliveryHeader {
                delivery_id: guid.clone(),
                event: delivery.event.clone(),
                action: delivery.action.clone(),
                repository: None,
                installation_id: None,
                body_sha256: None,
            };
            // Recorded before asking: a redelivery arriving at once finds
            // the entry and is applied over it.
            let note = format!(
                "{REQUESTED} at {} (GitHub got {})",
                self.clock.now().to_rfc3339(),
                delivery.status_code
            );
            self.store
                .record_failure(&header, note, self.clock.now())
                .await
                .map_err(unexpected)?;
            if let Err(err) = self.github.redeliver(delivery.id).await {
                tracing::warn!(delivery = %guid, error = %err, "redelivery request failed");
                continue;
            }
            tracing::info!(delivery = %guid, event = %delivery.event, "asked GitHub to redeliver");
            asked.push(guid.to_string());
        }
        Ok(asked)
    }

    /// Both passes; for the periodic task.
    pub async fn run_once(&self) -> Result<SyncSummary, SyncError> {
        let mut summary = self.sync_pull_requests().await?;
        summary.redelivered = self.redeliver_missed().await?;
        Ok(summary)
    }
}
