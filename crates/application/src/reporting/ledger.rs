//! Each deployment's own truth on GitHub: the commit status its commit
//! ends with, the Deployment states still to send, and who retires it.

use ephemera_domain::{DeploymentStatus, EnvironmentStatus, PreviewReport, skipped_because};

use crate::ports::{CommitState, DeploymentLedger, DeploymentState};

/// The commit status a deployment's commit should end with (or show now):
/// state, description and target URL.
pub fn commit_status(
    entry: &DeploymentLedger,
    report: &PreviewReport,
) -> (CommitState, String, Option<String>) {
    let sha = entry.commit_sha.short();
    match entry.status {
        DeploymentStatus::Queued if report.status == EnvironmentStatus::Waiting => (
            CommitState::Pending,
            report
                .reason
                .clone()
                .unwrap_or_else(|| "Waiting for a preview slot".to_owned()),
            None,
        ),
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
        // Skipped by the repository's rules: on purpose, so a required
        // check does not block the PR.
        DeploymentStatus::Cancelled
            if let Some(rule) = entry.error.as_deref().and_then(skipped_because) =>
        {
            (CommitState::Success, format!("No preview: {rule}"), None)
        }
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

pub(crate) fn is_going(report: &PreviewReport) -> bool {
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

/// Who turns a deployment `inactive` on GitHub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retirement {
    /// Nobody yet: it is the live one.
    NotYet,
    /// ephemera, with a request: it was replaced, or the preview is gone.
    Ephemera,
    /// GitHub itself, when the newest deployment's `success` lands
    /// (`auto_inactive` retires earlier deployments that are `success`).
    GitHub,
}

/// Who retires each deployment of a ledger (oldest first), given whether
/// the preview is going away.
pub fn retirements(ledger: &[DeploymentLedger], going: bool) -> Vec<Retirement> {
    let Some(newest) = ledger.last() else {
        return Vec::new();
    };
    let success = |entry: &DeploymentLedger| entry.status == DeploymentStatus::Success;
    let under_way = matches!(
        newest.status,
        DeploymentStatus::Queued | DeploymentStatus::InProgress
    );
    // Older deployments are settled first, so when the newest's `success`
    // is still to be sent, every older one is `success` by the time it
    // lands; once sent, it retired those that were `success` then.
    let to_send = success(newest) && newest.reported.is_none_or(|r| r.rank() == 0);
    let sent = success(newest) && newest.reported == Some(DeploymentState::Success);
    ledger
        .iter()
        .map(|entry| {
            if going {
                Retirement::Ephemera
            } else if entry.deployment_id == newest.deployment_id {
                Retirement::NotYet
            } else if !success(entry) {
                // Failed or cut short: nothing of it serves.
                Retirement::Ephemera
            } else if under_way {
                // It serves until the newer one lands.
                Retirement::NotYet
            } else if to_send || (sent && entry.reported == Some(DeploymentState::Success)) {
                Retirement::GitHub
            } else {
                Retirement::Ephemera
            }
        })
        .collect()
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
            check_run_id: None,
            reported_check: None,
            log_tail: String::new(),
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

    fn ledger(entries: &[(DeploymentStatus, Option<DeploymentState>)]) -> Vec<DeploymentLedger> {
        entries
            .iter()
            .zip(1..)
            .map(|((status, reported), id)| DeploymentLedger {
                deployment_id: DeploymentId::new(id).unwrap(),
                ..entry(*status, *reported)
            })
            .collect()
    }

    #[test]
    fn github_retires_the_successful_ones_the_newest_success_replaces() {
        use DeploymentStatus::Success as Ok;
        use Retirement::{Ephemera, GitHub, NotYet};
        // (ledger oldest first, preview going) → who retires each
        type Row<'a> = (
            &'a [(DeploymentStatus, Option<DeploymentState>)],
            bool,
            &'a [Retirement],
        );
        let table: &[Row] = &[
            (&[(Ok, None)], false, &[NotYet]),
            // Its success is still to be sent: GitHub retires the older one.
            (&[(Ok, Some(Success)), (Ok, None)], false, &[GitHub, NotYet]),
            (
                &[(Ok, Some(Success)), (Ok, Some(InProgress))],
                false,
                &[GitHub, NotYet],
            ),
            // A failure or a cancelled run is never `success` on GitHub.
            (
                &[(Failed, Some(Failure)), (Ok, None)],
                false,
                &[Ephemera, NotYet],
            ),
            (
                &[(Cancelled, Some(InProgress)), (Ok, None)],
                false,
                &[Ephemera, NotYet],
            ),
            // The newest is under way: the older one still serves.
            (
                &[(Ok, Some(Success)), (Queued, None)],
                false,
                &[NotYet, NotYet],
            ),
            (
                &[(Ok, Some(Success)), (DeploymentStatus::InProgress, None)],
                false,
                &[NotYet, NotYet],
            ),
            // Cut short by a newer one: it ends cancelled, then inactive.
            (
                &[(Queued, None), (Queued, None)],
                false,
                &[Ephemera, NotYet],
            ),
            // The newest failed: nobody but ephemera retires the older one.
            (
                &[(Ok, Some(Success)), (Failed, None)],
                false,
                &[Ephemera, NotYet],
            ),
            // Sent already: it retired what was `success` then, not what
            // became `success` on GitHub after it.
            (
                &[(Ok, Some(Success)), (Ok, Some(Success))],
                false,
                &[GitHub, NotYet],
            ),
            (
                &[(Ok, None), (Ok, Some(Success))],
                false,
                &[Ephemera, NotYet],
            ),
            // The preview is going: ephemera retires every one.
            (
                &[(Ok, Some(Success)), (Ok, Some(Success))],
                true,
                &[Ephemera, Ephemera],
            ),
        ];
        for (entries, going, expected) in table {
            assert_eq!(
                retirements(&ledger(entries), *going),
                *expected,
                "{entries:?} going {going}"
            );
        }
    }
}
