//! What a `pull_request` delivery does to the PR's environment, decided
//! from facts alone — the stored environment, what the PR says now, the
//! installation's status, the deploy policy and who sent the event — so
//! that every case can be read off a table without a database.

use std::borrow::Borrow;
use std::fmt;

use chrono::{DateTime, Utc};
use ephemera_domain::{
    DeployPolicy, Environment, EnvironmentStatus, GithubUser, InstallationStatus, PolicyDecision,
    PullRequestFacts, SkipReason,
};

use crate::webhooks::{PullRequestAction, PullRequestChange};

/// The decision on one delivery. `E` is the stored environment, carried
/// by the decisions that change it so they cannot be acted on without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Decision<E> {
    /// Older than the newest event applied (`applied`): nothing changes.
    Stale { applied: DateTime<Utc> },
    /// The PR closed and never had an environment.
    ClosedWithoutEnvironment,
    /// The policy gives the PR no preview, and it has none.
    NotDeployed(SkipReason),
    /// A fork PR nobody vouched for: a first environment, whose head waits
    /// for a maintainer's approval (skipped, nothing runs).
    AwaitApproval(SkipReason),
    /// A first environment, with a deployment of the head; `vouch`: the
    /// head is recorded as vouched for.
    Create { vouch: bool },
    /// The stored environment changes as the [`Change`] says.
    Stored(E, Change),
}

/// What happens to a PR's stored environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Change {
    /// It goes: the PR closed, or the policy no longer allows a preview.
    Destroy(Why),
    /// The PR closed and the environment is already destroyed or going.
    AlreadyGone { merged: bool },
    /// The policy holds the head back and what runs keeps running (or
    /// nothing runs). `tell`: the environment's status reason and the
    /// sticky comment say which commit waits and why.
    Hold { reason: SkipReason, tell: bool },
    /// Destroyed, and a label or a title does not bring it back.
    StayDestroyed,
    /// Being destroyed: recreated at the head as soon as it is gone.
    RecreateAfterDestroy,
    /// Destroyed, and a reopen or a new commit brings it back at the head.
    Revive { vouch: bool },
    /// A new head is deployed.
    Deploy { vouch: bool },
    /// Same head: the PR's details are refreshed.
    Refresh { vouch: bool },
    /// Nothing runs and the head of this fork PR waits for a maintainer's
    /// approval (revived first when destroyed).
    AwaitApproval(SkipReason),
}

/// Why an environment is destroyed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Why {
    Closed { merged: bool },
    Policy(SkipReason),
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed { merged: true } => f.write_str("PR merged"),
            Self::Closed { merged: false } => f.write_str("PR closed"),
            Self::Policy(reason) => reason.fmt(f),
        }
    }
}

/// The one decision on a `pull_request` delivery for a PR whose
/// environment is `stored`.
pub(super) fn decide<E: Borrow<Environment>>(
    stored: Option<E>,
    pr: &PullRequestChange,
    installation: Option<InstallationStatus>,
    policy: &DeployPolicy,
    sender: Option<&GithubUser>,
) -> Decision<E> {
    let env = stored.as_ref().map(Borrow::borrow);
    if let Some(applied) = env.and_then(|env| env.pr_updated_at)
        && pr.updated_at < applied
    {
        return Decision::Stale { applied };
    }

    if !pr.open || matches!(pr.action, PullRequestAction::Closed { .. }) {
        let merged = matches!(pr.action, PullRequestAction::Closed { merged: true });
        let live = env.is_some_and(Environment::is_live);
        return match stored {
            None => Decision::ClosedWithoutEnvironment,
            Some(env) if live => Decision::Stored(env, Change::Destroy(Why::Closed { merged })),
            Some(env) => Decision::Stored(env, Change::AlreadyGone { merged }),
        };
    }

    let by_author = sender.map(|s| s.github_id == pr.author.github_id);
    let labeled = match &pr.action {
        PullRequestAction::Labeled { label } => Some(label.as_str()),
        _ => None,
    };
    // A maintainer adding the trusted label vouches for this head commit;
    // the PR's author cannot vouch for their own PR. Removing the label
    // takes every approval back.
    let vouching = by_author == Some(false)
        && labeled.is_some_and(|l| l.eq_ignore_ascii_case(&policy.trusted_label));
    let distrusted = matches!(
        &pr.action,
        PullRequestAction::Unlabeled { label } if label.eq_ignore_ascii_case(&policy.trusted_label)
    );
    let trusted = env
        .and_then(|env| env.trusted_sha.as_ref())
        .filter(|_| !distrusted);
    let facts = PullRequestFacts {
        is_fork: pr.is_fork,
        draft: pr.draft,
        labels: &pr.labels,
        self_applied_label: labeled.filter(|_| by_author == Some(true)),
        head_vouched: vouching || trusted == Some(&pr.head_sha),
        vouched_before: trusted.is_some(),
        installation,
    };
    if let PolicyDecision::Skip(reason) = policy.evaluate(&facts) {
        let live = env.is_some_and(Environment::is_live);
        // Nothing of the PR runs: its head waits for a maintainer.
        let idle = env.is_none_or(|env| {
            env.status() == EnvironmentStatus::Skipped
                || (env.status() == EnvironmentStatus::Destroyed
                    && matches!(
                        pr.action,
                        PullRequestAction::Opened
                            | PullRequestAction::Reopened
                            | PullRequestAction::Synchronize
                    ))
        });
        return match stored {
            None if reason.awaits_approval() => Decision::AwaitApproval(reason),
            None => Decision::NotDeployed(reason),
            Some(env) if idle && reason.awaits_approval() => {
                Decision::Stored(env, Change::AwaitApproval(reason))
            }
            Some(env) if live && !reason.keeps_running() => {
                Decision::Stored(env, Change::Destroy(Why::Policy(reason)))
            }
            Some(env) => {
                // A suspended App cannot be talked to; a fork's unvouched
                // commit is worth a word on a preview that runs.
                let tell = live && matches!(reason, SkipReason::ForkCommitNotVouched { .. });
                Decision::Stored(env, Change::Hold { reason, tell })
            }
        };
    }

    let vouch = pr.is_fork && vouching;
    let Some(stored) = stored else {
        return Decision::Create { vouch };
    };
    let env: &Environment = stored.borrow();
    let new_commit = env.commit_sha != pr.head_sha;
    let opening = matches!(
        pr.action,
        PullRequestAction::Opened
            | PullRequestAction::Reopened
            | PullRequestAction::ReadyForReview
            | PullRequestAction::Synchronize
    );
    let change = match env.status() {
        // An environment removed by the API or the TTL comes back with a
        // reopen or a new commit, not with a label or a title.
        EnvironmentStatus::Destroyed if !opening && !new_commit => Change::StayDestroyed,
        EnvironmentStatus::Destroyed => Change::Revive { vouch },
        EnvironmentStatus::Destroying => Change::RecreateAfterDestroy,
        _ if new_commit => Change::Deploy { vouch },
        // Approved while its head waited: deployed now.
        EnvironmentStatus::Skipped if vouch => Change::Deploy { vouch },
        _ => Change::Refresh { vouch },
    };
    Decision::Stored(stored, change)
}

#[cfg(test)]
mod tests;
