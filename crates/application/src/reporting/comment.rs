//! The sticky comment's text.

use ephemera_domain::{EnvironmentStatus, PreviewReport};

use crate::ports::{CommandEnd, CommandNote};

fn title(status: EnvironmentStatus) -> &'static str {
    match status {
        EnvironmentStatus::Pending => "⏳ Queued",
        EnvironmentStatus::Waiting => "⏸️ Waiting for a slot",
        EnvironmentStatus::Stopping => "💤 Going to sleep",
        EnvironmentStatus::Sleeping => "💤 Asleep",
        EnvironmentStatus::Waking => "⏰ Waking up",
        EnvironmentStatus::Skipped => "⏭️ No preview",
        EnvironmentStatus::Provisioning => "🚧 Creating",
        EnvironmentStatus::Updating => "🔄 Updating",
        EnvironmentStatus::Ready => "✅ Ready",
        EnvironmentStatus::Failed => "❌ Failed",
        EnvironmentStatus::Destroying => "🧹 Being removed",
        EnvironmentStatus::Destroyed => "🗑️ Removed",
    }
}

/// One line of the comment's command list, e.g. "@alice asked for
/// `/preview redeploy` at 14:02 UTC: done (a redeploy is queued)".
fn command_line(note: &CommandNote) -> String {
    let via = if note.button {
        " with the check run's button"
    } else {
        ""
    };
    let end = match note.end {
        None => "pending",
        Some(CommandEnd::Done) => "done",
        Some(CommandEnd::Refused) => "refused",
        Some(CommandEnd::Failed) => "failed",
    };
    // The outcome repeats who asked for what; the line says it once.
    let prefix = format!("@{}: {}: ", note.author_login, note.command);
    let detail = note
        .outcome
        .as_deref()
        .map(|o| o.strip_prefix(prefix.as_str()).unwrap_or(o))
        .filter(|o| !o.is_empty())
        .map(|o| format!(" ({})", o.replace('\n', " ")))
        .unwrap_or_default();
    format!(
        "- @{} asked for `{}`{via} at {} UTC: {end}{detail}\n",
        note.author_login,
        note.command,
        note.at.format("%Y-%m-%d %H:%M")
    )
}

/// The sticky comment's body (the adapter adds the hidden marker), with
/// the newest `/preview` commands given on the PR.
pub fn render_comment(report: &PreviewReport, commands: &[CommandNote]) -> String {
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
    if !report.config_notes.is_empty() {
        out.push_str("\n**Refused from `.github/ephemera.yml`** (this server's bounds):\n");
        for note in &report.config_notes {
            out.push_str(&format!("- {note}\n"));
        }
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
        EnvironmentStatus::Sleeping => out.push_str(
            "\nThe preview is asleep: its data and URL are kept. A push or `/preview wake` wakes it.\n",
        ),
        _ => {}
    }
    if !commands.is_empty() {
        out.push_str("\n**Commands**\n");
        for note in commands {
            out.push_str(&command_line(note));
        }
    }
    out.push_str(
        "\n<sub>Kept up to date by ephemera. Comment `/preview help` for the commands.</sub>\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use ephemera_domain::{CommitSha, DeploymentId, DeploymentSnapshot, DeploymentStatus};

    use super::*;
    use crate::fixtures::preview_report as report;

    #[test]
    fn a_ready_preview_shows_its_url_commit_and_last_deployment() {
        let mut r = report(EnvironmentStatus::Ready);
        r.deployment = Some(DeploymentSnapshot {
            id: DeploymentId::new(3).unwrap(),
            status: DeploymentStatus::Success,
            commit_sha: r.commit_sha.clone(),
            duration_seconds: Some(12.34),
            error: None,
        });
        let body = render_comment(&r, &[]);
        assert!(body.contains("| Status | **✅ Ready** |"), "{body}");
        assert!(
            body.contains("| Preview | https://pr-7.preview.example |"),
            "{body}"
        );
        assert!(body.contains("| Commit | `ab12cd3` |"), "{body}");
        assert!(body.contains("success of `ab12cd3` in 12.3s"), "{body}");
        assert!(body.contains("| Namespace | `pr-7-web` |"), "{body}");
    }

    #[test]
    fn the_url_is_shown_only_while_the_preview_serves() {
        for (status, shown) in [
            (EnvironmentStatus::Pending, false),
            (EnvironmentStatus::Provisioning, false),
            (EnvironmentStatus::Ready, true),
            (EnvironmentStatus::Updating, true),
            (EnvironmentStatus::Failed, false),
            (EnvironmentStatus::Destroying, false),
            (EnvironmentStatus::Destroyed, false),
        ] {
            let body = render_comment(&report(status), &[]);
            assert_eq!(body.contains("| Preview |"), shown, "{status}: {body}");
        }
    }

    #[test]
    fn a_failure_shows_the_first_line_of_its_error_only() {
        let mut r = report(EnvironmentStatus::Failed);
        r.error = Some("image pull failed\nstack trace line".into());
        let body = render_comment(&r, &[]);
        assert!(body.contains("| Status | **❌ Failed** |"), "{body}");
        assert!(body.contains("> image pull failed\n"), "{body}");
        assert!(!body.contains("stack trace"), "{body}");
        // An error left from before is not shown once it is healthy again.
        let mut ok = report(EnvironmentStatus::Ready);
        ok.error = r.error.clone();
        assert!(!render_comment(&ok, &[]).contains("image pull failed"));
    }

    #[test]
    fn a_removed_preview_says_why_and_how_it_comes_back() {
        let mut r = report(EnvironmentStatus::Destroyed);
        r.reason = Some("PR closed".into());
        let body = render_comment(&r, &[]);
        assert!(
            body.contains("The preview is gone (PR closed). It comes back when the PR is reopened"),
            "{body}"
        );
        assert!(
            !body.contains("\n> PR closed"),
            "the reason is said once: {body}"
        );
    }

    #[test]
    fn each_command_gets_a_line_with_who_when_and_how_it_ended() {
        use ephemera_domain::{CommentCommand, PreviewCommand};
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-05T14:02:00Z")
            .unwrap()
            .to_utc();
        let notes = [
            CommandNote {
                author_login: "alice".into(),
                command: CommentCommand::Known(PreviewCommand::Redeploy),
                button: false,
                at,
                end: Some(CommandEnd::Done),
                outcome: Some("@alice: /preview redeploy: a redeploy is queued".into()),
            },
            CommandNote {
                author_login: "mallory".into(),
                command: CommentCommand::Known(PreviewCommand::Destroy),
                button: true,
                at,
                end: Some(CommandEnd::Refused),
                outcome: Some(
                    "@mallory has read permission on octo/web; commands need write".into(),
                ),
            },
            CommandNote {
                author_login: "bob".into(),
                command: CommentCommand::Known(PreviewCommand::Sleep),
                button: false,
                at,
                end: None,
                outcome: None,
            },
        ];
        let body = render_comment(&report(EnvironmentStatus::Ready), &notes);
        assert!(
            body.contains(
                "**Commands**\n\
                 - @alice asked for `/preview redeploy` at 2026-12-05 14:02 UTC: done (a redeploy is queued)\n\
                 - @mallory asked for `/preview destroy` with the check run's button at 2026-12-05 14:02 UTC: refused (@mallory has read permission on octo/web; commands need write)\n\
                 - @bob asked for `/preview sleep` at 2026-12-05 14:02 UTC: pending\n"
            ),
            "{body}"
        );
        assert!(!render_comment(&report(EnvironmentStatus::Ready), &[]).contains("**Commands**"));
    }

    #[test]
    fn a_fork_preview_names_the_vouched_commit() {
        let mut r = report(EnvironmentStatus::Ready);
        r.vouched_sha = Some(CommitSha::parse(&"f".repeat(40)).unwrap());
        let body = render_comment(&r, &[]);
        assert!(
            body.contains(
                "| Vouched for | `fffffff` (a maintainer's label covers this commit only) |"
            ),
            "{body}"
        );
    }
}
