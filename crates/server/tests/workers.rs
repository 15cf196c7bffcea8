//! Black-box tests of the reconciler through webhooks and the REST API, on
//! SQLite and PostgreSQL. Worker steps are driven with `run_once` so every
//! state is observable; background workers are covered in tests/processes.rs.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use ephemera_application::reconciler::RunOutcome;
use ephemera_persistence::backend_tests;
use ephemera_persistence::testing::TestDatabase;
use ephemera_provisioner::CommandConfig;
use ephemera_server::config::ProvisionerSettings;
use reqwest::Method;
use serde_json::{Value, json};
use support::{TestApp, pr};

async fn history(app: &TestApp, env_id: &Value) -> Vec<(String, String)> {
    app.json(&format!("/api/v1/environments/{env_id}/deployments"))
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["commit_sha"].as_str().unwrap()[38..].to_owned(),
                d["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Asserts the environment runs commit 2, and commit 1's deployment was
/// cancelled (nothing left in_progress).
async fn assert_commit_2_replaced_a_cancelled_1(app: &TestApp) {
    let done = app.only_environment().await;
    assert_eq!(done["commit_sha"], format!("{:040x}", 2));
    assert_eq!(
        history(app, &done["id"]).await,
        [
            ("02".into(), "success".into()),
            ("01".into(), "cancelled".into())
        ],
        "nothing left in_progress"
    );
}

/// The newest deployment of environment `env_id`, with its logs.
async fn latest_deployment(app: &TestApp, env_id: &Value) -> Value {
    let deployments = app
        .json(&format!("/api/v1/environments/{env_id}/deployments"))
        .await;
    app.json(&format!("/api/v1/deployments/{}", deployments[0]["id"]))
        .await
}

fn command(provision: &str, destroy: &str) -> ProvisionerSettings {
    ProvisionerSettings::Command(CommandConfig {
        provision: provision.into(),
        destroy: destroy.into(),
        sleep: None,
        timeout: Duration::from_secs(30),
        max_log_bytes: 64 * 1024,
        pass_env: Default::default(),
        url_pattern: None,
    })
}

async fn a_pr_goes_pending_provisioning_ready_then_destroyed(t: TestDatabase) {
    let app = TestApp::spawn(t).await;
    app.deliver_pr(&pr("opened", 1, 0)).await;
    assert_eq!(app.only_environment().await["status"], "pending");

    assert!(matches!(app.drain().await[..], [RunOutcome::Ready(_)]));
    let ready = app.only_environment().await;
    assert_eq!(ready["status"], "ready");
    let namespace = ready["namespace"].as_str().unwrap();
    assert_eq!(
        ready["environment_url"],
        format!("http://{namespace}.preview.localhost")
    );
    assert!(ready["last_deployed_at"].is_string());
    assert_eq!(
        history(&app, &ready["id"]).await,
        [("01".into(), "success".into())]
    );
    let one = latest_deployment(&app, &ready["id"]).await;
    let logs = one["logs"].as_str().unwrap();
    assert!(
        logs.contains(&format!("dry-run: would create namespace {namespace}")),
        "{logs}"
    );
    assert!(one["started_at"].is_string() && one["completed_at"].is_string());

    app.deliver_pr(&pr("closed", 1, 10)).await;
    assert_eq!(app.only_environment().await["status"], "destroying");
    assert!(matches!(app.drain().await[..], [RunOutcome::Destroyed(_)]));
    let gone = app.only_environment().await;
    assert_eq!(gone["status"], "destroyed");
    assert_eq!(gone["environment_url"], Value::Null);
    assert!(gone["destroyed_at"].is_string());
    assert_eq!(gone["status_reason"], "PR closed");
}

async fn a_new_commit_updates_a_ready_environment(t: TestDatabase) {
    let app = TestApp::spawn_with(t, |s| {
        s.preview_url = ephemera_domain::PreviewUrlTemplate::parse(
            "https://pr-{pr_number}.{repository}.example.com",
        )
        .unwrap();
    })
    .await;
    app.deliver_pr(&pr("opened", 1, 0)).await;
    app.drain().await;
    app.deliver_pr(&pr("synchronize", 2, 10)).await;
    assert_eq!(
        app.only_environment().await["status"],
        "ready",
        "still serving the old commit until a worker runs"
    );

    assert!(matches!(app.drain().await[..], [RunOutcome::Ready(_)]));
    let updated = app.only_environment().await;
    assert_eq!(updated["status"], "ready");
    assert_eq!(updated["commit_sha"], format!("{:040x}", 2));
    assert_eq!(
        updated["environment_url"],
        "https://pr-2.hello-world.example.com"
    );
    assert_eq!(
        history(&app, &updated["id"]).await,
        [
            ("02".into(), "success".into()),
            ("01".into(), "success".into())
        ]
    );
}

async fn a_commit_arriving_mid_deploy_cancels_the_older_deployment(t: TestDatabase) {
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("gate");
    // The first deployment waits until the test opens the gate.
    let script = format!(
        "while [ ! -e {} ]; do sleep 0.05; done; echo deployed $EPHEMERA_COMMIT_SHA",
        gate.display()
    );
    let app = TestApp::spawn_with(t, |s| s.provisioner = command(&script, "true")).await;
    app.deliver_pr(&pr("opened", 1, 0)).await;

    let reconciler = app.reconciler.clone();
    let first = tokio::spawn(async move { reconciler.run_once().await.unwrap() });
    for _ in 0..200 {
        if app.only_environment().await["status"] == "provisioning" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(app.only_environment().await["status"], "provisioning");
    app.deliver_pr(&pr("synchronize", 2, 10)).await;
    std::fs::write(&gate, "").unwrap();

    assert!(matches!(first.await.unwrap(), RunOutcome::Superseded(_)));
    assert!(matches!(app.drain().await[..], [RunOutcome::Ready(_)]));
    assert_commit_2_replaced_a_cancelled_1(&app).await;
}

async fn failures_retry_then_fail_keeping_the_logs(t: TestDatabase) {
    let app = TestApp::spawn_with(t, |s| {
        s.provisioner = command(
            "echo pulling image; echo image not found >&2; exit 4",
            "true",
        );
        s.workers.max_attempts = 3;
    })
    .await;
    app.deliver_pr(&pr("opened", 1, 0)).await;

    let mut outcomes = Vec::new();
    for _ in 0..3 {
        app.clock.advance(Duration::from_millis(20)); // past the 1 ms test backoff
        outcomes.push(app.reconciler.run_once().await.unwrap());
    }
    assert!(
        matches!(outcomes[0], RunOutcome::Retrying { attempt: 1, .. }),
        "{outcomes:?}"
    );
    assert!(
        matches!(outcomes[1], RunOutcome::Retrying { attempt: 2, .. }),
        "{outcomes:?}"
    );
    assert!(matches!(outcomes[2], RunOutcome::Failed(_)), "{outcomes:?}");
    assert!(
        app.drain().await.is_empty(),
        "nothing more to do once failed"
    );

    let failed = app.only_environment().await;
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["error_message"]
            .as_str()
            .unwrap()
            .contains("exit status: 4"),
        "{failed}"
    );
    assert_eq!(
        failed["status_reason"],
        "deployment failed after 3 attempts"
    );
    let deployment = latest_deployment(&app, &failed["id"]).await;
    assert_eq!(deployment["status"], "failed");
    let logs = deployment["logs"].as_str().unwrap();
    assert_eq!(logs.matches("stderr: image not found").count(), 3, "{logs}");
    assert!(logs.contains("giving up"), "{logs}");
}

async fn a_rest_redeploy_passes_the_same_deploy_policy(t: TestDatabase) {
    let app = TestApp::spawn_with(t, |s| s.api_token = Some(support::token())).await;
    let env_id = app.ready_environment().await["id"].clone();
    app.suspend_installation().await;

    let redeploy = app
        .write(
            Method::POST,
            &format!("/api/v1/environments/{env_id}/redeploy"),
        )
        .await;
    assert_eq!(redeploy.status(), 409);
    let problem: Value = redeploy.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("suspended"),
        "{problem}"
    );
    assert!(app.drain().await.is_empty(), "nothing was queued");
    assert_eq!(history(&app, &env_id).await.len(), 1);
}

async fn rest_writes_need_the_token_and_respect_the_lifecycle(t: TestDatabase) {
    let app = TestApp::spawn_with(t, |s| s.api_token = Some(support::token())).await;
    let env_id = app.ready_environment().await["id"].clone();
    let path = |rest: &str| format!("/api/v1/environments/{env_id}{rest}");
    let url = |rest: &str| format!("{}{}", app.address, path(rest));

    let anonymous = app.client.post(url("/redeploy")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        anonymous.headers()["www-authenticate"],
        "Bearer realm=\"ephemera\""
    );
    let wrong = app
        .client
        .delete(url(""))
        .bearer_auth("guess")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(
        app.only_environment().await["status"],
        "ready",
        "refused writes change nothing"
    );

    let redeploy = app.write(Method::POST, &path("/redeploy")).await;
    assert_eq!(redeploy.status(), 202);
    let queued: Value = redeploy.json().await.unwrap();
    assert_eq!(queued["status"], "queued");
    assert!(matches!(app.drain().await[..], [RunOutcome::Ready(_)]));
    assert_eq!(history(&app, &env_id).await.len(), 2);

    let destroy = app.write(Method::DELETE, &path("")).await;
    assert_eq!(destroy.status(), 202);
    let body: Value = destroy.json().await.unwrap();
    assert_eq!(body["status"], "destroying");
    assert_eq!(body["status_reason"], "destroy requested through the API");
    app.drain().await;

    for (method, rest) in [(Method::POST, "/redeploy"), (Method::DELETE, "")] {
        let response = app.write(method.clone(), &path(rest)).await;
        assert_eq!(
            response.status(),
            409,
            "{method} on a destroyed environment"
        );
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["type"], "/problems/conflict");
    }
    let missing = app
        .write(Method::POST, "/api/v1/environments/424242/redeploy")
        .await;
    assert_eq!(missing.status(), 404);
}

async fn idle_environments_are_destroyed_with_the_reason(t: TestDatabase) {
    let app = TestApp::spawn(t).await;
    // GitHub's example PR was last active in 2019.
    app.deliver_pr(&pr("opened", 1, 0)).await;
    let mut fresh = pr("opened", 1, 0);
    fresh["number"] = json!(3);
    fresh["pull_request"]["number"] = json!(3);
    fresh["pull_request"]["updated_at"] = json!(chrono::Utc::now().to_rfc3339());
    app.deliver_pr(&fresh).await;
    app.drain().await;

    let swept = app
        .commands
        .destroy_idle(Some(Duration::from_secs(72 * 3600)))
        .await
        .unwrap();
    assert_eq!(swept, 1);
    let envs = app.json("/api/v1/environments").await;
    let by_pr = |n: u64| {
        envs.as_array()
            .unwrap()
            .iter()
            .find(|e| e["pr_number"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(by_pr(2)["status"], "destroying");
    assert_eq!(
        by_pr(2)["status_reason"],
        "idle: no PR activity for more than 3d (EPHEMERA_ENVIRONMENT_TTL)"
    );
    assert_eq!(by_pr(3)["status"], "ready");
    assert!(matches!(app.drain().await[..], [RunOutcome::Destroyed(_)]));
}

async fn reopening_while_the_destroy_runs_brings_the_same_environment_back(t: TestDatabase) {
    let app = TestApp::spawn(t).await;
    app.deliver_pr(&pr("opened", 1, 0)).await;
    app.drain().await;
    let first = app.only_environment().await;
    app.deliver_pr(&pr("closed", 1, 10)).await;
    let reopened = app.deliver_pr(&pr("reopened", 2, 20)).await;
    assert_eq!(reopened["outcome"], "applied", "{reopened}");

    let steps = app.drain().await;
    assert!(
        matches!(steps[..], [RunOutcome::Destroyed(_), RunOutcome::Ready(_)]),
        "{steps:?}"
    );
    let back = app.only_environment().await;
    assert_eq!(
        (back["id"].clone(), back["namespace"].clone()),
        (first["id"].clone(), first["namespace"].clone())
    );
    assert_eq!(back["status"], "ready");
    assert_eq!(back["commit_sha"], format!("{:040x}", 2));
}

async fn a_label_does_not_revive_a_destroyed_environment(t: TestDatabase) {
    let app = TestApp::spawn(t).await;
    let env_id = app.ready_environment().await["id"].clone();
    app.commands
        .destroy(ephemera_domain::EnvironmentId::new(env_id.as_i64().unwrap()).unwrap())
        .await
        .unwrap();
    app.drain().await;
    let mut labeled = pr("labeled", 1, 30);
    labeled["label"] = json!({"name": "bug"});
    let answer = app.deliver_pr(&labeled).await;
    assert_eq!(answer["outcome"], "ignored", "{answer}");
    assert_eq!(app.only_environment().await["status"], "destroyed");
    // A push does bring it back.
    app.deliver_pr(&pr("synchronize", 3, 40)).await;
    app.drain().await;
    assert_eq!(app.only_environment().await["status"], "ready");
}

async fn a_new_commit_during_retries_supersedes_the_failing_deployment(t: TestDatabase) {
    let app = TestApp::spawn_with(t, |s| {
        // Commit 1 cannot be deployed; commit 2 can.
        s.provisioner = command(
            "case $EPHEMERA_COMMIT_SHA in *1) echo broken >&2; exit 1;; esac; echo ok",
            "true",
        );
        s.workers.max_attempts = 5;
        s.workers.retry_base = Duration::from_secs(3600);
    })
    .await;
    app.deliver_pr(&pr("opened", 1, 0)).await;
    assert!(matches!(
        app.drain().await[..],
        [RunOutcome::Retrying { .. }]
    ));
    app.deliver_pr(&pr("synchronize", 2, 10)).await;
    assert!(matches!(app.drain().await[..], [RunOutcome::Ready(_)]));

    assert_commit_2_replaced_a_cancelled_1(&app).await;
}

async fn a_suspended_installation_keeps_running_previews(t: TestDatabase) {
    let app = TestApp::spawn(t).await;
    app.deliver_pr(&pr("opened", 1, 0)).await;
    app.drain().await;
    app.suspend_installation().await;
    let answer = app.deliver_pr(&pr("synchronize", 2, 10)).await;
    assert_eq!(answer["outcome"], "ignored");
    assert!(app.drain().await.is_empty());
    let still = app.only_environment().await;
    assert_eq!(
        still["status"], "ready",
        "no new deployment, nothing torn down"
    );
    assert_eq!(still["commit_sha"], format!("{:040x}", 1));
}

backend_tests!(
    a_rest_redeploy_passes_the_same_deploy_policy,
    reopening_while_the_destroy_runs_brings_the_same_environment_back,
    a_label_does_not_revive_a_destroyed_environment,
    a_new_commit_during_retries_supersedes_the_failing_deployment,
    a_suspended_installation_keeps_running_previews,
    a_pr_goes_pending_provisioning_ready_then_destroyed,
    a_new_commit_updates_a_ready_environment,
    a_commit_arriving_mid_deploy_cancels_the_older_deployment,
    failures_retry_then_fail_keeping_the_logs,
    rest_writes_need_the_token_and_respect_the_lifecycle,
    idle_environments_are_destroyed_with_the_reason,
);
