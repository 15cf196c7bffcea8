//! What every test of the adapter starts from: a fake GitHub that enforces
//! GitHub's contract and hands out one installation token, and the PR the
//! tests report on.

#![allow(clippy::unwrap_used, dead_code)]

use ephemera_application::ports::PullRequestRef;
use ephemera_domain::{CommitSha, InstallationId, PrNumber, RepositoryFullName};
use ephemera_github::GitHubApp;
use ephemera_github_contract as contract;
use serde_json::json;
use wiremock::matchers::{any, header, header_regex, method, path};
use wiremock::{Mock, MockBuilder, MockServer, ResponseTemplate};

pub const KEY: &[u8] = include_bytes!("../fixtures/test-app-key.pem");
pub const TOKEN: &str = "ghs_test_installation_token";

/// The repository every test's PR lives in, as the paths name it.
pub const REPO: &str = "/repos/Codertocat/Hello-World";

pub fn repository() -> RepositoryFullName {
    RepositoryFullName::parse("Codertocat/Hello-World").unwrap()
}

pub fn installation() -> InstallationId {
    InstallationId::new(1).unwrap()
}

pub fn pr() -> PullRequestRef {
    PullRequestRef {
        installation: installation(),
        repository: repository(),
        number: PrNumber::new(2).unwrap(),
    }
}

pub fn sha() -> CommitSha {
    CommitSha::parse("ec26c3e57ca3a959ca5aad62de7213c562f8c821").unwrap()
}

/// A fake GitHub that enforces GitHub's contract on every request and
/// hands out one installation token, exactly once.
pub async fn github() -> (MockServer, GitHubApp) {
    let server = MockServer::start().await;
    contract::enforce(&server).await;
    Mock::given(method("POST"))
        .and(path("/app/installations/1/access_tokens"))
        .and(header_regex(
            "authorization",
            r"^Bearer ey[\w-]+\.[\w-]+\.[\w-]+$",
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "token": TOKEN,
            "expires_at": (in_an_hour()),
            "permissions": {}, "repository_selection": "all"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let app = GitHubApp::new(42, KEY, &server.uri()).unwrap();
    (server, app)
}

/// A fake GitHub that expects no request at all.
pub async fn github_unasked() -> (MockServer, GitHubApp) {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(500))
        .named("no request at all")
        .expect(0)
        .mount(&server)
        .await;
    let app = GitHubApp::new(42, KEY, &server.uri()).unwrap();
    (server, app)
}

/// An hour from now, RFC 3339 in UTC, as GitHub writes `expires_at`.
pub fn in_an_hour() -> String {
    (chrono::Utc::now() + chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub fn authed(m: MockBuilder) -> MockBuilder {
    m.and(header("authorization", format!("Bearer {TOKEN}").as_str()))
}

/// A `verb` request to `rest` below the repository's path, whatever its
/// token (wrap it in [`authed`] to ask for the installation's).
pub fn to_repo(verb: &str, rest: &str) -> MockBuilder {
    Mock::given(method(verb)).and(path(format!("{REPO}{rest}")))
}
