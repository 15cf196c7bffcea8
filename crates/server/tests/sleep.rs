//! Sleeping previews, black-box on SQLite and PostgreSQL: idle previews go
//! to sleep through the provisioner's stop action and wake through its
//! start action (REST) or by deploying a push; what runs is asserted from
//! the commands' own record.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use ephemera_application::reconciler::RunOutcome;
use ephemera_persistence::backend_tests;
use ephemera_persistence::testing::TestDatabase;
use reqwest::Method;
use support::{TestApp, controls, pr};

/// An app with a [`controls::recording_provisioner`] and the operator's
/// `EPHEMERA_SLEEP_AFTER` of one hour.
async fn app(t: TestDatabase, record: &std::path::Path) -> TestApp {
    let provisioner = controls::recording_provisioner(record);
    TestApp::spawn_with(t, move |s| {
        s.provisioner = provisioner;
        s.repo_config.defaults.sleep_after = Some(Duration::from_secs(3600));
        s.api_token = Some(support::token());
    })
    .await
}

async fn status(app: &TestApp) -> (String, String) {
    let env = app.only_environment().await;
    (
        env["status"].as_str().unwrap().to_owned(),
        env["status_reason"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn an_idle_preview_sleeps_and_wakes_through_the_provisioner(t: TestDatabase) {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("actions");
    let app = app(t, &record).await;
    app.deliver_pr(&pr("opened", 1, 0)).await;
    assert!(matches!(app.drain().await[..], [RunOutcome::Ready(_)]));
    let url = app.only_environment().await["environment_url"].clone();

    // Not idle for an hour yet: nothing sleeps.
    app.clock.advance(Duration::from_secs(30 * 60));
    assert_eq!(app.commands.sleep_idle().await.unwrap(), 0);
    app.clock.advance(Duration::from_secs(31 * 60));
    assert_eq!(app.commands.sleep_idle().await.unwrap(), 1);
    assert_eq!(
        status(&app).await,
        (
            "stopping".into(),
            "asleep: no activity for more than 1h (previews.sleep_after)".into()
        )
    );
    assert!(matches!(app.drain().await[..], [RunOutcome::Asleep(_)]));
    assert_eq!(status(&app).await.0, "sleeping");
    let asleep = app.only_environment().await;
    assert_eq!(asleep["environment_url"], url, "the URL stays");

    // Woken over REST: the start action runs and it is ready again.
    let woken = app
        .write(
            Method::POST,
            &format!("/api/v1/environments/{}/wake", asleep["id"]),
        )
        .await;
    assert_eq!(woken.status(), 202);
    assert_eq!(
        woken.json::<serde_json::Value>().await.unwrap()["status"],
        "waking"
    );
    assert!(matches!(app.drain().await[..], [RunOutcome::Ready(_)]));
    assert_eq!(status(&app).await.0, "ready");
    // Waking counts as activity: it does not fall asleep again at once.
    assert_eq!(app.commands.sleep_idle().await.unwrap(), 0);

    // Put to sleep over REST, then a push wakes it by deploying its commit.
    let id = asleep["id"].clone();
    let slept = app
        .write(Method::POST, &format!("/api/v1/environments/{id}/sleep"))
        .await;
    assert_eq!(slept.status(), 202);
    app.drain().await;
    assert_eq!(status(&app).await.0, "sleeping");
    app.deliver_pr(&pr("synchronize", 2, 10)).await;
    assert!(matches!(app.drain().await[..], [RunOutcome::Ready(_)]));
    assert_eq!(status(&app).await.0, "ready");

    assert_eq!(
        controls::actions(&record),
        [
            "provision 01",
            "stop 01",
            "start 01",
            "stop 01",
            "provision 02"
        ],
        "each action ran once, in order"
    );
}

async fn sleep_and_wake_answer_conflicts_where_the_lifecycle_refuses(t: TestDatabase) {
    let dir = tempfile::tempdir().unwrap();
    let app = app(t, &dir.path().join("actions")).await;
    app.deliver_pr(&pr("opened", 1, 0)).await;
    let id = app.only_environment().await["id"].clone();
    // Still pending: there is nothing to put to sleep, and nothing to wake.
    for action in ["sleep", "wake"] {
        let answer = app
            .write(Method::POST, &format!("/api/v1/environments/{id}/{action}"))
            .await;
        assert_eq!(answer.status(), 409, "{action}");
        let problem: serde_json::Value = answer.json().await.unwrap();
        assert!(
            problem["detail"].as_str().unwrap().contains("is pending"),
            "{problem}"
        );
    }
    app.drain().await;
    // Waking a ready preview, or sleeping one twice, changes nothing.
    let wake = app
        .write(Method::POST, &format!("/api/v1/environments/{id}/wake"))
        .await;
    assert_eq!(wake.status(), 202);
    assert_eq!(status(&app).await.0, "ready");
    for _ in 0..2 {
        let sleep = app
            .write(Method::POST, &format!("/api/v1/environments/{id}/sleep"))
            .await;
        assert_eq!(sleep.status(), 202);
    }
    let outcomes = app.drain().await;
    assert!(
        matches!(outcomes[..], [RunOutcome::Asleep(_)]),
        "{outcomes:?}"
    );
}

backend_tests!(
    an_idle_preview_sleeps_and_wakes_through_the_provisioner,
    sleep_and_wake_answer_conflicts_where_the_lifecycle_refuses,
);
