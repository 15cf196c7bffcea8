//! Who may read: with `EPHEMERA_API_TOKEN` set every `/api/v1` read and
//! `/metrics` need it; the webhook, health probes and API docs stay public.

#![allow(clippy::unwrap_used)]

mod support;

use ephemera_persistence::backend_tests;
use ephemera_persistence::testing::TestDatabase;
use serde_json::Value;
use support::{TOKEN, TestApp, payload};

/// Every read the API serves, plus a path it does not: an anonymous
/// caller must not learn which exist.
const READS: &[&str] = &[
    "/api/v1/environments",
    "/api/v1/environments/1",
    "/api/v1/environments/namespace/pr-2-hello-world-0123456789",
    "/api/v1/environments/1/deployments",
    "/api/v1/deployments/1",
    "/api/v1/deliveries",
    "/api/v1/deliveries/d-1",
    "/api/v1/no-such-route",
    "/metrics",
];

const PUBLIC: &[&str] = &[
    "/health",
    "/health/live",
    "/health/ready",
    "/api/openapi.json",
    "/docs",
];

async fn assert_unauthorized(response: reqwest::Response, what: &str) {
    assert_eq!(response.status(), 401, "{what}");
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"ephemera\"",
        "{what}"
    );
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json",
        "{what}"
    );
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["type"], "/problems/unauthorized", "{what}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("EPHEMERA_API_TOKEN"),
        "{what}: {problem}"
    );
}

/// GETs each of `paths` without a token and asserts a 200.
async fn assert_anonymous_reads_answer(app: &TestApp, paths: &[&str]) {
    for path in paths {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await;
        assert_eq!(response.unwrap().status(), 200, "GET {path}");
    }
}

async fn reads_need_the_token_when_one_is_configured(t: TestDatabase) {
    let app = TestApp::spawn_with(t, |s| s.api_token = Some(support::token())).await;
    app.deliver_ok("pull_request", "a-1", &payload("pull_request.opened"))
        .await;
    app.drain().await;

    for path in READS {
        let url = format!("{}{path}", app.address);
        let anonymous = app.client.get(&url).send().await.unwrap();
        assert_unauthorized(anonymous, &format!("anonymous GET {path}")).await;
        let wrong = app
            .client
            .get(&url)
            .bearer_auth("not-the-token-but-long-enough")
            .send()
            .await
            .unwrap();
        assert_unauthorized(wrong, &format!("wrong token GET {path}")).await;
        let other_scheme = app
            .client
            .get(&url)
            .basic_auth("admin", Some(TOKEN))
            .send()
            .await
            .unwrap();
        assert_unauthorized(other_scheme, &format!("basic auth GET {path}")).await;
    }
    // The right token, with stray whitespace around it, opens them.
    for path in READS {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .header("Authorization", format!("Bearer  {TOKEN} "))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        if path.contains("no-such") || path.ends_with("/d-1") || path.contains("/namespace/") {
            assert_eq!(status, 404, "GET {path}");
        } else {
            assert_eq!(status, 200, "GET {path}");
        }
    }
    // Public without a token: probes, API docs, and the webhook (which
    // has its own signature).
    assert_anonymous_reads_answer(&app, PUBLIC).await;
    app.deliver_ok("ping", "a-2", &payload("ping")).await;
}

async fn anonymous_reads_can_be_opted_into_while_writes_keep_the_token(t: TestDatabase) {
    let app = TestApp::spawn_with(t, |s| {
        s.api_token = Some(support::token());
        s.anonymous_reads = true;
    })
    .await;
    app.deliver_ok("pull_request", "a-1", &payload("pull_request.opened"))
        .await;
    app.drain().await;
    assert_anonymous_reads_answer(
        &app,
        &["/api/v1/environments", "/api/v1/environments/1", "/metrics"],
    )
    .await;
    let write = app
        .client
        .post(format!("{}/api/v1/environments/1/redeploy", app.address))
        .send()
        .await
        .unwrap();
    assert_unauthorized(write, "anonymous redeploy").await;
}

async fn on_loopback_without_a_token_reads_are_open_and_writes_say_how_to_enable_them(
    t: TestDatabase,
) {
    let app = TestApp::spawn(t).await;
    assert_anonymous_reads_answer(
        &app,
        &["/api/v1/environments", "/api/v1/deliveries", "/metrics"],
    )
    .await;
    // Whatever token a write brings, short or long.
    for token in ["anything", "anything-at-all-here"] {
        let write = app
            .client
            .delete(format!("{}/api/v1/environments/1", app.address))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(write.status(), 401, "{token}");
        let problem: Value = write.json().await.unwrap();
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("writes are disabled: set EPHEMERA_API_TOKEN"),
            "{token}: {problem}"
        );
    }
}

backend_tests!(
    reads_need_the_token_when_one_is_configured,
    anonymous_reads_can_be_opted_into_while_writes_keep_the_token,
    on_loopback_without_a_token_reads_are_open_and_writes_say_how_to_enable_them,
);
