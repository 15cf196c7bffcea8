//! `/preview` commands written on PRs, black-box on SQLite and PostgreSQL
//! (work in progress for #15: recording; the worker that carries them out
//! comes next).

#![allow(clippy::unwrap_used)]

mod support;

use ephemera_application::ports::CommandEnd;
use ephemera_application::pr_commands::CommandOutcome;
use ephemera_application::reconciler::RunOutcome;
use ephemera_persistence::backend_tests;
use ephemera_persistence::testing::TestDatabase;
use serde_json::{Value, json};
use support::fake_github::{REPO, app_reporting_to, calls, fake_github};
use support::{TestApp, payload, pr};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, ResponseTemplate};

/// GitHub's example comment, made `body` on PR 2 (GitHub's example PR).
fn comment(body: &str) -> Value {
    let mut event = payload("issue_comment.created.with-installation");
    event["issue"]["number"] = json!(2);
    event["issue"]["pull_request"] = json!({"url": "https://api.github.com/repos/o/r/pulls/2"});
    event["comment"]["body"] = json!(body);
    event
}

async fn a_command_is_recorded_once_and_a_plain_comment_is_not(t: TestDatabase) {
    let app = TestApp::spawn(t).await;
    let command = comment("/preview sleep");
    let first = app
        .deliver_ok("issue_comment", &support::delivery_id(), &command)
        .await;
    assert_eq!(first["outcome"], "applied", "{first}");
    assert_eq!(
        first["reason"],
        "/preview sleep by @Codertocat on #2: recorded for a worker"
    );
    // The same comment again, in a body that differs (an identical body
    // is already refused as a replay before this).
    let mut resent = command.clone();
    resent["comment"]["updated_at"] = json!("2030-01-01T00:00:00Z");
    let again = app
        .deliver_ok("issue_comment", &support::delivery_id(), &resent)
        .await;
    assert_eq!(again["outcome"], "ignored");
    assert_eq!(
        again["reason"],
        "/preview sleep by @Codertocat on #2: recorded before"
    );
    let plain = app
        .deliver_ok("issue_comment", &support::delivery_id(), &comment("nice"))
        .await;
    assert_eq!(plain["reason"], "no /preview command");
}

/// A writer's `/preview sleep`: permission checked with GitHub, 👀 then 👍
/// on the comment, and the preview asleep.
async fn a_writers_command_is_carried_out_with_reactions(t: TestDatabase) {
    let github = fake_github().await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/collaborators/Codertocat/permission")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "permission": "write", "role_name": "write",
            "user": {"login": "Codertocat", "id": 21031067}
        })))
        .mount(&github)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"/issues/comments/\d+/reactions$"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 1})))
        .mount(&github)
        .await;
    let app = app_reporting_to(t, &github).await;
    app.deliver_pr(&pr("opened", 1, 0)).await;
    app.drain().await;
    app.deliver_ok(
        "issue_comment",
        &support::delivery_id(),
        &comment("/preview sleep"),
    )
    .await;

    let runner = app.pr_commands.clone().unwrap();
    let outcome = runner.run_once().await.unwrap();
    assert_eq!(
        outcome,
        CommandOutcome::Finished {
            end: CommandEnd::Done,
            outcome: "@Codertocat: /preview sleep: asleep soon".into()
        }
    );
    assert!(matches!(app.drain().await[..], [RunOutcome::Asleep(_)]));
    assert_eq!(app.only_environment().await["status"], "sleeping");
    let reactions: Vec<Value> = calls(&github)
        .await
        .into_iter()
        .filter(|(m, p, _)| m == "POST" && p.ends_with("/reactions"))
        .map(|(_, _, body)| body["content"].clone())
        .collect();
    assert_eq!(reactions, [json!("eyes"), json!("+1")]);
    assert_eq!(runner.run_once().await.unwrap(), CommandOutcome::Idle);
}

/// GitHub answering `permission` for Codertocat and taking reactions.
async fn github_with(permission: &str) -> wiremock::MockServer {
    let github = fake_github().await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/collaborators/Codertocat/permission")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "permission": permission, "role_name": permission,
            "user": {"login": "Codertocat", "id": 21031067}
        })))
        .mount(&github)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"/issues/comments/\d+/reactions$"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 1})))
        .mount(&github)
        .await;
    github
}

/// `previews.mode: manual` waits for `/preview deploy` from a writer; a
/// reader's is refused and changes nothing.
async fn manual_mode_waits_for_a_writers_deploy(t: TestDatabase) {
    use base64::Engine as _;
    let github = github_with("write").await;
    let file = "version: 1\npreviews:\n  mode: manual\n";
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/contents/.github/ephemera.yml")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "type": "file", "encoding": "base64", "size": file.len(),
            "name": "ephemera.yml", "path": ".github/ephemera.yml",
            "content": base64::engine::general_purpose::STANDARD.encode(file),
            "sha": "3d21ec53a331a6f037a91c368710b99387d012c1",
        })))
        .mount(&github)
        .await;
    let app = app_reporting_to(t, &github).await;
    app.deliver_pr(&pr("opened", 1, 0)).await;
    app.drain().await;
    assert_eq!(app.only_environment().await["status"], "skipped");

    app.deliver_ok(
        "issue_comment",
        &support::delivery_id(),
        &comment("/preview deploy"),
    )
    .await;
    let runner = app.pr_commands.clone().unwrap();
    let outcome = runner.run_once().await.unwrap();
    let CommandOutcome::Finished { end, outcome } = outcome else {
        panic!("no command ran");
    };
    assert_eq!(end, CommandEnd::Done, "{outcome}");
    assert!(outcome.ends_with("is queued"), "{outcome}");
    assert!(matches!(app.drain().await[..], [RunOutcome::Ready(_)]));
    assert_eq!(app.only_environment().await["status"], "ready");
}

backend_tests!(
    a_command_is_recorded_once_and_a_plain_comment_is_not,
    a_writers_command_is_carried_out_with_reactions,
    manual_mode_waits_for_a_writers_deploy,
);
