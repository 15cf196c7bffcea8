//! GitHub reporting end to end: webhooks and workers write reports to the
//! outbox, the deliverer sends them to a fake GitHub (wiremock) that checks
//! paths, bodies and the Authorization header, and refuses (failing the
//! test) any request GitHub's OpenAPI description would refuse.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use ephemera_application::reporting::ReportOutcome;
use ephemera_application::sync::SyncSummary;
use ephemera_github_contract as contract;
use ephemera_persistence::backend_tests;
use ephemera_persistence::testing::TestDatabase;
use serde_json::{Value, json};
use support::fake_github::{
    INSTALLATION_TOKEN, REPO, accept_reports, app_reporting_to, app_reporting_with, calls,
    fake_github, hand_out_tokens, posted_to,
};
use support::{TestApp, payload, pr};
use wiremock::matchers::{header, method, path, path_regex, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// Delivers `body` as a `pull_request` event, runs the workers, then
/// delivers what is due to GitHub; returns what each report step did.
async fn deliver_and_report(app: &TestApp, body: &Value) -> Vec<ReportOutcome> {
    app.deliver_pr(body).await;
    app.drain().await;
    app.drain_reports().await
}

async fn a_pr_lifecycle_shows_one_comment_statuses_and_deployments(t: TestDatabase) {
    let github = fake_github().await;
    let app = app_reporting_to(t, &github).await;

    deliver_and_report(&app, &pr("opened", 1, 0)).await;
    for n in 2..=6 {
        deliver_and_report(&app, &pr("synchronize", n, n * 10)).await;
    }
    deliver_and_report(&app, &pr("closed", 6, 100)).await;

    let calls = calls(&github).await;
    let count = |m: &str, p: &str| {
        calls
            .iter()
            .filter(|(cm, cp, _)| cm == m && cp == p)
            .count()
    };
    assert_eq!(
        count("POST", &format!("{REPO}/issues/2/comments")),
        1,
        "one comment, ever"
    );
    assert!(
        count("PATCH", &format!("{REPO}/issues/comments/100")) >= 6,
        "edited in place"
    );

    // Every head got a status, and each ended successful with the URL.
    for n in 1..=6u32 {
        let sha = format!("{n:040x}");
        let states: Vec<_> = calls
            .iter()
            .filter(posted_to(&format!("{REPO}/statuses/{sha}")))
            .map(|(_, _, b)| b.clone())
            .collect();
        let last = states
            .last()
            .unwrap_or_else(|| panic!("no status for {sha}"));
        assert_eq!(last["state"], "success", "{sha}: {states:?}");
        assert_eq!(last["context"], "ephemera/preview");
        assert!(
            last["target_url"]
                .as_str()
                .unwrap()
                .ends_with(".preview.localhost")
        );
    }

    // One GitHub Deployment per ephemera deployment, each successful, then
    // inactive: once a newer one replaced it (GitHub does that itself for
    // a non-transient environment), and the last one once the preview is
    // gone.
    let created: Vec<_> = calls
        .iter()
        .filter(posted_to(&format!("{REPO}/deployments")))
        .collect();
    assert_eq!(created.len(), 6);
    for (_, _, body) in &created {
        assert_eq!(body["transient_environment"], false);
        assert_eq!(body["production_environment"], false);
        assert_eq!(body["auto_merge"], false);
        assert_eq!(body["required_contexts"], json!([]));
        assert_eq!(body["environment"], "preview-pr-2");
    }
    for (github_id, states) in deployments_on_github(&calls) {
        assert_eq!(states, ["success", "inactive"], "deployment {github_id}");
    }

    let last_comment = calls
        .iter()
        .rfind(|(m, p, _)| m == "PATCH" && p.contains("/issues/comments/"))
        .unwrap()
        .2["body"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        last_comment.starts_with("<!-- ephemera:preview -->"),
        "{last_comment}"
    );
    assert!(
        last_comment.contains("Removed") && last_comment.contains("PR closed"),
        "{last_comment}"
    );
}

/// Anyone can paste the hidden marker: a comment a person wrote first is
/// neither edited nor taken as ephemera's, and the report still lands.
async fn a_marker_comment_a_person_wrote_is_left_alone(t: TestDatabase) {
    let github = fake_github().await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/issues/2/comments")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{
            "id": 7,
            "body": "<!-- ephemera:preview -->\nmine now",
            "user": {"login": "octocat", "id": 1, "type": "User"},
            "performed_via_github_app": null
        }])))
        .with_priority(1)
        .mount(&github)
        .await;
    Mock::given(method("PATCH"))
        .and(path(format!("{REPO}/issues/comments/7")))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({"message": "Forbidden"})))
        .expect(0)
        .named("editing the person's comment")
        .mount(&github)
        .await;
    let app = app_reporting_to(t, &github).await;

    assert!(matches!(
        deliver_and_report(&app, &pr("opened", 1, 0)).await[..],
        [ReportOutcome::Delivered(_)]
    ));
    deliver_and_report(&app, &pr("synchronize", 2, 10)).await;

    let calls = calls(&github).await;
    let created: Vec<_> = calls
        .iter()
        .filter(posted_to(&format!("{REPO}/issues/2/comments")))
        .collect();
    assert_eq!(created.len(), 1, "ephemera's own comment, once");
    assert!(
        calls
            .iter()
            .any(|(m, p, _)| m == "PATCH" && p == &format!("{REPO}/issues/comments/100")),
        "the next report edits ephemera's comment: {calls:?}"
    );
    assert_eq!(commit_statuses(&calls, &format!("{:040x}", 2)), ["success"]);
}

/// POSTed commit statuses of `sha`, in order.
fn commit_statuses(calls: &[(String, String, Value)], sha: &str) -> Vec<String> {
    calls
        .iter()
        .filter(posted_to(&format!("{REPO}/statuses/{sha}")))
        .map(|(_, _, b)| b["state"].as_str().unwrap().to_owned())
        .collect()
}

/// Each GitHub Deployment's states as GitHub shows them after `calls`, by
/// id (the fake numbers them from 500 in creation order): the statuses
/// ephemera sent, and the `inactive` GitHub adds itself, as documented for
/// `auto_inactive` (true unless sent false): a new status retires every
/// earlier non-transient deployment of the same environment whose state is
/// `success`.
fn deployments_on_github(calls: &[(String, String, Value)]) -> Vec<(i64, Vec<String>)> {
    let mut deployments: Vec<(i64, Value, Vec<String>)> = Vec::new();
    for (m, p, body) in calls {
        if m != "POST" {
            continue;
        }
        if p == &format!("{REPO}/deployments") {
            let id = 500 + i64::try_from(deployments.len()).unwrap();
            deployments.push((id, body.clone(), Vec::new()));
            continue;
        }
        let Some(id) = p
            .strip_prefix(&format!("{REPO}/deployments/"))
            .and_then(|rest| rest.strip_suffix("/statuses"))
        else {
            continue;
        };
        let id: i64 = id.parse().unwrap();
        let state = body["state"].as_str().unwrap().to_owned();
        let at = deployments.iter().position(|(d, _, _)| *d == id).unwrap();
        if body["auto_inactive"] != false {
            let environment = deployments[at].1["environment"].clone();
            for (_, created, states) in &mut deployments[..at] {
                if created["environment"] == environment
                    && created["transient_environment"] != true
                    && states.last().is_some_and(|s| s == "success")
                {
                    states.push("inactive".to_owned());
                }
            }
        }
        deployments[at].2.push(state);
    }
    deployments
        .into_iter()
        .map(|(id, _, states)| (id, states))
        .collect()
}

async fn pushes_faster_than_github_answers_still_end_every_commit_and_deployment(t: TestDatabase) {
    let github = fake_github().await;
    let app = app_reporting_to(t, &github).await;
    deliver_and_report(&app, &pr("opened", 1, 0)).await;
    // Commit 2 starts deploying and GitHub hears of it; then commits 3 and 4
    // arrive before the workers or the reports catch up.
    app.deliver_pr(&pr("synchronize", 2, 10)).await;
    app.drain_reports().await;
    app.deliver_pr(&pr("synchronize", 3, 20)).await;
    deliver_and_report(&app, &pr("synchronize", 4, 30)).await;

    let calls = calls(&github).await;
    let sha = |n: u32| format!("{n:040x}");
    assert_eq!(commit_statuses(&calls, &sha(1)).last().unwrap(), "success");
    for superseded in [2, 3] {
        let states = commit_statuses(&calls, &sha(superseded));
        assert_eq!(
            states.last().map(String::as_str),
            Some("error"),
            "commit {superseded} must not stay pending or bare: {states:?}"
        );
    }
    assert_eq!(commit_statuses(&calls, &sha(4)), ["success"]);

    // Every GitHub Deployment reached a final state: the first succeeded and
    // was replaced, commit 2's was cancelled mid-flight, commit 3 was never
    // shown, the newest is live.
    let deployments: Vec<(String, Value)> = calls
        .iter()
        .filter(posted_to(&format!("{REPO}/deployments")))
        .map(|(_, _, b)| (b["ref"].as_str().unwrap().to_owned(), b.clone()))
        .collect();
    let refs: Vec<&str> = deployments.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(refs, [sha(1), sha(2), sha(4)], "{refs:?}");
    let on_github = deployments_on_github(&calls);
    let states: Vec<Vec<&str>> = on_github
        .iter()
        .map(|(_, s)| s.iter().map(String::as_str).collect())
        .collect();
    assert_eq!(
        states,
        [
            vec!["success", "inactive"],
            vec!["in_progress", "inactive"],
            vec!["success"]
        ]
    );
}

/// `EPHEMERA_GITHUB_REPORT_DELAY`: a report of a change under way waits,
/// so a deployment that ends within the delay is reported by its outcome
/// alone; an outcome goes out at once.
async fn a_change_under_way_is_reported_after_the_delay_an_outcome_at_once(t: TestDatabase) {
    let github = fake_github().await;
    let app = app_reporting_with(t, &github, |s| {
        s.workers.report_delay = Duration::from_secs(60);
    })
    .await;

    app.deliver_pr(&pr("opened", 1, 0)).await;
    assert_eq!(app.drain_reports().await, [], "queued: held back");
    app.drain().await;
    assert!(matches!(
        app.drain_reports().await[..],
        [ReportOutcome::Delivered(_)]
    ));
    let calls_now = calls(&github).await;
    assert_eq!(
        commit_statuses(&calls_now, &format!("{:040x}", 1)),
        ["success"]
    );
    let states: Vec<_> = deployments_on_github(&calls_now)
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    assert_eq!(states, [vec!["success".to_owned()]], "no in_progress first");

    // A deployment that takes longer than the delay shows it is under way.
    app.deliver_pr(&pr("synchronize", 2, 10)).await;
    assert_eq!(app.drain_reports().await, []);
    app.clock.advance(Duration::from_secs(61));
    assert!(matches!(
        app.drain_reports().await[..],
        [ReportOutcome::Delivered(_)]
    ));
    let calls_later = calls(&github).await;
    assert_eq!(
        commit_statuses(&calls_later, &format!("{:040x}", 2)),
        ["pending"]
    );
}

async fn github_errors_are_retried_until_delivered_once(t: TestDatabase) {
    let github = fake_github().await;
    // The first comment creation fails with a 500.
    Mock::given(method("POST"))
        .and(path(format!("{REPO}/issues/2/comments")))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"message": "boom"})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&github)
        .await;
    let app = app_reporting_to(t, &github).await;
    app.deliver_pr(&pr("opened", 1, 0)).await;

    let first = app.drain_reports().await;
    assert!(
        matches!(first[..], [ReportOutcome::Retrying { .. }]),
        "{first:?}"
    );
    app.clock.advance(Duration::from_millis(300));
    let second = app.drain_reports().await;
    assert!(
        matches!(second[..], [ReportOutcome::Delivered(_)]),
        "{second:?}"
    );

    let calls = calls(&github).await;
    let posts = calls
        .iter()
        .filter(posted_to(&format!("{REPO}/issues/2/comments")))
        .count();
    assert_eq!(posts, 2, "the failed attempt and the one that worked");
    assert!(
        app.drain_reports().await.is_empty(),
        "nothing delivered twice"
    );
}

async fn a_rate_limit_waits_for_the_reset(t: TestDatabase) {
    let github = fake_github().await;
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 90;
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/issues/2/comments")))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", reset.to_string().as_str())
                .set_body_json(json!({"message": "API rate limit exceeded"})),
        )
        .with_priority(1)
        .mount(&github)
        .await;
    let app = app_reporting_to(t, &github).await;
    app.deliver_pr(&pr("opened", 1, 0)).await;

    let outcome = app.drain_reports().await;
    let [ReportOutcome::Retrying { after, .. }] = outcome[..] else {
        panic!("expected a retry, got {outcome:?}");
    };
    assert!(
        after > Duration::from_secs(60) && after <= Duration::from_secs(90),
        "{after:?}"
    );
    assert!(app.drain_reports().await.is_empty(), "not before the reset");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("ephemera_outbox_backlog 1"), "{metrics}");
    // What GitHub answered, by operation and status, and its budget left.
    for line in [
        r#"ephemera_github_api_requests_total{operation="apps/create-installation-access-token",status="201"} 1"#,
        r#"ephemera_github_api_requests_total{operation="issues/list-comments",status="403"} 1"#,
        "ephemera_github_rate_limit_remaining 0",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
}

async fn github_down_for_a_whole_pr_still_ends_with_the_truth(t: TestDatabase) {
    let github = MockServer::start().await;
    contract::enforce(&github).await;
    hand_out_tokens(&github, None).await;
    Mock::given(path_regex("^/repos/"))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({"message": "unavailable"})))
        .with_priority(1)
        .named("GitHub down")
        .mount(&github)
        .await;
    let app = app_reporting_to(t, &github).await;

    assert!(matches!(
        deliver_and_report(&app, &pr("opened", 1, 0)).await[..],
        [ReportOutcome::Retrying { .. }]
    ));
    assert!(matches!(
        deliver_and_report(&app, &pr("closed", 1, 10)).await[..],
        [ReportOutcome::Retrying { .. }]
    ));

    // GitHub is back.
    github.reset().await;
    contract::enforce(&github).await;
    hand_out_tokens(&github, None).await;
    accept_reports(&github, 0).await;
    app.clock.advance(Duration::from_millis(500));
    let delivered = app.drain_reports().await;
    assert!(
        matches!(delivered[..], [ReportOutcome::Delivered(_)]),
        "the newest state, once: {delivered:?}"
    );

    let calls = calls(&github).await;
    let comment = calls
        .iter()
        .find(posted_to(&format!("{REPO}/issues/2/comments")))
        .unwrap();
    assert!(
        comment.2["body"].as_str().unwrap().contains("Removed"),
        "{:?}",
        comment.2
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("ephemera_outbox_backlog 0"), "{metrics}");
}

async fn without_credentials_nothing_is_queued_for_github(t: TestDatabase) {
    let app = TestApp::spawn(t).await;
    assert!(app.reports.is_none());
    app.deliver_pr(&pr("opened", 1, 0)).await;
    app.drain().await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("ephemera_outbox_backlog 0"), "{metrics}");
}

/// `GET /repos/…/pulls/2` as GitHub answers it (the fields ephemera reads):
/// the head commit `head`, its repository (a fork's or the base's), labels.
fn pr_state(state: &str, head: u32, updated: &str, fork: bool, labels: &[&str]) -> Value {
    let base_repo = json!({"id": 186853002, "full_name": "Codertocat/Hello-World"});
    let head_repo = if fork {
        json!({"id": 999_999, "full_name": "forker/Hello-World"})
    } else {
        base_repo.clone()
    };
    json!({
        "number": 2, "state": state, "draft": false, "updated_at": updated,
        "labels": labels.iter().map(|l| json!({"name": l})).collect::<Vec<_>>(),
        "head": {"sha": format!("{head:040x}"), "repo": head_repo},
        "base": {"ref": "master", "repo": base_repo}
    })
}

/// GitHub's open PRs of the repository: what `GET /repos/…/pulls?state=open`
/// answers.
async fn pr_on_github(github: &MockServer, response: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/pulls")))
        .and(wiremock::matchers::query_param("state", "open"))
        .and(header(
            "authorization",
            format!("Bearer {INSTALLATION_TOKEN}").as_str(),
        ))
        .respond_with(response)
        .with_priority(1)
        .mount(github)
        .await;
}

/// PR #2 on GitHub, open at commit `head`, last updated at 17:00.
fn open_at(head: u32) -> Value {
    pr_state("open", head, "2019-05-15T17:00:00Z", false, &[])
}

/// GitHub's answer listing `prs` as the open PRs.
fn open_prs(prs: &[Value]) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(prs)
}

/// A fake GitHub answering the open-PR listing with `listing`, and an app
/// reporting to it whose PR #2 is ready at commit 1.
async fn ready_with_listing(t: TestDatabase, listing: ResponseTemplate) -> (MockServer, TestApp) {
    let github = fake_github().await;
    pr_on_github(&github, listing).await;
    let app = app_reporting_to(t, &github).await;
    app.ready_environment().await;
    (github, app)
}

/// One drift-repair pass over the open PRs.
async fn sync_pull_requests(app: &TestApp) -> SyncSummary {
    app.sync
        .as_ref()
        .unwrap()
        .sync_pull_requests()
        .await
        .unwrap()
}

async fn a_pr_closed_while_the_webhook_was_missed_is_destroyed(t: TestDatabase) {
    let (_github, app) = ready_with_listing(t, open_prs(&[])).await;

    let summary = sync_pull_requests(&app).await;
    assert_eq!((summary.checked, summary.destroyed), (1, 1));
    app.drain().await;
    let env = app.only_environment().await;
    assert_eq!(env["status"], "destroyed");
    assert!(
        env["status_reason"]
            .as_str()
            .unwrap()
            .contains("PR closed on GitHub"),
        "{env}"
    );
}

async fn a_newer_head_on_github_is_deployed(t: TestDatabase) {
    let (_github, app) = ready_with_listing(t, open_prs(&[open_at(9)])).await;

    assert_eq!(sync_pull_requests(&app).await.redeployed, 1);
    app.drain().await;
    let env = app.only_environment().await;
    assert_eq!(env["status"], "ready");
    assert_eq!(env["commit_sha"], format!("{:040x}", 9));
    assert_eq!(
        sync_pull_requests(&app).await.redeployed,
        0,
        "already there"
    );
}

/// A fork PR whose commit 1 a maintainer vouched for (label added by
/// someone other than the author).
fn fork_pr(action: &str, head: u32, updated_secs: u32) -> Value {
    let mut p = pr(action, head, updated_secs);
    p["pull_request"]["head"]["repo"]["id"] = json!(999_999);
    p["pull_request"]["head"]["repo"]["full_name"] = json!("forker/Hello-World");
    p["pull_request"]["user"] = json!({"login": "forker", "id": 4242});
    p["pull_request"]["labels"] = json!([{"name": "safe-to-preview"}]);
    p
}

async fn drift_repair_never_deploys_a_fork_commit_nobody_vouched_for(t: TestDatabase) {
    let github = fake_github().await;
    // The fork author pushed commit 2 and then commented, which moves the
    // PR's updated_at past everything ephemera applied.
    pr_on_github(
        &github,
        open_prs(&[pr_state(
            "open",
            2,
            "2019-05-15T17:00:00Z",
            true,
            &["safe-to-preview"],
        )]),
    )
    .await;
    let app = app_reporting_to(t, &github).await;
    let mut vouch = fork_pr("labeled", 1, 10);
    vouch["label"] = json!({"name": "safe-to-preview"});
    vouch["sender"] = json!({"login": "Codertocat", "id": 21031067});
    assert_eq!(app.deliver_pr(&vouch).await["outcome"], "applied");
    app.drain().await;
    let push = app.deliver_pr(&fork_pr("synchronize", 2, 20)).await;
    assert_eq!(push["outcome"], "ignored", "{push}");
    app.drain_reports().await;

    let summary = sync_pull_requests(&app).await;
    assert_eq!((summary.redeployed, summary.held), (0, 1), "{summary:?}");
    app.drain().await;
    app.drain_reports().await;
    let env = app.only_environment().await;
    assert_eq!(env["status"], "ready");
    assert_eq!(env["commit_sha"], format!("{:040x}", 1), "{env}");
    let deployments = app
        .json(&format!("/api/v1/environments/{}/deployments", env["id"]))
        .await;
    assert_eq!(deployments.as_array().unwrap().len(), 1, "{deployments}");

    // The sticky comment names the vouched commit and the one held back.
    let comments: Vec<String> = calls(&github)
        .await
        .into_iter()
        .filter(|(verb, url, _)| verb != "GET" && url.contains("/comments"))
        .map(|(_, _, body)| body["body"].as_str().unwrap_or_default().to_owned())
        .collect();
    let last = comments.last().unwrap();
    assert!(last.contains("| Vouched for | `0000000`"), "{last}");
    assert!(
        last.contains("commit 0000000 is not deployed")
            && last.contains("add the `safe-to-preview` label again"),
        "{last}"
    );
}

async fn drift_repair_holds_new_heads_while_the_installation_is_suspended(t: TestDatabase) {
    let (_github, app) = ready_with_listing(t, open_prs(&[open_at(9)])).await;
    app.suspend_installation().await;

    let summary = sync_pull_requests(&app).await;
    assert_eq!((summary.redeployed, summary.held), (0, 1), "{summary:?}");
    let env = app.only_environment().await;
    assert_eq!(env["commit_sha"], format!("{:040x}", 1), "{env}");
    assert_eq!(env["status"], "ready");
}

async fn drift_repair_lists_each_repository_once_and_an_unchanged_one_costs_a_304(t: TestDatabase) {
    let github = fake_github().await;
    let listing = json!([open_at(9)]);
    // GitHub's conditional request: 304 when the ETag still matches.
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/pulls")))
        .and(header("if-none-match", "\"listing-1\""))
        .respond_with(ResponseTemplate::new(304))
        .with_priority(1)
        .mount(&github)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/pulls")))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("etag", "\"listing-1\"")
                .set_body_json(listing),
        )
        .with_priority(2)
        .mount(&github)
        .await;
    let app = app_reporting_to(t, &github).await;
    app.ready_environment().await;
    // A second PR of the same repository.
    let mut other = pr("opened", 5, 0);
    other["number"] = json!(3);
    other["pull_request"]["number"] = json!(3);
    app.deliver_pr(&other).await;
    app.drain().await;

    let sync = app.sync.as_ref().unwrap();
    let first = sync.sync_pull_requests().await.unwrap();
    assert_eq!((first.checked, first.redeployed), (2, 1), "{first:?}");
    // PR #3 is not in the open list: closed while the webhook was missed.
    assert_eq!(first.destroyed, 1, "{first:?}");
    let second = sync.sync_pull_requests().await.unwrap();
    assert_eq!((second.redeployed, second.destroyed), (0, 0), "{second:?}");

    let reads: Vec<_> = github
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| {
            r.method.as_str() == "GET" && r.url.path().starts_with(&format!("{REPO}/pulls"))
        })
        .collect();
    assert_eq!(reads.len(), 2, "one listing per pass, no read per PR");
    assert!(reads[0].headers.get("if-none-match").is_none());
    assert_eq!(reads[1].headers["if-none-match"], "\"listing-1\"");
}

/// A repository with more open PRs than drift repair reads (10 pages of
/// 100): a PR not on those pages may well be open, and stays.
async fn a_pr_past_the_listings_page_cap_is_not_taken_for_closed(t: TestDatabase) {
    let github = fake_github().await;
    let next = format!(
        "<{}{REPO}/pulls?state=open&per_page=100&page=2>; rel=\"next\"",
        github.uri()
    );
    let mut other = pr_state("open", 1, "2019-05-15T16:00:00Z", false, &[]);
    other["number"] = json!(4000);
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/pulls")))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("link", next.as_str())
                .set_body_json(json!([other])),
        )
        .expect(10)
        .mount(&github)
        .await;
    let app = app_reporting_to(t, &github).await;
    app.ready_environment().await;

    let summary = sync_pull_requests(&app).await;
    assert_eq!(summary.destroyed, 0, "{summary:?}");
    let env = app.only_environment().await;
    assert_eq!(env["status"], "ready", "{env}");
}

/// Drift repair spends at most its share of `EPHEMERA_GITHUB_SYNC_BUDGET`
/// a pass: over budget, it stops and the next pass goes on from there, so
/// every repository is read in turn.
async fn drift_repair_keeps_to_its_budget_and_goes_on_where_it_stopped(t: TestDatabase) {
    let github = fake_github().await;
    Mock::given(method("GET"))
        .and(path_regex("^/repos/Codertocat/[^/]+/pulls$"))
        .respond_with(|req: &Request| {
            let repo = req.url.path().split('/').nth(3).unwrap().to_owned();
            let number = if repo == "Hello-World" { 2 } else { 7 };
            let mut listed = pr_state("open", 1, "2019-05-15T16:00:00Z", false, &[]);
            listed["number"] = json!(number);
            ResponseTemplate::new(200).set_body_json(json!([listed]))
        })
        .mount(&github)
        .await;
    let app = app_reporting_with(t, &github, |s| {
        s.workers.github_sync = Duration::from_secs(300);
        // 12 passes an hour: one listing a pass.
        s.workers.github_sync_budget = 12;
    })
    .await;
    for (n, name) in ["Hello-World", "Alpha", "Beta"].iter().enumerate() {
        let mut p = pr("opened", 1, 0);
        if *name != "Hello-World" {
            p["number"] = json!(7);
            p["pull_request"]["number"] = json!(7);
            let repo =
                json!({"full_name": format!("Codertocat/{name}"), "name": name, "id": 1000 + n});
            for at in [
                "/repository",
                "/pull_request/head/repo",
                "/pull_request/base/repo",
            ] {
                let target = p.pointer_mut(at).unwrap().as_object_mut().unwrap();
                for (k, v) in repo.as_object().unwrap() {
                    target.insert(k.clone(), v.clone());
                }
            }
        }
        app.deliver_pr(&p).await;
    }
    app.drain().await;

    let sync = app.sync.as_ref().unwrap();
    let mut listed = Vec::new();
    for _ in 0..3 {
        let before = github.received_requests().await.unwrap().len();
        let summary = sync.sync_pull_requests().await.unwrap();
        assert_eq!(summary.requests, 1, "{summary:?}");
        let new: Vec<String> = github.received_requests().await.unwrap()[before..]
            .iter()
            .filter(|r| r.url.path().ends_with("/pulls"))
            .map(|r| r.url.path().to_owned())
            .collect();
        assert_eq!(new.len(), 1, "{new:?}");
        listed.extend(new);
    }
    listed.sort();
    listed.dedup();
    assert_eq!(listed.len(), 3, "every repository in turn: {listed:?}");
    let envs = app.json("/api/v1/environments").await;
    assert!(
        envs.as_array()
            .unwrap()
            .iter()
            .all(|e| e["status"] == "ready"),
        "{envs}"
    );
}

async fn a_pr_the_app_can_no_longer_see_is_destroyed(t: TestDatabase) {
    let (_github, app) = ready_with_listing(
        t,
        ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})),
    )
    .await;

    assert_eq!(sync_pull_requests(&app).await.destroyed, 1);
    let env = app.only_environment().await;
    assert_eq!(env["status"], "destroying");
}

/// A failed delivery GitHub lists again and again (its redeliveries fail
/// too): asked for at most three times, then left to the operator.
async fn a_delivery_that_keeps_failing_is_asked_for_three_times_at_most(t: TestDatabase) {
    let github = fake_github().await;
    let app = app_reporting_to(t, &github).await;
    let sync = app.sync.as_ref().unwrap();
    for pass in 0..5 {
        // Each pass GitHub shows a newer failed attempt (the redelivery
        // that failed again), later than ephemera's request.
        github.reset().await;
        contract::enforce(&github).await;
        hand_out_tokens(&github, None).await;
        Mock::given(method("POST"))
            .and(path("/app/hook/deliveries/21/attempts"))
            .respond_with(ResponseTemplate::new(202).set_body_json(json!({})))
            .mount(&github)
            .await;
        let at = (chrono::Utc::now() + chrono::Duration::minutes(pass + 1)).to_rfc3339();
        Mock::given(method("GET"))
            .and(path("/app/hook/deliveries"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([
                {"id": 21, "guid": "keeps-failing", "event": "pull_request", "action": "opened",
                 "status_code": 502, "delivered_at": at, "redelivery": pass > 0}
            ])))
            .mount(&github)
            .await;
        let asked = sync.redeliver_missed().await.unwrap();
        assert_eq!(asked.len(), usize::from(pass < 3), "pass {pass}: {asked:?}");
    }
    let logged = app.json("/api/v1/deliveries/keeps-failing").await;
    assert!(
        logged["reason"].as_str().unwrap().contains("(3 of 3)"),
        "{logged}"
    );
}

async fn failed_deliveries_ephemera_never_saw_are_redelivered_once(t: TestDatabase) {
    let github = fake_github().await;
    let app = app_reporting_to(t, &github).await;
    app.deliver_ok("ping", "seen-and-applied", &payload("ping"))
        .await;
    let now = chrono::Utc::now().to_rfc3339();
    Mock::given(method("GET"))
        .and(path("/app/hook/deliveries"))
        .and(wiremock::matchers::header_regex(
            "authorization",
            r"^Bearer ey",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"id": 11, "guid": "seen-and-applied", "event": "ping", "action": null,
             "status_code": 502, "delivered_at": now, "redelivery": false},
            {"id": 12, "guid": "missed-during-outage", "event": "pull_request", "action": "closed",
             "status_code": 0, "delivered_at": now, "redelivery": false},
            {"id": 13, "guid": "fine", "event": "push", "action": null,
             "status_code": 200, "delivered_at": now, "redelivery": false},
            {"id": 15, "guid": "refused-for-good", "event": "pull_request", "action": "opened",
             "status_code": 401, "delivered_at": now, "redelivery": false},
            {"id": 14, "guid": "too-old", "event": "pull_request", "action": "opened",
             "status_code": 500, "delivered_at": "2019-01-01T00:00:00Z", "redelivery": false}
        ])))
        .mount(&github)
        .await;
    Mock::given(method("POST"))
        .and(path("/app/hook/deliveries/12/attempts"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({})))
        .expect(1)
        .mount(&github)
        .await;

    let sync = app.sync.as_ref().unwrap();
    assert_eq!(
        sync.redeliver_missed().await.unwrap(),
        ["missed-during-outage"]
    );
    assert!(
        sync.redeliver_missed().await.unwrap().is_empty(),
        "asked once, then waits for GitHub's redelivery"
    );
    let logged = app.json("/api/v1/deliveries/missed-during-outage").await;
    assert_eq!(logged["outcome"], "failed");
    assert!(
        logged["reason"]
            .as_str()
            .unwrap()
            .contains("redelivery requested"),
        "{logged}"
    );

    // When GitHub redelivers it, it is applied like any delivery.
    let redelivered = app
        .deliver_ok("pull_request", "missed-during-outage", &pr("opened", 1, 0))
        .await;
    assert_eq!(redelivered["outcome"], "applied");
}

/// `.github/ephemera.yml` as the contents API answers it, with `sha` as
/// its blob SHA (parsed files are kept by it).
fn config_file(yaml: &str, sha: &str) -> ResponseTemplate {
    use base64::Engine as _;
    ResponseTemplate::new(200).set_body_json(json!({
        "type": "file", "size": yaml.len(), "name": "ephemera.yml",
        "path": ".github/ephemera.yml", "sha": sha,
        "encoding": "base64",
        "content": base64::engine::general_purpose::STANDARD.encode(yaml),
    }))
}

async fn a_repositorys_effective_configuration_says_where_each_value_came_from(t: TestDatabase) {
    let github = MockServer::start().await;
    contract::enforce(&github).await;
    hand_out_tokens(&github, Some(0..=1)).await;
    let app = app_reporting_with(t, &github, |s| {
        s.repo_config.bounds.max_ttl = Some(Duration::from_secs(86_400));
        s.repo_config.max_active_per_installation = Some(10);
    })
    .await;
    const CONFIG: &str = "/api/v1/repositories/Codertocat/Hello-World/config";
    let unknown = app.problem(CONFIG, 404).await;
    assert!(
        unknown["detail"]
            .as_str()
            .unwrap()
            .contains("Codertocat/Hello-World"),
        "{unknown}"
    );

    let mut installed = payload("installation.created");
    installed["installation"]["id"] = json!(1);
    app.deliver_ok("installation", &support::delivery_id(), &installed)
        .await;
    let contents = format!("{REPO}/contents/.github/ephemera.yml");
    let at = |m: wiremock::MockBuilder| {
        m.and(method("GET"))
            .and(path(contents.as_str()))
            .and(header(
                "authorization",
                format!("Bearer {INSTALLATION_TOKEN}").as_str(),
            ))
    };
    at(Mock::given(query_param_is_missing("ref")))
        .respond_with(config_file(
            "version: 1\npreviews:\n  ttl: 3d\n  skip_authors: ['dependabot[bot]']\n",
            "3d21ec53a331a6f037a91c368710b99387d012c1",
        ))
        .expect(1)
        .mount(&github)
        .await;
    at(Mock::given(query_param("ref", "broken")))
        .respond_with(config_file(
            "version: 1\npreviews:\n  mdoe: off\n",
            "0000000000000000000000000000000000000bad",
        ))
        .mount(&github)
        .await;
    at(Mock::given(query_param("ref", "down")))
        .respond_with(ResponseTemplate::new(502).set_body_json(json!({"message": "Bad gateway"})))
        .mount(&github)
        .await;

    // The default branch: the file, cut to the bounds.
    let config = app.json(CONFIG).await;
    assert_eq!(config["repository"], "Codertocat/Hello-World");
    assert_eq!(config["installation_id"], 1);
    assert_eq!(
        config["source"],
        json!({"kind": "file", "file": ".github/ephemera.yml", "ref": null,
               "blob_sha": "3d21ec53a331a6f037a91c368710b99387d012c1", "reason": null})
    );
    let values = &config["values"];
    assert_eq!(
        values["previews.ttl"],
        json!({"value": "1d", "source": "bound"})
    );
    assert_eq!(
        values["previews.skip_authors"],
        json!({"value": ["dependabot[bot]"], "source": "file"})
    );
    assert_eq!(
        values["previews.mode"],
        json!({"value": "auto", "source": "default"})
    );
    assert_eq!(
        values["previews.max_active"],
        json!({"value": null, "source": "default"})
    );
    assert_eq!(values["env"], json!({"value": {}, "source": "default"}));
    assert_eq!(
        values["previews.sleep_after"],
        json!({"value": null, "source": "default"})
    );
    assert_eq!(
        config["refused"],
        json!(["`previews.ttl: 3d` is longer than this server allows; 1d applies"])
    );
    assert_eq!(config["bounds"]["max_ttl"], "1d");
    assert_eq!(config["bounds"]["max_active_per_installation"], 10);
    assert_eq!(config["bounds"]["keys"].as_array().unwrap().len(), 10);
    assert_eq!(config["invalid"], Value::Null);

    // An invalid file: the error with its line, and the defaults.
    let broken = app.json(&format!("{CONFIG}?ref=broken")).await;
    assert_eq!(broken["source"]["kind"], "defaults");
    assert_eq!(broken["source"]["ref"], "broken");
    let error = broken["invalid"]["error"].as_str().unwrap();
    assert!(
        error.starts_with("line 3, column 3: ") && error.contains("unknown field `mdoe`"),
        "{broken}"
    );
    assert_eq!(broken["values"]["previews.ttl"]["source"], "default");

    // GitHub unavailable: 503, try again.
    let down = app.problem(&format!("{CONFIG}?ref=down"), 503).await;
    assert!(
        down["detail"].as_str().unwrap().contains("GitHub"),
        "{down}"
    );
    app.problem(&format!("{CONFIG}?ref=a%20b"), 400).await;
}

/// Without a GitHub App the defaults apply, and the answer says why; the
/// schema is served to anyone.
async fn without_github_a_repositorys_configuration_is_the_defaults(t: TestDatabase) {
    let app = TestApp::spawn_with(t, |s| s.api_token = Some(support::token())).await;
    let mut installed = payload("installation.created");
    installed["installation"]["id"] = json!(1);
    app.deliver_ok("installation", &support::delivery_id(), &installed)
        .await;
    let config = app
        .json("/api/v1/repositories/codertocat/hello-world/config")
        .await;
    assert_eq!(config["source"]["kind"], "defaults");
    assert_eq!(
        config["source"]["reason"],
        "GitHub App not configured: no file can be read"
    );
    let anonymous = app
        .client
        .get(format!(
            "{}/api/v1/repositories/codertocat/hello-world/config",
            app.address
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    let schema = app
        .client
        .get(format!("{}/api/v1/config-schema", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(schema.status(), 200);
    assert_eq!(schema.headers()["content-type"], "application/schema+json");
    let schema: Value = schema.json().await.unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
}

backend_tests!(
    a_repositorys_effective_configuration_says_where_each_value_came_from,
    without_github_a_repositorys_configuration_is_the_defaults,
    a_change_under_way_is_reported_after_the_delay_an_outcome_at_once,
    drift_repair_keeps_to_its_budget_and_goes_on_where_it_stopped,
    a_pr_past_the_listings_page_cap_is_not_taken_for_closed,
    a_marker_comment_a_person_wrote_is_left_alone,
    drift_repair_lists_each_repository_once_and_an_unchanged_one_costs_a_304,
    pushes_faster_than_github_answers_still_end_every_commit_and_deployment,
    drift_repair_never_deploys_a_fork_commit_nobody_vouched_for,
    drift_repair_holds_new_heads_while_the_installation_is_suspended,
    a_pr_closed_while_the_webhook_was_missed_is_destroyed,
    a_newer_head_on_github_is_deployed,
    a_pr_the_app_can_no_longer_see_is_destroyed,
    failed_deliveries_ephemera_never_saw_are_redelivered_once,
    a_delivery_that_keeps_failing_is_asked_for_three_times_at_most,
    a_pr_lifecycle_shows_one_comment_statuses_and_deployments,
    github_errors_are_retried_until_delivered_once,
    a_rate_limit_waits_for_the_reset,
    github_down_for_a_whole_pr_still_ends_with_the_truth,
    without_credentials_nothing_is_queued_for_github,
);
