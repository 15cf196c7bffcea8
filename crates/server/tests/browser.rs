//! The dashboard in a real browser: headless Chromium driven through
//! WebDriver (Debian's `chromium` and `chromium-driver`) against the real
//! `ephemera` binary, on SQLite and PostgreSQL. A person opens the
//! previews, an example webhook is sent with `ephemera webhook send`, and
//! the preview reaches ready on the open page without a reload.
//!
//! Without Chromium the tests say so and pass, unless `CI=true`, where
//! they fail (`.ci/run` installs both packages). With
//! `EPHEMERA_SCREENSHOTS=<folder>` (relative: to the repository) they also
//! save a screenshot of each page there (`just screenshots` refreshes
//! docs/dashboard/).

#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ephemera_persistence::backend_tests;
use ephemera_persistence::testing::TestDatabase;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use support::process::{free_port, run, serve_ready};

const SECRET: &str = "browser-test-webhook-secret";

/// The first of `names` found on PATH or in /usr/bin.
fn find(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .chain([
                PathBuf::from("/usr/bin"),
                PathBuf::from("/usr/lib/chromium"),
            ])
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// Chromium and its driver, or `None` (said on stderr) where they are not
/// installed and this is not CI.
fn tools() -> Option<(PathBuf, PathBuf)> {
    let chromium = find(&["chromium", "chromium-browser", "google-chrome"]);
    let driver = find(&["chromedriver"]);
    match (chromium, driver) {
        (Some(chromium), Some(driver)) => Some((chromium, driver)),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!(
                "CI=true: the browser tests need Debian's chromium and chromium-driver (.ci/run installs them)"
            )
        }
        _ => {
            eprintln!(
                "browser tests skipped: install Debian's chromium and chromium-driver to run them (they fail under CI=true)"
            );
            None
        }
    }
}

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_driver(driver: &Path) -> Driver {
    let port = free_port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting chromedriver");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver listens on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
    Driver { child, port }
}

async fn browser(chromium: &Path, driver: &Driver) -> Client {
    let capabilities = json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,900"]
        }
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    // Plain HTTP: chromedriver listens on loopback.
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a Chromium session")
}

/// Waits (20 s at most) until the text of the first `css` match on the
/// open page satisfies `done`, without reloading; returns that text.
async fn until(client: &Client, css: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(element) = client.find(Locator::Css(css)).await
            && let Ok(text) = element.text().await
            && done(&text)
        {
            return text;
        }
        assert!(Instant::now() < deadline, "{what} within 20 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Clicks the first match of `locator`, finding it again when the live
/// stream replaced it between finding and clicking.
async fn click(client: &Client, locator: Locator<'_>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let clicked = match client.find(locator).await {
            Ok(element) => element.click().await.is_ok(),
            Err(_) => false,
        };
        if clicked {
            return;
        }
        assert!(Instant::now() < deadline, "clicked {locator:?} within 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Saves a screenshot of the open page as `<name>.png` where
/// `EPHEMERA_SCREENSHOTS` says.
async fn screenshot(client: &Client, name: &str) {
    if let Some(folder) = std::env::var_os("EPHEMERA_SCREENSHOTS") {
        // A relative folder is the repository's (tests run in the crate's).
        let folder = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(folder);
        let png = client.screenshot().await.unwrap();
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(Path::new(&folder).join(format!("{name}.png")), png).unwrap();
    }
}

/// `ephemera webhook send --example <example>` to the server on `port`.
fn send(dir: &Path, port: u16, example: &str) {
    let listen = format!("127.0.0.1:{port}");
    let out = run(
        dir,
        &["webhook", "send", "--example", example],
        &[
            ("EPHEMERA_LISTEN", &listen),
            ("GITHUB_WEBHOOK_SECRET", SECRET),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn a_preview_reaches_ready_on_the_open_page_without_a_reload(t: TestDatabase) {
    let Some((chromium, driver)) = tools() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let _server = serve_ready(
        dir.path(),
        port,
        &[
            ("DATABASE_URL", &t.url),
            ("EPHEMERA_LISTEN", &listen),
            ("GITHUB_WEBHOOK_SECRET", SECRET),
            ("EPHEMERA_WORKER_POLL", "200ms"),
        ],
    );
    let driver = start_driver(&driver);
    let client = browser(&chromium, &driver).await;
    let base = format!("http://{listen}");

    client.goto(&format!("{base}/")).await.unwrap();
    until(&client, "#live .empty", "the empty overview", |t| {
        t.contains("No preview yet")
    })
    .await;
    screenshot(&client, "overview-empty").await;

    client.goto(&format!("{base}/environments")).await.unwrap();
    let opened_at = client.current_url().await.unwrap();
    send(dir.path(), port, "pull_request.opened");
    // The row appears and turns ready on the page as it is.
    until(
        &client,
        "#live .status",
        "the preview ready on the list",
        |t| t == "ready",
    )
    .await;
    assert_eq!(client.current_url().await.unwrap(), opened_at);
    let updates = client
        .find(Locator::Css("html"))
        .await
        .unwrap()
        .attr("data-live-updates")
        .await
        .unwrap();
    assert!(
        updates.is_some_and(|n| n.parse::<u32>().unwrap() >= 1),
        "the live part was replaced, not the page reloaded"
    );
    screenshot(&client, "previews").await;

    // Its page: status, links and the deployment's log.
    click(&client, Locator::Css("#live a[href^='/environments/']")).await;
    until(&client, "#live .status", "the preview's page", |t| {
        t == "ready"
    })
    .await;
    let log = until(&client, "#log", "the deployment log", |t| {
        t.contains("ready at")
    })
    .await;
    assert!(log.contains("dry-run"), "{log}");
    // The log's search keeps only the lines that match (any case).
    client
        .find(Locator::Css("#log-search"))
        .await
        .unwrap()
        .send_keys("WOULD DEPLOY")
        .await
        .unwrap();
    let only = until(&client, "#log", "the log filtered", |t| {
        !t.contains("ready at")
    })
    .await;
    assert!(
        only.lines().count() == 1 && only.contains("would deploy"),
        "{only}"
    );
    let pr = client
        .find(Locator::Css("#live a[href*='/pull/']"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap();
    assert_eq!(
        pr.as_deref(),
        Some("https://github.com/Codertocat/Hello-World/pull/2")
    );
    screenshot(&client, "preview").await;

    // The PR closes: the open page follows it to destroyed.
    send(dir.path(), port, "pull_request.closed");
    until(&client, "#live .status", "the preview destroyed", |t| {
        t == "destroyed"
    })
    .await;

    client.goto(&format!("{base}/deliveries")).await.unwrap();
    let table = until(&client, "#live table", "the delivery log", |t| {
        t.contains("pull_request.closed")
    })
    .await;
    assert!(table.contains("pull_request.opened"), "{table}");
    screenshot(&client, "deliveries").await;
    client.goto(&format!("{base}/")).await.unwrap();
    screenshot(&client, "overview").await;
    client.goto(&format!("{base}/repositories")).await.unwrap();
    screenshot(&client, "repositories").await;
    client.close().await.unwrap();
}

/// Delivers `body` as a signed `event` to the server on `port`.
async fn deliver(port: u16, event: &str, body: &serde_json::Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    let answer = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/api/v1/github/webhook"))
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", support::delivery_id())
        .header(
            "x-hub-signature-256",
            ephemera_http::sign(SECRET.as_bytes(), &bytes),
        )
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
}

/// Signed in with GitHub, alice reaches two repositories: she redeploys
/// and destroys a preview of the one she may change, and is refused on
/// the one she may only read.
async fn a_person_signs_in_and_acts_only_where_they_may(t: TestDatabase) {
    let Some((chromium, driver)) = tools() else {
        return;
    };
    let (web, api) =
        support::people::github(&[("Codertocat/Hello-World", true), ("acme/readonly", false)])
            .await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let base = format!("http://{listen}");
    let (web_url, api_url) = (web.uri(), api.uri());
    let key = "k".repeat(64);
    let _server = serve_ready(
        dir.path(),
        port,
        &[
            ("DATABASE_URL", &t.url),
            ("EPHEMERA_LISTEN", &listen),
            ("GITHUB_WEBHOOK_SECRET", SECRET),
            ("EPHEMERA_WORKER_POLL", "200ms"),
            ("EPHEMERA_GITHUB_OAUTH_CLIENT_ID", "Iv1.test"),
            ("EPHEMERA_GITHUB_OAUTH_CLIENT_SECRET", "test-client-secret"),
            ("EPHEMERA_GITHUB_WEB_URL", &web_url),
            ("GITHUB_API_URL", &api_url),
            ("EPHEMERA_PUBLIC_URL", &base),
            ("EPHEMERA_SESSION_KEY", &key),
        ],
    );
    send(dir.path(), port, "pull_request.opened");
    let mut readonly = support::pr("opened", 3, 0);
    for at in [
        "/repository",
        "/pull_request/base/repo",
        "/pull_request/head/repo",
    ] {
        let repo = readonly.pointer_mut(at).unwrap();
        repo["full_name"] = json!("acme/readonly");
        repo["id"] = json!(777);
    }
    deliver(port, "pull_request", &readonly).await;

    let driver = start_driver(&driver);
    let client = browser(&chromium, &driver).await;
    // Through GitHub's sign-in and back to the page asked for.
    client.goto(&format!("{base}/environments")).await.unwrap();
    until(&client, "form.who", "signed in", |t| t.contains("@alice")).await;
    assert_eq!(
        client.current_url().await.unwrap().as_str(),
        format!("{base}/environments")
    );
    until(&client, "#live table", "both previews ready", |t| {
        t.matches("ready").count() == 2
    })
    .await;

    click(&client, Locator::LinkText("Codertocat/Hello-World#2")).await;
    until(&client, "#live .status", "her preview", |t| t == "ready").await;
    click(&client, Locator::LinkText("Redeploy")).await;
    until(&client, "h1", "the confirmation", |t| {
        t.starts_with("Redeploy the preview of Codertocat/Hello-World#2")
    })
    .await;
    screenshot(&client, "confirm").await;
    click(&client, Locator::Css("main form button")).await;
    until(&client, "#live", "a second deployment, successful", |t| {
        t.matches(" success ").count() == 2
    })
    .await;
    screenshot(&client, "preview-signed-in").await;
    click(&client, Locator::LinkText("Destroy")).await;
    click(&client, Locator::Css("main form button")).await;
    until(&client, "#live .status", "destroyed, live", |t| {
        t == "destroyed"
    })
    .await;

    // The repository she may only read: no actions, and refused.
    client.goto(&format!("{base}/environments")).await.unwrap();
    click(&client, Locator::LinkText("acme/readonly#2")).await;
    let page = until(&client, "#live", "the read-only preview", |t| {
        t.contains("needs write permission on acme/readonly")
    })
    .await;
    assert!(!page.contains("Redeploy"), "{page}");
    let here = client.current_url().await.unwrap();
    client
        .goto(&format!("{}/destroy", here.as_str()))
        .await
        .unwrap();
    until(&client, "main", "the refusal", |t| {
        t.contains("@alice has no write permission on acme/readonly")
    })
    .await;
    client.close().await.unwrap();
}

backend_tests!(
    a_preview_reaches_ready_on_the_open_page_without_a_reload,
    a_person_signs_in_and_acts_only_where_they_may,
);
