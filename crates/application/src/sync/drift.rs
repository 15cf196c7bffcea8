//! Drift repair: each repository's open PRs, listed (conditionally, within
//! a budget) and compared with the live environments.

use ephemera_domain::Environment;

use super::{GitHubSync, RATE_FLOOR, RepositoryKey, SyncError, SyncSummary, command, unexpected};
use crate::PageRequest;
use crate::commands::MissedHead;
use crate::ports::{EnvironmentFilter, OpenPullRequests, PullRequestState, ReportError};

impl GitHubSync {
    /// Compares every live environment with its PR on GitHub: one listing
    /// of open PRs per repository (conditional, so an unchanged repository
    /// costs no rate limit), not one read per environment. Stops early when
    /// GitHub's remaining rate limit is below [`RATE_FLOOR`], leaving the
    /// budget to the reports.
    #[tracing::instrument(skip(self))]
    pub async fn sync_pull_requests(&self) -> Result<SyncSummary, SyncError> {
        let mut summary = SyncSummary::default();
        let groups = self.live_by_repository().await?;
        let resume = self
            .resume_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        // Where the last pass stopped first, then around.
        let ordered: Vec<_> = match &resume {
            Some(at) => groups
                .range(at.clone()..)
                .chain(groups.range(..at.clone()))
                .collect(),
            None => groups.iter().collect(),
        };
        for ((installation, repository_key), envs) in ordered {
            let installation = *installation;
            if self.per_pass.is_some_and(|cap| summary.requests >= cap) {
                tracing::info!(
                    requests = summary.requests,
                    "drift repair spent this pass's share of its budget; the next pass goes on"
                );
                summary.budget_spent = true;
                *self
                    .resume_at
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some((installation, repository_key.clone()));
                break;
            }
            if self
                .github
                .rate_limit_remaining()
                .is_some_and(|left| left < RATE_FLOOR)
            {
                tracing::warn!(
                    floor = RATE_FLOOR,
                    "GitHub rate limit low: drift repair waits for the next pass"
                );
                summary.rate_limited = true;
                break;
            }
            let repository = envs[0].repository.clone();
            let key = repository.key();
            let etag = self.etag(&key);
            summary.checked += envs.len();
            match self
                .github
                .open_pull_requests(installation, &repository, etag)
                .await
            {
                Ok(OpenPullRequests::Unchanged) => {}
                Ok(OpenPullRequests::Listed {
                    etag,
                    pulls,
                    complete,
                    pages,
                }) => {
                    summary.requests += pages;
                    let open: std::collections::HashMap<_, _> = pulls.into_iter().collect();
                    let mut settled = true;
                    for env in envs {
                        let outcome = match open.get(&env.pr_number) {
                            // Past the page cap: maybe open, left to webhooks.
                            None if !complete => Ok(true),
                            None => self
                                .destroy(env, "PR closed on GitHub (found by the sync; the webhook was missed)", &mut summary)
                                .await,
                            Some(state) => self.follow(env, state, &mut summary).await,
                        };
                        settled &= outcome?;
                    }
                    // Remembered only once every environment was brought in
                    // line: an unchanged list then means nothing to do.
                    self.remember_etag(key, etag.filter(|_| settled));
                }
                Err(ReportError::Gone(why)) => {
                    summary.requests += 1;
                    tracing::info!(%repository, %why, "repository no longer visible on GitHub");
                    for env in envs {
                        self.destroy(
                            env,
                            "the PR or its repository is no longer visible to the App",
                            &mut summary,
                        )
                        .await?;
                    }
                }
                // GitHub unavailable or refusing: try again next pass.
                Err(err) => {
                    summary.requests += 1;
                    tracing::warn!(%repository, error = %err, "sync skipped a repository")
                }
            }
        }
        Ok(summary)
    }

    /// Live environments with an installation, grouped by installation and
    /// repository (GitHub's id when known, else the name).
    async fn live_by_repository(
        &self,
    ) -> Result<std::collections::BTreeMap<RepositoryKey, Vec<Environment>>, SyncError> {
        let filter = EnvironmentFilter {
            active_only: true,
            ..Default::default()
        };
        let mut groups: std::collections::BTreeMap<_, Vec<Environment>> = Default::default();
        let mut page = PageRequest::parse(Some(200), None).map_err(unexpected)?;
        loop {
            let rows = self
                .environments
                .list(&filter, page)
                .await
                .map_err(unexpected)?;
            let result = page.into_page(rows, |e| e.id.get());
            for env in result.items {
                if !env.is_live() {
                    continue;
                }
                let Some(installation) = env.installation_id else {
                    continue;
                };
                let repository = env
                    .repository_id
                    .map_or_else(|| env.repository.key(), |id| format!("id:{id}"));
                groups
                    .entry((installation, repository))
                    .or_default()
                    .push(env);
            }
            match result.next {
                Some(next) => page.after = Some(next),
                None => break,
            }
        }
        Ok(groups)
    }

    /// Puts a head GitHub has through the deploy policy; true when the
    /// environment is in line with GitHub afterwards.
    async fn follow(
        &self,
        env: &Environment,
        state: &PullRequestState,
        summary: &mut SyncSummary,
    ) -> Result<bool, SyncError> {
        match self.commands.deploy_missed_head(env.id, state).await {
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
            Err(e) => return command(e).map_or(Ok(false), Err),
        }
        Ok(true)
    }

    async fn destroy(
        &self,
        env: &Environment,
        reason: &str,
        summary: &mut SyncSummary,
    ) -> Result<bool, SyncError> {
        match self.commands.destroy_because(env.id, reason).await {
            Ok(_) => {
                summary.destroyed += 1;
                Ok(true)
            }
            Err(e) => command(e).map_or(Ok(false), Err),
        }
    }

    fn etag(&self, repository: &str) -> Option<String> {
        self.etags
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(repository)
            .cloned()
    }

    fn remember_etag(&self, repository: String, etag: Option<String>) {
        let mut etags = self
            .etags
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match etag {
            Some(etag) => etags.insert(repository, etag),
            None => etags.remove(&repository),
        };
    }
}
