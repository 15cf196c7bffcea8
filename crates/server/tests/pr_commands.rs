//! `/preview` commands written on PRs, black-box on SQLite and PostgreSQL
//! (work in progress for #15: recording; the worker that carries them out
//! comes next).

#![allow(clippy::unwrap_used)]

mod support;

use ephemera_persistence::backend_tests;
use ephemera_persistence::testing::TestDatabase;
use serde_json::{Value, json};
use support::{TestApp, payload};

/// GitHub's example comment, made `body` on PR 1.
fn comment(body: &str) -> Value {
    let mut event = payload("issue_comment.created.with-installation");
    event["issue"]["pull_request"] = json!({"url": "https://api.github.com/repos/o/r/pulls/1"});
    event["comment"]["body"] = json!(body);
    event
}

async fn a_command_is_recorded_once_and_a_plain_comment_is_not(t: TestDatabase) {
    let app = TestApp::spawn(t).await;
    let command = comment("/preview sleep");
    let first = app
        .deliver_ok("issue_comment", &support::delivery_id(), &command)
        .await;
    assert_eq!(first["outcome"], "applied", "{first}");
    assert_eq!(
        first["reason"],
        "/preview sleep by @Codertocat on #1: recorded for a worker"
    );
    // The same comment again, in a body that differs (an identical body
    // is already refused as a replay before this).
    let mut resent = command.clone();
    resent["comment"]["updated_at"] = json!("2030-01-01T00:00:00Z");
    let again = app
        .deliver_ok("issue_comment", &support::delivery_id(), &resent)
        .await;
    assert_eq!(again["outcome"], "ignored");
    assert_eq!(
        again["reason"],
        "/preview sleep by @Codertocat on #1: recorded before"
    );
    let plain = app
        .deliver_ok("issue_comment", &support::delivery_id(), &comment("nice"))
        .await;
    assert_eq!(plain["reason"], "no /preview command");
}

backend_tests!(a_command_is_recorded_once_and_a_plain_comment_is_not);
