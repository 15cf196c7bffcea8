//! Per-repository rules end to end: a fake GitHub (wiremock, checked
//! against GitHub's OpenAPI description) serves `.github/ephemera.yml` and
//! the PR's files; webhook deliveries go in, and the tests read what a
//! user sees: the environment's status and reason over REST, the
//! deployments and their logs, and the comments and commit statuses
//! GitHub received.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use ephemera_application::reconciler::RunOutcome;
use ephemera_persistence::backend_tests;
use ephemera_persistence::testing::{Backend, TestDatabase};
use ephemera_server::Settings;
use serde_json::{Value, json};
use support::fake_github::{REPO, app_reporting_with, calls, comment_id, fake_github_for_replicas};
use support::{SECRET, TestApp, pr};
use wiremock::matchers::{method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const CONFIG: &str = "/contents/.github/ephemera.yml";

/// Commit `n` as GitHub writes it.
fn sha(n: u32) -> String {
    format!("{n:040x}")
}

/// What the contents API answers for a file holding `text` (`size` as
/// GitHub reports it).
fn file_answer(text: &str, size: usize) -> ResponseTemplate {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    let blob = format!("{:040x}", u128::from(hasher.finish()));
    let content = base64::engine::general_purpose::STANDARD.encode(text);
    ResponseTemplate::new(200).set_body_json(json!({
        "type": "file", "encoding": "base64", "size": size,
        "name": "ephemera.yml", "path": ".github/ephemera.yml",
        "content": content, "sha": blob,
    }))
}

/// The repository holds `text` as `.github/ephemera.yml` at `git_ref` (a
/// commit SHA or a branch name).
async fn rules_at(github: &MockServer, git_ref: &str, text: &str) {
    Mock::given(method("GET"))
        .and(path(format!("{REPO}{CONFIG}")))
        .and(query_param("ref", git_ref))
        .respond_with(file_answer(text, text.len()))
        .with_priority(2)
        .mount(github)
        .await;
}

/// The files PR `number` changes, as GitHub lists them now; the test may
/// change them (a new push).
#[derive(Clone, Default)]
struct PrFiles(Arc<Mutex<HashMap<u64, Vec<String>>>>);

impl PrFiles {
    fn set(&self, number: u64, files: &[&str]) {
        let files = files.iter().map(|f| (*f).to_owned()).collect();
        self.0.lock().unwrap().insert(number, files);
    }
}

/// A fake GitHub with no `.github/ephemera.yml` anywhere (until
/// [`rules_at`] puts one somewhere) that lists each PR's files from the
/// returned [`PrFiles`].
async fn github_with_rules() -> (MockServer, PrFiles) {
    github_with_rules_for_replicas(1).await
}

/// [`github_with_rules`] for `replicas` replicas of the app.
async fn github_with_rules_for_replicas(replicas: u64) -> (MockServer, PrFiles) {
    let github = fake_github_for_replicas(replicas).await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO}{CONFIG}")))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "message": "Not Found",
            "documentation_url": "https://docs.github.com/rest/repos/contents#get-repository-content"
        })))
        .with_priority(10)
        .mount(&github)
        .await;
    let files = PrFiles::default();
    let listed = files.clone();
    Mock::given(method("GET"))
        .and(path_regex(format!("^{REPO}/pulls/[0-9]+/files$")))
        .respond_with(move |req: &Request| {
            let number: u64 = req.url.path().split('/').nth(5).unwrap().parse().unwrap();
            let files = listed.0.lock().unwrap().get(&number).cloned();
            let entries: Vec<Value> = files
                .unwrap_or_default()
                .iter()
                .map(|f| {
                    json!({"sha": sha(1), "filename": f, "status": "modified",
                                "additions": 1, "deletions": 0, "changes": 1})
                })
                .collect();
            ResponseTemplate::new(200).set_body_json(entries)
        })
        .with_priority(2)
        .mount(&github)
        .await;
    (github, files)
}

/// The app reporting to `github`, its settings read from the environment
/// variables `vars` (as `ephemera serve` reads them) on top of the test
/// defaults.
async fn app_with(t: TestDatabase, github: &MockServer, vars: &[(&str, &str)]) -> TestApp {
    let from_env = settings_from(vars);
    app_reporting_with(t, github, move |s| {
        s.repo_config = from_env.repo_config;
        s.policy = from_env.policy;
        s.workers.environment_ttl = from_env.workers.environment_ttl;
    })
    .await
}

fn settings_from(vars: &[(&str, &str)]) -> Settings {
    Settings::from_lookup(|name| match name {
        "GITHUB_WEBHOOK_SECRET" => Some(SECRET.to_owned()),
        _ => vars
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned()),
    })
    .unwrap()
}

/// GitHub's example `pull_request.{action}`, as PR `number` at commit
/// `head`, updated `updated_secs` after the example's 16:00.
fn pr_n(action: &str, number: u64, head: u32, updated_secs: u32) -> Value {
    let mut p = pr(action, head, updated_secs);
    p["number"] = json!(number);
    p["pull_request"]["number"] = json!(number);
    p
}

/// The same PR from a fork (whose head repository is not the base one).
fn from_fork(mut p: Value) -> Value {
    p["pull_request"]["head"]["repo"]["id"] = json!(999_999);
    p["pull_request"]["head"]["repo"]["full_name"] = json!("forker/Hello-World");
    p["pull_request"]["user"] = json!({"login": "forker", "id": 4242});
    p
}

/// Delivers each of `payloads`, runs the workers until idle, then delivers
/// what is due to GitHub.
async fn deliver_all(app: &TestApp, payloads: &[Value]) {
    for p in payloads {
        app.deliver_pr(p).await;
    }
    app.drain().await;
    app.drain_reports().await;
}

/// PR `number`'s environment as the REST API shows it.
async fn env_of(app: &TestApp, number: u64) -> Value {
    let envs = app.json("/api/v1/environments").await;
    envs.as_array()
        .unwrap()
        .iter()
        .find(|e| e["pr_number"] == number)
        .unwrap_or_else(|| panic!("no environment for PR #{number}: {envs}"))
        .clone()
}

/// PR `number`'s (status, status_reason).
async fn status_of(app: &TestApp, number: u64) -> (String, Value) {
    let env = env_of(app, number).await;
    (
        env["status"].as_str().unwrap().to_owned(),
        env["status_reason"].clone(),
    )
}

/// PR `number`'s deployments, newest first.
async fn deployments(app: &TestApp, number: u64) -> Value {
    let env = env_of(app, number).await;
    app.json(&format!("/api/v1/environments/{}/deployments", env["id"]))
        .await
}

/// PR `number`'s (commit, status) of each deployment, newest first.
async fn deployment_history(app: &TestApp, number: u64) -> Vec<(String, String)> {
    let list = deployments(app, number).await;
    list.as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["commit_sha"].as_str().unwrap().to_owned(),
                d["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// PR `number`'s newest deployment, with its logs.
async fn last_deployment(app: &TestApp, number: u64) -> Value {
    let list = deployments(app, number).await;
    app.json(&format!("/api/v1/deployments/{}", list[0]["id"]))
        .await
}

/// The `ref`s `.github/ephemera.yml` was read at, in order.
async fn rules_reads(github: &MockServer) -> Vec<String> {
    github
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == format!("{REPO}{CONFIG}"))
        .map(|r| {
            r.url
                .query_pairs()
                .find(|(k, _)| k == "ref")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        })
        .collect()
}

/// How often GitHub was asked for PR `number`'s files.
async fn file_listings(github: &MockServer, number: u64) -> usize {
    let listing = format!("{REPO}/pulls/{number}/files");
    calls(github)
        .await
        .iter()
        .filter(|(_, p, _)| *p == listing)
        .count()
}

/// The newest body of ephemera's comment on PR `number`.
async fn last_comment(github: &MockServer, number: u64) -> String {
    let created = format!("{REPO}/issues/{number}/comments");
    let edited = format!("{REPO}/issues/comments/{}", comment_id(number));
    calls(github)
        .await
        .into_iter()
        .rfind(|(m, p, _)| (m == "POST" && *p == created) || (m == "PATCH" && *p == edited))
        .map(|(_, _, body)| body["body"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no comment on PR #{number}"))
}

/// The newest commit status of commit `head`: (state, description).
async fn last_status(github: &MockServer, head: u32) -> (String, String) {
    let at = format!("{REPO}/statuses/{}", sha(head));
    let (_, _, body) = calls(github)
        .await
        .into_iter()
        .rfind(|(m, p, _)| m == "POST" && *p == at)
        .unwrap_or_else(|| panic!("no status for commit {head}"));
    (
        body["state"].as_str().unwrap().to_owned(),
        body["description"].as_str().unwrap().to_owned(),
    )
}

/// Asserts PR `number` got no preview for `rule`: skipped with the rule as
/// its reason, its deployment cancelled with it, and GitHub told (a
/// success status, so a required check does not block the PR).
async fn assert_skipped(app: &TestApp, github: &MockServer, number: u64, head: u32, rule: &str) {
    let why = format!("no preview: {rule}");
    let (status, reason) = status_of(app, number).await;
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("skipped", Some(why.as_str()))
    );
    let deployment = last_deployment(app, number).await;
    assert_eq!(deployment["status"], "cancelled", "{deployment}");
    assert_eq!(deployment["error_message"], why, "{deployment}");
    let (state, description) = last_status(github, head).await;
    assert_eq!(state, "success");
    let shown = format!("No preview: {rule}");
    assert!(
        shown.starts_with(description.trim_end_matches('…')),
        "{description} vs {shown}"
    );
    let comment = last_comment(github, number).await;
    assert!(comment.contains("No preview"), "{comment}");
    // The delivery that asked for the preview says what became of it.
    let note = format!("deployment of {} not started: {rule}", &sha(head)[..7]);
    let deliveries = app.json("/api/v1/deliveries?event=pull_request").await;
    assert!(
        deliveries
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["reason"].as_str().is_some_and(|r| r.ends_with(&note))),
        "no delivery says {note:?}: {deliveries}"
    );
}

/// Opens one PR for each of `files` on an app reporting to `github`: PR
/// n+2 at commit n+1, which holds `files[n]` as its
/// `.github/ephemera.yml`; `adjust` changes the deliveries first. Runs the
/// workers and the reports.
async fn one_pr_per_file(
    t: TestDatabase,
    github: &MockServer,
    files: &[&str],
    adjust: impl FnOnce(&mut [Value]),
) -> TestApp {
    let mut opened = Vec::new();
    for (n, text) in (0..).zip(files) {
        rules_at(github, &sha(n + 1), text).await;
        opened.push(pr_n("opened", u64::from(n) + 2, n + 1, 0));
    }
    adjust(&mut opened);
    let app = app_with(t, github, &[]).await;
    deliver_all(&app, &opened).await;
    app
}

/// [`assert_skipped`] for the PRs of [`one_pr_per_file`], in order.
async fn assert_each_skipped(app: &TestApp, github: &MockServer, rules: &[&str]) {
    for (n, rule) in (0..).zip(rules) {
        assert_skipped(app, github, u64::from(n) + 2, n + 1, rule).await;
    }
}

async fn mode_off_and_manual_give_no_preview_and_say_so(t: TestDatabase) {
    let (github, _) = github_with_rules().await;
    let app = one_pr_per_file(
        t,
        &github,
        &[
            "version: 1\npreviews:\n  mode: off\n",
            "version: 1\npreviews:\n  mode: manual\n",
        ],
        |_| {},
    )
    .await;

    assert_each_skipped(
        &app,
        &github,
        &[
            "previews.mode: off: this repository has no previews",
            "previews.mode: manual: a preview starts only when asked for (`/preview deploy`)",
        ],
    )
    .await;
    // No path rule: the PRs' files are none of the rules' business.
    assert_eq!(file_listings(&github, 2).await, 0);
    assert_eq!(file_listings(&github, 3).await, 0);
}

async fn base_branches_outside_the_globs_get_no_preview(t: TestDatabase) {
    let (github, _) = github_with_rules().await;
    // GitHub's example PR targets `master`.
    let app = one_pr_per_file(
        t,
        &github,
        &[
            "version: 1\npreviews:\n  branches: [main]\n",
            "version: 1\npreviews:\n  branches: [master, 'release/*']\n",
        ],
        |_| {},
    )
    .await;

    assert_each_skipped(
        &app,
        &github,
        &["previews.branches: base branch `master` matches none of main"],
    )
    .await;
    assert_eq!(status_of(&app, 3).await, ("ready".to_owned(), Value::Null));
    assert_eq!(file_listings(&github, 3).await, 0);
}

async fn path_rules_read_the_prs_files(t: TestDatabase) {
    let (github, files) = github_with_rules().await;
    files.set(2, &["docs/guide.md", "api/main.rs"]);
    files.set(3, &["README.md", "docs/guide.md"]);
    let app = one_pr_per_file(
        t,
        &github,
        &[
            "version: 1\npreviews:\n  paths:\n    include: ['web/**']\n",
            "version: 1\npreviews:\n  paths:\n    exclude: ['**/*.md']\n",
        ],
        |_| {},
    )
    .await;

    assert_each_skipped(
        &app,
        &github,
        &[
            "previews.paths: no changed file matches web/**",
            "previews.paths: every changed file matches the excluded **/*.md",
        ],
    )
    .await;
    assert_eq!(file_listings(&github, 2).await, 1);
}

/// A PR skipped by a path rule starts normally once a push touches what
/// the rule asks for (the whole PR's files count, not the last push's).
async fn a_pr_skipped_by_a_path_rule_starts_when_a_push_matches_it(t: TestDatabase) {
    let (github, files) = github_with_rules().await;
    let web_only = "version: 1\npreviews:\n  paths:\n    include: ['web/**']\n";
    rules_at(&github, &sha(1), web_only).await;
    rules_at(&github, &sha(2), web_only).await;
    files.set(2, &["docs/guide.md"]);
    let app = app_with(t, &github, &[]).await;
    deliver_all(&app, &[pr_n("opened", 2, 1, 0)]).await;
    assert_skipped(
        &app,
        &github,
        2,
        1,
        "previews.paths: no changed file matches web/**",
    )
    .await;

    files.set(2, &["docs/guide.md", "web/app.ts"]);
    deliver_all(&app, &[pr_n("synchronize", 2, 2, 10)]).await;

    let env = env_of(&app, 2).await;
    assert_eq!(env["status"], "ready", "{env}");
    assert_eq!(env["commit_sha"], sha(2));
    assert_eq!(env["status_reason"], Value::Null);
    assert_eq!(last_deployment(&app, 2).await["status"], "success");
    assert_eq!(last_status(&github, 2).await.0, "success");
    assert_eq!(
        file_listings(&github, 2).await,
        2,
        "read again for the push"
    );
}

async fn bot_authors_and_title_phrases_are_skipped(t: TestDatabase) {
    let (github, _) = github_with_rules().await;
    let rules = "version: 1\npreviews:\n  skip_authors: ['dependabot[bot]']\n  \
                 skip_when_title_contains: ['[skip preview]']\n";
    let app = one_pr_per_file(t, &github, &[rules, rules, rules], |prs| {
        prs[0]["pull_request"]["user"] = json!({"login": "dependabot[bot]", "id": 49699333});
        prs[1]["pull_request"]["title"] = json!("Bump the docs [Skip Preview]");
    })
    .await;

    assert_each_skipped(
        &app,
        &github,
        &[
            "previews.skip_authors: PR by `dependabot[bot]`",
            "previews.skip_when_title_contains: the title contains `[skip preview]`",
        ],
    )
    .await;
    assert_eq!(status_of(&app, 4).await.0, "ready");
}

/// A repository's `previews.ttl` shorter than the operator's
/// `EPHEMERA_ENVIRONMENT_TTL` applies to its PRs only.
async fn a_repository_ttl_expires_its_previews_sooner(t: TestDatabase) {
    let (github, _) = github_with_rules().await;
    rules_at(&github, &sha(1), "version: 1\npreviews:\n  ttl: 1h\n").await;
    let app = app_with(t, &github, &[("EPHEMERA_ENVIRONMENT_TTL", "72h")]).await;
    let now = chrono::Utc::now().to_rfc3339();
    let mut short = pr_n("opened", 2, 1, 0);
    short["pull_request"]["updated_at"] = json!(now);
    // Commit 2 has no file: the operator's TTL.
    let mut long = pr_n("opened", 3, 2, 0);
    long["pull_request"]["updated_at"] = json!(now);
    deliver_all(&app, &[short, long]).await;
    assert_eq!(status_of(&app, 2).await.0, "ready");

    let sweep = || {
        app.commands
            .destroy_idle(Some(Duration::from_secs(72 * 3600)))
    };
    app.clock.advance(Duration::from_secs(30 * 60));
    assert_eq!(sweep().await.unwrap(), 0, "half an hour idle");
    app.clock.advance(Duration::from_secs(31 * 60));
    let swept = sweep().await.unwrap();

    assert_eq!(swept, 1);
    assert_eq!(
        status_of(&app, 2).await,
        (
            "destroying".to_owned(),
            json!("idle: no PR activity for more than 1h (previews.ttl)")
        )
    );
    assert_eq!(status_of(&app, 3).await.0, "ready");
}

/// `env:` reaches the provisioner (the dry run names what it received).
async fn variables_reach_the_provisioner(t: TestDatabase) {
    let (github, _) = github_with_rules().await;
    rules_at(
        &github,
        &sha(1),
        "version: 1\nenv:\n  PREVIEW_FLAG: on\n  API_URL: https://api.example.test\n  REPLICAS: 2\n",
    )
    .await;
    let app = app_with(t, &github, &[]).await;
    deliver_all(&app, &[pr_n("opened", 2, 1, 0)]).await;

    let deployment = last_deployment(&app, 2).await;
    assert_eq!(deployment["status"], "success", "{deployment}");
    let logs = deployment["logs"].as_str().unwrap();
    assert!(
        logs.contains("dry-run: with variables API_URL, PREVIEW_FLAG, REPLICAS"),
        "{logs}"
    );
    assert!(
        logs.contains(&format!("rules: .github/ephemera.yml at {}", sha(1))),
        "{logs}"
    );
}

/// A PR of the repository itself reads the rules at its head commit, so it
/// may change its own preview.
async fn a_same_repository_pr_reads_the_rules_at_its_head(t: TestDatabase) {
    let (github, _) = github_with_rules().await;
    rules_at(&github, "master", "version: 1\npreviews:\n  mode: off\n").await;
    let app = app_with(t, &github, &[]).await;
    deliver_all(&app, &[pr_n("opened", 2, 1, 0)]).await;

    assert_eq!(rules_reads(&github).await, [sha(1)]);
    assert_eq!(status_of(&app, 2).await.0, "ready");
}

/// A fork's author never controls the rules: they are read at the base
/// branch, whatever the fork's head holds.
async fn a_fork_pr_reads_the_rules_of_its_base_branch(t: TestDatabase) {
    let (github, _) = github_with_rules().await;
    rules_at(&github, "master", "version: 1\npreviews:\n  mode: off\n").await;
    // The fork's head says otherwise; it must not count.
    rules_at(&github, &sha(1), "version: 1\npreviews:\n  mode: auto\n").await;
    let app = app_with(t, &github, &[("EPHEMERA_ALLOW_FORKS", "true")]).await;
    deliver_all(&app, &[from_fork(pr_n("opened", 2, 1, 0))]).await;

    assert_eq!(rules_reads(&github).await, ["master"]);
    assert_skipped(
        &app,
        &github,
        2,
        1,
        "previews.mode: off: this repository has no previews",
    )
    .await;
}

/// An app whose repository caps live previews at `max_active`, with PRs
/// 2 to `prs` + 1 (PR n at commit n - 1) opened one after the other.
async fn capped(t: TestDatabase, github: &MockServer, max_active: u32, prs: u32) -> TestApp {
    let file = format!("version: 1\npreviews:\n  max_active: {max_active}\n");
    for head in 1..=prs {
        rules_at(github, &sha(head), &file).await;
    }
    let app = app_with(t, github, &[]).await;
    for head in 1..=prs {
        deliver_all(&app, &[pr_n("opened", u64::from(head) + 1, head, 0)]).await;
    }
    app
}

async fn a_repository_cap_queues_previews_until_a_slot_frees_up(t: TestDatabase) {
    let (github, _) = github_with_rules().await;
    let app = capped(t, &github, 1, 3).await;

    assert_eq!(status_of(&app, 2).await.0, "ready");
    let waiting = |place: &str| {
        (
            "waiting".to_owned(),
            json!(format!(
                "waiting: 1 of 1 previews in use in the repository, {place} in line"
            )),
        )
    };
    assert_eq!(status_of(&app, 3).await, waiting("1st"));
    assert_eq!(status_of(&app, 4).await, waiting("2nd"));
    let comment = last_comment(&github, 3).await;
    assert!(
        comment.contains("Waiting for a slot") && comment.contains("1st in line"),
        "{comment}"
    );
    assert_eq!(
        last_status(&github, 2).await,
        (
            "pending".to_owned(),
            "waiting: 1 of 1 previews in use in the repository, 1st in line".to_owned()
        )
    );

    deliver_all(&app, &[pr_n("closed", 2, 1, 100)]).await;

    assert_eq!(status_of(&app, 2).await.0, "destroyed");
    assert_eq!(status_of(&app, 3).await.0, "ready");
    assert_eq!(last_status(&github, 2).await.0, "success");
    // PR 4 moves up at once: PR 3 leaving the line woke it.
    assert_eq!(status_of(&app, 4).await, waiting("1st"));
}

/// A PR closed while it waits leaves the line: it is removed without a
/// rollout, whoever was behind it moves up, and the line stays in order.
async fn closing_a_waiting_pr_keeps_the_line_in_order(t: TestDatabase) {
    let (github, _) = github_with_rules().await;
    let app = capped(t, &github, 1, 4).await;
    assert_eq!(status_of(&app, 3).await.0, "waiting");
    assert_eq!(
        status_of(&app, 5).await.1,
        json!("waiting: 1 of 1 previews in use in the repository, 3rd in line")
    );

    deliver_all(&app, &[pr_n("closed", 3, 2, 100)]).await;

    assert_eq!(status_of(&app, 3).await.0, "destroyed");
    assert_eq!(
        deployment_history(&app, 3).await,
        [(sha(2), "cancelled".to_owned())],
        "never rolled out"
    );
    assert_eq!(status_of(&app, 2).await.0, "ready", "the running one stays");
    assert_eq!(
        status_of(&app, 4).await.1,
        json!("waiting: 1 of 1 previews in use in the repository, 1st in line")
    );
    assert_eq!(
        status_of(&app, 5).await.1,
        json!("waiting: 1 of 1 previews in use in the repository, 2nd in line")
    );
    // The slot goes to the first in line, then the next.
    deliver_all(&app, &[pr_n("closed", 2, 1, 100)]).await;
    assert_eq!(status_of(&app, 4).await.0, "ready");
    assert_eq!(status_of(&app, 5).await.0, "waiting");
}

/// GitHub failing while the rules are read: nothing is deployed on a guess,
/// no attempt is used up, and the next look deploys once GitHub answers.
async fn rules_that_cannot_be_read_hold_the_deployment_until_github_answers(t: TestDatabase) {
    let (github, _) = github_with_rules().await;
    // GitHub fails the first read, then serves the file.
    Mock::given(method("GET"))
        .and(path_regex(r"/contents/\.github/ephemera\.yml$"))
        .respond_with(ResponseTemplate::new(502).set_body_json(json!({"message": "Bad gateway"})))
        .with_priority(1)
        .up_to_n_times(1)
        .mount(&github)
        .await;
    rules_at(&github, &sha(1), "version: 1\n").await;
    let app = app_with(t, &github, &[]).await;
    app.deliver_pr(&pr_n("opened", 2, 1, 0)).await;
    let outcomes = app.drain().await;
    assert!(
        matches!(outcomes[..], [RunOutcome::RulesUnavailable { .. }]),
        "{outcomes:?}"
    );
    let env = env_of(&app, 2).await;
    assert_eq!(env["status"], "pending");
    assert_eq!(
        deployment_history(&app, 2).await,
        [(sha(1), "queued".to_owned())]
    );

    app.clock.advance(Duration::from_secs(61));
    let outcomes = app.drain().await;
    assert!(
        matches!(outcomes[..], [RunOutcome::Ready(_)]),
        "{outcomes:?}"
    );
    assert_eq!(status_of(&app, 2).await.0, "ready");
}

/// `EPHEMERA_MAX_ACTIVE` caps the installation's previews, file or not.
async fn an_installation_cap_queues_previews(t: TestDatabase) {
    let (github, _) = github_with_rules().await;
    let app = app_with(t, &github, &[("EPHEMERA_MAX_ACTIVE", "1")]).await;
    deliver_all(&app, &[pr_n("opened", 2, 1, 0)]).await;
    deliver_all(&app, &[pr_n("opened", 3, 2, 0)]).await;

    assert_eq!(status_of(&app, 2).await.0, "ready");
    assert_eq!(
        status_of(&app, 3).await,
        (
            "waiting".to_owned(),
            json!("waiting: 1 of 1 previews in use in the installation, 1st in line")
        )
    );
}

/// Freeing two slots at once starts the first two in line, not one.
async fn two_freed_slots_start_the_first_two_in_line(t: TestDatabase) {
    let (github, _) = github_with_rules().await;
    let app = capped(t, &github, 2, 5).await;
    assert_eq!(status_of(&app, 4).await.0, "waiting");

    deliver_all(
        &app,
        &[pr_n("closed", 2, 1, 100), pr_n("closed", 3, 2, 100)],
    )
    .await;

    assert_eq!(status_of(&app, 4).await.0, "ready");
    assert_eq!(status_of(&app, 5).await.0, "ready");
    assert_eq!(status_of(&app, 6).await.0, "waiting");
}

/// Two replicas on one PostgreSQL database drain together: the cap holds
/// at every moment and the rest wait in one line both agree on. (Replicas
/// share PostgreSQL; SQLite serves one process.)
#[tokio::test]
async fn replicas_on_postgres_agree_on_the_cap_and_the_line() {
    let Some(t) = TestDatabase::migrated(Backend::Postgres).await else {
        return;
    };
    let (github, _) = github_with_rules_for_replicas(2).await;
    let prs: Vec<(u64, u32)> = (0..6)
        .map(|n| (n + 2, u32::try_from(n).unwrap() + 1))
        .collect();
    for (_, head) in &prs {
        rules_at(
            &github,
            &sha(*head),
            "version: 1\npreviews:\n  max_active: 2\n",
        )
        .await;
    }
    let one = app_with(t, &github, &[]).await;
    let api_url = github.uri();
    let two = one
        .spawn_replica(|s| {
            s.github = Some(ephemera_server::config::GitHubSettings {
                app_id: 42,
                private_key: support::fake_github::KEY.to_owned().into(),
                api_url,
            });
        })
        .await;
    for (number, head) in &prs {
        one.deliver_pr(&pr_n("opened", *number, *head, 0)).await;
    }

    let holding = ["provisioning", "ready", "updating"];
    let done = std::sync::atomic::AtomicBool::new(false);
    let watch = async {
        let mut most = 0;
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            let envs = one.json("/api/v1/environments").await;
            let live = envs
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| holding.contains(&e["status"].as_str().unwrap()))
                .count();
            most = most.max(live);
            tokio::task::yield_now().await;
        }
        most
    };
    let drains = async {
        tokio::join!(one.drain(), two.drain());
        done.store(true, std::sync::atomic::Ordering::SeqCst);
    };
    let (most, ()) = tokio::join!(watch, drains);
    assert!(most <= 2, "{most} previews live at once");

    let mut ready = Vec::new();
    let mut line = Vec::new();
    for (number, _) in &prs {
        let (status, reason) = status_of(&one, *number).await;
        match status.as_str() {
            "ready" => ready.push(*number),
            "waiting" => line.push((reason.as_str().unwrap().to_owned(), *number)),
            other => panic!("PR #{number} is {other}"),
        }
    }
    assert_eq!(ready.len(), 2, "{ready:?} {line:?}");
    line.sort();
    let places: Vec<&str> = line.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(
        places,
        ["1st", "2nd", "3rd", "4th"]
            .map(|p| format!("waiting: 2 of 2 previews in use in the repository, {p} in line"))
    );

    // Both slots free up: the first two in line start, on either replica.
    for number in &ready {
        let head = prs.iter().find(|(n, _)| n == number).unwrap().1;
        one.deliver_pr(&pr_n("closed", *number, head, 100)).await;
    }
    tokio::join!(one.drain(), two.drain());
    for (at, (_, number)) in line.iter().enumerate() {
        let expected = if at < 2 { "ready" } else { "waiting" };
        assert_eq!(
            status_of(&two, *number).await.0,
            expected,
            "PR #{number}, {at} in line"
        );
    }
}

/// The operator's bounds cut a file, and the PR comment says what was
/// refused.
async fn bounds_cut_a_file_and_the_comment_lists_what_was_refused(t: TestDatabase) {
    let (github, _) = github_with_rules().await;
    rules_at(
        &github,
        &sha(1),
        "version: 1\npreviews:\n  mode: off\n  ttl: 30d\n  max_active: 50\n\
         env:\n  PREVIEW_FLAG: on\n  DATABASE_URL: postgres://x\n  LD_PRELOAD: /x.so\n",
    )
    .await;
    let app = app_with(
        t,
        &github,
        &[
            (
                "EPHEMERA_REPO_CONFIG_KEYS",
                "previews.ttl,previews.max_active,env",
            ),
            ("EPHEMERA_REPO_CONFIG_MAX_TTL", "7d"),
            ("EPHEMERA_REPO_CONFIG_MAX_ACTIVE", "5"),
            ("EPHEMERA_REPO_CONFIG_ENV_NAMES", "PREVIEW_*"),
        ],
    )
    .await;
    deliver_all(&app, &[pr_n("opened", 2, 1, 0)]).await;

    // `mode: off` was refused: the PR gets its preview.
    assert_eq!(status_of(&app, 2).await.0, "ready");
    let refused = [
        "`previews.mode` is not one a repository may set here",
        "`previews.ttl: 30d` is longer than this server allows; 7d applies",
        "`previews.max_active: 50` is more than this server allows; 5 applies",
        "`env.DATABASE_URL` is not a name this server lets repositories set",
        "`env.LD_PRELOAD` is reserved and cannot be set",
    ];
    let comment = last_comment(&github, 2).await;
    assert!(
        comment.contains("**Refused from `.github/ephemera.yml`**"),
        "{comment}"
    );
    for line in refused {
        assert!(
            comment.contains(&format!("- {line}\n")),
            "{line}: {comment}"
        );
    }
    let logs = last_deployment(&app, 2).await["logs"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        logs.lines()
            .any(|l| l.ends_with("dry-run: with variables PREVIEW_FLAG")),
        "only the allowed variable: {logs}"
    );
    for line in refused {
        assert!(logs.contains(&format!("refused: {line}")), "{line}: {logs}");
    }
}

/// A file that is no longer valid refuses the new commit with the line
/// and column; the preview of the last good commit keeps running.
async fn an_invalid_file_refuses_the_commit_and_keeps_the_preview(t: TestDatabase) {
    let (github, _) = github_with_rules().await;
    rules_at(&github, &sha(1), "version: 1\npreviews:\n  ttl: 3d\n").await;
    rules_at(&github, &sha(2), "version: 1\npreviews:\n  mdoe: off\n").await;
    rules_at(&github, &sha(3), "version: 1\npreviews: [\n").await;
    let app = app_with(t, &github, &[]).await;
    deliver_all(&app, &[pr_n("opened", 2, 1, 0)]).await;
    assert_eq!(status_of(&app, 2).await.0, "ready");

    deliver_all(&app, &[pr_n("synchronize", 2, 2, 10)]).await;

    let error = ".github/ephemera.yml at 0000000 is invalid: line 3, column 3: previews: \
                 unknown field `mdoe`";
    let deployment = last_deployment(&app, 2).await;
    assert_eq!(deployment["commit_sha"], sha(2));
    assert_eq!(deployment["status"], "failed", "{deployment}");
    let message = deployment["error_message"].as_str().unwrap();
    assert!(message.starts_with(error), "{message}");
    assert!(
        message.ends_with("(schema: /api/v1/config-schema)"),
        "{message}"
    );
    assert!(
        deployment["logs"].as_str().unwrap().contains(error),
        "{deployment}"
    );
    let env = env_of(&app, 2).await;
    assert_eq!(env["status"], "ready", "{env}");
    assert!(env["environment_url"].is_string(), "{env}");
    assert_eq!(
        deployment_history(&app, 2).await,
        [
            (sha(2), "failed".to_owned()),
            (sha(1), "success".to_owned())
        ]
    );
    let reason = env["status_reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!("commit 0000000 is not deployed: {error}")),
        "{reason}"
    );
    let comment = last_comment(&github, 2).await;
    assert!(comment.contains(error), "{comment}");

    // Broken YAML is reported the same way, with where it broke.
    deliver_all(&app, &[pr_n("synchronize", 2, 3, 20)]).await;
    let broken = last_deployment(&app, 2).await;
    assert_eq!(broken["status"], "failed", "{broken}");
    let message = broken["error_message"].as_str().unwrap();
    assert!(message.contains("is invalid: line "), "{message}");
    assert_eq!(env_of(&app, 2).await["status"], "ready");
    assert_eq!(
        deployment_history(&app, 2).await[2],
        (sha(1), "success".to_owned())
    );
}

/// A file over 64 KiB is refused unread, with its size.
async fn a_huge_file_is_refused(t: TestDatabase) {
    let (github, _) = github_with_rules().await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO}{CONFIG}")))
        .and(query_param("ref", sha(1)))
        .respond_with(file_answer("version: 1\n", 70_000))
        .with_priority(2)
        .mount(&github)
        .await;
    let app = app_with(t, &github, &[]).await;
    deliver_all(&app, &[pr_n("opened", 2, 1, 0)]).await;

    let deployment = last_deployment(&app, 2).await;
    assert_eq!(deployment["status"], "failed", "{deployment}");
    assert_eq!(
        deployment["error_message"],
        ".github/ephemera.yml at 0000000 is invalid: the file is 70000 bytes; at most 65536 \
         are read (schema: /api/v1/config-schema)"
    );
    assert_eq!(status_of(&app, 2).await.0, "skipped");
}

backend_tests!(
    closing_a_waiting_pr_keeps_the_line_in_order,
    rules_that_cannot_be_read_hold_the_deployment_until_github_answers,
    mode_off_and_manual_give_no_preview_and_say_so,
    base_branches_outside_the_globs_get_no_preview,
    path_rules_read_the_prs_files,
    a_pr_skipped_by_a_path_rule_starts_when_a_push_matches_it,
    bot_authors_and_title_phrases_are_skipped,
    a_repository_ttl_expires_its_previews_sooner,
    variables_reach_the_provisioner,
    a_same_repository_pr_reads_the_rules_at_its_head,
    a_fork_pr_reads_the_rules_of_its_base_branch,
    a_repository_cap_queues_previews_until_a_slot_frees_up,
    an_installation_cap_queues_previews,
    two_freed_slots_start_the_first_two_in_line,
    bounds_cut_a_file_and_the_comment_lists_what_was_refused,
    an_invalid_file_refuses_the_commit_and_keeps_the_preview,
    a_huge_file_is_refused,
);
