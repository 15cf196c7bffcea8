//! The GitHub adapter against a fake GitHub (wiremock) that checks paths,
//! methods, bodies and the Authorization header.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ephemera_application::ports::{
    CommitState, DeploymentState, GitHubReporter, PullRequestRef, ReportError,
};
use ephemera_domain::{CommitSha, InstallationId, PrNumber, RepositoryFullName};
use ephemera_github::{COMMENT_MARKER, GitHubApp};
use serde_json::json;
use wiremock::matchers::{body_partial_json, header, header_regex, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const KEY: &[u8] = include_bytes!("fixtures/test-app-key.pem");
const TOKEN: &str = "ghs_test_installation_token";

fn pr() -> PullRequestRef {
    PullRequestRef {
        installation: InstallationId::new(1).unwrap(),
        repository: RepositoryFullName::parse("Codertocat/Hello-World").unwrap(),
        number: PrNumber::new(2).unwrap(),
    }
}

fn sha() -> CommitSha {
    CommitSha::parse("ec26c3e57ca3a959ca5aad62de7213c562f8c821").unwrap()
}

/// A fake GitHub that hands out one installation token, exactly once.
async fn github() -> (MockServer, GitHubApp) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/app/installations/1/access_tokens"))
        .and(header_regex(
            "authorization",
            r"^Bearer ey[\w-]+\.[\w-]+\.[\w-]+$",
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "token": TOKEN,
            "expires_at": (chrono_like_in_an_hour()),
            "permissions": {}, "repository_selection": "all"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let app = GitHubApp::new(42, KEY, &server.uri()).unwrap();
    (server, app)
}

fn chrono_like_in_an_hour() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    // RFC 3339 in UTC without pulling a date crate into the test.
    let days = secs / 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn authed(m: wiremock::MockBuilder) -> wiremock::MockBuilder {
    m.and(header("authorization", format!("Bearer {TOKEN}").as_str()))
}

#[tokio::test]
async fn the_installation_token_is_fetched_once_and_reused() {
    let (server, app) = github().await;
    authed(Mock::given(method("POST")).and(path(format!(
        "/repos/Codertocat/Hello-World/statuses/{}",
        sha()
    ))))
    .and(body_partial_json(json!({
        "state": "pending", "context": "ephemera/preview", "description": "Deploying ec26c3e"
    })))
    .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 1})))
    .expect(2)
    .mount(&server)
    .await;
    for _ in 0..2 {
        app.set_commit_status(
            &pr(),
            &sha(),
            CommitState::Pending,
            None,
            "Deploying ec26c3e",
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn one_comment_is_created_then_edited_in_place() {
    let (server, app) = github().await;
    authed(Mock::given(method("GET")).and(path("/repos/Codertocat/Hello-World/issues/2/comments")))
        .and(query_param("per_page", "100"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"id": 3, "body": "LGTM"}
        ])))
        .expect(1)
        .mount(&server)
        .await;
    authed(
        Mock::given(method("POST")).and(path("/repos/Codertocat/Hello-World/issues/2/comments")),
    )
    .respond_with(|req: &Request| {
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
        assert!(body["body"].as_str().unwrap().starts_with(COMMENT_MARKER));
        ResponseTemplate::new(201).set_body_json(json!({"id": 77, "body": body["body"]}))
    })
    .expect(1)
    .mount(&server)
    .await;
    authed(
        Mock::given(method("PATCH")).and(path("/repos/Codertocat/Hello-World/issues/comments/77")),
    )
    .and(body_partial_json(
        json!({"body": format!("{COMMENT_MARKER}\nready")}),
    ))
    .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 77, "body": "x"})))
    .expect(1)
    .mount(&server)
    .await;

    let id = app.upsert_comment(&pr(), None, "deploying").await.unwrap();
    assert_eq!(id, 77);
    assert_eq!(
        app.upsert_comment(&pr(), Some(id), "ready").await.unwrap(),
        77
    );
}

#[tokio::test]
async fn an_existing_comment_is_found_by_its_marker() {
    let (server, app) = github().await;
    authed(Mock::given(method("GET")).and(path("/repos/Codertocat/Hello-World/issues/2/comments")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"id": 3, "body": "LGTM"},
            {"id": 5, "body": format!("{COMMENT_MARKER}\nold")}
        ])))
        .mount(&server)
        .await;
    authed(
        Mock::given(method("PATCH")).and(path("/repos/Codertocat/Hello-World/issues/comments/5")),
    )
    .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 5})))
    .expect(1)
    .mount(&server)
    .await;
    Mock::given(method("POST"))
        .and(path("/repos/Codertocat/Hello-World/issues/2/comments"))
        .respond_with(ResponseTemplate::new(201))
        .expect(0)
        .mount(&server)
        .await;

    assert_eq!(app.upsert_comment(&pr(), None, "new").await.unwrap(), 5);
}

#[tokio::test]
async fn deployments_are_transient_previews_with_statuses() {
    let (server, app) = github().await;
    authed(Mock::given(method("POST")).and(path("/repos/Codertocat/Hello-World/deployments")))
        .and(body_partial_json(json!({
            "ref": sha().as_str(),
            "environment": "preview/pr-2",
            "transient_environment": true,
            "production_environment": false,
            "auto_merge": false,
            "required_contexts": [],
        })))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 9})))
        .expect(1)
        .mount(&server)
        .await;
    authed(
        Mock::given(method("POST"))
            .and(path("/repos/Codertocat/Hello-World/deployments/9/statuses")),
    )
    .and(body_partial_json(
        json!({"state": "success", "environment_url": "https://pr-2.example.com"}),
    ))
    .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 1})))
    .expect(1)
    .mount(&server)
    .await;

    let id = app
        .create_deployment(&pr(), &sha(), "preview/pr-2", "ephemera preview")
        .await
        .unwrap();
    assert_eq!(id, 9);
    app.create_deployment_status(
        &pr(),
        id,
        DeploymentState::Success,
        Some("https://pr-2.example.com".to_owned()),
        "ready",
    )
    .await
    .unwrap();
}

async fn status_error(response: ResponseTemplate) -> ReportError {
    let (server, app) = github().await;
    Mock::given(method("POST"))
        .and(path(format!(
            "/repos/Codertocat/Hello-World/statuses/{}",
            sha()
        )))
        .respond_with(response)
        .mount(&server)
        .await;
    app.set_commit_status(&pr(), &sha(), CommitState::Success, None, "ok")
        .await
        .unwrap_err()
}

fn github_error(status: u16) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "message": "nope", "documentation_url": "https://docs.github.com"
    }))
}

#[tokio::test]
async fn errors_are_sorted_into_retry_gone_and_refused() {
    assert!(matches!(
        status_error(github_error(502)).await,
        ReportError::Retry { after: None, .. }
    ));
    assert!(matches!(
        status_error(github_error(404)).await,
        ReportError::Gone(_)
    ));
    assert!(matches!(
        status_error(github_error(422)).await,
        ReportError::Refused(_)
    ));

    let limited = github_error(429).insert_header("retry-after", "7");
    assert_eq!(
        status_error(limited).await,
        ReportError::Retry {
            message: "setting the commit status: 429 nope".into(),
            after: Some(Duration::from_secs(7)),
        }
    );

    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 120;
    let exhausted = github_error(403)
        .insert_header("x-ratelimit-remaining", "0")
        .insert_header("x-ratelimit-reset", reset.to_string().as_str());
    let ReportError::Retry {
        after: Some(after), ..
    } = status_error(exhausted).await
    else {
        panic!("a rate limit waits for the reset");
    };
    assert!(
        after > Duration::from_secs(100) && after <= Duration::from_secs(120),
        "{after:?}"
    );
}

#[test]
fn a_malformed_key_is_refused_with_the_variable_named() {
    let err = GitHubApp::new(42, b"not a key", "https://api.github.com").unwrap_err();
    assert!(
        err.to_string().starts_with("GITHUB_APP_PRIVATE_KEY:"),
        "{err}"
    );
}
