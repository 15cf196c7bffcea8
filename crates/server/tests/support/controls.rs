//! What reviewers do from a PR, as GitHub delivers it: `/preview`
//! comments and clicks on the check run's buttons, by a writer or a
//! reader; and what GitHub then holds (reactions, check runs, the sticky
//! comment).

use std::path::Path;
use std::time::Duration;

use ephemera_application::ports::CommandEnd;
use ephemera_application::pr_commands::CommandOutcome;
use ephemera_persistence::testing::TestDatabase;
use ephemera_provisioner::{CommandConfig, SleepCommands};
use ephemera_server::config::ProvisionerSettings;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::TestApp;
use super::fake_github::{REPO, app_reporting_with, calls, fake_github};

/// Who may steer previews: `Codertocat` can write, `mallory` can read.
pub const WRITER: &str = "Codertocat";
pub const READER: &str = "mallory";

/// A fake GitHub that knows [`WRITER`] and [`READER`]'s permissions and
/// takes reactions.
pub async fn github() -> MockServer {
    let github = fake_github().await;
    for (login, permission) in [(WRITER, "write"), (READER, "read")] {
        Mock::given(method("GET"))
            .and(path(format!("{REPO}/collaborators/{login}/permission")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "permission": permission, "role_name": permission,
                "user": {"login": login, "id": 1000}
            })))
            .mount(&github)
            .await;
    }
    Mock::given(method("POST"))
        .and(path_regex(r"/issues/comments/\d+/reactions$"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 1})))
        .mount(&github)
        .await;
    github
}

/// A command provisioner that appends `<action> <last two hex digits of
/// the commit>` to `record` for each of its four actions (provision,
/// destroy, stop, start).
pub fn recording_provisioner(record: &Path) -> ProvisionerSettings {
    // `${EPHEMERA_COMMIT_SHA#<38 ?>}`: the commit's last two hex digits.
    let tail = format!("${{EPHEMERA_COMMIT_SHA#{}}}", "?".repeat(38));
    let line = |action: &str| format!("echo \"{action} {tail}\" >> {}", record.display());
    ProvisionerSettings::Command(CommandConfig {
        provision: line("provision"),
        destroy: line("destroy"),
        sleep: Some(SleepCommands {
            stop: line("stop"),
            start: line("start"),
        }),
        timeout: Duration::from_secs(30),
        max_log_bytes: 64 * 1024,
        pass_env: Default::default(),
        url_pattern: None,
    })
}

/// An app reporting to `github` with a [`recording_provisioner`].
pub async fn app(
    t: TestDatabase,
    github: &MockServer,
    record: &Path,
    configure: impl FnOnce(&mut ephemera_server::Settings),
) -> TestApp {
    let provisioner = recording_provisioner(record);
    app_reporting_with(t, github, move |s| {
        s.provisioner = provisioner;
        configure(s);
    })
    .await
}

/// The provisioner's actions so far, in order.
pub fn actions(record: &Path) -> Vec<String> {
    std::fs::read_to_string(record)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A new comment `body` by `login` on PR #2 (GitHub's example PR), with
/// comment id `id`.
pub fn comment(login: &str, id: i64, body: &str) -> Value {
    let mut event = super::payload("issue_comment.created.with-installation");
    event["issue"]["number"] = json!(2);
    event["issue"]["pull_request"] = json!({"url": "https://api.github.com/repos/o/r/pulls/2"});
    event["comment"]["id"] = json!(id);
    event["comment"]["body"] = json!(body);
    event["comment"]["user"]["login"] = json!(login);
    event
}

/// A click by `login` on button `identifier` of ephemera's check run
/// `run` on commit `head` of PR #2 (GitHub's example click, moved to the
/// example repository and installation).
pub fn click(login: &str, run: i64, head: &str, identifier: &str) -> Value {
    let mut event = super::payload("check_run.requested_action");
    let repository =
        super::payload("issue_comment.created.with-installation")["repository"].clone();
    event["repository"] = repository;
    event["installation"] = json!({"id": 1});
    event["organization"] = Value::Null;
    event["check_run"]["id"] = json!(run);
    event["check_run"]["name"] = json!("ephemera preview");
    event["check_run"]["head_sha"] = json!(head);
    event["check_run"]["external_id"] = json!("2");
    // A fork PR's run lists no PR: the external id is what finds it.
    event["check_run"]["pull_requests"] = json!([]);
    event["requested_action"]["identifier"] = json!(identifier);
    event["sender"]["login"] = json!(login);
    event
}

impl TestApp {
    /// Delivers a `/preview` comment and has the command worker carry it
    /// out; how it ended and what the PR is told.
    pub async fn command(&self, login: &str, id: i64, body: &str) -> (CommandEnd, String) {
        self.deliver_ok(
            "issue_comment",
            &super::delivery_id(),
            &comment(login, id, body),
        )
        .await;
        self.run_command().await
    }

    /// Delivers a click on a check run's button and has the command worker
    /// carry it out.
    pub async fn press(
        &self,
        login: &str,
        run: i64,
        head: &str,
        identifier: &str,
    ) -> (CommandEnd, String) {
        let answer = self
            .deliver_ok(
                "check_run",
                &super::delivery_id(),
                &click(login, run, head, identifier),
            )
            .await;
        assert_eq!(answer["outcome"], "applied", "{answer}");
        self.run_command().await
    }

    /// Carries out the oldest recorded command.
    pub async fn run_command(&self) -> (CommandEnd, String) {
        let runner = self.pr_commands.clone().expect("GitHub configured");
        match runner.run_once().await.unwrap() {
            CommandOutcome::Finished { end, outcome } => (end, outcome),
            CommandOutcome::Idle => panic!("no command was recorded"),
        }
    }

    /// The environment's deployments, newest first.
    pub async fn deployments(&self) -> Vec<Value> {
        let env = self.only_environment().await;
        self.json(&format!("/api/v1/environments/{}/deployments", env["id"]))
            .await
            .as_array()
            .unwrap()
            .clone()
    }
}

/// The reactions ephemera put on comment `id`, in order.
pub async fn reactions(github: &MockServer, id: i64) -> Vec<String> {
    let at = format!("{REPO}/issues/comments/{id}/reactions");
    calls(github)
        .await
        .into_iter()
        .filter(|(m, p, _)| m == "POST" && *p == at)
        .map(|(_, _, body)| body["content"].as_str().unwrap().to_owned())
        .collect()
}

/// A check run as GitHub holds it after every create and update.
#[derive(Debug, Clone)]
pub struct CheckRun {
    pub id: i64,
    pub head_sha: String,
    pub external_id: String,
    pub status: String,
    pub conclusion: Option<String>,
    pub title: String,
    pub summary: String,
    pub text: Option<String>,
    pub details_url: Option<String>,
    pub buttons: Vec<String>,
    /// Requests it took (create and updates).
    pub requests: usize,
}

/// Every check run ephemera made, in the order created, as GitHub now
/// holds each (the fake numbers them from 900).
pub async fn check_runs(github: &MockServer) -> Vec<CheckRun> {
    let mut runs: Vec<CheckRun> = Vec::new();
    for (m, p, body) in calls(github).await {
        let apply = |run: &mut CheckRun| {
            run.status = body["status"].as_str().unwrap().to_owned();
            run.conclusion = body["conclusion"].as_str().map(str::to_owned);
            run.title = body["output"]["title"].as_str().unwrap().to_owned();
            run.summary = body["output"]["summary"].as_str().unwrap().to_owned();
            run.text = body["output"]["text"].as_str().map(str::to_owned);
            run.details_url = body["details_url"].as_str().map(str::to_owned);
            run.buttons = body["actions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["identifier"].as_str().unwrap().to_owned())
                .collect();
            run.requests += 1;
        };
        if m == "POST" && p == format!("{REPO}/check-runs") {
            let mut run = CheckRun {
                id: 900 + runs.len() as i64,
                head_sha: body["head_sha"].as_str().unwrap().to_owned(),
                external_id: body["external_id"].as_str().unwrap().to_owned(),
                status: String::new(),
                conclusion: None,
                title: String::new(),
                summary: String::new(),
                text: None,
                details_url: None,
                buttons: Vec::new(),
                requests: 0,
            };
            apply(&mut run);
            runs.push(run);
        } else if m == "PATCH"
            && let Some(id) = p.strip_prefix(&format!("{REPO}/check-runs/"))
        {
            let id: i64 = id.parse().unwrap();
            let run = runs.iter_mut().find(|r| r.id == id).unwrap();
            apply(run);
        }
    }
    runs
}

/// The check run of commit `head`, asserting there is exactly one.
pub async fn check_run_of(github: &MockServer, head: &str) -> CheckRun {
    let runs: Vec<CheckRun> = check_runs(github)
        .await
        .into_iter()
        .filter(|r| r.head_sha == head)
        .collect();
    assert_eq!(runs.len(), 1, "check runs of {head}: {runs:?}");
    runs[0].clone()
}

/// 40 hex digits of commit `n`, as [`super::pr`] makes them.
pub fn sha(n: u32) -> String {
    format!("{n:040x}")
}

/// The newest body of ephemera's sticky comment on PR #2.
pub async fn sticky_comment(github: &MockServer) -> String {
    calls(github)
        .await
        .into_iter()
        .rfind(|(m, p, _)| {
            (m == "POST" && p.ends_with("/issues/2/comments"))
                || (m == "PATCH" && p.contains("/issues/comments/"))
        })
        .map(|(_, _, body)| body["body"].as_str().unwrap().to_owned())
        .expect("a sticky comment")
}
