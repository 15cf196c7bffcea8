//! /metrics, /api/openapi.json and /docs, black-box.

#![allow(clippy::unwrap_used)]

mod support;

use ephemera_persistence::backend_tests;
use ephemera_persistence::testing::TestDatabase;
use serde_json::Value;
use support::{TestApp, payload};

async fn metrics_count_requests_deliveries_environments_and_runs(t: TestDatabase) {
    let app = TestApp::spawn(t).await;
    app.deliver_ok("pull_request", "m-1", &payload("pull_request.opened"))
        .await;
    app.deliver_ok("push", "m-2", &payload("push")).await;
    app.drain().await;
    app.get("/api/v1/environments/1").await;
    app.get("/api/v1/environments/2").await;

    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    let has = |needle: &str| assert!(text.contains(needle), "missing `{needle}` in\n{text}");
    has(
        r#"ephemera_http_requests_total{method="GET",route="/api/v1/environments/{id}",status="200"} 1"#,
    );
    has(
        r#"ephemera_http_requests_total{method="GET",route="/api/v1/environments/{id}",status="404"} 1"#,
    );
    has(
        r#"ephemera_http_request_duration_seconds_bucket{method="POST",route="/api/v1/github/webhook""#,
    );
    has(r#"ephemera_webhook_deliveries_total{event="pull_request",outcome="applied"} 1"#);
    has(r#"ephemera_webhook_deliveries_total{event="push",outcome="ignored"} 1"#);
    has(r#"ephemera_environments{status="ready"} 1"#);
    has("ephemera_reconciler_backlog 0");
    has(
        r#"ephemera_provisioner_run_duration_seconds_count{action="provision",outcome="ok",provisioner="dry-run"} 1"#,
    );
}

async fn every_documented_route_is_served(t: TestDatabase) {
    let app = TestApp::spawn(t).await;
    let doc = app.json("/api/openapi.json").await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{id}", "1")
            .replace("{namespace}", "pr-1-x")
            .replace("{delivery_id}", "d-1")
            .replace("{owner}", "octo")
            .replace("{repo}", "app");
        for method in item.as_object().unwrap().keys() {
            let url = format!("{}{concrete}", app.address);
            let request = match method.as_str() {
                "get" => app.client.get(&url),
                "post" => app.client.post(&url),
                "delete" => app.client.delete(&url),
                other => panic!("unexpected method {other}"),
            };
            let response = request.send().await.unwrap();
            let status = response.status();
            let body = response.text().await.unwrap();
            assert!(
                !body.contains("no route for"),
                "{method} {path} is documented but not served ({status})"
            );
        }
    }
}

async fn docs_page_and_its_assets_are_served_without_a_cdn(t: TestDatabase) {
    let app = TestApp::spawn(t).await;
    let page = app.get("/docs").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("/api/openapi.json"));
    assert!(!html.contains("https://"), "no external assets: {html}");
    for asset in ["/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css"] {
        let response = app.get(asset).await;
        assert_eq!(response.status(), 200, "{asset}");
        assert!(
            response.bytes().await.unwrap().len() > 100_000,
            "{asset} is the real bundle"
        );
    }
    let _: Value = app.json("/api/openapi.json").await;
}

backend_tests!(
    metrics_count_requests_deliveries_environments_and_runs,
    every_documented_route_is_served,
    docs_page_and_its_assets_are_served_without_a_cdn,
);
