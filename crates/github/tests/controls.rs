//! What control from the PR asks of GitHub, against the contract-checking
//! fake GitHub (`support`): a person's permission on the repository, the
//! reaction on a command's comment, the "ephemera preview" check run.

#![allow(clippy::unwrap_used)]

use ephemera_application::ports::{
    CheckAction, CheckConclusion, CheckRun, CheckStatus, GitHubReader, GitHubReporter, Permission,
    Reaction, ReportError,
};
use ephemera_github_contract as contract;
use serde_json::{Value, json};
use wiremock::matchers::body_json;
use wiremock::{MockServer, Request, ResponseTemplate};

mod support;
use support::{authed, github, github_unasked, installation, pr, repository, sha, to_repo};

async fn permission_of(login: &str, answer: ResponseTemplate) -> Permission {
    let (server, app) = github().await;
    authed(to_repo(
        "GET",
        &format!("/collaborators/{login}/permission"),
    ))
    .respond_with(answer)
    .expect(1)
    .mount(&server)
    .await;
    app.collaborator_permission(installation(), &repository(), login)
        .await
        .unwrap()
}

fn permission_answer(permission: &str, role_name: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "permission": permission,
        "role_name": role_name,
        "user": {"login": "octocat", "id": 1, "type": "User"},
    }))
}

#[tokio::test]
async fn a_persons_permission_is_githubs_base_role_refined_by_the_role_name() {
    for (permission, role_name, want) in [
        ("admin", "admin", Permission::Admin),
        // GitHub's `permission` says write for maintainers, read for triagers.
        ("write", "maintain", Permission::Maintain),
        ("write", "write", Permission::Write),
        ("read", "triage", Permission::Triage),
        ("read", "read", Permission::Read),
        ("none", "none", Permission::None),
        // A custom role counts as its base role.
        ("write", "deployer", Permission::Write),
    ] {
        assert_eq!(
            permission_of("octocat", permission_answer(permission, role_name)).await,
            want,
            "{permission}/{role_name}"
        );
    }
}

#[tokio::test]
async fn someone_github_does_not_know_as_a_collaborator_has_no_permission() {
    let not_found = ResponseTemplate::new(404).set_body_json(json!({
        "message": "Not Found", "documentation_url": "https://docs.github.com/rest"
    }));
    assert_eq!(
        permission_of("ghost", not_found.clone()).await,
        Permission::None
    );
    // A bot's login, percent-encoded in the path.
    let (server, app) = github().await;
    authed(to_repo(
        "GET",
        "/collaborators/dependabot%5Bbot%5D/permission",
    ))
    .respond_with(not_found)
    .expect(1)
    .mount(&server)
    .await;
    assert_eq!(
        app.collaborator_permission(installation(), &repository(), "dependabot[bot]")
            .await
            .unwrap(),
        Permission::None
    );
}

#[tokio::test]
async fn a_reaction_is_put_on_the_comment_new_or_already_there() {
    let (server, app) = github().await;
    for (reaction, content, status) in [
        (Reaction::Eyes, "eyes", 201),
        (Reaction::PlusOne, "+1", 201),
        // 200: the App had reacted so already.
        (Reaction::Confused, "confused", 200),
    ] {
        authed(to_repo("POST", "/issues/comments/77/reactions"))
            .and(body_json(json!({"content": content})))
            .respond_with(ResponseTemplate::new(status).set_body_json(json!({
                "id": 1, "content": content, "node_id": "x", "created_at": "2019-05-15T15:20:33Z"
            })))
            .expect(1)
            .mount(&server)
            .await;
        app.react_to_comment(&pr(), 77, reaction).await.unwrap();
    }
}

fn run(status: CheckStatus, conclusion: Option<CheckConclusion>) -> CheckRun {
    CheckRun {
        status,
        conclusion,
        title: "Preview ready".into(),
        summary: "http://pr-2.preview.localhost".into(),
        text: Some("deployed\n".into()),
        details_url: Some("http://pr-2.preview.localhost".into()),
        actions: vec![CheckAction {
            label: "Redeploy".into(),
            description: "Deploy this commit again".into(),
            identifier: "redeploy".into(),
        }],
    }
}

const CHECK_RUNS: &str = "/check-runs";

fn check_run_answer(status: u16) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"id": 4, "name": "ephemera preview"}))
}

/// Expects `creates` check runs created with the installation's token
/// (each gets id 4) and `updates` updates of check run 4.
async fn accept_check_runs(server: &MockServer, creates: u64, updates: u64) {
    authed(to_repo("POST", CHECK_RUNS))
        .respond_with(check_run_answer(201))
        .expect(creates)
        .mount(server)
        .await;
    authed(to_repo("PATCH", &format!("{CHECK_RUNS}/4")))
        .respond_with(check_run_answer(200))
        .expect(updates)
        .mount(server)
        .await;
}

/// The JSON bodies of the requests sent to `path_suffix`.
async fn bodies(server: &MockServer, path_suffix: &str) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().ends_with(path_suffix))
        .map(|r| r.body_json().unwrap())
        .collect()
}

/// Takes `field` out of `body`, checking it is a UTC time in seconds as
/// GitHub writes them.
fn take_time(body: &mut Value, field: &str) {
    let at = body
        .as_object_mut()
        .unwrap()
        .remove(field)
        .unwrap_or_else(|| panic!("{field} missing from {body}"));
    let at = at.as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(at).is_ok() && at.ends_with('Z'),
        "{at}"
    );
}

#[tokio::test]
async fn a_check_run_is_created_on_the_commit_then_completed() {
    let (server, app) = github().await;
    accept_check_runs(&server, 1, 1).await;

    let id = app
        .create_check_run(&pr(), &sha(), &run(CheckStatus::InProgress, None))
        .await
        .unwrap();
    assert_eq!(id, 4);
    let mut done = run(CheckStatus::Completed, Some(CheckConclusion::Success));
    done.actions.clear();
    app.update_check_run(&pr(), id, &done).await.unwrap();

    let mut created = bodies(&server, CHECK_RUNS).await.remove(0);
    take_time(&mut created, "started_at");
    assert_eq!(
        created,
        json!({
            "name": "ephemera preview",
            "head_sha": sha().as_str(),
            // A fork PR's check run lists no PR: the number finds it.
            "external_id": pr().number.to_string(),
            "status": "in_progress",
            "details_url": "http://pr-2.preview.localhost",
            "output": {
                "title": "Preview ready",
                "summary": "http://pr-2.preview.localhost",
                "text": "deployed\n",
            },
            "actions": [{
                "label": "Redeploy",
                "description": "Deploy this commit again",
                "identifier": "redeploy",
            }],
        })
    );
    let mut updated = bodies(&server, &format!("{CHECK_RUNS}/4")).await.remove(0);
    take_time(&mut updated, "completed_at");
    assert_eq!(
        updated,
        json!({
            "status": "completed",
            "conclusion": "success",
            "details_url": "http://pr-2.preview.localhost",
            "output": {
                "title": "Preview ready",
                "summary": "http://pr-2.preview.localhost",
                "text": "deployed\n",
            },
            // Sent empty: the buttons that no longer apply go away.
            "actions": [],
        })
    );
}

#[tokio::test]
async fn a_queued_check_run_has_no_times_and_no_conclusion_is_sent_before_the_end() {
    let (server, app) = github().await;
    accept_check_runs(&server, 1, 0).await;
    let mut queued = run(CheckStatus::Queued, Some(CheckConclusion::Failure));
    queued.text = None;
    queued.details_url = None;
    app.create_check_run(&pr(), &sha(), &queued).await.unwrap();

    let body = bodies(&server, CHECK_RUNS).await.remove(0);
    for absent in ["conclusion", "started_at", "completed_at", "details_url"] {
        assert!(body.get(absent).is_none(), "{absent} in {body}");
    }
    assert!(body["output"].get("text").is_none(), "{body}");
}

#[tokio::test]
async fn a_completed_check_run_without_a_conclusion_is_refused_unsent() {
    let (_server, app) = github_unasked().await;
    let refused = app
        .update_check_run(&pr(), 4, &run(CheckStatus::Completed, None))
        .await
        .unwrap_err();
    assert!(matches!(refused, ReportError::Refused(_)), "{refused:?}");
}

#[tokio::test]
async fn long_output_and_buttons_are_cut_to_githubs_limits() {
    let (server, app) = github().await;
    accept_check_runs(&server, 1, 0).await;
    let mut long = run(CheckStatus::Completed, Some(CheckConclusion::Failure));
    // Two bytes a character: under GitHub's 65,535 in characters, over
    // it in bytes, which is what GitHub counts.
    long.summary = "é".repeat(40_000);
    long.text = Some(format!("{}last line\n", "log line\n".repeat(10_000)));
    let button = |n: usize| CheckAction {
        label: format!("Destroy this preview {n}"),
        description: "Remove the namespace, its data and its URL".into(),
        identifier: format!("action-{n}"),
    };
    long.actions = (0..4).map(button).collect();
    app.create_check_run(&pr(), &sha(), &long).await.unwrap();

    let body = bodies(&server, CHECK_RUNS).await.remove(0);
    let summary = body["output"]["summary"].as_str().unwrap();
    assert!(
        summary.len() <= 65_535 && summary.len() > 65_500,
        "{}",
        summary.len()
    );
    assert!(summary.starts_with('é') && summary.ends_with('…'));
    // The log's tail is what matters: its end stays.
    let text = body["output"]["text"].as_str().unwrap();
    assert!(text.len() <= 65_535 && text.starts_with('…') && text.ends_with("last line\n"));
    // Cut in bytes too (the `…` takes three).
    let actions = body["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 3, "GitHub shows three buttons");
    assert_eq!(actions[0]["label"], "Destroy this prev…");
    assert_eq!(
        actions[0]["description"],
        "Remove the namespace, its data and it…"
    );
    assert_eq!(actions[2]["identifier"], "action-2");
}

#[tokio::test]
async fn a_button_identifier_too_long_to_come_back_whole_is_refused() {
    let (_server, app) = github_unasked().await;
    let mut run = run(CheckStatus::InProgress, None);
    run.actions[0].identifier = "redeploy-this-commit-now".into();
    let refused = app.create_check_run(&pr(), &sha(), &run).await.unwrap_err();
    assert!(matches!(refused, ReportError::Refused(_)), "{refused:?}");
}

#[tokio::test]
async fn a_403_says_the_app_lacks_the_checks_permission() {
    let (server, app) = github().await;
    to_repo("POST", CHECK_RUNS)
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({
            "message": "Resource not accessible by integration",
            "documentation_url": "https://docs.github.com/rest/checks/runs#create-a-check-run",
            "status": "403",
        })))
        .mount(&server)
        .await;
    let refused = app
        .create_check_run(&pr(), &sha(), &run(CheckStatus::Queued, None))
        .await
        .unwrap_err();
    let ReportError::NotPermitted(message) = &refused else {
        panic!("a missing permission is told apart: {refused:?}");
    };
    assert!(
        message.contains("403 Resource not accessible by integration")
            && message.contains("lacks the Checks (write) permission"),
        "{message}"
    );

    // A 403 that is a rate limit still waits.
    let (server, app) = github().await;
    to_repo("PATCH", &format!("{CHECK_RUNS}/4"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("retry-after", "30")
                .set_body_json(json!({"message": "You have exceeded a secondary rate limit"})),
        )
        .mount(&server)
        .await;
    let limited = app
        .update_check_run(&pr(), 4, &run(CheckStatus::InProgress, None))
        .await
        .unwrap_err();
    assert!(matches!(limited, ReportError::Retry { .. }), "{limited:?}");
}

/// The request the adapter sent to `path_suffix`, with its JSON body
/// changed by `break_it`.
async fn broken(
    server: &MockServer,
    path_suffix: &str,
    break_it: impl FnOnce(&mut Value),
) -> Request {
    let mut request = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.url.path().ends_with(path_suffix))
        .unwrap();
    let mut body: Value = request.body_json().unwrap();
    break_it(&mut body);
    request.body = serde_json::to_vec(&body).unwrap();
    request
}

/// The fake passes the adapter's check run requests because they are
/// right, not because it looks at nothing: the same requests, made wrong
/// the way GitHub's description says is wrong, are refused.
#[tokio::test]
async fn the_contract_refuses_the_same_check_run_requests_made_wrong() {
    let (server, app) = github().await;
    accept_check_runs(&server, 1, 1).await;
    app.create_check_run(&pr(), &sha(), &run(CheckStatus::InProgress, None))
        .await
        .unwrap();
    app.update_check_run(
        &pr(),
        4,
        &run(CheckStatus::Completed, Some(CheckConclusion::Neutral)),
    )
    .await
    .unwrap();

    let completed_without_conclusion = broken(&server, "/4", |body| {
        body.as_object_mut().unwrap().remove("conclusion");
    })
    .await;
    let found = contract::violations(&completed_without_conclusion);
    assert!(
        found.len() == 1 && found[0].starts_with("checks/update body"),
        "{found:?}"
    );

    let long_label = broken(&server, CHECK_RUNS, |body| {
        body["actions"][0]["label"] = json!("a label over twenty characters");
    })
    .await;
    let found = contract::violations(&long_label);
    assert!(
        found.len() == 1 && found[0].contains("/actions/0/label"),
        "{found:?}"
    );

    let no_sha = broken(&server, CHECK_RUNS, |body| {
        body.as_object_mut().unwrap().remove("head_sha");
    })
    .await;
    assert_eq!(contract::violations(&no_sha).len(), 1);
}
