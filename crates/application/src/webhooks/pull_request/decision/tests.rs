//! The decision on every kind of `pull_request` delivery, one row each:
//! no ports, no mocks.

use ephemera_domain::{DeployPolicy, EnvironmentStatus, InstallationStatus, SkipReason};

use super::{Change, Decision, Why, decide};
use crate::fixtures::at;
use crate::webhooks::{PullRequestAction, PullRequestChange};

use EnvironmentStatus::{Destroyed, Destroying, Failed, Ready, Skipped};
use PullRequestAction::{
    Closed, ConvertedToDraft, Edited, Opened, ReadyForReview, Reopened, Synchronize, Unlabeled,
};

mod support;
use support::*;

#[test]
fn each_delivery_gets_its_decision() {
    use Change::*;
    let missing_preview = SkipReason::MissingRequiredLabel {
        label: "preview".into(),
    };
    let cases: Vec<(&str, Case, Decision<()>)> = vec![
        // Environment missing.
        (
            "opened",
            when(pr(Opened)),
            Decision::Create { vouch: false },
        ),
        (
            "ready for review",
            when(pr(ReadyForReview)),
            Decision::Create { vouch: false },
        ),
        (
            "closed without an environment",
            when(pr(Closed { merged: false })),
            Decision::ClosedWithoutEnvironment,
        ),
        // Environment live.
        (
            "synchronize: a new head",
            when(pr(Synchronize)).stored(stored(Ready, 'a', None)),
            stored_change(Deploy { vouch: false }),
        ),
        (
            "synchronize: the same head",
            when(pr(Synchronize)).stored(stored(Ready, 'b', None)),
            stored_change(Refresh { vouch: false }),
        ),
        (
            "edited",
            when(pr(Edited)).stored(stored(Ready, 'b', None)),
            stored_change(Refresh { vouch: false }),
        ),
        (
            "labeled with an ordinary label",
            when(pr(labeled("bug"))).stored(stored(Ready, 'b', None)),
            stored_change(Refresh { vouch: false }),
        ),
        (
            "unlabeled",
            when(pr(Unlabeled {
                label: "bug".into(),
            }))
            .stored(stored(Failed, 'b', None)),
            stored_change(Refresh { vouch: false }),
        ),
        (
            "an event as old as the newest applied is not stale",
            when(PullRequestChange {
                updated_at: at(10),
                ..pr(Edited)
            })
            .stored(stored(Ready, 'b', None)),
            stored_change(Refresh { vouch: false }),
        ),
        (
            "merged",
            when(pr(Closed { merged: true })).stored(stored(Ready, 'b', None)),
            stored_change(Destroy(Why::Closed { merged: true })),
        ),
        (
            "closed",
            when(pr(Closed { merged: false })).stored(stored(Ready, 'b', None)),
            stored_change(Destroy(Why::Closed { merged: false })),
        ),
        (
            "edited while closed",
            when(PullRequestChange {
                open: false,
                ..pr(Edited)
            })
            .stored(stored(Ready, 'b', None)),
            stored_change(Destroy(Why::Closed { merged: false })),
        ),
        (
            "closed while the installation is suspended",
            when(pr(Closed { merged: false }))
                .stored(stored(Ready, 'b', None))
                .installation(InstallationStatus::Suspended),
            stored_change(Destroy(Why::Closed { merged: false })),
        ),
        // Stale: older than the newest event applied, whatever it says.
        (
            "a late synchronize",
            when(PullRequestChange {
                updated_at: at(5),
                ..pr(Synchronize)
            })
            .stored(stored(Ready, 'a', None)),
            Decision::Stale { applied: at(10) },
        ),
        (
            "a late close",
            when(PullRequestChange {
                updated_at: at(5),
                ..pr(Closed { merged: true })
            })
            .stored(stored(Ready, 'b', None)),
            Decision::Stale { applied: at(10) },
        ),
        // Environment destroying.
        (
            "synchronize while destroying",
            when(pr(Synchronize)).stored(stored(Destroying, 'a', None)),
            stored_change(RecreateAfterDestroy),
        ),
        (
            "closed while destroying",
            when(pr(Closed { merged: false })).stored(stored(Destroying, 'b', None)),
            stored_change(AlreadyGone { merged: false }),
        ),
        // Environment destroyed.
        (
            "reopened",
            when(pr(Reopened)).stored(stored(Destroyed, 'b', None)),
            stored_change(Revive { vouch: false }),
        ),
        (
            "edited at a new head",
            when(pr(Edited)).stored(stored(Destroyed, 'a', None)),
            stored_change(Revive { vouch: false }),
        ),
        (
            "edited at the same head",
            when(pr(Edited)).stored(stored(Destroyed, 'b', None)),
            stored_change(StayDestroyed),
        ),
        (
            "labeled at the same head",
            when(pr(labeled("bug"))).stored(stored(Destroyed, 'b', None)),
            stored_change(StayDestroyed),
        ),
        (
            "merged after being destroyed",
            when(pr(Closed { merged: true })).stored(stored(Destroyed, 'b', None)),
            stored_change(AlreadyGone { merged: true }),
        ),
        // Forks.
        (
            "a fork opened",
            when(fork(pr(Opened))),
            Decision::AwaitApproval(fork_reason()),
        ),
        (
            "a push to a fork that waits for approval",
            when(fork(pr(Synchronize))).stored(stored(Skipped, 'b', None)),
            stored_change(AwaitApproval(fork_reason())),
        ),
        (
            "a fork reopened after its preview was removed",
            when(fork(pr(Reopened))).stored(stored(Destroyed, 'b', None)),
            stored_change(AwaitApproval(fork_reason())),
        ),
        (
            "a maintainer labels a fork whose head waits for approval",
            when(fork(pr(labeled(TRUSTED))))
                .by(maintainer())
                .stored(stored(Skipped, 'a', None)),
            stored_change(Deploy { vouch: true }),
        ),
        (
            "a push to a fork approved by command (no label)",
            when(fork(pr(Synchronize))).stored(stored(Ready, 'a', Some('a'))),
            stored_change(Hold {
                reason: not_vouched(),
                tell: true,
            }),
        ),
        (
            "a fork opened, forks allowed",
            when(fork(pr(Opened))).policy(DeployPolicy {
                allow_forks: true,
                ..DeployPolicy::default()
            }),
            Decision::Create { vouch: false },
        ),
        (
            "a maintainer adds the trusted label to a fork",
            when(fork(pr(labeled(TRUSTED)))).by(maintainer()),
            Decision::Create { vouch: true },
        ),
        (
            "the author adds the trusted label to their own fork",
            when(fork(pr(labeled(TRUSTED)))),
            Decision::AwaitApproval(SkipReason::ForkSelfLabeled {
                trusted_label: TRUSTED.into(),
            }),
        ),
        (
            "a maintainer adds the trusted label to a same-repository PR",
            when(pr(labeled(TRUSTED))).by(maintainer()),
            Decision::Create { vouch: false },
        ),
        (
            "a maintainer vouches for a fork's new head",
            when(fork(pr(labeled(TRUSTED))))
                .by(maintainer())
                .stored(stored(Ready, 'a', Some('a'))),
            stored_change(Deploy { vouch: true }),
        ),
        (
            "a vouched fork edited at the vouched head",
            when(with_labels(fork(pr(Edited)), &[TRUSTED])).stored(stored(Ready, 'b', Some('b'))),
            stored_change(Refresh { vouch: false }),
        ),
        (
            "a vouched fork pushed to",
            when(with_labels(fork(pr(Synchronize)), &[TRUSTED])).stored(stored(
                Ready,
                'a',
                Some('a'),
            )),
            stored_change(Hold {
                reason: not_vouched(),
                tell: true,
            }),
        ),
        (
            "a vouched fork pushed to while destroying",
            when(with_labels(fork(pr(Synchronize)), &[TRUSTED])).stored(stored(
                Destroying,
                'a',
                Some('a'),
            )),
            stored_change(Hold {
                reason: not_vouched(),
                tell: false,
            }),
        ),
        (
            "the trusted label removed from a fork",
            when(fork(pr(Unlabeled {
                label: TRUSTED.into(),
            })))
            .by(maintainer())
            .stored(stored(Ready, 'b', Some('b'))),
            stored_change(Destroy(Why::Policy(fork_reason()))),
        ),
        // Drafts.
        (
            "a draft opened",
            when(PullRequestChange {
                draft: true,
                ..pr(Opened)
            }),
            Decision::NotDeployed(SkipReason::Draft),
        ),
        (
            "a draft opened, drafts deployed",
            when(PullRequestChange {
                draft: true,
                ..pr(Opened)
            })
            .policy(DeployPolicy {
                deploy_drafts: true,
                ..DeployPolicy::default()
            }),
            Decision::Create { vouch: false },
        ),
        (
            "converted to draft",
            when(pr(ConvertedToDraft)).stored(stored(Ready, 'b', None)),
            stored_change(Destroy(Why::Policy(SkipReason::Draft))),
        ),
        (
            "converted to draft after being destroyed",
            when(pr(ConvertedToDraft)).stored(stored(Destroyed, 'b', None)),
            stored_change(Hold {
                reason: SkipReason::Draft,
                tell: false,
            }),
        ),
        // The required label.
        (
            "opened without the required label",
            when(pr(Opened)).policy(required("preview")),
            Decision::NotDeployed(missing_preview.clone()),
        ),
        (
            "the required label added",
            when(pr(labeled("Preview"))).policy(required("preview")),
            Decision::Create { vouch: false },
        ),
        (
            "the required label removed",
            when(pr(Unlabeled {
                label: "preview".into(),
            }))
            .policy(required("preview"))
            .stored(stored(Ready, 'b', None)),
            stored_change(Destroy(Why::Policy(missing_preview))),
        ),
        // The installation.
        (
            "opened while the installation is suspended",
            when(pr(Opened)).installation(InstallationStatus::Suspended),
            Decision::NotDeployed(SkipReason::InstallationSuspended),
        ),
        (
            "pushed to while the installation is suspended",
            when(pr(Synchronize))
                .installation(InstallationStatus::Suspended)
                .stored(stored(Ready, 'a', None)),
            stored_change(Hold {
                reason: SkipReason::InstallationSuspended,
                tell: false,
            }),
        ),
        (
            "pushed to after the installation was deleted",
            when(pr(Synchronize))
                .installation(InstallationStatus::Deleted)
                .stored(stored(Ready, 'a', None)),
            stored_change(Destroy(Why::Policy(SkipReason::InstallationDeleted))),
        ),
    ];

    for (name, case, expected) in cases {
        let decision = decide(
            case.stored.as_ref(),
            &case.pr,
            case.installation,
            &case.policy,
            Some(&case.sender),
        );
        let decision = match decision {
            Decision::Stored(env, change) => {
                assert_eq!(Some(env), case.stored.as_ref(), "{name}");
                Decision::Stored((), change)
            }
            Decision::Stale { applied } => Decision::Stale { applied },
            Decision::ClosedWithoutEnvironment => Decision::ClosedWithoutEnvironment,
            Decision::NotDeployed(reason) => Decision::NotDeployed(reason),
            Decision::AwaitApproval(reason) => Decision::AwaitApproval(reason),
            Decision::Create { vouch } => Decision::Create { vouch },
        };
        assert_eq!(decision, expected, "{name}");
    }
}

#[test]
fn the_reason_for_a_destroy_reads_as_the_log_says_it() {
    assert_eq!(Why::Closed { merged: true }.to_string(), "PR merged");
    assert_eq!(Why::Closed { merged: false }.to_string(), "PR closed");
    assert_eq!(
        Why::Policy(SkipReason::Draft).to_string(),
        "draft PR: waits for ready_for_review (EPHEMERA_DEPLOY_DRAFTS=false)"
    );
}
