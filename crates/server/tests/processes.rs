//! The binary under duress: killed with SIGKILL mid-deploy, and three
//! replicas sharing one PostgreSQL. Background workers do the work here,
//! exactly as in production.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ephemera_persistence::testing::{Backend, TestDatabase};
use serde_json::{Value, json};
use support::process::{Running, free_port, serve_ready};
use support::{SECRET, payload};

/// Starts `ephemera serve` with background workers and a command
/// provisioner.
fn serve(
    dir: &std::path::Path,
    db_url: &str,
    port: u16,
    provision: &str,
    destroy: &str,
) -> Running {
    let listen = format!("127.0.0.1:{port}");
    serve_ready(
        dir,
        port,
        &[
            ("DATABASE_URL", db_url),
            ("EPHEMERA_LISTEN", &listen),
            ("GITHUB_WEBHOOK_SECRET", SECRET),
            ("EPHEMERA_PROVISIONER", "command"),
            ("EPHEMERA_PROVISION_COMMAND", provision),
            ("EPHEMERA_DESTROY_COMMAND", destroy),
            ("EPHEMERA_WORKERS", "2"),
            ("EPHEMERA_WORKER_LEASE", "2s"),
            ("EPHEMERA_WORKER_POLL", "100ms"),
            ("EPHEMERA_RETRY_BASE", "100ms"),
            ("RUST_LOG", "warn"),
        ],
    )
}

async fn deliver(client: &reqwest::Client, port: u16, event: &str, body: &Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    let response = client
        .post(format!("http://127.0.0.1:{port}/api/v1/github/webhook"))
        .header("X-GitHub-Event", event)
        .header("X-GitHub-Delivery", uuid::Uuid::new_v4().to_string())
        .header(
            "X-Hub-Signature-256",
            ephemera_http::sign(SECRET.as_bytes(), &bytes),
        )
        .header("Content-Type", "application/json")
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

async fn get(client: &reqwest::Client, port: u16, path: &str) -> Value {
    client
        .get(format!("http://127.0.0.1:{port}{path}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Polls until `done` holds; the deadline only keeps a broken build from
/// hanging the suite.
async fn eventually<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting until {what}");
}

/// GitHub's example `pull_request.{action}`, for PR `number`.
fn numbered_pr(action: &str, number: u64) -> Value {
    let mut p = payload(&format!("pull_request.{action}"));
    p["number"] = json!(number);
    p["pull_request"]["number"] = json!(number);
    p
}

async fn killed_mid_deploy_finishes_after_restart(backend: Backend) {
    let Some(t) = TestDatabase::migrated(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let provision =
        "echo \"secret=[${GITHUB_WEBHOOK_SECRET:-}]\"; echo deploying; sleep 2; echo up";
    let client = reqwest::Client::new();
    let port = free_port();
    let first = serve(dir.path(), &t.url, port, provision, "true");

    deliver(&client, port, "pull_request", &numbered_pr("opened", 2)).await;
    eventually("the deploy is under way", || async {
        get(&client, port, "/api/v1/environments").await[0]["status"] == "provisioning"
    })
    .await;
    drop(first); // SIGKILL, mid-deploy

    let port = free_port();
    let _second = serve(dir.path(), &t.url, port, provision, "true");
    eventually("the environment is ready after the restart", || async {
        get(&client, port, "/api/v1/environments").await[0]["status"] == "ready"
    })
    .await;

    let env = get(&client, port, "/api/v1/environments").await[0].clone();
    let deployments = get(
        &client,
        port,
        &format!("/api/v1/environments/{}/deployments", env["id"]),
    )
    .await;
    let deployments = deployments.as_array().unwrap();
    assert_eq!(deployments.len(), 1, "{deployments:?}");
    assert_eq!(deployments[0]["status"], "success", "not left in_progress");
    let one = get(
        &client,
        port,
        &format!("/api/v1/deployments/{}", deployments[0]["id"]),
    )
    .await;
    let logs = one["logs"].as_str().unwrap();
    // Started by the killed process, started again by its successor, which
    // finished it (the killed run's output died with it).
    let workers: Vec<&str> = logs
        .lines()
        .filter_map(|l| l.split(" by ").nth(1)?.split(':').next())
        .collect();
    assert_eq!(workers.len(), 2, "{logs}");
    assert_ne!(workers[0], workers[1], "two different processes: {logs}");
    assert!(logs.lines().any(|l| l == "up"), "{logs}");
    assert!(
        logs.contains("secret=[]"),
        "ephemera's secrets are withheld from commands: {logs}"
    );
}

#[tokio::test]
async fn sqlite_killed_mid_deploy_finishes_after_restart() {
    killed_mid_deploy_finishes_after_restart(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_killed_mid_deploy_finishes_after_restart() {
    killed_mid_deploy_finishes_after_restart(Backend::Postgres).await;
}

/// Counts, per namespace, the lines the provisioner appended.
fn runs(log: &std::path::Path, action: &str) -> HashMap<String, usize> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut counts = HashMap::new();
    for line in text.lines() {
        if let Some(ns) = line.strip_prefix(&format!("{action} ")) {
            *counts.entry(ns.to_owned()).or_insert(0) += 1;
        }
    }
    counts
}

/// Delivers `pull_request.{action}` of PRs 1 to `prs`, PR n to replica
/// `(n + shift) % 3`, ten deliveries in flight at a time.
async fn deliver_to_replicas(
    client: &reqwest::Client,
    ports: &[u16; 3],
    prs: u64,
    shift: usize,
    action: &str,
) {
    for chunk in (1..=prs).collect::<Vec<_>>().chunks(10) {
        let sends = chunk.iter().map(|&n| {
            let port = ports[(n as usize + shift) % 3];
            async move { deliver(client, port, "pull_request", &numbered_pr(action, n)).await }
        });
        futures::future::join_all(sends).await;
    }
}

/// How many environments the replica on `port` lists as `status`.
async fn environments_with_status(client: &reqwest::Client, port: u16, status: &str) -> u64 {
    let path = format!("/api/v1/environments?status={status}&limit=200");
    get(client, port, &path).await.as_array().unwrap().len() as u64
}

/// Asserts the provisioner ran `action` exactly once for each of `prs`
/// namespaces.
fn assert_each_ran_once(log: &std::path::Path, action: &str, prs: u64) {
    let ran = runs(log, action);
    assert_eq!(ran.len() as u64, prs, "every PR: {action}");
    assert!(ran.values().all(|&n| n == 1), "each exactly once: {ran:?}");
}

/// Work is handed over as it is committed: a delivery answered by a
/// replica without workers wakes the worker of another replica at once,
/// though that worker would otherwise look only once an hour.
#[tokio::test]
async fn a_delivery_to_one_replica_wakes_the_workers_of_another() {
    let Some(t) = TestDatabase::migrated(Backend::Postgres).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let replica = |port: u16, workers: &str| {
        let listen = format!("127.0.0.1:{port}");
        serve_ready(
            dir.path(),
            port,
            &[
                ("DATABASE_URL", t.url.as_str()),
                ("EPHEMERA_LISTEN", &listen),
                ("GITHUB_WEBHOOK_SECRET", SECRET),
                ("EPHEMERA_WORKERS", workers),
                ("EPHEMERA_WORKER_POLL", "1h"),
                ("RUST_LOG", "warn"),
            ],
        )
    };
    let (front, back) = (free_port(), free_port());
    let _front = replica(front, "0");
    let _back = replica(back, "1");
    let client = reqwest::Client::new();

    for n in 1..=3 {
        deliver(&client, front, "pull_request", &numbered_pr("opened", n)).await;
    }
    eventually(
        "the other replica's worker made all three ready",
        || async { environments_with_status(&client, front, "ready").await == 3 },
    )
    .await;
}

#[tokio::test]
async fn three_replicas_provision_and_destroy_each_pr_exactly_once() {
    let Some(t) = TestDatabase::migrated(Backend::Postgres).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runs.log");
    let provision = format!(
        "echo \"provision $EPHEMERA_NAMESPACE\" >> {}",
        log.display()
    );
    let destroy = format!("echo \"destroy $EPHEMERA_NAMESPACE\" >> {}", log.display());
    let ports = [free_port(), free_port(), free_port()];
    let _replicas: Vec<Running> = ports
        .iter()
        .map(|port| serve(dir.path(), &t.url, *port, &provision, &destroy))
        .collect();
    let client = reqwest::Client::new();
    // `just drill` raises it to 200.
    let prs: u64 = std::env::var("EPHEMERA_DRILL_PRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);

    // Spread the PRs over the replicas, ten deliveries in flight at a time.
    deliver_to_replicas(&client, &ports, prs, 0, "opened").await;
    eventually("every environment is ready", || async {
        environments_with_status(&client, ports[0], "ready").await == prs
    })
    .await;
    assert_each_ran_once(&log, "provision", prs);

    deliver_to_replicas(&client, &ports, prs, 1, "closed").await;
    eventually("every environment is destroyed", || async {
        environments_with_status(&client, ports[1], "destroyed").await == prs
    })
    .await;
    assert_each_ran_once(&log, "destroy", prs);
}
