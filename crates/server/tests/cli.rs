//! The `ephemera` binary as an operator runs it: start-up errors, the
//! migrate commands, and replicas starting together on one PostgreSQL.

#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::process::{Output, Stdio};

mod support;

use support::process::{Running, ephemera, free_port, http_get, run, serve_ready, wait_ready};

use ephemera_persistence::testing::{Backend, TestDatabase};
use sea_orm::{ConnectionTrait, Statement};

fn migration_count() -> usize {
    use migration::MigratorTrait;
    migration::Migrator::migrations().len()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts `out` is a failure and returns the last line it printed.
fn last_error_line(out: &Output) -> String {
    assert!(!out.status.success(), "must exit non-zero");
    stderr(out).lines().last().unwrap_or_default().to_owned()
}

/// Asserts a failed start-up printed exactly one line naming `variable`.
fn assert_one_line_error(out: &Output, variable: &str) {
    assert!(!out.status.success(), "must exit non-zero");
    let err = stderr(out);
    let lines: Vec<_> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line, got: {err}");
    assert!(
        lines[0].starts_with(&format!("error: {variable}: ")),
        "{err}"
    );
}

#[test]
fn bad_database_url_stops_start_up_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &[],
        &[("DATABASE_URL", "mysql://root:hunter2@localhost/db")],
    );
    assert_one_line_error(&out, "DATABASE_URL");
    assert!(
        !stderr(&out).contains("hunter2"),
        "secrets stay out of errors"
    );

    let out = run(
        dir.path(),
        &["serve"],
        &[("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nowhere")],
    );
    assert_one_line_error(&out, "DATABASE_URL");
}

#[test]
fn bad_listen_address_stops_start_up_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &[], &[("EPHEMERA_LISTEN", "localhost:http")]);
    assert_one_line_error(&out, "EPHEMERA_LISTEN");
}

#[test]
fn listen_address_in_use_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let db = format!("sqlite://{}/e.db?mode=rwc", dir.path().display());
    let out = run(
        dir.path(),
        &["serve"],
        &[("EPHEMERA_LISTEN", &addr), ("DATABASE_URL", &db)],
    );
    let last = last_error_line(&out);
    assert!(
        last.starts_with(&format!("error: EPHEMERA_LISTEN: cannot listen on {addr}")),
        "{last}"
    );
}

#[test]
fn migrate_status_down_and_up_round_trip_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/e.db?mode=rwc", dir.path().display());
    let vars = [("DATABASE_URL", db.as_str())];
    let text = |out: Output| {
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    };

    let status = text(run(dir.path(), &["migrate", "status"], &vars));
    assert_eq!(
        status.lines().filter(|l| l.starts_with("pending ")).count(),
        migration_count(),
        "{status}"
    );

    let up = text(run(dir.path(), &["migrate", "up"], &vars));
    assert_eq!(up.lines().count(), migration_count(), "{up}");
    let down = text(run(dir.path(), &["migrate", "down", "-n", "99"], &vars));
    assert_eq!(
        down.lines()
            .filter(|l| l.starts_with("rolled back "))
            .count(),
        migration_count(),
        "{down}"
    );
    let up = text(run(dir.path(), &["migrate", "up"], &vars));
    assert_eq!(up.lines().count(), migration_count(), "{up}");

    let status = text(run(dir.path(), &["migrate", "status"], &vars));
    assert_eq!(
        status.lines().filter(|l| l.starts_with("applied ")).count(),
        migration_count(),
        "{status}"
    );
}

#[tokio::test]
async fn serve_refuses_to_start_when_a_migration_fails() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/e.db?mode=rwc", dir.path().display());
    // A table in the way of the first migration.
    let conn = ephemera_persistence::connect(&db).await.unwrap();
    conn.execute_unprepared("CREATE TABLE users (x int)")
        .await
        .unwrap();
    conn.close().await.unwrap();

    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let out = run(
        dir.path(),
        &["serve"],
        &[("DATABASE_URL", &db), ("EPHEMERA_LISTEN", &addr)],
    );
    let last = last_error_line(&out);
    assert!(
        last.starts_with("error: applying database migrations"),
        "{last}"
    );
    assert!(TcpListener::bind(&addr).is_ok(), "nothing was served");
}

#[tokio::test]
async fn two_replicas_started_together_on_empty_postgres_both_serve_and_migrate_once() {
    let Some(t) = TestDatabase::empty(Backend::Postgres).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ports = [free_port(), free_port()];
    let replicas: Vec<Running> = ports
        .iter()
        .map(|port| {
            let addr = format!("127.0.0.1:{port}");
            let child = ephemera(
                dir.path(),
                &["serve"],
                &[
                    ("DATABASE_URL", t.url.as_str()),
                    ("EPHEMERA_LISTEN", addr.as_str()),
                    ("EPHEMERA_LOG_FORMAT", "json"),
                ],
            )
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
            Running(Some(child))
        })
        .collect();

    for port in ports {
        assert!(wait_ready(port), "replica on {port} became ready");
        let list = http_get(port, "/api/v1/environments").unwrap();
        assert!(
            list.starts_with("HTTP/1.1 200") && list.ends_with("[]"),
            "{list}"
        );
    }

    let applied =
        t.db.query_one_raw(Statement::from_string(
            t.db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM seaql_migrations",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(applied as usize, migration_count());

    let mut migrators = 0;
    for replica in replicas {
        let output = replica.stop();
        let logs = String::from_utf8_lossy(&output.stderr);
        if logs.contains("applied pending migrations") {
            migrators += 1;
        }
    }
    assert_eq!(migrators, 1, "exactly one replica ran the migrations");
}

#[test]
fn a_malformed_github_key_stops_start_up_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/e.db?mode=rwc", dir.path().display());
    let addr = format!("127.0.0.1:{}", free_port());
    let out = run(
        dir.path(),
        &["serve"],
        &[
            ("DATABASE_URL", &db),
            ("EPHEMERA_LISTEN", &addr),
            ("GITHUB_APP_ID", "42"),
            ("GITHUB_APP_PRIVATE_KEY", "this is not a PEM key"),
        ],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: GITHUB_APP_PRIVATE_KEY: "), "{err}");
    assert!(
        !err.contains("this is not a PEM key"),
        "the key never reaches the output"
    );
}

#[test]
fn serve_off_loopback_without_a_token_refuses_in_one_line_naming_the_settings() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/e.db?mode=rwc", dir.path().display());
    let addr = format!("0.0.0.0:{}", free_port());
    let vars = [
        ("DATABASE_URL", db.as_str()),
        ("EPHEMERA_LISTEN", addr.as_str()),
    ];
    let out = run(dir.path(), &["serve"], &vars);
    assert_one_line_error(&out, "EPHEMERA_API_TOKEN");
    assert!(
        stderr(&out).contains("EPHEMERA_ANONYMOUS_READS=true"),
        "names the opt-in: {}",
        stderr(&out)
    );
    // Only serving is refused: the same settings still migrate.
    let status = run(dir.path(), &["migrate", "status"], &vars);
    assert!(status.status.success(), "{}", stderr(&status));
}

#[test]
fn serve_off_loopback_answers_anonymous_reads_only_when_opted_in() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/e.db?mode=rwc", dir.path().display());
    let port = free_port();
    let addr = format!("0.0.0.0:{port}");
    let _server = serve_ready(
        dir.path(),
        port,
        &[
            ("DATABASE_URL", db.as_str()),
            ("EPHEMERA_LISTEN", addr.as_str()),
            ("EPHEMERA_ANONYMOUS_READS", "true"),
        ],
    );
    let list = http_get(port, "/api/v1/environments").unwrap();
    assert!(list.starts_with("HTTP/1.1 200"), "{list}");
}

#[test]
fn short_tokens_and_webhook_secrets_stop_start_up_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &[], &[("GITHUB_WEBHOOK_SECRET", "dev")]);
    assert_one_line_error(&out, "GITHUB_WEBHOOK_SECRET");
    assert!(stderr(&out).contains("at least 16"), "{}", stderr(&out));
    let out = run(dir.path(), &[], &[("EPHEMERA_API_TOKEN", "changeme")]);
    assert_one_line_error(&out, "EPHEMERA_API_TOKEN");
}

#[test]
fn metrics_move_to_their_own_listener_and_leave_the_api_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/e.db?mode=rwc", dir.path().display());
    let (port, metrics_port) = (free_port(), free_port());
    let listen = format!("127.0.0.1:{port}");
    let metrics_listen = format!("127.0.0.1:{metrics_port}");
    let _server = serve_ready(
        dir.path(),
        port,
        &[
            ("DATABASE_URL", db.as_str()),
            ("EPHEMERA_LISTEN", listen.as_str()),
            ("EPHEMERA_METRICS_LISTEN", metrics_listen.as_str()),
            ("EPHEMERA_API_TOKEN", "a-token-of-sufficient-length"),
        ],
    );

    let on_api = http_get(port, "/metrics").unwrap();
    assert!(on_api.starts_with("HTTP/1.1 404"), "{on_api}");
    let read = http_get(port, "/api/v1/environments").unwrap();
    assert!(
        read.starts_with("HTTP/1.1 401"),
        "reads still need the token: {read}"
    );

    let scrape = http_get(metrics_port, "/metrics").unwrap();
    assert!(
        scrape.starts_with("HTTP/1.1 200"),
        "no token needed: {scrape}"
    );
    assert!(
        scrape.contains(
            r#"ephemera_http_requests_total{method="GET",route="/health/ready",status="200"}"#
        ),
        "{scrape}"
    );
    let other = http_get(metrics_port, "/api/v1/environments").unwrap();
    assert!(
        other.starts_with("HTTP/1.1 404"),
        "only metrics there: {other}"
    );
}

/// Settings of every section but the database, each of them unusable:
/// commands that do not need a section must not read it.
const UNUSABLE_SERVE_SETTINGS: &[(&str, &str)] = &[
    ("EPHEMERA_LISTEN", "localhost:http"),
    ("EPHEMERA_LOG_FORMAT", "xml"),
    ("GITHUB_WEBHOOK_SECRET", "dev"),
    ("EPHEMERA_API_TOKEN", "changeme"),
    ("EPHEMERA_PROVISIONER", "kubernetes"),
    ("EPHEMERA_K8S_MANIFESTS_DIR", "/no/such/manifests"),
    ("EPHEMERA_WORKER_POLL", "soon"),
    ("EPHEMERA_RETENTION_INTERVAL", "hourly"),
    ("GITHUB_APP_ID", "42"),
    ("GITHUB_APP_PRIVATE_KEY_PATH", "/no/such/app-key.pem"),
];

fn with<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    UNUSABLE_SERVE_SETTINGS
        .iter()
        .copied()
        .chain(extra.iter().copied())
        .collect()
}

#[test]
fn migrate_reads_only_the_database_settings() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/e.db?mode=rwc", dir.path().display());
    let vars = with(&[("DATABASE_URL", db.as_str())]);

    let up = run(dir.path(), &["migrate", "up"], &vars);
    assert!(up.status.success(), "{}", stderr(&up));
    assert_eq!(
        String::from_utf8_lossy(&up.stdout).lines().count(),
        migration_count()
    );
    let status = run(dir.path(), &["migrate", "status"], &vars);
    assert!(status.status.success(), "{}", stderr(&status));
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    assert_eq!(
        status.lines().filter(|l| l.starts_with("applied ")).count(),
        migration_count(),
        "{status}"
    );

    // The database setting itself is still checked, in one line.
    let vars = with(&[("DATABASE_URL", "mysql://root:hunter2@localhost/db")]);
    let out = run(dir.path(), &["migrate", "status"], &vars);
    assert_one_line_error(&out, "DATABASE_URL");
    assert!(!stderr(&out).contains("hunter2"), "{}", stderr(&out));

    // The same settings stop serve, which needs them all.
    let vars = with(&[("DATABASE_URL", db.as_str())]);
    let out = run(dir.path(), &["serve"], &vars);
    assert_one_line_error(&out, "EPHEMERA_LISTEN");
}

/// Regression guard: these need no settings at all.
#[test]
fn openapi_and_the_example_list_read_no_settings() {
    let dir = tempfile::tempdir().unwrap();
    let vars = with(&[("DATABASE_URL", "mysql://root@localhost/db")]);
    let out = run(dir.path(), &["openapi"], &vars);
    assert!(out.status.success(), "{}", stderr(&out));
    let document: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(document["paths"]["/health/ready"].is_object(), "{document}");

    let out = run(dir.path(), &["webhook", "send", "--list-examples"], &vars);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l == "pull_request.opened")
    );
}

/// A one-shot HTTP server: answers the first request 200 and hands back
/// its head and body.
fn receive_one() -> (u16, std::thread::JoinHandle<(String, Vec<u8>)>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push_str(&line);
        }
        let length = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().unwrap())
            })
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let answer = r#"{"outcome":"applied"}"#;
        write!(
            reader.get_mut(),
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
            answer.len()
        )
        .unwrap();
        (head, body)
    });
    (port, handle)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

#[test]
fn webhook_send_reads_only_where_to_send_and_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "a-secret-of-sufficient-length";

    // Both as flags: no setting is read.
    let (port, received) = receive_one();
    let url = format!("http://127.0.0.1:{port}/hook");
    let vars = with(&[("DATABASE_URL", "mysql://root@localhost/db")]);
    let out = run(
        dir.path(),
        &[
            "webhook",
            "send",
            "--example",
            "pull_request.opened",
            "--url",
            &url,
            "--secret",
            secret,
        ],
        &vars,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("HTTP 200"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let (head, body) = received.join().unwrap();
    assert!(head.starts_with("POST /hook HTTP/1.1"), "{head}");
    assert_eq!(header(&head, "X-GitHub-Event"), Some("pull_request"));
    assert_eq!(
        header(&head, "X-Hub-Signature-256"),
        Some(ephemera_http::sign(secret.as_bytes(), &body).as_str())
    );

    // From the environment: EPHEMERA_LISTEN and GITHUB_WEBHOOK_SECRET, and
    // still nothing else.
    let (port, received) = receive_one();
    let listen = format!("127.0.0.1:{port}");
    let vars: Vec<_> = with(&[("DATABASE_URL", "mysql://root@localhost/db")])
        .into_iter()
        .filter(|(name, _)| !["EPHEMERA_LISTEN", "GITHUB_WEBHOOK_SECRET"].contains(name))
        .chain([
            ("EPHEMERA_LISTEN", listen.as_str()),
            ("GITHUB_WEBHOOK_SECRET", secret),
        ])
        .collect();
    let out = run(
        dir.path(),
        &["webhook", "send", "--example", "pull_request.closed"],
        &vars,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let (head, body) = received.join().unwrap();
    assert!(
        head.starts_with("POST /api/v1/github/webhook HTTP/1.1"),
        "{head}"
    );
    assert_eq!(
        header(&head, "X-Hub-Signature-256"),
        Some(ephemera_http::sign(secret.as_bytes(), &body).as_str())
    );

    // What it does read is still checked, in one line naming it.
    let out = run(
        dir.path(),
        &["webhook", "send", "--example", "pull_request.opened"],
        &with(&[]),
    );
    assert_one_line_error(&out, "GITHUB_WEBHOOK_SECRET");
    let out = run(
        dir.path(),
        &[
            "webhook",
            "send",
            "--example",
            "pull_request.opened",
            "--secret",
            secret,
        ],
        &with(&[]),
    );
    assert_one_line_error(&out, "EPHEMERA_LISTEN");
}

#[test]
fn a_bad_number_duration_or_flag_is_one_line_naming_the_variable_and_the_value() {
    let dir = tempfile::tempdir().unwrap();
    for (command, variable, value, message) in [
        (
            "serve",
            "EPHEMERA_WORKER_POLL",
            "soon",
            "`soon` is not a duration like 30s, 15m or 72h (at most 100 years)",
        ),
        (
            "worker",
            "EPHEMERA_RETENTION_INTERVAL",
            "0s",
            "`0s` is not a duration like 30s, 15m or 72h (at most 100 years)",
        ),
        (
            "serve",
            "EPHEMERA_WORKERS",
            "lots",
            "`lots` is not a number from 0 to 64",
        ),
        (
            "worker",
            "EPHEMERA_ALLOW_FORKS",
            "sure",
            "`sure` is not true or false",
        ),
    ] {
        let out = run(dir.path(), &[command], &[(variable, value)]);
        assert_one_line_error(&out, variable);
        assert_eq!(
            stderr(&out).trim_end(),
            format!("error: {variable}: {message}"),
            "{command}"
        );
    }
}
