//! Black-box tests of webhook ingestion with GitHub's documented payloads,
//! signed as GitHub signs them, on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used)]

mod support;

use chrono::{DateTime, Duration, Utc};
use ephemera_application::ports::EnvironmentRepository;
use ephemera_domain::{EnvironmentId, GithubUserId, InstallationId, InstallationStatus};
use ephemera_persistence::testing::TestDatabase;
use ephemera_persistence::{
    SqlEnvironmentRepository, SqlInstallationRepository, SqlUserRepository, backend_tests,
};
use serde_json::{Value, json};
use support::{TestApp, payload};

fn id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn sha(n: u32) -> String {
    format!("{n:040x}")
}

/// GitHub's example timestamp moved by `seconds`.
fn ts(seconds: i64) -> String {
    let base = DateTime::parse_from_rfc3339("2019-05-15T15:20:33Z")
        .unwrap()
        .with_timezone(&Utc);
    (base + Duration::seconds(seconds)).to_rfc3339()
}

/// `pull_request.<action>` with the head, `updated_at` and labels GitHub
/// would send for that moment.
fn pr(action: &str, head: u32, updated: i64) -> Value {
    let mut p = payload(&format!("pull_request.{action}"));
    p["pull_request"]["head"]["sha"] = json!(sha(head));
    p["pull_request"]["updated_at"] = json!(ts(updated));
    p
}

/// PR `number` of another repository, with a GitHub id of its own (derived
/// from the name, so the same name is the same repository).
fn with_repo(mut p: Value, full_name: &str, number: u64) -> Value {
    let repository_id = full_name
        .to_ascii_lowercase()
        .bytes()
        .fold(7_i64, |id, b| (id * 31 + i64::from(b)) % 1_000_000_007);
    p["number"] = json!(number);
    p["pull_request"]["number"] = json!(number);
    set_repository(
        &mut p,
        &[
            ("full_name", json!(full_name)),
            ("id", json!(repository_id)),
        ],
    );
    p
}

/// Sets `fields` on the repository, the PR's base and its head alike.
fn set_repository(p: &mut Value, fields: &[(&str, Value)]) {
    for pointer in [
        "/repository",
        "/pull_request/base/repo",
        "/pull_request/head/repo",
    ] {
        let repo = p.pointer_mut(pointer).unwrap();
        for (key, value) in fields {
            repo[*key] = value.clone();
        }
    }
}

fn with_labels(mut p: Value, labels: &[&str]) -> Value {
    p["pull_request"]["labels"] = json!(
        labels
            .iter()
            .map(|l| json!({"name": l}))
            .collect::<Vec<_>>()
    );
    p
}

/// The head branch lives in someone else's fork.
fn from_fork(mut p: Value) -> Value {
    p["pull_request"]["head"]["repo"]["id"] = json!(999_999);
    p["pull_request"]["head"]["repo"]["full_name"] = json!("forker/Hello-World");
    p["pull_request"]["head"]["repo"]["fork"] = json!(true);
    p["pull_request"]["user"] = json!({"login": "forker", "id": 4242});
    p
}

async fn environments(app: &TestApp) -> Vec<Value> {
    app.json("/api/v1/environments")
        .await
        .as_array()
        .unwrap()
        .clone()
}

async fn deployments(app: &TestApp, env_id: &Value) -> Vec<Value> {
    app.json(&format!("/api/v1/environments/{env_id}/deployments"))
        .await
        .as_array()
        .unwrap()
        .clone()
}

async fn the_only_environment(app: &TestApp) -> Value {
    let envs = environments(app).await;
    assert_eq!(envs.len(), 1, "{envs:?}");
    envs[0].clone()
}

fn statuses(deployments: &[Value]) -> Vec<(String, String)> {
    deployments
        .iter()
        .map(|d| {
            (
                d["commit_sha"].as_str().unwrap()[..7].to_owned(),
                d["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Plays the worker's part (not built yet): a destroying environment
/// finishes as destroyed.
async fn finish_destroying(db: &ephemera_persistence::DatabaseConnection, id: &Value) {
    let repo = SqlEnvironmentRepository::new(db.clone());
    let mut env = repo
        .get(EnvironmentId::new(id.as_i64().unwrap()).unwrap())
        .await
        .unwrap()
        .unwrap();
    env.mark_destroyed(Utc::now()).unwrap();
    repo.update(&env).await.unwrap();
}

async fn opened_pr_gets_an_environment_and_a_queued_deployment(t: TestDatabase) {
    let users = SqlUserRepository::new(t.db.clone());
    let app = TestApp::spawn(t).await;
    let delivery = id();

    let answer = app
        .deliver_ok("pull_request", &delivery, &payload("pull_request.opened"))
        .await;
    assert_eq!(answer["outcome"], "applied");
    assert_eq!(answer["delivery_id"], delivery);

    let env = the_only_environment(&app).await;
    assert_eq!(env["repository_full_name"], "Codertocat/Hello-World");
    assert_eq!(env["pr_number"], 2);
    assert_eq!(env["status"], "pending");
    assert_eq!(
        env["commit_sha"],
        "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
    );
    assert_eq!(env["branch_name"], "changes");
    assert_eq!(env["installation_id"], 1);
    assert_eq!(env["owner"]["login"], "Codertocat");
    assert_eq!(
        statuses(&deployments(&app, &env["id"]).await),
        [("ec26c3e".into(), "queued".into())]
    );

    let logged = app.json(&format!("/api/v1/deliveries/{delivery}")).await;
    assert_eq!(logged["outcome"], "applied");
    assert_eq!(logged["event"], "pull_request");
    assert_eq!(logged["action"], "opened");
    assert_eq!(logged["repository"], "Codertocat/Hello-World");
    let author = users
        .get_by_github_id(GithubUserId::new(21031067).unwrap())
        .await
        .unwrap();
    assert_eq!(
        author.unwrap().login,
        "Codertocat",
        "PR author recorded as a user"
    );
}

/// What the delivery log says of a delivery sent ten times.
async fn applied_once_in_ten_attempts(app: &TestApp, delivery: &str) {
    let logged = app.json(&format!("/api/v1/deliveries/{delivery}")).await;
    assert_eq!(
        (logged["outcome"].clone(), logged["attempts"].clone()),
        (json!("applied"), json!(10))
    );
}

async fn the_same_delivery_ten_times_changes_things_once(t: TestDatabase) {
    let app = TestApp::spawn(t).await;
    let delivery = id();
    let body = payload("pull_request.opened");
    let mut outcomes = Vec::new();
    for _ in 0..10 {
        outcomes.push(app.deliver_ok("pull_request", &delivery, &body).await["outcome"].clone());
    }
    assert_eq!(outcomes[0], "applied");
    assert!(
        outcomes[1..].iter().all(|o| o == "duplicate"),
        "{outcomes:?}"
    );

    let env = the_only_environment(&app).await;
    assert_eq!(deployments(&app, &env["id"]).await.len(), 1);
    applied_once_in_ten_attempts(&app, &delivery).await;
}

/// The log row of a new delivery is written with its outcome, at the end
/// of its transaction: copies racing in at once must still apply it once.
async fn the_same_delivery_ten_times_at_once_changes_things_once(t: TestDatabase) {
    let app = TestApp::spawn(t).await;
    let delivery = id();
    let body = payload("pull_request.opened");
    let sends = (0..10).map(|_| {
        let (app, delivery, body) = (&app, &delivery, &body);
        async move { app.deliver_ok("pull_request", delivery, body).await["outcome"].clone() }
    });
    let mut outcomes = futures::future::join_all(sends).await;
    outcomes.sort_by_key(|o| o.to_string());
    let mut expected = vec![json!("applied")];
    expected.extend(std::iter::repeat_n(json!("duplicate"), 9));
    assert_eq!(outcomes, expected);

    let env = the_only_environment(&app).await;
    assert_eq!(deployments(&app, &env["id"]).await.len(), 1);
    applied_once_in_ten_attempts(&app, &delivery).await;
}

async fn fifty_concurrent_deliveries_for_one_pr_leave_the_newest_commit(t: TestDatabase) {
    let app = TestApp::spawn(t).await;
    app.deliver_ok("pull_request", &id(), &pr("opened", 1, 0))
        .await;

    // 50 pushes, sent all at once in scrambled order.
    let mut order: Vec<u32> = (2..=51).collect();
    order.sort_by_key(|n| (n * 37) % 50);
    let sends = order.iter().map(|&n| {
        let app = &app;
        async move {
            let response = app
                .deliver("pull_request", &id(), &pr("synchronize", n, i64::from(n)))
                .await;
            assert_eq!(response.status(), 200);
        }
    });
    futures::future::join_all(sends).await;

    let env = the_only_environment(&app).await;
    assert_eq!(env["commit_sha"], sha(51), "the newest head wins");
    let history = deployments(&app, &env["id"]).await;
    let queued: Vec<_> = history.iter().filter(|d| d["status"] == "queued").collect();
    assert_eq!(queued.len(), 1, "{:?}", statuses(&history));
    assert_eq!(queued[0]["commit_sha"], sha(51));
    assert!(
        history
            .iter()
            .all(|d| d["status"] == "queued" || d["status"] == "cancelled")
    );
}

async fn synchronize_moves_forward_and_never_back(t: TestDatabase) {
    let app = TestApp::spawn(t).await;
    app.deliver_ok("pull_request", &id(), &pr("opened", 1, 0))
        .await;
    let newer = app
        .deliver_ok("pull_request", &id(), &pr("synchronize", 2, 60))
        .await;
    assert_eq!(newer["outcome"], "applied");
    let env = the_only_environment(&app).await;
    assert_eq!(env["commit_sha"], sha(2));
    assert_eq!(
        statuses(&deployments(&app, &env["id"]).await),
        [
            ("0000000".into(), "queued".into()),
            ("0000000".into(), "cancelled".into())
        ]
    );

    let late = app
        .deliver_ok("pull_request", &id(), &pr("synchronize", 3, 30))
        .await;
    assert_eq!(late["outcome"], "ignored");
    assert!(
        late["reason"].as_str().unwrap().starts_with("stale:"),
        "{late}"
    );
    let env = the_only_environment(&app).await;
    assert_eq!(
        env["commit_sha"],
        sha(2),
        "an older event does not change the commit"
    );
    assert_eq!(deployments(&app, &env["id"]).await.len(), 2);
}

async fn close_destroys_and_reopen_revives_the_same_environment(t: TestDatabase) {
    let app = TestApp::spawn(t).await;
    app.deliver_ok("pull_request", &id(), &pr("opened", 1, 0))
        .await;
    let opened = the_only_environment(&app).await;

    let mut merged = pr("closed", 1, 10);
    merged["pull_request"]["merged"] = json!(true);
    merged["pull_request"]["merged_at"] = json!(ts(10));
    merged["pull_request"]["merge_commit_sha"] = json!(sha(99));
    let answer = app.deliver_ok("pull_request", &id(), &merged).await;
    assert_eq!(answer["outcome"], "applied");
    assert!(
        answer["reason"].as_str().unwrap().starts_with("PR merged"),
        "{answer}"
    );
    let closing = the_only_environment(&app).await;
    assert_eq!(closing["status"], "destroying");
    assert_eq!(
        statuses(&deployments(&app, &closing["id"]).await),
        [("0000000".into(), "cancelled".into())]
    );

    finish_destroying(&app.database.db, &closing["id"]).await;

    let reopened = app
        .deliver_ok("pull_request", &id(), &pr("reopened", 2, 20))
        .await;
    assert_eq!(reopened["outcome"], "applied");
    let env = the_only_environment(&app).await;
    assert_eq!(env["id"], opened["id"], "same record");
    assert_eq!(env["namespace"], opened["namespace"], "same namespace");
    assert_eq!(env["status"], "pending");
    assert_eq!(env["destroyed_at"], Value::Null);
    assert_eq!(deployments(&app, &env["id"]).await[0]["status"], "queued");
}

async fn same_repo_name_under_two_owners_gets_two_namespaces(t: TestDatabase) {
    let app = TestApp::spawn(t).await;
    for owner in ["org-a", "org-b"] {
        let body = with_repo(payload("pull_request.opened"), &format!("{owner}/web"), 5);
        assert_eq!(
            app.deliver_ok("pull_request", &id(), &body).await["outcome"],
            "applied"
        );
    }
    let envs = environments(&app).await;
    assert_eq!(envs.len(), 2);
    let namespaces: Vec<_> = envs
        .iter()
        .map(|e| e["namespace"].as_str().unwrap().to_owned())
        .collect();
    assert_ne!(namespaces[0], namespaces[1]);
    assert!(
        namespaces.iter().all(|n| n.starts_with("pr-5-web-")),
        "{namespaces:?}"
    );
}

async fn fork_prs_wait_for_a_maintainers_label(t: TestDatabase) {
    let app = TestApp::spawn(t).await;
    let delivery = id();
    let answer = app
        .deliver_ok("pull_request", &delivery, &from_fork(pr("opened", 1, 0)))
        .await;
    // Recorded, nothing runs: its head waits for a maintainer.
    assert_eq!(answer["outcome"], "applied");
    let reason = answer["reason"].as_str().unwrap();
    assert!(
        reason.contains("PR from a fork") && reason.contains("`/preview approve`"),
        "{answer}"
    );
    let waiting = the_only_environment(&app).await;
    assert_eq!(waiting["status"], "skipped");
    assert!(
        waiting["status_reason"]
            .as_str()
            .unwrap()
            .starts_with("no preview: PR from a fork"),
        "{waiting}"
    );
    let logged = app.json(&format!("/api/v1/deliveries/{delivery}")).await;
    assert_eq!(logged["outcome"], "applied");
    assert_eq!(logged["reason"], answer["reason"]);

    // The fork's author labels their own PR: does not count.
    let mut self_labeled = with_labels(from_fork(pr("labeled", 1, 10)), &["safe-to-preview"]);
    self_labeled["label"] = json!({"name": "safe-to-preview"});
    self_labeled["sender"] = json!({"login": "forker", "id": 4242});
    let answer = app.deliver_ok("pull_request", &id(), &self_labeled).await;
    assert_eq!(answer["outcome"], "ignored");
    assert!(
        answer["reason"].as_str().unwrap().contains("own author"),
        "{answer}"
    );

    // A maintainer adds it: deployed.
    let mut maintainer = self_labeled.clone();
    maintainer["pull_request"]["updated_at"] = json!(ts(20));
    maintainer["sender"] = json!({"login": "Codertocat", "id": 21031067});
    let answer = app.deliver_ok("pull_request", &id(), &maintainer).await;
    assert_eq!(answer["outcome"], "applied", "{answer}");
    app.drain().await;
    assert_eq!(the_only_environment(&app).await["status"], "ready");

    // The fork author pushes again: the label vouched for the old commit
    // only. Nothing new is deployed; what runs keeps running.
    let push = with_labels(from_fork(pr("synchronize", 2, 30)), &["safe-to-preview"]);
    let answer = app.deliver_ok("pull_request", &id(), &push).await;
    assert_eq!(answer["outcome"], "ignored");
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .contains("add the `safe-to-preview` label again"),
        "{answer}"
    );
    let env = the_only_environment(&app).await;
    assert_eq!(env["commit_sha"], sha(1));
    assert_eq!(env["status"], "ready");

    // A maintainer adds the label again: the new commit is deployed.
    let mut again = with_labels(from_fork(pr("labeled", 2, 40)), &["safe-to-preview"]);
    again["label"] = json!({"name": "safe-to-preview"});
    again["sender"] = json!({"login": "Codertocat", "id": 21031067});
    assert_eq!(
        app.deliver_ok("pull_request", &id(), &again).await["outcome"],
        "applied"
    );
    assert_eq!(the_only_environment(&app).await["commit_sha"], sha(2));
}

async fn forks_deploy_when_the_operator_allows_them(t: TestDatabase) {
    let app = TestApp::spawn_with(t, |s| s.policy.allow_forks = true).await;
    let answer = app
        .deliver_ok("pull_request", &id(), &from_fork(pr("opened", 1, 0)))
        .await;
    assert_eq!(answer["outcome"], "applied");
    assert_eq!(environments(&app).await.len(), 1);
}

async fn drafts_wait_for_ready_for_review_and_going_back_to_draft_destroys(t: TestDatabase) {
    let app = TestApp::spawn(t).await;
    let mut draft = pr("opened", 1, 0);
    draft["pull_request"]["draft"] = json!(true);
    let answer = app.deliver_ok("pull_request", &id(), &draft).await;
    assert_eq!(answer["outcome"], "ignored");
    assert!(answer["reason"].as_str().unwrap().contains("draft"));
    assert!(environments(&app).await.is_empty());

    let ready = app
        .deliver_ok("pull_request", &id(), &pr("ready_for_review", 1, 10))
        .await;
    assert_eq!(ready["outcome"], "applied");
    assert_eq!(the_only_environment(&app).await["status"], "pending");

    // GitHub's base converted_to_draft example carries no installation.
    let back = app
        .deliver_ok("pull_request", &id(), &pr("converted_to_draft", 1, 20))
        .await;
    assert_eq!(back["outcome"], "applied");
    assert_eq!(the_only_environment(&app).await["status"], "destroying");
}

async fn a_required_label_gates_the_preview(t: TestDatabase) {
    let app = TestApp::spawn_with(t, |s| s.policy.required_label = Some("preview".into())).await;
    let answer = app
        .deliver_ok("pull_request", &id(), &pr("opened", 1, 0))
        .await;
    assert_eq!(answer["outcome"], "ignored");
    assert!(answer["reason"].as_str().unwrap().contains("`preview`"));

    let mut labeled = with_labels(pr("labeled", 1, 10), &["bug", "preview"]);
    labeled["label"] = json!({"name": "preview"});
    assert_eq!(
        app.deliver_ok("pull_request", &id(), &labeled).await["outcome"],
        "applied"
    );
    assert_eq!(the_only_environment(&app).await["status"], "pending");

    let mut unlabeled = with_labels(pr("labeled", 1, 20), &["bug"]);
    unlabeled["action"] = json!("unlabeled");
    unlabeled["label"] = json!({"name": "preview"});
    assert_eq!(
        app.deliver_ok("pull_request", &id(), &unlabeled).await["outcome"],
        "applied"
    );
    assert_eq!(the_only_environment(&app).await["status"], "destroying");
}

async fn installations_are_recorded_suspended_and_deleted(t: TestDatabase) {
    let installations = SqlInstallationRepository::new(t.db.clone());
    let app = TestApp::spawn(t).await;

    let created = app
        .deliver_ok("installation", &id(), &payload("installation.created"))
        .await;
    assert_eq!(created["outcome"], "applied");
    let recorded = installations
        .get(InstallationId::new(957387).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(recorded.account_login, "Codertocat");
    assert_eq!(recorded.status, InstallationStatus::Active);
    let names: Vec<_> = recorded
        .repositories
        .iter()
        .map(|r| r.full_name.to_string())
        .collect();
    assert_eq!(names, ["Codertocat/Hello-World"]);

    let added = app
        .deliver_ok(
            "installation_repositories",
            &id(),
            &payload("installation_repositories.added"),
        )
        .await;
    assert_eq!(added["outcome"], "applied");
    let recorded = installations
        .get(InstallationId::new(957387).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(recorded.repositories.len(), 2);

    // Suspended: no new deployments (the PR names the suspended installation).
    let mut suspend = payload("installation.suspend");
    suspend["installation"]["id"] = json!(1);
    app.deliver_ok("installation", &id(), &suspend).await;
    let answer = app
        .deliver_ok("pull_request", &id(), &pr("opened", 1, 0))
        .await;
    assert_eq!(answer["outcome"], "ignored");
    assert!(
        answer["reason"].as_str().unwrap().contains("suspended"),
        "{answer}"
    );
    assert!(environments(&app).await.is_empty());

    let mut unsuspend = payload("installation.unsuspend");
    unsuspend["installation"]["id"] = json!(1);
    app.deliver_ok("installation", &id(), &unsuspend).await;
    assert_eq!(
        app.deliver_ok("pull_request", &id(), &pr("opened", 1, 10))
            .await["outcome"],
        "applied"
    );

    // Deleted: its environments are destroyed.
    let mut deleted = payload("installation.deleted");
    deleted["installation"]["id"] = json!(1);
    // GitHub's examples come from different years; a real deletion is newer
    // than the suspension before it (an older one would be stale).
    deleted["installation"]["updated_at"] = json!("2021-05-01T00:00:00Z");
    let answer = app.deliver_ok("installation", &id(), &deleted).await;
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .contains("1 environments destroying"),
        "{answer}"
    );
    assert_eq!(the_only_environment(&app).await["status"], "destroying");
}

async fn removed_repositories_lose_their_environments(t: TestDatabase) {
    let app = TestApp::spawn(t).await;
    let mut opened = with_repo(pr("opened", 1, 0), "octocat/Hello-World", 3);
    opened["installation"]["id"] = json!(2);
    // The id installation_repositories.removed names it by.
    opened["repository"]["id"] = json!(1296269);
    opened["pull_request"]["base"]["repo"]["id"] = json!(1296269);
    opened["pull_request"]["head"]["repo"]["id"] = json!(1296269);
    app.deliver_ok("pull_request", &id(), &opened).await;
    let other = with_repo(pr("opened", 1, 0), "octocat/Other", 3);
    app.deliver_ok("pull_request", &id(), &other).await;

    let answer = app
        .deliver_ok(
            "installation_repositories",
            &id(),
            &payload("installation_repositories.removed"),
        )
        .await;
    assert_eq!(answer["outcome"], "applied");
    let envs = environments(&app).await;
    let status_of = |repo: &str| {
        envs.iter()
            .find(|e| e["repository_full_name"] == repo)
            .map(|e| e["status"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert_eq!(status_of("octocat/Hello-World"), "destroying");
    assert_eq!(status_of("octocat/Other"), "pending");
}

async fn ping_and_unhandled_events_are_answered_and_logged(t: TestDatabase) {
    let app = TestApp::spawn(t).await;
    let ping = app.deliver_ok("ping", &id(), &payload("ping")).await;
    assert_eq!(ping["outcome"], "applied");
    let push = app.deliver_ok("push", &id(), &payload("push")).await;
    assert_eq!(push["outcome"], "ignored");
    assert_eq!(push["reason"], "`push` events do not affect previews");
    let mut assigned = payload("pull_request.opened");
    assigned["action"] = json!("assigned");
    let answer = app.deliver_ok("pull_request", &id(), &assigned).await;
    assert_eq!(answer["outcome"], "ignored");
    assert!(environments(&app).await.is_empty());

    let ignored = app.json("/api/v1/deliveries?outcome=ignored").await;
    assert_eq!(ignored.as_array().unwrap().len(), 2);
    let pings = app.json("/api/v1/deliveries?event=ping").await;
    assert_eq!(pings.as_array().unwrap().len(), 1);
}

async fn delivery_log_pages_newest_first(t: TestDatabase) {
    let app = TestApp::spawn(t).await;
    let ids: Vec<String> = (0..5).map(|i| format!("delivery-{i}")).collect();
    for delivery in &ids {
        app.deliver_ok("ping", delivery, &payload("ping")).await;
    }
    let first = app.get("/api/v1/deliveries?limit=3").await;
    let link = first.headers()["link"].to_str().unwrap().to_owned();
    let page: Vec<Value> = first.json().await.unwrap();
    let got: Vec<_> = page
        .iter()
        .map(|d| d["delivery_id"].as_str().unwrap())
        .collect();
    assert_eq!(got, ["delivery-4", "delivery-3", "delivery-2"]);
    let next = &link[1..link.find('>').unwrap()];
    let page: Vec<Value> = app
        .client
        .get(next)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let got: Vec<_> = page
        .iter()
        .map(|d| d["delivery_id"].as_str().unwrap())
        .collect();
    assert_eq!(got, ["delivery-1", "delivery-0"]);

    app.problem("/api/v1/deliveries/not-there", 404).await;
    app.problem("/api/v1/deliveries?outcome=great", 400).await;
}

async fn refused_deliveries_get_problems_and_change_nothing(t: TestDatabase) {
    let app = TestApp::spawn_with(t, |s| s.webhook.max_body_bytes = 64 * 1024).await;
    let body = serde_json::to_vec(&payload("pull_request.opened")).unwrap();
    let url = format!("{}/api/v1/github/webhook", app.address);
    let signature = ephemera_http::sign(support::SECRET.as_bytes(), &body);
    let send = |headers: Vec<(&'static str, String)>, body: Vec<u8>| {
        let mut request = app.client.post(&url).body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send()
    };
    let expect_problem = |response: reqwest::Response, status: u16, needle: &'static str| async move {
        assert_eq!(response.status().as_u16(), status);
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let problem: Value = response.json().await.unwrap();
        let detail = problem["detail"].as_str().unwrap().to_owned();
        assert!(detail.contains(needle), "{status}: {detail}");
        assert!(!detail.contains(support::SECRET), "never echo the secret");
    };
    let all = |sig: &str| {
        vec![
            ("X-GitHub-Event", "pull_request".to_owned()),
            ("X-GitHub-Delivery", id()),
            ("X-Hub-Signature-256", sig.to_owned()),
        ]
    };

    // No signature, wrong signature, tampered body.
    let mut headers = all(&signature);
    headers.pop();
    expect_problem(send(headers, body.clone()).await.unwrap(), 401, "missing").await;
    let wrong = ephemera_http::sign(b"another secret", &body);
    expect_problem(
        send(all(&wrong), body.clone()).await.unwrap(),
        401,
        "does not match",
    )
    .await;
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    expect_problem(
        send(all(&signature), tampered).await.unwrap(),
        401,
        "does not match",
    )
    .await;

    // Missing event / delivery headers.
    let mut headers = all(&signature);
    headers.remove(0);
    expect_problem(
        send(headers, body.clone()).await.unwrap(),
        400,
        "X-GitHub-Event",
    )
    .await;
    let mut headers = all(&signature);
    headers.remove(1);
    expect_problem(
        send(headers, body.clone()).await.unwrap(),
        400,
        "X-GitHub-Delivery",
    )
    .await;

    // An event header that is no event name: refused before the body.
    let mut headers = all(&signature);
    headers[0].1 = "Pull-Request".to_owned();
    expect_problem(
        send(headers, body.clone()).await.unwrap(),
        400,
        "X-GitHub-Event: `Pull-Request` is not an event name",
    )
    .await;

    // JSON, signed, but not an object (serde would read the envelope's
    // fields from an array): refused and noted in the log.
    let array = b"[null, null, null, null]".to_vec();
    let signed = ephemera_http::sign(support::SECRET.as_bytes(), &array);
    let mut headers = all(&signed);
    headers[0].1 = "workflow_run".to_owned();
    expect_problem(send(headers, array).await.unwrap(), 400, "not an object").await;

    // Malformed JSON, correctly signed: refused and noted in the log.
    let garbage = b"{\"action\": \"opened\", ".to_vec();
    let signed = ephemera_http::sign(support::SECRET.as_bytes(), &garbage);
    let headers = all(&signed);
    let delivery = headers[1].1.clone();
    expect_problem(send(headers, garbage).await.unwrap(), 400, "malformed JSON").await;
    let logged = app.json(&format!("/api/v1/deliveries/{delivery}")).await;
    assert_eq!(logged["outcome"], "failed");

    // Over the size limit.
    let huge = vec![b' '; 64 * 1024 + 1];
    let signed = ephemera_http::sign(support::SECRET.as_bytes(), &huge);
    expect_problem(
        send(all(&signed), huge).await.unwrap(),
        413,
        "larger than 65536 bytes",
    )
    .await;

    assert!(environments(&app).await.is_empty(), "nothing applied");
    let log = app.json("/api/v1/deliveries").await;
    assert_eq!(
        log.as_array().unwrap().len(),
        2,
        "only the signed, malformed ones: {log}"
    );
}

/// JSON (and the API description, after JSON Schema) counts `5.0` as the
/// integer 5: ids written so are read as ids.
async fn integers_written_with_a_zero_fraction_are_integers(t: TestDatabase) {
    let app = TestApp::spawn(t).await;
    let mut opened = payload("pull_request.opened");
    let repository_id = opened["repository"]["id"].as_i64().unwrap();
    let sender_id = opened["sender"]["id"].as_i64().unwrap();
    opened["repository"]["id"] = serde_json::json!(repository_id as f64);
    opened["sender"]["id"] = serde_json::json!(sender_id as f64);
    let body = serde_json::to_string(&opened).unwrap();
    assert!(body.contains(&format!("{sender_id}.0")), "sent as 5.0");
    let answer = app.deliver_ok("pull_request", &id(), &opened).await;
    assert_eq!(answer["outcome"], "applied", "{answer}");
    assert_eq!(
        the_only_environment(&app).await["owner"]["github_id"],
        sender_id
    );

    let mut half = payload("pull_request.synchronize");
    half["sender"]["id"] = serde_json::json!(sender_id as f64 + 0.5);
    let response = app.deliver("pull_request", &id(), &half).await;
    assert_eq!(response.status(), 400);
}

async fn without_a_secret_the_endpoint_says_which_variable_to_set(t: TestDatabase) {
    let app = TestApp::spawn_with(t, |s| s.webhook.secret = None).await;
    let response = app.deliver("ping", &id(), &payload("ping")).await;
    assert_eq!(response.status(), 503);
    let problem: Value = response.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("GITHUB_WEBHOOK_SECRET")
    );
    assert!(
        app.json("/api/v1/deliveries")
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );
}

/// An installation event for installation 1 (the one the PR examples name).
fn installation_event(name: &str) -> Value {
    let mut p = payload(name);
    p["installation"]["id"] = json!(1);
    p
}

async fn a_captured_delivery_replayed_under_a_new_id_changes_nothing(t: TestDatabase) {
    let app = TestApp::spawn(t).await;
    let suspend = installation_event("installation.suspend");
    let first = id();
    app.deliver_ok("installation", &first, &suspend).await;
    app.deliver_ok(
        "installation",
        &id(),
        &installation_event("installation.unsuspend"),
    )
    .await;

    // The attacker captured the signed suspend and sends it again under a
    // fresh X-GitHub-Delivery (not signed).
    let replay = id();
    let answer = app.deliver_ok("installation", &replay, &suspend).await;
    assert_eq!(answer["outcome"], "ignored", "{answer}");
    let reason = answer["reason"].as_str().unwrap();
    assert!(
        reason.contains("replay") && reason.contains(&first),
        "{reason}"
    );
    let logged = app.json(&format!("/api/v1/deliveries/{replay}")).await;
    assert_eq!(logged["outcome"], "ignored");

    // Still active: a PR gets its preview.
    let opened = app
        .deliver_ok("pull_request", &id(), &pr("opened", 1, 0))
        .await;
    assert_eq!(opened["outcome"], "applied", "{opened}");
}

async fn an_installation_event_older_than_one_applied_is_stale(t: TestDatabase) {
    let app = TestApp::spawn(t).await;
    let mut created = installation_event("installation.created");
    created["installation"]["updated_at"] = json!(2_000_000_000);
    app.deliver_ok("installation", &id(), &created).await;
    app.deliver_ok("pull_request", &id(), &pr("opened", 1, 0))
        .await;

    // A deletion from before the newest installation event, arriving late.
    let mut deleted = installation_event("installation.deleted");
    deleted["installation"]["updated_at"] = json!(1_900_000_000);
    let answer = app.deliver_ok("installation", &id(), &deleted).await;
    assert_eq!(answer["outcome"], "ignored", "{answer}");
    assert!(
        answer["reason"].as_str().unwrap().starts_with("stale"),
        "{answer}"
    );
    assert_eq!(the_only_environment(&app).await["status"], "pending");

    // A newer one applies.
    deleted["installation"]["updated_at"] = json!(2_000_000_001);
    let answer = app.deliver_ok("installation", &id(), &deleted).await;
    assert_eq!(answer["outcome"], "applied", "{answer}");
    assert_eq!(the_only_environment(&app).await["status"], "destroying");
}

/// The same repository (same GitHub id) under another name.
fn renamed(mut p: Value, full_name: &str) -> Value {
    let name = full_name.split_once('/').unwrap().1;
    set_repository(
        &mut p,
        &[("full_name", json!(full_name)), ("name", json!(name))],
    );
    p
}

async fn a_renamed_repository_keeps_its_environment(t: TestDatabase) {
    let app = TestApp::spawn(t).await;
    app.deliver_ok("pull_request", &id(), &pr("opened", 1, 0))
        .await;
    let before = the_only_environment(&app).await;

    // Case only: GitHub treats names case-insensitively.
    let answer = app
        .deliver_ok(
            "pull_request",
            &id(),
            &renamed(pr("synchronize", 2, 10), "codertocat/hello-world"),
        )
        .await;
    assert_eq!(answer["outcome"], "applied", "{answer}");
    // A real rename.
    let answer = app
        .deliver_ok(
            "pull_request",
            &id(),
            &renamed(pr("synchronize", 3, 20), "Codertocat/Greetings"),
        )
        .await;
    assert_eq!(answer["outcome"], "applied", "{answer}");

    let after = the_only_environment(&app).await;
    assert_eq!(after["id"], before["id"]);
    assert_eq!(after["namespace"], before["namespace"]);
    assert_eq!(after["repository_full_name"], "Codertocat/Greetings");
    assert_eq!(after["commit_sha"], sha(3));

    // A new repository that takes the old name gets its own preview.
    let mut newcomer = pr("opened", 4, 30);
    newcomer["repository"]["id"] = json!(555);
    newcomer["pull_request"]["base"]["repo"]["id"] = json!(555);
    newcomer["pull_request"]["head"]["repo"]["id"] = json!(555);
    let answer = app.deliver_ok("pull_request", &id(), &newcomer).await;
    assert_eq!(answer["outcome"], "applied", "{answer}");
    let envs = environments(&app).await;
    assert_eq!(envs.len(), 2);
    assert_ne!(envs[0]["namespace"], envs[1]["namespace"]);
}

async fn enterprise_managed_user_logins_are_accepted(t: TestDatabase) {
    let app = TestApp::spawn(t).await;
    let answer = app
        .deliver_ok(
            "pull_request",
            &id(),
            &with_repo(pr("opened", 1, 0), "mona_octo/web", 3),
        )
        .await;
    assert_eq!(answer["outcome"], "applied", "{answer}");
    assert_eq!(
        the_only_environment(&app).await["repository_full_name"],
        "mona_octo/web"
    );
}

async fn only_allowed_owners_are_served(t: TestDatabase) {
    let app = TestApp::spawn_with(t, |s| {
        s.allowed_owners = ephemera_domain::AllowedOwners::only(["codertocat".to_owned()]);
    })
    .await;
    let answer = app
        .deliver_ok("pull_request", &id(), &pr("opened", 1, 0))
        .await;
    assert_eq!(answer["outcome"], "applied", "{answer}");

    let stranger = with_repo(pr("opened", 1, 0), "stranger/web", 9);
    let answer = app.deliver_ok("pull_request", &id(), &stranger).await;
    assert_eq!(answer["outcome"], "ignored", "{answer}");
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .contains("EPHEMERA_ALLOWED_OWNERS"),
        "{answer}"
    );
    let mut installed = payload("installation.created");
    installed["installation"]["account"]["login"] = json!("stranger");
    let delivery = id();
    let answer = app.deliver_ok("installation", &delivery, &installed).await;
    assert_eq!(answer["outcome"], "ignored", "{answer}");
    let logged = app.json(&format!("/api/v1/deliveries/{delivery}")).await;
    assert_eq!(logged["outcome"], "ignored");
    assert_eq!(environments(&app).await.len(), 1);
}

backend_tests!(
    a_renamed_repository_keeps_its_environment,
    enterprise_managed_user_logins_are_accepted,
    only_allowed_owners_are_served,
    a_captured_delivery_replayed_under_a_new_id_changes_nothing,
    an_installation_event_older_than_one_applied_is_stale,
    opened_pr_gets_an_environment_and_a_queued_deployment,
    the_same_delivery_ten_times_changes_things_once,
    the_same_delivery_ten_times_at_once_changes_things_once,
    fifty_concurrent_deliveries_for_one_pr_leave_the_newest_commit,
    synchronize_moves_forward_and_never_back,
    close_destroys_and_reopen_revives_the_same_environment,
    same_repo_name_under_two_owners_gets_two_namespaces,
    fork_prs_wait_for_a_maintainers_label,
    forks_deploy_when_the_operator_allows_them,
    drafts_wait_for_ready_for_review_and_going_back_to_draft_destroys,
    a_required_label_gates_the_preview,
    installations_are_recorded_suspended_and_deleted,
    removed_repositories_lose_their_environments,
    ping_and_unhandled_events_are_answered_and_logged,
    delivery_log_pages_newest_first,
    refused_deliveries_get_problems_and_change_nothing,
    without_a_secret_the_endpoint_says_which_variable_to_set,
    integers_written_with_a_zero_fraction_are_integers,
);
