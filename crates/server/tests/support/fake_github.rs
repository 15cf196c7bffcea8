//! A fake GitHub (wiremock) for the black-box tests: it hands out
//! installation tokens, accepts ephemera's reports, and refuses (failing
//! the test) any request GitHub's OpenAPI description would refuse.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use ephemera_github_contract as contract;
use ephemera_persistence::testing::TestDatabase;
use ephemera_server::config::GitHubSettings;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use super::TestApp;

pub const KEY: &str = include_str!("../../../github/tests/fixtures/test-app-key.pem");
pub const INSTALLATION_TOKEN: &str = "ghs_fake_installation_token";
pub const REPO: &str = "/repos/Codertocat/Hello-World";

/// A fake GitHub that accepts everything ephemera sends and numbers what
/// it creates.
pub async fn fake_github() -> MockServer {
    fake_github_for_replicas(1).await
}

/// [`fake_github`] for `replicas` replicas of the app.
pub async fn fake_github_for_replicas(replicas: u64) -> MockServer {
    let server = MockServer::start().await;
    contract::enforce(&server).await;
    // The installation token is cached: fetched once at most by each
    // replica.
    hand_out_tokens(&server, Some(0..=replicas)).await;
    accept_reports(&server, 0).await;
    server
}

/// GitHub's installation-token exchange.
pub async fn hand_out_tokens(server: &MockServer, times: Option<std::ops::RangeInclusive<u64>>) {
    let mock = Mock::given(method("POST"))
        .and(path("/app/installations/1/access_tokens"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "token": INSTALLATION_TOKEN, "expires_at": "2099-01-01T00:00:00Z",
            "permissions": {"pull_requests": "write"}, "repository_selection": "all"
        })));
    match times {
        Some(times) => mock.expect(times),
        None => mock,
    }
    .mount(server)
    .await;
}

pub async fn accept_reports(server: &MockServer, priority: u8) {
    let authed = |m: wiremock::MockBuilder| {
        m.and(header(
            "authorization",
            format!("Bearer {INSTALLATION_TOKEN}").as_str(),
        ))
    };
    authed(Mock::given(method("GET")).and(path_regex(format!("^{REPO}/issues/[0-9]+/comments$"))))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .with_priority(priority + 5)
        .mount(server)
        .await;
    authed(Mock::given(method("POST")).and(path_regex(format!("^{REPO}/issues/[0-9]+/comments$"))))
        .respond_with(|req: &Request| {
            let body: Value = serde_json::from_slice(&req.body).unwrap();
            let number: u64 = req.url.path().split('/').nth(5).unwrap().parse().unwrap();
            ResponseTemplate::new(201)
                .set_body_json(json!({"id": comment_id(number), "body": body["body"]}))
        })
        .with_priority(priority + 5)
        .mount(server)
        .await;
    authed(
        Mock::given(method("PATCH")).and(path_regex(format!("^{REPO}/issues/comments/[0-9]+$"))),
    )
    .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 100})))
    .with_priority(priority + 5)
    .mount(server)
    .await;
    authed(
        Mock::given(method("POST")).and(path_regex(format!("^{REPO}/statuses/[0-9a-f]{{40}}$"))),
    )
    .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 1})))
    .with_priority(priority + 5)
    .mount(server)
    .await;
    let next = Arc::new(AtomicI64::new(500));
    authed(Mock::given(method("POST")).and(path(format!("{REPO}/deployments"))))
        .respond_with(move |_: &Request| {
            ResponseTemplate::new(201)
                .set_body_json(json!({"id": next.fetch_add(1, Ordering::SeqCst)}))
        })
        .with_priority(priority + 5)
        .mount(server)
        .await;
    authed(
        Mock::given(method("POST"))
            .and(path_regex(format!("^{REPO}/deployments/[0-9]+/statuses$"))),
    )
    .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 1})))
    .with_priority(priority + 5)
    .mount(server)
    .await;
    let next = Arc::new(AtomicI64::new(900));
    authed(Mock::given(method("POST")).and(path(format!("{REPO}/check-runs"))))
        .respond_with(move |_: &Request| {
            ResponseTemplate::new(201).set_body_json(
                json!({"id": next.fetch_add(1, Ordering::SeqCst), "name": "ephemera preview"}),
            )
        })
        .with_priority(priority + 5)
        .mount(server)
        .await;
    authed(Mock::given(method("PATCH")).and(path_regex(format!("^{REPO}/check-runs/[0-9]+$"))))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": 1, "name": "ephemera preview"})),
        )
        .with_priority(priority + 5)
        .mount(server)
        .await;
}

pub async fn app_reporting_to(t: TestDatabase, github: &MockServer) -> TestApp {
    app_reporting_with(t, github, |_| {}).await
}

/// [`app_reporting_to`] with settings adjusted first.
pub async fn app_reporting_with(
    t: TestDatabase,
    github: &MockServer,
    configure: impl FnOnce(&mut ephemera_server::Settings),
) -> TestApp {
    let api_url = github.uri();
    TestApp::spawn_with(t, move |s| {
        // Long enough that a drain stops after one failed attempt.
        s.workers.retry_base = Duration::from_millis(200);
        s.github = Some(GitHubSettings {
            app_id: 42,
            private_key: KEY.to_owned().into(),
            api_url,
        });
        configure(s);
    })
    .await
}

/// (method, path, JSON body) of every request GitHub received, token
/// exchange left out.
pub async fn calls(github: &MockServer) -> Vec<(String, String, Value)> {
    github
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| !r.url.path().ends_with("/access_tokens"))
        .map(|r| {
            let body = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            (r.method.to_string(), r.url.path().to_owned(), body)
        })
        .collect()
}

/// Picks, among [`calls`], the POSTs to `path`.
pub fn posted_to(path: &str) -> impl Fn(&&(String, String, Value)) -> bool {
    move |(m, p, _)| m == "POST" && p == path
}

/// The id the fake gives ephemera's comment on PR `number` (100 on PR #2).
pub fn comment_id(number: u64) -> u64 {
    98 + number
}
