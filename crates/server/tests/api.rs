//! Black-box tests of the REST reads: the real app over HTTP, rows seeded
//! through the persistence adapters, on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used)]

mod support;

use chrono::{DateTime, Duration, Utc};
use ephemera_application::ports::{DeploymentRepository, EnvironmentRepository};
use ephemera_domain::{
    CommitSha, Environment, GithubUserId, InstallationId, NewDeployment, NewEnvironment, Owner,
    PrNumber, RepositoryFullName,
};
use ephemera_persistence::testing::{Backend, TestDatabase};
use ephemera_persistence::{SqlDeploymentRepository, SqlEnvironmentRepository, backend_tests};
use serde_json::Value;
use support::TestApp;

fn t0() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(1_763_700_000, 0).unwrap()
}

async fn seed(t: &TestDatabase, repo: &str, pr: i64) -> Environment {
    SqlEnvironmentRepository::new(t.db.clone())
        .insert(
            NewEnvironment {
                repository: RepositoryFullName::parse(repo).unwrap(),
                repository_id: None,
                pr_number: PrNumber::new(pr).unwrap(),
                pr_title: format!("Update the README #{pr}"),
                branch_name: "changes".into(),
                base_ref: "main".into(),
                commit_sha: CommitSha::parse("ec26c3e57ca3a959ca5aad62de7213c562f8c821").unwrap(),
                installation_id: Some(InstallationId::new(2).unwrap()),
                owner: Some(Owner {
                    github_id: GithubUserId::new(21031067).unwrap(),
                    login: "Codertocat".into(),
                }),
                pr_updated_at: None,
                is_fork: false,
                draft: false,
                labels: Vec::new(),
            },
            t0() + Duration::seconds(pr),
        )
        .await
        .unwrap()
}

fn next_link(response: &reqwest::Response) -> Option<String> {
    let link = response.headers().get("link")?.to_str().unwrap().to_owned();
    assert!(link.ends_with("; rel=\"next\""), "{link}");
    Some(link[1..link.find('>').unwrap()].to_owned())
}

async fn empty_service_answers_an_empty_list_and_is_ready(t: TestDatabase) {
    let app = TestApp::spawn(t).await;

    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<Value>().await.unwrap()["status"], "ready");
    for path in ["/health", "/health/live"] {
        assert_eq!(app.get(path).await.status(), 200, "{path}");
    }

    let list = app.get("/api/v1/environments").await;
    assert_eq!(list.status(), 200);
    assert!(list.headers().get("link").is_none());
    assert_eq!(list.text().await.unwrap(), "[]");
}

async fn environment_reads_back_as_stored(t: TestDatabase) {
    let env = seed(&t, "Codertocat/Hello-World", 2).await;
    let app = TestApp::spawn(t).await;

    let by_id: Value = app.json(&format!("/api/v1/environments/{}", env.id)).await;
    assert_eq!(by_id["id"], env.id.get());
    assert_eq!(by_id["repository_full_name"], "Codertocat/Hello-World");
    assert_eq!(by_id["repository_name"], "Hello-World");
    assert_eq!(by_id["pr_number"], 2);
    assert_eq!(by_id["pr_title"], "Update the README #2");
    assert_eq!(by_id["branch_name"], "changes");
    assert_eq!(
        by_id["commit_sha"],
        "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
    );
    assert_eq!(by_id["status"], "pending");
    assert_eq!(by_id["installation_id"], 2);
    assert_eq!(by_id["owner"]["login"], "Codertocat");
    assert_eq!(by_id["environment_url"], Value::Null);
    assert_eq!(by_id["destroyed_at"], Value::Null);
    let namespace = by_id["namespace"].as_str().unwrap();
    assert!(namespace.starts_with("pr-2-hello-world-"), "{namespace}");

    let by_namespace: Value = app
        .json(&format!("/api/v1/environments/namespace/{namespace}"))
        .await;
    assert_eq!(by_namespace, by_id);

    // Trailing slashes are accepted.
    let slash = app.get(&format!("/api/v1/environments/{}/", env.id)).await;
    assert_eq!(slash.status(), 200);
}

async fn list_pages_through_everything_keeping_filters(t: TestDatabase) {
    for pr in 1..=5 {
        seed(&t, "octo/web", pr).await;
    }
    seed(&t, "octo/api", 1).await;
    let app = TestApp::spawn(t).await;

    let mut seen = Vec::new();
    let mut next = Some(format!(
        "{}/api/v1/environments?repository=octo/web&limit=2",
        app.address
    ));
    let mut pages = 0;
    while let Some(url) = next {
        let response = app.client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        next = next_link(&response);
        if let Some(link) = &next {
            assert!(
                link.contains("repository=octo%2Fweb"),
                "filter kept: {link}"
            );
            assert!(link.contains("limit=2"), "{link}");
        }
        let items: Vec<Value> = response.json().await.unwrap();
        seen.extend(items.iter().map(|e| e["pr_number"].as_u64().unwrap()));
        pages += 1;
    }
    assert_eq!(
        seen,
        vec![5, 4, 3, 2, 1],
        "newest first, no gaps, no repeats"
    );
    assert_eq!(pages, 3);
}

async fn list_filters_by_status_active_only_and_pr(t: TestDatabase) {
    let repo = SqlEnvironmentRepository::new(t.db.clone());
    let mut gone = seed(&t, "octo/web", 1).await;
    gone.begin_destroy("PR closed", t0()).unwrap();
    gone.mark_destroyed(t0()).unwrap();
    repo.update(&gone).await.unwrap();
    seed(&t, "octo/web", 2).await;
    seed(&t, "octo/api", 2).await;
    let app = TestApp::spawn(t).await;

    let prs = |path: &'static str| {
        let app = &app;
        async move {
            app.json(path)
                .await
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    format!(
                        "{}#{}",
                        e["repository_full_name"].as_str().unwrap(),
                        e["pr_number"]
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        prs("/api/v1/environments?status=destroyed").await,
        vec!["octo/web#1"]
    );
    assert_eq!(
        prs("/api/v1/environments?active_only=true").await,
        vec!["octo/api#2", "octo/web#2"]
    );
    assert_eq!(
        prs("/api/v1/environments?pr_number=2&repository=octo/web").await,
        vec!["octo/web#2"]
    );
    assert_eq!(
        prs("/api/v1/environments?status=ready").await,
        Vec::<String>::new()
    );
}

async fn deployments_history_and_logs(t: TestDatabase) {
    let env = seed(&t, "octo/web", 1).await;
    let other = seed(&t, "octo/web", 2).await;
    let deployments = SqlDeploymentRepository::new(t.db.clone());
    let mut ids = Vec::new();
    for (i, message) in ["first", "second", "third"].into_iter().enumerate() {
        let d = deployments
            .insert(
                NewDeployment {
                    delivery_id: None,
                    environment_id: env.id,
                    commit_sha: CommitSha::parse(&format!("{:040x}", i + 1)).unwrap(),
                    commit_message: Some(message.into()),
                },
                t0(),
            )
            .await
            .unwrap();
        ids.push(d);
    }
    let mut done = ids[2].clone();
    done.start(t0()).unwrap();
    done.append_log("namespace created\nall pods ready");
    done.succeed(
        "http://pr-1.preview.localhost",
        t0() + Duration::milliseconds(2500),
    )
    .unwrap();
    deployments.update(&done).await.unwrap();
    let app = TestApp::spawn(t).await;

    let history = app
        .get(&format!("/api/v1/environments/{}/deployments", env.id))
        .await;
    assert_eq!(history.status(), 200);
    let history: Vec<Value> = history.json().await.unwrap();
    let messages: Vec<_> = history
        .iter()
        .map(|d| d["commit_message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, vec!["third", "second", "first"]);
    assert_eq!(history[0]["status"], "success");
    assert_eq!(history[0]["duration_seconds"], 2.5);
    assert_eq!(history[1]["status"], "queued");
    assert!(history[0].get("logs").is_none(), "lists leave logs out");

    let one: Value = app.json(&format!("/api/v1/deployments/{}", done.id)).await;
    assert_eq!(
        one["logs"],
        "namespace created\nall pods ready\n\
         [2025-11-21T04:40:02.500+00:00] ready at http://pr-1.preview.localhost\n"
    );
    assert_eq!(one["environment_id"], env.id.get());

    let empty = app
        .json(&format!("/api/v1/environments/{}/deployments", other.id))
        .await;
    assert_eq!(empty, serde_json::json!([]));
}

async fn bad_input_gets_problem_details_never_a_500(t: TestDatabase) {
    let env = seed(&t, "octo/web", 1).await;
    let app = TestApp::spawn_with(t, |s| s.api_token = Some(support::token())).await;

    for (path, status, detail) in [
        (
            "/api/v1/environments/999999",
            404,
            "no environment with id 999999",
        ),
        ("/api/v1/environments/abc", 400, "`abc` is not an integer"),
        ("/api/v1/environments/0", 400, "must be a positive integer"),
        (
            "/api/v1/environments/namespace/pr-1-nope-0000000000",
            404,
            "no environment in namespace",
        ),
        (
            "/api/v1/environments/namespace/Not_A_Label",
            400,
            "lowercase letters",
        ),
        (
            "/api/v1/environments/999999/deployments",
            404,
            "no environment with id 999999",
        ),
        (
            "/api/v1/deployments/424242",
            404,
            "no deployment with id 424242",
        ),
        (
            "/api/v1/environments?limit=0",
            400,
            "limit: must be between 1 and 200",
        ),
        (
            "/api/v1/environments?limit=201",
            400,
            "limit: must be between 1 and 200",
        ),
        (
            "/api/v1/environments?limit=ten",
            400,
            "invalid query string",
        ),
        (
            "/api/v1/environments?cursor=bm90LWEtY3Vyc29y",
            400,
            "cursor:",
        ),
        (
            "/api/v1/environments?status=running",
            400,
            "`running` is not one of pending",
        ),
        (
            "/api/v1/environments?active_only=maybe",
            400,
            "active_only: `maybe` is not true or false",
        ),
        ("/api/v1/environments?pr_number=-1", 400, "pr number"),
        (
            "/api/v1/environments?repository=no-slash",
            400,
            "is not `owner/name`",
        ),
        (
            "/api/v1/nothing-here",
            404,
            "no route for GET /api/v1/nothing-here",
        ),
        // What the description calls invalid is refused, naming the
        // parameter: empty strings, ids past 63 bits, booleans other than
        // true and false, cursors of the wrong shape.
        (
            "/api/v1/environments?repository=",
            400,
            "is not `owner/name`",
        ),
        ("/api/v1/environments?cursor=", 400, "cursor:"),
        ("/api/v1/environments?cursor=AAAAAAAAAAB", 400, "cursor:"),
        (
            "/api/v1/environments?active_only=1",
            400,
            "active_only: `1` is not true or false",
        ),
        (
            "/api/v1/environments/9223372036854775808",
            400,
            "is not an integer",
        ),
        (
            "/api/v1/environments/1/deployments?limit=0",
            400,
            "limit: must be between 1 and 200",
        ),
        (
            "/api/v1/deliveries?event=",
            400,
            "event: `` is not an event name",
        ),
        (
            "/api/v1/deliveries?event=Pull-Request",
            400,
            "is not an event name",
        ),
        ("/api/v1/deliveries?limit=201", 400, "limit:"),
        ("/api/v1/deliveries/not%20an%20id", 400, "delivery id"),
    ] {
        let body = app.problem(path, status).await;
        let got = body["detail"].as_str().unwrap();
        assert!(got.contains(detail), "GET {path}: {got}");
    }

    // Writes refuse malformed ids the same way, with a problem.
    for (method, path) in [
        (reqwest::Method::DELETE, "/api/v1/environments/0"),
        (
            reqwest::Method::DELETE,
            "/api/v1/environments/9223372036854775808",
        ),
        (reqwest::Method::POST, "/api/v1/environments/abc/redeploy"),
        (reqwest::Method::POST, "/api/v1/environments/-1/redeploy"),
    ] {
        let response = app.write(method.clone(), path).await;
        assert_eq!(response.status(), 400, "{method} {path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{method} {path}"
        );
        let problem: Value = response.json().await.unwrap();
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .starts_with("invalid environment id"),
            "{method} {path}: {problem}"
        );
    }

    // A cursor past every id starts from the beginning; zero is an empty
    // page: every cursor of the documented shape is a position.
    let all: Vec<Value> = app
        .json("/api/v1/environments?cursor=__________8")
        .await
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(all.len(), 1);
    assert_eq!(
        app.json("/api/v1/environments?cursor=AAAAAAAAAAA").await,
        serde_json::json!([])
    );

    // Nothing stored was touched by the refused requests.
    let still: Value = app.json(&format!("/api/v1/environments/{}", env.id)).await;
    assert_eq!(still["status"], "pending");
}

backend_tests!(
    empty_service_answers_an_empty_list_and_is_ready,
    environment_reads_back_as_stored,
    list_pages_through_everything_keeping_filters,
    list_filters_by_status_active_only_and_pr,
    deployments_history_and_logs,
    bad_input_gets_problem_details_never_a_500,
);

/// Readiness follows the database: dropping the PostgreSQL database under
/// the running service turns /health/ready into a 503 problem while
/// liveness stays 200.
#[tokio::test]
async fn readiness_is_503_when_the_database_is_gone() {
    let Some(t) = TestDatabase::migrated(Backend::Postgres).await else {
        return;
    };
    let admin_url = std::env::var("TEST_DATABASE_URL").unwrap();
    let name = t.url.rsplit('/').next().unwrap().to_owned();
    let app = TestApp::spawn(t).await;
    assert_eq!(app.get("/health/ready").await.status(), 200);

    let admin = ephemera_persistence::connect(&admin_url).await.unwrap();
    use sea_orm::ConnectionTrait;
    admin
        .execute_unprepared(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .await
        .unwrap();

    let body = app.problem("/health/ready", 503).await;
    assert_eq!(body["detail"], "the database does not answer");
    assert_eq!(app.get("/health/live").await.status(), 200);
}

/// A background worker that panics is logged and turns readiness into a
/// 503 naming it (the process needs a restart), while liveness and reads
/// stay up. The panicking task goes through the same supervisor as the
/// app's own workers, recording into the app's own record.
#[tokio::test]
async fn readiness_is_503_once_a_background_worker_panicked() {
    use ephemera_server::supervision::{Task, supervise};
    let t = TestDatabase::migrated(Backend::Sqlite).await.unwrap();
    let app = TestApp::spawn(t).await;
    assert_eq!(app.get("/health/ready").await.status(), 200);

    let (_running, stop) = tokio::sync::watch::channel(false);
    let supervised = supervise(
        vec![Task::new("reconciler-7", async {
            panic!("a bug in a worker step");
        })],
        &stop,
        &app.worker_health,
    );
    for handle in supervised {
        handle.await.unwrap();
    }

    let body = app.problem("/health/ready", 503).await;
    assert_eq!(body["type"], "/problems/not-ready");
    assert_eq!(
        body["detail"],
        "background worker reconciler-7 stopped; restart the process"
    );
    assert_eq!(app.get("/health/live").await.status(), 200);
    assert_eq!(app.get("/api/v1/environments").await.status(), 200);
}

/// A documented path with a method it does not answer is 405 with `Allow`;
/// an unknown path stays 404.
#[tokio::test]
async fn a_wrong_method_on_a_known_path_is_405_with_allow() {
    let t = TestDatabase::migrated(Backend::Sqlite).await.unwrap();
    let app = TestApp::spawn_with(t, |s| s.api_token = Some(support::token())).await;
    let url = |path: &str| format!("{}{path}", app.address);
    let cases = [
        (app.client.delete(url("/api/v1/deliveries")), "GET"),
        (
            app.client.patch(url("/api/v1/environments/7")),
            "GET, DELETE",
        ),
        (
            app.client.get(url("/api/v1/environments/7/redeploy")),
            "POST",
        ),
        (app.client.get(url("/api/v1/github/webhook")), "POST"),
        (app.client.put(url("/health/ready")), "GET"),
    ];
    for (request, allow) in cases {
        let response = request.bearer_auth(support::TOKEN).send().await.unwrap();
        let what = response.url().path().to_owned();
        assert_eq!(response.status(), 405, "{what}");
        assert_eq!(response.headers()["allow"], allow, "{what}");
        let problem: serde_json::Value = response.json().await.unwrap();
        assert_eq!(problem["type"], "/problems/method-not-allowed", "{what}");
    }
    let unknown = app.get("/api/v1/nothing-here").await;
    assert_eq!(unknown.status(), 404);
}
