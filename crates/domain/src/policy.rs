//! Which pull requests get a preview. Forks run code ephemera did not
//! review, so they are not deployed unless the operator allows forks or a
//! maintainer vouches for the PR with the trusted label.

use std::fmt;

use crate::{CommitSha, Environment, InstallationStatus};

/// The operator's deployment policy (see docs/webhooks.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployPolicy {
    /// Deploy PRs from forks without a trusted label.
    pub allow_forks: bool,
    /// The label that makes a fork PR deployable.
    pub trusted_label: String,
    /// Deploy draft PRs (otherwise they wait for ready_for_review).
    pub deploy_drafts: bool,
    /// Only PRs carrying this label are deployed.
    pub required_label: Option<String>,
}

impl Default for DeployPolicy {
    fn default() -> Self {
        Self {
            allow_forks: false,
            trusted_label: "safe-to-preview".to_owned(),
            deploy_drafts: false,
            required_label: None,
        }
    }
}

/// What the policy needs to know about a PR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestFacts<'a> {
    /// The head branch lives in another repository (or its repository is
    /// gone, which counts as foreign).
    pub is_fork: bool,
    pub draft: bool,
    pub labels: &'a [String],
    /// A label this very event added, applied by the PR's own author. Such
    /// a label does not vouch for a fork: the author cannot vouch for
    /// themselves.
    pub self_applied_label: Option<&'a str>,
    /// A maintainer vouched for this very head commit (added the trusted
    /// label on it, or commented `/preview approve`, now or earlier). A
    /// fork's later commits need vouching again.
    pub head_vouched: bool,
    /// A maintainer vouched for an earlier commit of the PR: its preview
    /// may run, and keeps running while a newer commit waits.
    pub vouched_before: bool,
    /// The App installation's status, when ephemera knows it.
    pub installation: Option<InstallationStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyDecision {
    Deploy,
    Skip(SkipReason),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    Fork {
        trusted_label: String,
    },
    ForkSelfLabeled {
        trusted_label: String,
    },
    /// New commits on a vouched fork PR: nothing new is deployed, what runs
    /// keeps running.
    ForkCommitNotVouched {
        trusted_label: String,
    },
    Draft,
    MissingRequiredLabel {
        label: String,
    },
    /// Nothing new is deployed while the App is suspended; what runs keeps
    /// running.
    InstallationSuspended,
    InstallationDeleted,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fork { trusted_label } => write!(
                f,
                "PR from a fork: not deployed until a maintainer comments `/preview approve` or adds the `{trusted_label}` label (or EPHEMERA_ALLOW_FORKS=true)"
            ),
            Self::ForkSelfLabeled { trusted_label } => write!(
                f,
                "PR from a fork: the `{trusted_label}` label was added by the PR's own author, which does not count"
            ),
            Self::ForkCommitNotVouched { trusted_label } => write!(
                f,
                "PR from a fork: this commit was pushed after a maintainer's approval; a maintainer must comment `/preview approve` or add the `{trusted_label}` label again to deploy it"
            ),
            Self::Draft => write!(
                f,
                "draft PR: waits for ready_for_review (EPHEMERA_DEPLOY_DRAFTS=false)"
            ),
            Self::MissingRequiredLabel { label } => {
                write!(
                    f,
                    "PR lacks the required label `{label}` (EPHEMERA_REQUIRED_LABEL)"
                )
            }
            Self::InstallationSuspended => write!(
                f,
                "the App's installation is suspended: no new deployments until it is unsuspended"
            ),
            Self::InstallationDeleted => write!(f, "the App's installation was deleted"),
        }
    }
}

impl SkipReason {
    /// Whether a maintainer's approval (`/preview approve`, the trusted
    /// label) is all the commit lacks.
    pub fn awaits_approval(&self) -> bool {
        matches!(
            self,
            Self::Fork { .. } | Self::ForkSelfLabeled { .. } | Self::ForkCommitNotVouched { .. }
        )
    }

    /// Whether a running preview stays (only new commits are held back)
    /// rather than being destroyed.
    pub fn keeps_running(&self) -> bool {
        matches!(
            self,
            Self::ForkCommitNotVouched { .. } | Self::InstallationSuspended
        )
    }
}

fn has_label(labels: &[String], wanted: &str) -> bool {
    // GitHub label names are unique case-insensitively.
    labels.iter().any(|l| l.eq_ignore_ascii_case(wanted))
}

impl DeployPolicy {
    /// The one deploy decision every path takes (webhook, drift repair,
    /// REST redeploy, reopen): may this PR's head be deployed now?
    pub fn evaluate(&self, pr: &PullRequestFacts<'_>) -> PolicyDecision {
        match pr.installation {
            Some(InstallationStatus::Deleted) => {
                return PolicyDecision::Skip(SkipReason::InstallationDeleted);
            }
            Some(InstallationStatus::Suspended) => {
                return PolicyDecision::Skip(SkipReason::InstallationSuspended);
            }
            Some(InstallationStatus::Active) | None => {}
        }
        if let Some(required) = &self.required_label
            && !has_label(pr.labels, required)
        {
            return PolicyDecision::Skip(SkipReason::MissingRequiredLabel {
                label: required.clone(),
            });
        }
        if pr.draft && !self.deploy_drafts {
            return PolicyDecision::Skip(SkipReason::Draft);
        }
        // A maintainer vouches for a fork's head with the trusted label or
        // `/preview approve`; the fork's author cannot vouch for themselves.
        if pr.is_fork && !self.allow_forks && !pr.head_vouched {
            let self_labeled = pr
                .self_applied_label
                .is_some_and(|l| l.eq_ignore_ascii_case(&self.trusted_label));
            let trusted_label = self.trusted_label.clone();
            if self_labeled {
                return PolicyDecision::Skip(SkipReason::ForkSelfLabeled { trusted_label });
            }
            if has_label(pr.labels, &self.trusted_label) || pr.vouched_before {
                return PolicyDecision::Skip(SkipReason::ForkCommitNotVouched { trusted_label });
            }
            return PolicyDecision::Skip(SkipReason::Fork { trusted_label });
        }
        PolicyDecision::Deploy
    }

    /// [`Self::evaluate`] for commit `sha` of a PR, from what its
    /// environment has stored (fork, draft, labels, the vouched commit): for
    /// the paths that start a deployment without a webhook in hand.
    pub fn evaluate_stored(
        &self,
        env: &Environment,
        sha: &CommitSha,
        installation: Option<InstallationStatus>,
    ) -> PolicyDecision {
        self.evaluate(&PullRequestFacts {
            is_fork: env.is_fork,
            draft: env.draft,
            labels: &env.labels,
            self_applied_label: None,
            head_vouched: env.trusted_sha.as_ref() == Some(sha),
            vouched_before: env.trusted_sha.is_some(),
            installation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    fn facts<'a>(is_fork: bool, draft: bool, labels: &'a [String]) -> PullRequestFacts<'a> {
        PullRequestFacts {
            is_fork,
            draft,
            labels,
            self_applied_label: None,
            // A fork is vouched for when a maintainer labeled it.
            head_vouched: labels
                .iter()
                .any(|l| l.eq_ignore_ascii_case("safe-to-preview")),
            vouched_before: false,
            installation: None,
        }
    }

    #[test]
    fn a_suspended_installation_holds_new_deployments_and_a_deleted_one_stops_them() {
        let none = labels(&[]);
        let suspended = PullRequestFacts {
            installation: Some(InstallationStatus::Suspended),
            ..facts(false, false, &none)
        };
        let PolicyDecision::Skip(reason) = DeployPolicy::default().evaluate(&suspended) else {
            panic!("a suspended installation gets no new deployment");
        };
        assert!(reason.keeps_running());
        let deleted = PullRequestFacts {
            installation: Some(InstallationStatus::Deleted),
            ..facts(false, false, &none)
        };
        assert_eq!(
            DeployPolicy::default().evaluate(&deleted),
            PolicyDecision::Skip(SkipReason::InstallationDeleted)
        );
        let active = PullRequestFacts {
            installation: Some(InstallationStatus::Active),
            ..facts(false, false, &none)
        };
        assert_eq!(
            DeployPolicy::default().evaluate(&active),
            PolicyDecision::Deploy
        );
    }

    #[test]
    fn same_repository_pr_is_deployed() {
        let none = labels(&[]);
        assert_eq!(
            DeployPolicy::default().evaluate(&facts(false, false, &none)),
            PolicyDecision::Deploy
        );
    }

    #[test]
    fn fork_needs_the_trusted_label_or_allow_forks() {
        let policy = DeployPolicy::default();
        let plain = labels(&["bug"]);
        let trusted = labels(&["Safe-To-Preview"]);
        assert!(matches!(
            policy.evaluate(&facts(true, false, &plain)),
            PolicyDecision::Skip(SkipReason::Fork { .. })
        ));
        assert_eq!(
            policy.evaluate(&facts(true, false, &trusted)),
            PolicyDecision::Deploy
        );
        let open = DeployPolicy {
            allow_forks: true,
            ..DeployPolicy::default()
        };
        assert_eq!(
            open.evaluate(&facts(true, false, &plain)),
            PolicyDecision::Deploy
        );
    }

    #[test]
    fn a_fork_author_cannot_vouch_for_their_own_pr() {
        let trusted = labels(&["safe-to-preview"]);
        let pr = PullRequestFacts {
            self_applied_label: Some("safe-to-preview"),
            head_vouched: false,
            ..facts(true, false, &trusted)
        };
        let decision = DeployPolicy::default().evaluate(&pr);
        assert!(matches!(
            decision,
            PolicyDecision::Skip(SkipReason::ForkSelfLabeled { .. })
        ));
    }

    #[test]
    fn a_forks_later_commits_need_vouching_again() {
        let trusted = labels(&["safe-to-preview"]);
        let pr = PullRequestFacts {
            head_vouched: false,
            ..facts(true, false, &trusted)
        };
        let PolicyDecision::Skip(reason) = DeployPolicy::default().evaluate(&pr) else {
            panic!("an unvouched fork commit is not deployed");
        };
        assert!(reason.keeps_running());
        assert!(!SkipReason::Draft.keeps_running());
    }

    #[test]
    fn a_fork_approved_by_command_needs_no_label_and_its_next_commit_waits() {
        let none = labels(&[]);
        let approved = PullRequestFacts {
            head_vouched: true,
            ..facts(true, false, &none)
        };
        assert_eq!(
            DeployPolicy::default().evaluate(&approved),
            PolicyDecision::Deploy
        );
        let next = PullRequestFacts {
            head_vouched: false,
            vouched_before: true,
            ..facts(true, false, &none)
        };
        let PolicyDecision::Skip(reason) = DeployPolicy::default().evaluate(&next) else {
            panic!("a later commit is not deployed unvouched");
        };
        assert!(reason.keeps_running(), "{reason}");
        assert!(reason.awaits_approval());
        let PolicyDecision::Skip(never) =
            DeployPolicy::default().evaluate(&facts(true, false, &none))
        else {
            panic!("an unvouched fork is not deployed");
        };
        assert!(never.to_string().contains("`/preview approve`"), "{never}");
        assert!(never.awaits_approval() && !SkipReason::Draft.awaits_approval());
    }

    #[test]
    fn drafts_wait_unless_allowed() {
        let none = labels(&[]);
        let decision = DeployPolicy::default().evaluate(&facts(false, true, &none));
        assert_eq!(decision, PolicyDecision::Skip(SkipReason::Draft));
        let drafts = DeployPolicy {
            deploy_drafts: true,
            ..DeployPolicy::default()
        };
        assert_eq!(
            drafts.evaluate(&facts(false, true, &none)),
            PolicyDecision::Deploy
        );
    }

    #[test]
    fn required_label_gates_everything() {
        let policy = DeployPolicy {
            required_label: Some("preview".into()),
            ..DeployPolicy::default()
        };
        let without = labels(&["bug"]);
        let with = labels(&["bug", "preview"]);
        let skip = policy.evaluate(&facts(false, false, &without));
        assert_eq!(
            skip.clone(),
            PolicyDecision::Skip(SkipReason::MissingRequiredLabel {
                label: "preview".into()
            })
        );
        let PolicyDecision::Skip(reason) = skip else {
            unreachable!()
        };
        assert_eq!(
            reason.to_string(),
            "PR lacks the required label `preview` (EPHEMERA_REQUIRED_LABEL)"
        );
        assert_eq!(
            policy.evaluate(&facts(false, false, &with)),
            PolicyDecision::Deploy
        );
    }
}
