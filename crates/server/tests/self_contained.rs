//! A fresh clone with nothing beside it: the README's quick start works with
//! the compiled-in webhook examples, and no file of the repository reaches
//! outside it.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::process::{Running, ephemera, free_port, run, wait_ready};

/// The secret the README's quick start uses.
const SECRET: &str = "local-dev-webhook-secret";

/// `ephemera webhook send --example NAME` against the server on `port`, as
/// the README shows it.
fn send_example(dir: &Path, port: u16, name: &str) -> String {
    let listen = format!("127.0.0.1:{port}");
    let out = run(
        dir,
        &["webhook", "send", "--example", name],
        &[
            ("GITHUB_WEBHOOK_SECRET", SECRET),
            ("EPHEMERA_LISTEN", &listen),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "webhook send --example {name}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Polls the environment list until the first one has `status`; the
/// deadline only keeps a broken build from hanging.
async fn wait_for_status(port: u16, status: &str) -> Value {
    let url = format!("http://127.0.0.1:{port}/api/v1/environments");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
        if list[0]["status"] == status {
            return list;
        }
        assert!(
            Instant::now() < deadline,
            "never reached {status}: {list:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_readme_loop_opens_and_destroys_a_preview_with_compiled_in_examples() {
    // The README's commands, with its secret (long enough to be accepted).
    let readme = include_str!("../../../README.md");
    assert!(
        readme.contains(&format!("GITHUB_WEBHOOK_SECRET={SECRET} cargo run")),
        "README quick start and this test use the same secret"
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let _server = Running(Some(
        ephemera(
            dir.path(),
            &[],
            &[
                ("GITHUB_WEBHOOK_SECRET", SECRET),
                ("EPHEMERA_LISTEN", &listen),
            ],
        )
        .spawn()
        .unwrap(),
    ));
    assert!(wait_ready(port), "the server never became ready");

    let answer = send_example(dir.path(), port, "pull_request.opened");
    assert!(answer.contains("HTTP 200"), "{answer}");
    let list = wait_for_status(port, "ready").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list:#}");
    assert_eq!(list[0]["repository_full_name"], "Codertocat/Hello-World");
    assert_eq!(list[0]["pr_number"], 2);
    assert!(
        list[0]["environment_url"]
            .as_str()
            .unwrap()
            .starts_with("http://pr-2-"),
        "{list:#}"
    );

    let deliveries: Value = reqwest::get(format!("http://{listen}/api/v1/deliveries"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(deliveries[0]["event"], "pull_request");
    assert_eq!(deliveries[0]["outcome"], "applied", "{deliveries:#}");

    send_example(dir.path(), port, "pull_request.closed");
    let list = wait_for_status(port, "destroyed").await;
    assert!(list[0]["destroyed_at"].is_string(), "{list:#}");
}

#[test]
fn list_examples_names_every_example_and_needs_no_configuration() {
    let dir = tempfile::tempdir().unwrap();
    // A configuration `serve` would refuse must not matter here.
    let out = run(
        dir.path(),
        &["webhook", "send", "--list-examples"],
        &[("DATABASE_URL", "mysql://nowhere")],
    );
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let names: Vec<&str> = stdout.lines().collect();
    let expected: Vec<&str> = ephemera_webhook_examples::ALL
        .iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, expected);
    for needed in [
        "pull_request.opened",
        "pull_request.closed",
        "pull_request.edited",
        "issue_comment.created",
        "check_run.requested_action",
        "installation.new_permissions_accepted",
        "installation_repositories.removed",
    ] {
        assert!(names.contains(&needed), "{needed} missing from {names:?}");
    }
}

#[test]
fn an_unknown_example_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &["webhook", "send", "--example", "pull_request.nope"],
        &[("GITHUB_WEBHOOK_SECRET", SECRET)],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: --example: no example called \"pull_request.nope\""),
        "{stderr}"
    );
    assert!(stderr.contains("--list-examples"), "{stderr}");
}

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Every file under `dir`, leaving out build output and git's own folder.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        let name = entry.file_name();
        if entry.file_type().unwrap().is_dir() {
            if name != "target" && name != ".git" && name != "node_modules" {
                files_under(&path, out);
            }
        } else {
            out.push(path);
        }
    }
}

#[test]
fn no_file_in_the_repository_refers_to_a_folder_beside_the_checkout() {
    // Spelled in two halves so that this file does not match itself.
    let needle = format!("../{}", "shared");
    let root = repository_root();
    let mut files = Vec::new();
    files_under(&root, &mut files);
    assert!(
        files.len() > 50,
        "walked too few files under {}",
        root.display()
    );
    let offenders: Vec<String> = files
        .iter()
        .filter(|path| {
            std::fs::read(path)
                .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
        })
        .map(|path| path.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "these files refer to {needle}, which a user's clone does not have: {offenders:?}"
    );
}
