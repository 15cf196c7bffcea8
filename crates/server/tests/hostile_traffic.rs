//! What anyone on the internet can send: made-up methods, unsigned or
//! huge webhook bodies, slow senders. Each must cost a bounded amount of
//! memory and metrics series, and be answered without waiting for a body
//! the server will refuse anyway.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use ephemera_persistence::testing::{Backend, TestDatabase};
use serde_json::{Value, json};
use support::{SECRET, TestApp, payload};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

async fn app_with(configure: impl FnOnce(&mut ephemera_server::Settings)) -> TestApp {
    let t = TestDatabase::migrated(Backend::Sqlite).await.unwrap();
    TestApp::spawn_with(t, configure).await
}

fn port(app: &TestApp) -> u16 {
    app.address.rsplit(':').next().unwrap().parse().unwrap()
}

/// Opens a connection and sends a webhook request head (no body) with
/// `headers` and `Content-Length: length`.
async fn webhook_head(app: &TestApp, headers: &[(&str, &str)], length: usize) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port(app))).await.unwrap();
    let mut head = String::from(
        "POST /api/v1/github/webhook HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n",
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {length}\r\n\r\n"));
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

/// Reads until the end of the response head and returns it. The deadline
/// only keeps a server that never answers from hanging the suite: such a
/// server fails the test.
async fn response_head(stream: &mut (impl AsyncRead + Unpin)) -> String {
    let read = async {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed without an answer");
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&got).into_owned()
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("no answer while the body was still being awaited")
}

const WELL_FORMED: &str = "sha256=0000000000000000000000000000000000000000000000000000000000000000";

#[tokio::test]
async fn fifty_made_up_methods_make_one_metrics_series() {
    let app = app_with(|_| {}).await;
    for i in 0..50 {
        let method = reqwest::Method::from_bytes(format!("JUNK{i}").as_bytes()).unwrap();
        app.client
            .request(method, format!("{}/made-up/{i}", app.address))
            .send()
            .await
            .unwrap();
    }
    let text = app.get("/metrics").await.text().await.unwrap();
    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("ephemera_http_requests_total{"))
        .collect();
    assert!(
        !series.iter().any(|l| l.contains("JUNK")),
        "raw methods are not labels: {series:#?}"
    );
    let other: Vec<&&str> = series
        .iter()
        .filter(|l| l.contains(r#"method="OTHER""#))
        .collect();
    assert_eq!(other.len(), 1, "{series:#?}");
    assert!(
        other[0].contains(r#"route="unmatched""#) && other[0].ends_with(" 50"),
        "{other:?}"
    );
}

#[tokio::test]
async fn bad_headers_are_refused_before_the_body_is_read() {
    let app = app_with(|_| {}).await;
    let delivery = uuid::Uuid::new_v4().to_string();
    // A megabyte announced, none sent: the answer cannot wait for it.
    let cases: [(&[(&str, &str)], &str); 5] = [
        (
            &[("X-GitHub-Event", "ping"), ("X-GitHub-Delivery", &delivery)],
            "HTTP/1.1 401",
        ),
        (
            &[
                ("X-GitHub-Event", "ping"),
                ("X-GitHub-Delivery", &delivery),
                ("X-Hub-Signature-256", "sha256=zz"),
            ],
            "HTTP/1.1 401",
        ),
        (
            &[
                ("X-GitHub-Event", "ping"),
                ("X-GitHub-Delivery", &delivery),
                (
                    "X-Hub-Signature-256",
                    "sha1=0123456789abcdef0123456789abcdef01234567",
                ),
            ],
            "HTTP/1.1 401",
        ),
        (
            &[
                ("X-GitHub-Delivery", &delivery),
                ("X-Hub-Signature-256", WELL_FORMED),
            ],
            "HTTP/1.1 400",
        ),
        (
            &[
                ("X-GitHub-Event", "ping"),
                ("X-Hub-Signature-256", WELL_FORMED),
            ],
            "HTTP/1.1 400",
        ),
    ];
    for (headers, status) in cases {
        let mut stream = webhook_head(&app, headers, 1024 * 1024).await;
        let head = response_head(&mut stream).await;
        assert!(head.starts_with(status), "{headers:?}: {head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/problem+json"),
            "{head}"
        );
    }

    // Announced over the limit, well-formed headers: 413 without reading.
    let mut stream = webhook_head(
        &app,
        &[
            ("X-GitHub-Event", "ping"),
            ("X-GitHub-Delivery", &delivery),
            ("X-Hub-Signature-256", WELL_FORMED),
        ],
        26 * 1024 * 1024,
    )
    .await;
    let head = response_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");

    // Still serving the real thing.
    app.deliver_ok("ping", &uuid::Uuid::new_v4().to_string(), &payload("ping"))
        .await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"ephemera_webhook_refusals_total{reason="unsigned"} 3"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"ephemera_webhook_refusals_total{reason="missing_header"} 2"#),
        "{metrics}"
    );
}

fn ping_head(delivery: &str) -> [(&'static str, String); 3] {
    [
        ("X-GitHub-Event", "ping".to_owned()),
        ("X-GitHub-Delivery", delivery.to_owned()),
        ("X-Hub-Signature-256", WELL_FORMED.to_owned()),
    ]
}

fn as_refs<'a>(headers: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    headers.iter().map(|(n, v)| (*n, v.as_str())).collect()
}

/// Polls `/metrics` until `value(text)` holds; the deadline only keeps a
/// broken build from hanging the suite.
async fn until_metrics(app: &TestApp, what: &str, done: impl Fn(&str) -> bool) {
    for _ in 0..300 {
        let text = app.get("/metrics").await.text().await.unwrap();
        if done(&text) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting until {what}");
}

fn gauge(text: &str, name: &str) -> i64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(-1)
}

#[tokio::test]
async fn a_slow_sender_gets_408_when_the_read_deadline_passes() {
    let app = app_with(|s| s.webhook.read_timeout = Duration::from_secs(1)).await;
    let headers = ping_head(&uuid::Uuid::new_v4().to_string());
    let stream = webhook_head(&app, &as_refs(&headers), 1000).await;
    let (mut read, mut write) = stream.into_split();
    // A byte every 100 ms: the 1000 announced would take 100 s.
    let dribble = tokio::spawn(async move {
        for _ in 0..1000 {
            if write.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let head = response_head(&mut read).await;
    dribble.abort();
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    until_metrics(&app, "the slow body is let go", |text| {
        text.contains(r#"ephemera_webhook_refusals_total{reason="timeout"} 1"#)
            && gauge(text, "ephemera_webhook_body_bytes") == 0
    })
    .await;
}

/// `pull_request.opened` padded with an unread field to about `bytes`.
fn padded(bytes: usize) -> Value {
    let mut body = payload("pull_request.opened");
    body["padding"] = json!("x".repeat(bytes));
    body
}

#[tokio::test]
async fn bodies_over_the_memory_budget_get_503_and_the_budget_comes_back() {
    let app = app_with(|s| {
        s.webhook.max_body_bytes = 300_000;
        s.webhook.max_buffered_bytes = 400_000;
    })
    .await;
    // Someone sends 260 kB of a 300 kB body and stops.
    let headers = ping_head(&uuid::Uuid::new_v4().to_string());
    let mut holder = webhook_head(&app, &as_refs(&headers), 300_000).await;
    holder.write_all(&vec![b' '; 260_000]).await.unwrap();
    until_metrics(&app, "the held body is charged", |text| {
        gauge(text, "ephemera_webhook_body_bytes") >= 260_000
    })
    .await;

    // A real 150 kB delivery does not fit next to it, however its bytes
    // arrive (in one chunk it is not even copied).
    let big = padded(150_000);
    let response = app.deliver("pull_request", "budget-1", &big).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["type"], "/problems/busy", "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("EPHEMERA_WEBHOOK_MAX_BUFFERED_BYTES"),
        "{problem}"
    );

    // Once the sender is gone, its share comes back.
    drop(holder);
    until_metrics(&app, "the budget is free again", |text| {
        gauge(text, "ephemera_webhook_body_bytes") == 0
    })
    .await;
    let answer = app.deliver_ok("pull_request", "budget-2", &big).await;
    assert_eq!(answer["outcome"], "applied", "{answer}");
    let _ = SECRET;
}
