//! The table's vocabulary: PRs, stored environments, policies.

use ephemera_domain::{
    DeployPolicy, Environment, EnvironmentRecord, EnvironmentStatus, GithubUser,
    InstallationStatus, PrNumber, RepositoryFullName, SkipReason,
};

use super::super::{Change, Decision};
use crate::fixtures::{at, environment_record, sha, user};
use crate::webhooks::{PullRequestAction, PullRequestChange};

use PullRequestAction::{Closed, ConvertedToDraft, Labeled};

pub(super) const TRUSTED: &str = "safe-to-preview";

pub(super) fn author() -> GithubUser {
    user(1, "contributor")
}

pub(super) fn maintainer() -> GithubUser {
    user(2, "maintainer")
}

/// The PR at head `b`, last updated at 20, from the same repository.
pub(super) fn pr(action: PullRequestAction) -> PullRequestChange {
    let label = match &action {
        Labeled { label } => vec![label.clone()],
        _ => vec![],
    };
    PullRequestChange {
        open: !matches!(action, Closed { .. }),
        draft: matches!(action, ConvertedToDraft),
        action,
        repository: RepositoryFullName::parse("octo/web").unwrap(),
        repository_id: 42,
        number: PrNumber::new(7).unwrap(),
        title: "Add search".into(),
        head_sha: sha('b'),
        head_ref: "search".into(),
        base_ref: "main".into(),
        is_fork: false,
        labels: label,
        author: author(),
        updated_at: at(20),
    }
}

pub(super) fn fork(pr: PullRequestChange) -> PullRequestChange {
    PullRequestChange {
        is_fork: true,
        ..pr
    }
}

pub(super) fn with_labels(pr: PullRequestChange, labels: &[&str]) -> PullRequestChange {
    PullRequestChange {
        labels: labels.iter().map(|l| (*l).to_owned()).collect(),
        ..pr
    }
}

pub(super) fn labeled(label: &str) -> PullRequestAction {
    Labeled {
        label: label.into(),
    }
}

/// The PR's environment in `status` at commit `commit`, with the trusted
/// label's vouch on commit `vouched`, last updated by an event at 10.
pub(super) fn stored(
    status: EnvironmentStatus,
    commit: char,
    vouched: Option<char>,
) -> Environment {
    Environment::rehydrate(EnvironmentRecord {
        status,
        commit_sha: sha(commit),
        trusted_sha: vouched.map(sha),
        pr_updated_at: Some(at(10)),
        ..environment_record(3, "octo/web", 7)
    })
}

/// One delivery and what is known when it arrives.
pub(super) struct Case {
    pub(super) stored: Option<Environment>,
    pub(super) pr: PullRequestChange,
    pub(super) installation: Option<InstallationStatus>,
    pub(super) policy: DeployPolicy,
    pub(super) sender: GithubUser,
}

pub(super) fn when(pr: PullRequestChange) -> Case {
    Case {
        stored: None,
        pr,
        installation: Some(InstallationStatus::Active),
        policy: DeployPolicy::default(),
        sender: author(),
    }
}

impl Case {
    pub(super) fn stored(self, env: Environment) -> Self {
        Self {
            stored: Some(env),
            ..self
        }
    }

    pub(super) fn by(self, sender: GithubUser) -> Self {
        Self { sender, ..self }
    }

    pub(super) fn installation(self, status: InstallationStatus) -> Self {
        Self {
            installation: Some(status),
            ..self
        }
    }

    pub(super) fn policy(self, policy: DeployPolicy) -> Self {
        Self { policy, ..self }
    }
}

pub(super) fn stored_change(change: Change) -> Decision<()> {
    Decision::Stored((), change)
}

pub(super) fn fork_reason() -> SkipReason {
    SkipReason::Fork {
        trusted_label: TRUSTED.into(),
    }
}

pub(super) fn not_vouched() -> SkipReason {
    SkipReason::ForkCommitNotVouched {
        trusted_label: TRUSTED.into(),
    }
}

pub(super) fn required(label: &str) -> DeployPolicy {
    DeployPolicy {
        required_label: Some(label.into()),
        ..DeployPolicy::default()
    }
}
