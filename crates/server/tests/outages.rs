//! The database goes away under the running service: every read, write and
//! webhook delivery answers 503 problem+json with `Retry-After` and changes
//! nothing, and the service recovers on its own, without a restart, once
//! the database is back. An unexpected failure is an opaque 500 whose cause
//! goes to the log.
//!
//! Two outages against real PostgreSQL (run when `TEST_DATABASE_URL` is
//! set, required under `CI=true`): PostgreSQL stopped, as the app sees it
//! (it connects through a proxy the test shuts down: connections refused,
//! pooled ones cut), and PostgreSQL refusing connections to the database
//! (`ALLOW_CONNECTIONS false`, pooled connections terminated).

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use ephemera_persistence::testing::{Backend, TestDatabase};
use futures::future::join_all;
use sea_orm::ConnectionTrait as _;
use serde_json::Value;
use support::pg_proxy::PgProxy;
use support::{TOKEN, TestApp, payload};

/// What a client may see of an outage: nothing of its cause.
const CAUSES: &[&str] = &[
    "refused",
    "terminat",
    "sqlx",
    "pool",
    "ephemera_test_",
    "127.0.0.1",
    "not currently accepting",
];

/// The environment the seeding delivery created: (id, namespace).
async fn seed(app: &TestApp) -> (i64, String) {
    let answer = app
        .deliver_ok("pull_request", "before", &payload("pull_request.opened"))
        .await;
    assert_eq!(answer["outcome"], "applied", "{answer}");
    let list = app.json("/api/v1/environments").await;
    let env = &list[0];
    (
        env["id"].as_i64().unwrap(),
        env["namespace"].as_str().unwrap().to_owned(),
    )
}

async fn assert_unavailable(response: reqwest::Response, what: &str) {
    assert_eq!(response.status(), 503, "{what}");
    assert_eq!(response.headers()["retry-after"], "5", "{what}");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json",
        "{what}"
    );
    let text = response.text().await.unwrap();
    let problem: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(problem["type"], "/problems/unavailable", "{what}: {text}");
    assert_eq!(problem["status"], 503, "{what}: {text}");
    assert_eq!(problem["title"], "Service Unavailable", "{what}: {text}");
    for cause in CAUSES {
        assert!(!text.contains(cause), "{what} leaks `{cause}`: {text}");
    }
}

/// Every read, both writes and a webhook delivery, at once (each may wait
/// out the pool's acquire timeout): all 503.
async fn assert_everything_unavailable(app: &TestApp, id: i64, namespace: &str) {
    let url = |path: String| format!("{}{path}", app.address);
    let requests = [
        app.client.get(url("/api/v1/environments".into())),
        app.client.get(url(format!("/api/v1/environments/{id}"))),
        app.client
            .get(url(format!("/api/v1/environments/{id}/deployments"))),
        app.client
            .get(url(format!("/api/v1/environments/namespace/{namespace}"))),
        app.client.get(url("/api/v1/deployments/1".into())),
        app.client.get(url("/api/v1/deliveries".into())),
        app.client.get(url("/api/v1/deliveries/before".into())),
        app.client
            .post(url(format!("/api/v1/environments/{id}/redeploy"))),
        app.client.delete(url(format!("/api/v1/environments/{id}"))),
    ];
    let answers = join_all(requests.into_iter().map(|request| async {
        let request = request.bearer_auth(TOKEN).build().unwrap();
        let what = format!("{} {}", request.method(), request.url().path());
        (what, app.client.execute(request).await.unwrap())
    }));
    let closed = payload("pull_request.closed");
    let delivery = app.deliver("pull_request", "during", &closed);
    let (answers, delivery) = futures::join!(answers, delivery);
    for (what, response) in answers {
        assert_unavailable(response, &what).await;
    }
    assert_unavailable(delivery, "the webhook").await;
}

/// The same app, not restarted, reads, writes and takes deliveries again;
/// the delivery refused during the outage was not recorded, so its
/// redelivery is applied.
async fn assert_recovered(app: &TestApp, id: i64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let response = app.get(&format!("/api/v1/environments/{id}")).await;
        if response.status() == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still {} after the database came back",
            response.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let env = app.json(&format!("/api/v1/environments/{id}")).await;
    assert_eq!(
        env["status"], "pending",
        "the refused DELETE changed nothing"
    );
    let deployments = app
        .json(&format!("/api/v1/environments/{id}/deployments"))
        .await;
    assert_eq!(
        deployments.as_array().unwrap().len(),
        1,
        "the refused redeploy queued nothing: {deployments}"
    );

    let redeploy = app
        .client
        .post(format!("{}/api/v1/environments/{id}/redeploy", app.address))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(redeploy.status(), 202, "a write after the outage");

    let again = app
        .deliver_ok("pull_request", "during", &payload("pull_request.closed"))
        .await;
    assert_eq!(again["outcome"], "applied", "{again}");
    let env = app.json(&format!("/api/v1/environments/{id}")).await;
    assert_eq!(env["status"], "destroying");
}

fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap()
}

/// PostgreSQL stopped, as far as the app can tell: its port refuses
/// connections and the pooled ones are cut. Then it comes back.
#[tokio::test]
async fn every_path_is_503_while_postgresql_is_stopped_and_recovers_without_restart() {
    let Some(t) = TestDatabase::migrated(Backend::Postgres).await else {
        return;
    };
    let server = url::Url::parse(&t.url).unwrap();
    let upstream =
        tokio::net::lookup_host((server.host_str().unwrap(), server.port().unwrap_or(5432)))
            .await
            .unwrap()
            .next()
            .unwrap();
    let proxy = PgProxy::start(upstream).await;
    let through_proxy = proxy.url(&t.url);
    let app = TestApp::spawn_with(t, |s| {
        s.database_url = through_proxy;
        s.api_token = Some(support::token());
    })
    .await;
    let (id, namespace) = seed(&app).await;

    proxy.stop().await;
    assert_everything_unavailable(&app, id, &namespace).await;
    // Readiness says so too, and liveness does not (no restart wanted).
    app.problem("/health/ready", 503).await;
    assert_eq!(app.get("/health/live").await.status(), 200);

    proxy.restart().await;
    assert_recovered(&app, id).await;
    assert_eq!(app.get("/health/ready").await.status(), 200);
}

/// PostgreSQL up, but refusing connections to this database, with the
/// pool's existing connections terminated.
#[tokio::test]
async fn every_path_is_503_while_the_database_refuses_connections() {
    let Some(t) = TestDatabase::migrated(Backend::Postgres).await else {
        return;
    };
    let name = t.url.rsplit('/').next().unwrap().to_owned();
    let app = TestApp::spawn_with(t, |s| s.api_token = Some(support::token())).await;
    let (id, namespace) = seed(&app).await;

    let admin = ephemera_persistence::connect(&admin_url()).await.unwrap();
    let allow = |allow: bool| format!("ALTER DATABASE \"{name}\" WITH ALLOW_CONNECTIONS {allow}");
    admin.execute_unprepared(&allow(false)).await.unwrap();
    let terminated = admin
        .query_one_raw(sea_orm::Statement::from_string(
            admin.get_database_backend(),
            format!(
                "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity WHERE datname = '{name}'"
            ),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert!(terminated > 0, "the app held no connection to terminate");

    assert_everything_unavailable(&app, id, &namespace).await;

    admin.execute_unprepared(&allow(true)).await.unwrap();
    assert_recovered(&app, id).await;
}

/// A failure that is nobody's outage (here a row the domain refuses) is a
/// 500 whose body says nothing of the cause, while the log holds the whole
/// chain. The real binary, so the log is what an operator reads.
#[tokio::test]
async fn an_unexpected_failure_is_an_opaque_500_with_the_cause_chain_in_the_log() {
    use support::process::{Running, ephemera, free_port, wait_ready};

    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("ephemera.db");
    let db_url = format!("sqlite://{}?mode=rwc", db_path.display());
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let child = ephemera(
        dir.path(),
        &["serve"],
        &[
            ("DATABASE_URL", db_url.as_str()),
            ("EPHEMERA_LISTEN", listen.as_str()),
            ("EPHEMERA_API_TOKEN", TOKEN),
            ("GITHUB_WEBHOOK_SECRET", support::SECRET),
            ("EPHEMERA_WORKERS", "0"),
            ("EPHEMERA_LOG_FORMAT", "json"),
        ],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let server = Running(Some(child));
    assert!(wait_ready(port), "ephemera did not become ready");
    let base = format!("http://{listen}");
    let client = reqwest::Client::new();

    let body = serde_json::to_vec(&payload("pull_request.opened")).unwrap();
    let delivered = client
        .post(format!("{base}/api/v1/github/webhook"))
        .header("X-GitHub-Event", "pull_request")
        .header("X-GitHub-Delivery", "opened-1")
        .header(
            "X-Hub-Signature-256",
            ephemera_http::sign(support::SECRET.as_bytes(), &body),
        )
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(delivered.status(), 200);

    // Someone edits the table by hand.
    let db = ephemera_persistence::connect(&db_url).await.unwrap();
    db.execute_unprepared("UPDATE environments SET commit_sha = 'hand-edited-sha-3f9a'")
        .await
        .unwrap();
    db.close().await.unwrap();

    let response = client
        .get(format!("{base}/api/v1/environments/1"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let text = response.text().await.unwrap();
    let problem: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(problem["type"], "/problems/internal");
    assert_eq!(
        problem["detail"],
        "the server failed to answer; the cause is in its logs"
    );
    for cause in ["hand-edited", "corrupt", "commit", "environments"] {
        assert!(!text.contains(cause), "the 500 leaks `{cause}`: {text}");
    }

    let output = server.stop();
    let log = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    let line = log
        .lines()
        .find(|line| line.contains("request failed"))
        .unwrap_or_else(|| panic!("no `request failed` line in the log:\n{log}"));
    assert!(
        line.contains("corrupt row 1 in environments")
            && line
                .contains("`hand-edited-sha-3f9a` is not a 40 or 64 digit hexadecimal commit id"),
        "the log line holds the cause chain: {line}"
    );
}
