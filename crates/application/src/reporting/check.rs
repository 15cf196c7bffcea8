//! The "ephemera preview" check run of a deployment's commit: where the
//! deployment is, how it ended and why, the tail of its log, and the
//! buttons a reviewer may click.

use ephemera_domain::{DeploymentStatus, EnvironmentStatus, PreviewReport, skipped_because};

use super::ReportingChannels;
use super::ledger::is_going;
use crate::ports::{CheckAction, CheckConclusion, CheckRun, CheckStatus, DeploymentLedger};

/// The check run's name, the same on every commit.
pub const CHECK_NAME: &str = "ephemera preview";

/// What a button's identifier (`requested_action.identifier`) asks for,
/// as the `/preview` command of the same name.
pub const REDEPLOY: &str = "redeploy";
pub const DESTROY: &str = "destroy";
pub const APPROVE: &str = "approve";
pub const WAKE: &str = "wake";

/// How many bytes of a deployment's log the check run shows (its end).
pub const LOG_TAIL_BYTES: usize = 8 * 1024;

fn button(label: &str, description: &str, identifier: &str) -> CheckAction {
    CheckAction {
        label: label.to_owned(),
        description: description.to_owned(),
        identifier: identifier.to_owned(),
    }
}

/// The check run of `entry`'s commit; `newest`: the PR's latest deployment
/// (only its check run carries buttons).
pub fn check_run(entry: &DeploymentLedger, report: &PreviewReport, newest: bool) -> CheckRun {
    let sha = entry.commit_sha.short();
    let pr = format!("{}#{}", report.repository, report.pr_number);
    let skipped = (entry.status == DeploymentStatus::Cancelled)
        .then(|| entry.error.as_deref().and_then(skipped_because))
        .flatten();
    let (status, conclusion, title, decision) = match entry.status {
        DeploymentStatus::Queued if report.status == EnvironmentStatus::Waiting => (
            CheckStatus::Queued,
            None,
            "Waiting for a preview slot".to_owned(),
            report.reason.clone().unwrap_or_default(),
        ),
        DeploymentStatus::Queued => (
            CheckStatus::Queued,
            None,
            format!("Queued: {sha}"),
            format!("A deployment of `{sha}` is queued."),
        ),
        DeploymentStatus::InProgress => (
            CheckStatus::InProgress,
            None,
            format!("Deploying {sha}"),
            format!("`{sha}` is being deployed."),
        ),
        DeploymentStatus::Success => (
            CheckStatus::Completed,
            Some(CheckConclusion::Success),
            "Preview ready".to_owned(),
            format!("`{sha}` is deployed."),
        ),
        DeploymentStatus::Failed => (
            CheckStatus::Completed,
            Some(CheckConclusion::Failure),
            "Preview failed".to_owned(),
            format!(
                "The deployment of `{sha}` failed: {}",
                entry
                    .error
                    .as_deref()
                    .and_then(|e| e.lines().next())
                    .unwrap_or("see the log below")
            ),
        ),
        DeploymentStatus::Cancelled if let Some(rule) = skipped => (
            CheckStatus::Completed,
            Some(CheckConclusion::Neutral),
            "No preview".to_owned(),
            format!("Not deployed: {rule}"),
        ),
        DeploymentStatus::Cancelled if !report.status.is_active() || is_going(report) => (
            CheckStatus::Completed,
            Some(CheckConclusion::Cancelled),
            "Preview removed".to_owned(),
            format!("The preview was removed before `{sha}` was live."),
        ),
        DeploymentStatus::Cancelled => (
            CheckStatus::Completed,
            Some(CheckConclusion::Cancelled),
            "Superseded".to_owned(),
            format!("`{sha}` was superseded by a newer commit before it was live."),
        ),
    };
    let url = (entry.status == DeploymentStatus::Success)
        .then(|| report.url.clone())
        .flatten();
    let mut summary = format!("Preview of {pr}, namespace `{}`.\n\n", report.namespace);
    if let Some(url) = &url {
        summary.push_str(&format!("**URL**: {url}\n\n"));
    }
    summary.push_str(&format!("**Decision**: {decision}\n"));
    if let Some(vouched) = report.vouched_sha.as_ref().filter(|_| report.is_fork) {
        summary.push_str(&format!(
            "\nA maintainer approved `{}` of this fork PR; other commits need approving again.\n",
            vouched.short()
        ));
    }
    let text = (!entry.log_tail.trim().is_empty()).then(|| {
        format!(
            "Deployment log (its end):\n\n```\n{}\n```\n",
            entry.log_tail.trim_end().replace("```", "`\u{200b}``")
        )
    });
    CheckRun {
        status,
        conclusion,
        title,
        summary,
        text,
        details_url: url,
        actions: if newest {
            buttons(entry, report, skipped.is_some())
        } else {
            Vec::new()
        },
    }
}

/// The buttons of the PR's latest check run: while the preview lives,
/// Redeploy once a deployment ended (Wake while it sleeps), Destroy while
/// something may run, and on a fork, Approve for a commit nobody vouched
/// for.
fn buttons(entry: &DeploymentLedger, report: &PreviewReport, skipped: bool) -> Vec<CheckAction> {
    if !report.status.is_active() || is_going(report) {
        return Vec::new();
    }
    let mut actions = Vec::new();
    if matches!(
        report.status,
        EnvironmentStatus::Sleeping | EnvironmentStatus::Stopping
    ) {
        actions.push(button("Wake preview", "Start the sleeping preview", WAKE));
        actions.push(button(
            "Destroy preview",
            "Remove the preview of this PR",
            DESTROY,
        ));
        return actions;
    }
    let ended = matches!(
        entry.status,
        DeploymentStatus::Success | DeploymentStatus::Failed
    );
    if ended {
        actions.push(button("Redeploy", "Deploy this PR's head again", REDEPLOY));
    }
    if report.status != EnvironmentStatus::Skipped {
        actions.push(button(
            "Destroy preview",
            "Remove the preview of this PR",
            DESTROY,
        ));
    }
    if skipped && report.is_fork && report.vouched_sha.as_ref() != Some(&entry.commit_sha) {
        actions.push(button(
            "Approve this commit",
            "Deploy this fork commit",
            APPROVE,
        ));
    }
    actions
}

/// Whether commit statuses and check runs are sent, as the setting says.
impl ReportingChannels {
    pub fn statuses(self) -> bool {
        matches!(self, Self::Both | Self::Status)
    }

    pub fn checks(self) -> bool {
        matches!(self, Self::Both | Self::Checks)
    }
}

#[cfg(test)]
mod tests {
    use ephemera_domain::{CommitSha, DeploymentId};

    use super::*;
    use crate::fixtures::preview_report;

    fn entry(status: DeploymentStatus, error: Option<&str>) -> DeploymentLedger {
        DeploymentLedger {
            deployment_id: DeploymentId::new(1).unwrap(),
            commit_sha: CommitSha::parse(&format!("abc1234{}", "0".repeat(33))).unwrap(),
            status,
            error: error.map(str::to_owned),
            github_deployment_id: None,
            reported: None,
            reported_commit: None,
            check_run_id: None,
            reported_check: None,
            log_tail: "[t] rolled out\n".into(),
        }
    }

    fn identifiers(run: &CheckRun) -> Vec<&str> {
        run.actions.iter().map(|a| a.identifier.as_str()).collect()
    }

    #[test]
    fn each_outcome_has_its_conclusion_decision_and_buttons() {
        let mut report = preview_report(EnvironmentStatus::Ready);
        report.url = Some("https://pr-7.preview.example".into());
        let ready = check_run(&entry(DeploymentStatus::Success, None), &report, true);
        assert_eq!(ready.conclusion, Some(CheckConclusion::Success));
        assert_eq!(
            ready.details_url.as_deref(),
            Some("https://pr-7.preview.example")
        );
        assert!(
            ready
                .summary
                .contains("**URL**: https://pr-7.preview.example"),
            "{}",
            ready.summary
        );
        assert!(ready.text.as_deref().unwrap().contains("[t] rolled out"));
        assert_eq!(identifiers(&ready), [REDEPLOY, DESTROY]);
        // An older commit's run carries no buttons.
        assert!(
            check_run(&entry(DeploymentStatus::Success, None), &report, false)
                .actions
                .is_empty()
        );

        let failed = check_run(
            &entry(DeploymentStatus::Failed, Some("image pull failed\ntrace")),
            &preview_report(EnvironmentStatus::Failed),
            true,
        );
        assert_eq!(failed.conclusion, Some(CheckConclusion::Failure));
        assert!(failed.summary.contains("failed: image pull failed\n"));

        let mut fork = preview_report(EnvironmentStatus::Skipped);
        fork.is_fork = true;
        let skipped = check_run(
            &entry(
                DeploymentStatus::Cancelled,
                Some("no preview: PR from a fork"),
            ),
            &fork,
            true,
        );
        assert_eq!(skipped.conclusion, Some(CheckConclusion::Neutral));
        assert!(skipped.summary.contains("Not deployed: PR from a fork"));
        assert_eq!(identifiers(&skipped), [APPROVE]);

        let superseded = check_run(
            &entry(DeploymentStatus::Cancelled, Some("cancelled")),
            &preview_report(EnvironmentStatus::Updating),
            false,
        );
        assert_eq!(superseded.conclusion, Some(CheckConclusion::Cancelled));
        assert_eq!(superseded.title, "Superseded");

        let queued = check_run(
            &entry(DeploymentStatus::Queued, None),
            &preview_report(EnvironmentStatus::Pending),
            true,
        );
        assert_eq!(
            (queued.status, queued.conclusion),
            (CheckStatus::Queued, None)
        );
        assert_eq!(identifiers(&queued), [DESTROY]);
        // A removed preview offers nothing to click.
        assert!(
            check_run(
                &entry(DeploymentStatus::Success, None),
                &preview_report(EnvironmentStatus::Destroyed),
                true
            )
            .actions
            .is_empty()
        );
    }
}
