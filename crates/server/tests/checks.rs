//! The "ephemera preview" check run, black-box on SQLite and PostgreSQL:
//! its conclusion for a success, a failure, a skip and a superseded
//! commit; each of its buttons; what an App without the Checks or Issues
//! permission gets; and the setting that picks checks, statuses or both.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use ephemera_application::ports::CommandEnd;
use ephemera_application::reconciler::RunOutcome;
use ephemera_application::reporting::ReportingChannels;
use ephemera_persistence::backend_tests;
use ephemera_persistence::testing::TestDatabase;
use serde_json::{Value, json};
use support::controls::{self, READER, WRITER, check_run_of, check_runs, sha};
use support::fake_github::{REPO, calls};
use support::pr;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, ResponseTemplate};

/// PR #2 from someone's fork.
fn from_fork(mut p: Value) -> Value {
    p["pull_request"]["head"]["repo"]["id"] = json!(999_999);
    p["pull_request"]["head"]["repo"]["full_name"] = json!("forker/Hello-World");
    p["pull_request"]["user"] = json!({"login": "forker", "id": 4242});
    p
}

async fn a_ready_preview_gets_a_successful_check_run_with_its_url_log_and_buttons(t: TestDatabase) {
    let github = controls::github().await;
    let dir = tempfile::tempdir().unwrap();
    let app = controls::app(t, &github, &dir.path().join("actions"), |_| {}).await;
    app.deliver_pr(&pr("opened", 1, 0)).await;
    app.drain().await;
    app.drain_reports().await;

    let run = check_run_of(&github, &sha(1)).await;
    assert_eq!(
        (run.status.as_str(), run.conclusion.as_deref()),
        ("completed", Some("success"))
    );
    assert_eq!(run.title, "Preview ready");
    assert_eq!(run.external_id, "2", "the PR's number");
    let url = app.only_environment().await["environment_url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(run.details_url.as_deref(), Some(url.as_str()));
    assert!(
        run.summary.contains(&format!("**URL**: {url}")),
        "{}",
        run.summary
    );
    assert!(
        run.summary.contains("**Decision**: `0000000` is deployed."),
        "{}",
        run.summary
    );
    // The log's end: the provisioner's own output is in it.
    let text = run.text.unwrap();
    assert!(text.contains("ready at"), "{text}");
    assert_eq!(run.buttons, ["redeploy", "destroy"]);
    // A quick deployment is told by its outcome alone: one request.
    assert_eq!(run.requests, 1);
}

/// A failed deployment fails its check run with the error; a later push
/// that supersedes a queued commit cancels that commit's run.
async fn failure_and_supersede_conclude_their_check_runs(t: TestDatabase) {
    let github = controls::github().await;
    let dir = tempfile::tempdir().unwrap();
    let app = controls::app(t, &github, &dir.path().join("actions"), |s| {
        let ephemera_server::config::ProvisionerSettings::Command(c) = &mut s.provisioner else {
            unreachable!()
        };
        // Commit …01 fails to provision; the others succeed.
        c.provision = format!(
            "if [ \"${{EPHEMERA_COMMIT_SHA#{}}}\" = 01 ]; then echo 'image pull failed' >&2; exit 3; fi",
            "?".repeat(38)
        );
        s.workers.max_attempts = 1;
    })
    .await;
    app.deliver_pr(&pr("opened", 1, 0)).await;
    app.drain().await;
    app.drain_reports().await;
    let failed = check_run_of(&github, &sha(1)).await;
    assert_eq!(failed.conclusion.as_deref(), Some("failure"), "{failed:?}");
    assert_eq!(failed.title, "Preview failed");
    assert!(failed.summary.contains("failed: "), "{}", failed.summary);
    assert!(failed.text.unwrap().contains("image pull failed"));
    assert_eq!(failed.buttons, ["redeploy", "destroy"]);

    // Two pushes before a worker runs: commit 2 is superseded by 3.
    app.deliver_pr(&pr("synchronize", 2, 10)).await;
    app.deliver_pr(&pr("synchronize", 3, 20)).await;
    app.drain().await;
    app.clock.advance(Duration::from_secs(60));
    app.drain_reports().await;
    let superseded = check_run_of(&github, &sha(2)).await;
    assert_eq!(superseded.conclusion.as_deref(), Some("cancelled"));
    assert_eq!(superseded.title, "Superseded");
    assert!(superseded.buttons.is_empty());
    let ready = check_run_of(&github, &sha(3)).await;
    assert_eq!(ready.conclusion.as_deref(), Some("success"));
    // Only the PR's latest commit offers buttons: the failed run lost its.
    assert_eq!(ready.buttons, ["redeploy", "destroy"]);
}

/// A skipped commit's check run is neutral and says why; on a fork it
/// offers the approval, and the button deploys exactly that commit.
async fn a_skip_is_neutral_and_the_approve_button_deploys_that_commit(t: TestDatabase) {
    let github = controls::github().await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/pulls/2")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "number": 2, "state": "open", "draft": false,
            "updated_at": "2019-05-15T17:00:00Z", "labels": [],
            "head": {"sha": sha(1), "repo": {"id": 999_999, "full_name": "forker/Hello-World"}},
            "base": {"ref": "master", "repo": {"id": 186_853_002, "full_name": "Codertocat/Hello-World"}}
        })))
        .mount(&github)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("actions");
    let app = controls::app(t, &github, &record, |_| {}).await;
    app.deliver_pr(&from_fork(pr("opened", 1, 0))).await;
    app.drain_reports().await;
    let run = check_run_of(&github, &sha(1)).await;
    assert_eq!(
        (run.status.as_str(), run.conclusion.as_deref()),
        ("completed", Some("neutral"))
    );
    assert_eq!(run.title, "No preview");
    assert!(
        run.summary
            .contains("**Decision**: Not deployed: PR from a fork: not deployed until a maintainer comments `/preview approve`"),
        "{}",
        run.summary
    );
    assert_eq!(run.buttons, ["approve"]);

    // A reader's click is refused; a stale click (another commit) too.
    let (end, said) = app.press(READER, run.id, &sha(1), "approve").await;
    assert_eq!(end, CommandEnd::Refused, "{said}");
    let (end, said) = app.press(WRITER, run.id, &sha(7), "approve").await;
    assert_eq!(end, CommandEnd::Refused);
    assert!(said.contains("but the PR's head is now"), "{said}");
    assert!(app.drain().await.is_empty());

    let (end, said) = app.press(WRITER, run.id, &sha(1), "approve").await;
    assert_eq!(end, CommandEnd::Done, "{said}");
    assert!(matches!(app.drain().await[..], [RunOutcome::Ready(_)]));
    assert_eq!(controls::actions(&record), ["provision 01"]);
    app.drain_reports().await;
    // The approved commit's new deployment has its own check run.
    let runs: Vec<_> = check_runs(&github)
        .await
        .into_iter()
        .filter(|r| r.head_sha == sha(1))
        .collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(
        runs[0].buttons.is_empty(),
        "the approved run's button goes: {runs:?}"
    );
    assert_eq!(runs[1].conclusion.as_deref(), Some("success"));
    assert!(
        runs[1].summary.contains("A maintainer approved `0000000`"),
        "{}",
        runs[1].summary
    );
    // The sticky comment lists the clicks.
    let comment = controls::sticky_comment(&github).await;
    assert!(
        comment.contains("@Codertocat asked for `/preview approve` with the check run's button"),
        "{comment}"
    );
}

/// Redeploy, then sleep (the run offers Wake), Wake, then Destroy: each
/// button does what its command does, through the provisioner.
async fn each_button_acts_like_its_command(t: TestDatabase) {
    let github = controls::github().await;
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("actions");
    let app = controls::app(t, &github, &record, |_| {}).await;
    app.deliver_pr(&pr("opened", 1, 0)).await;
    app.drain().await;
    app.drain_reports().await;
    let first = check_run_of(&github, &sha(1)).await;

    let (end, _) = app.press(READER, first.id, &sha(1), "redeploy").await;
    assert_eq!(end, CommandEnd::Refused);
    let (end, said) = app.press(WRITER, first.id, &sha(1), "redeploy").await;
    assert_eq!(end, CommandEnd::Done, "{said}");
    assert!(matches!(app.drain().await[..], [RunOutcome::Ready(_)]));
    app.drain_reports().await;

    // Asleep: the latest run offers Wake instead of Redeploy.
    app.command(WRITER, 71, "/preview sleep").await;
    app.drain().await;
    app.drain_reports().await;
    let latest = check_runs(&github).await.pop().unwrap();
    assert_eq!(latest.buttons, ["wake", "destroy"]);
    let (end, said) = app.press(WRITER, latest.id, &sha(1), "wake").await;
    assert_eq!(
        (end, said.as_str()),
        (CommandEnd::Done, "@Codertocat: /preview wake: waking")
    );
    assert!(matches!(app.drain().await[..], [RunOutcome::Ready(_)]));
    app.drain_reports().await;
    let latest = check_runs(&github).await.pop().unwrap();
    assert_eq!(latest.buttons, ["redeploy", "destroy"]);

    let (end, _) = app.press(WRITER, latest.id, &sha(1), "destroy").await;
    assert_eq!(end, CommandEnd::Done);
    app.drain().await;
    assert_eq!(app.only_environment().await["status"], "destroyed");
    app.drain_reports().await;
    // Gone: nothing left to click.
    assert!(check_runs(&github).await.pop().unwrap().buttons.is_empty());
    assert_eq!(
        controls::actions(&record),
        [
            "provision 01",
            "provision 01",
            "stop 01",
            "start 01",
            "destroy 01"
        ]
    );
}

/// An App without the Checks or Issues permission: previews, the comment
/// and the status still work; check runs and reactions are tried once per
/// installation and then left alone.
async fn an_app_without_checks_or_issues_permission_still_works(t: TestDatabase) {
    let github = controls::github().await;
    let forbidden = || {
        ResponseTemplate::new(403).set_body_json(json!({
            "message": "Resource not accessible by integration",
            "documentation_url": "https://docs.github.com/rest",
            "status": "403"
        }))
    };
    Mock::given(method("POST"))
        .and(path(format!("{REPO}/check-runs")))
        .respond_with(forbidden())
        .with_priority(1)
        .mount(&github)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"/issues/comments/\d+/reactions$"))
        .respond_with(forbidden())
        .with_priority(1)
        .mount(&github)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let app = controls::app(t, &github, &dir.path().join("actions"), |_| {}).await;
    app.deliver_pr(&pr("opened", 1, 0)).await;
    app.drain().await;
    let (end, _) = app.command(WRITER, 81, "/preview redeploy").await;
    assert_eq!(end, CommandEnd::Done, "a command works without reactions");
    app.command(WRITER, 82, "/preview redeploy").await;
    app.drain().await;
    app.deliver_pr(&pr("synchronize", 2, 10)).await;
    app.drain().await;
    let outcomes = app.drain_reports().await;
    assert!(
        outcomes.iter().all(|o| matches!(
            o,
            ephemera_application::reporting::ReportOutcome::Delivered(_)
        )),
        "{outcomes:?}"
    );
    let calls = calls(&github).await;
    let count =
        |wanted: &dyn Fn(&str, &str) -> bool| calls.iter().filter(|(m, p, _)| wanted(m, p)).count();
    assert_eq!(
        count(&|m, p| m == "POST" && p.ends_with("/check-runs")),
        1,
        "tried once"
    );
    assert_eq!(
        count(&|m, p| m == "POST" && p.ends_with("/reactions")),
        1,
        "tried once"
    );
    assert!(count(&|m, p| m == "POST" && p.contains("/statuses/")) >= 2);
    let comment = controls::sticky_comment(&github).await;
    assert!(comment.contains("✅ Ready"), "{comment}");
}

/// `EPHEMERA_GITHUB_REPORT_VIA`: a preview shown with check runs only,
/// or with the commit status only (the Deployment either way).
async fn shown_via(t: TestDatabase, via: ReportingChannels) -> (bool, bool) {
    let github = controls::github().await;
    let dir = tempfile::tempdir().unwrap();
    let app = controls::app(t, &github, &dir.path().join("actions"), |s| {
        s.workers.report_via = via;
    })
    .await;
    app.deliver_pr(&pr("opened", 1, 0)).await;
    app.drain().await;
    app.drain_reports().await;
    let calls = calls(&github).await;
    let sent = |end: &str| calls.iter().any(|(m, p, _)| m == "POST" && p.contains(end));
    assert!(sent("/deployments"), "{via:?}");
    (sent("/check-runs"), sent("/statuses/"))
}

async fn the_setting_can_show_check_runs_only(t: TestDatabase) {
    assert_eq!(shown_via(t, ReportingChannels::Checks).await, (true, false));
}

async fn the_setting_can_show_the_commit_status_only(t: TestDatabase) {
    assert_eq!(shown_via(t, ReportingChannels::Status).await, (false, true));
}

backend_tests!(
    a_ready_preview_gets_a_successful_check_run_with_its_url_log_and_buttons,
    failure_and_supersede_conclude_their_check_runs,
    a_skip_is_neutral_and_the_approve_button_deploys_that_commit,
    each_button_acts_like_its_command,
    an_app_without_checks_or_issues_permission_still_works,
    the_setting_can_show_check_runs_only,
    the_setting_can_show_the_commit_status_only,
);
