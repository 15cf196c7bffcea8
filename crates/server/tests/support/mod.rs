//! Shared by the black-box tests: the real application on port 0 over a
//! fresh database, and an HTTP client.

#![allow(dead_code, clippy::unwrap_used)]

pub mod controls;
pub mod fake_github;
pub mod people;
pub mod pg_proxy;
pub mod process;

use std::sync::Arc;

use ephemera_persistence::testing::TestDatabase;
use ephemera_server::config::LogFormat;
use ephemera_server::{Application, Settings};
use serde_json::Value;

/// The webhook secret test apps are configured with.
pub const SECRET: &str = "test-webhook-secret";

/// The API token tests configure with [`token`]; [`TestApp::get`] sends it
/// whenever the app has a token.
pub const TOKEN: &str = "test-api-token-0123456789";

pub fn token() -> ephemera_http::ApiToken {
    ephemera_http::ApiToken::parse(TOKEN).unwrap()
}

#[derive(Debug)]
pub struct TestApp {
    pub address: String,
    /// `/metrics` on its own listener, when the test set
    /// `EPHEMERA_METRICS_LISTEN`.
    pub metrics_address: Option<String>,
    /// Whether [`TOKEN`] is configured; `get` then sends it.
    pub has_token: bool,
    pub client: reqwest::Client,
    /// Shared with [`TestApp::spawn_replica`]s of the app.
    pub database: Arc<TestDatabase>,
    /// Drives the workers' steps by hand (background workers are off
    /// unless a test sets `settings.workers.count`).
    pub reconciler: ephemera_application::reconciler::Reconciler,
    pub commands: ephemera_application::commands::EnvironmentCommands,
    /// The GitHub outbox deliverer, when the test configured GitHub.
    pub reports: Option<ephemera_application::reporting::ReportDeliverer>,
    /// Drift repair, when the test configured GitHub.
    pub sync: Option<ephemera_application::sync::GitHubSync>,
    /// The `/preview` command worker, when the test configured GitHub.
    pub pr_commands: Option<Arc<ephemera_application::pr_commands::CommandRunner>>,
    /// The record of workers that stopped on their own, which readiness
    /// reads.
    pub worker_health: ephemera_application::worker::WorkerHealth,
    /// The app's clock: real time, plus whatever the test moved it on.
    pub clock: Arc<ShiftedClock>,
}

/// Real time moved forward on demand, so a test waits out a backoff or a
/// lease by saying so instead of sleeping.
#[derive(Debug, Default)]
pub struct ShiftedClock {
    ahead: std::sync::Mutex<chrono::Duration>,
}

impl ShiftedClock {
    pub fn advance(&self, by: std::time::Duration) {
        *self.ahead.lock().unwrap() += chrono::Duration::from_std(by).unwrap();
    }
}

impl ephemera_application::ports::Clock for ShiftedClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + *self.ahead.lock().unwrap()
    }
}

impl TestApp {
    /// Builds the app exactly as `ephemera serve` does (including its own
    /// migration run) against `database`, and serves it in the background.
    pub async fn spawn(database: TestDatabase) -> Self {
        Self::spawn_with(database, |_| {}).await
    }

    /// Like `spawn`, with settings adjusted first (defaults as from an empty
    /// environment, plus the test webhook secret).
    pub async fn spawn_with(database: TestDatabase, configure: impl FnOnce(&mut Settings)) -> Self {
        Self::spawn_on(Arc::new(database), configure).await
    }

    /// Another replica of the app on this one's database, with settings
    /// adjusted by `configure` (as `spawn_with` does), and its own clock.
    pub async fn spawn_replica(&self, configure: impl FnOnce(&mut Settings)) -> Self {
        Self::spawn_on(self.database.clone(), configure).await
    }

    async fn spawn_on(database: Arc<TestDatabase>, configure: impl FnOnce(&mut Settings)) -> Self {
        if std::env::var("TEST_LOG").is_ok() {
            ephemera_server::telemetry::init(LogFormat::Pretty);
        }
        let mut settings = Settings::from_lookup(|name| match name {
            "GITHUB_WEBHOOK_SECRET" => Some(SECRET.to_owned()),
            _ => None,
        })
        .unwrap();
        settings.database_url = database.url.clone();
        settings.listen = "127.0.0.1:0".parse().unwrap();
        settings.workers.count = 0;
        settings.workers.retry_base = std::time::Duration::from_millis(1);
        // Tests drain reports step by step, each as soon as it is written.
        settings.workers.report_delay = std::time::Duration::ZERO;
        configure(&mut settings);
        let clock = Arc::new(ShiftedClock::default());
        let app = Application::build_with_clock(&settings, true, clock.clone())
            .await
            .expect("building the app");
        let address = format!("http://127.0.0.1:{}", app.port());
        let metrics_address = app
            .metrics_port()
            .map(|port| format!("http://127.0.0.1:{port}"));
        let has_token = settings.api_token.is_some();
        let reconciler = app.reconciler();
        let commands = app.commands();
        let reports = app.reports();
        let sync = app.sync();
        let pr_commands = app.pr_commands();
        let worker_health = app.worker_health();
        tokio::spawn(app.run_until_stopped());
        Self {
            address,
            metrics_address,
            has_token,
            client: reqwest::Client::new(),
            database,
            reconciler,
            commands,
            reports,
            sync,
            pr_commands,
            worker_health,
            clock,
        }
    }

    /// GETs `path`, with the bearer token when the app has one.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.address));
        if self.has_token {
            request = request.bearer_auth(TOKEN);
        }
        request.send().await.expect("sending a request")
    }

    /// GETs `path`, asserts a problem+json answer with `status`, returns it.
    pub async fn problem(&self, path: &str, status: u16) -> serde_json::Value {
        let response = self.get(path).await;
        assert_eq!(response.status().as_u16(), status, "GET {path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "GET {path}"
        );
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["status"], status, "{body}");
        assert!(
            body["type"].as_str().unwrap().starts_with("/problems/"),
            "{body}"
        );
        assert!(!body["title"].as_str().unwrap().is_empty(), "{body}");
        body
    }
}

impl TestApp {
    /// Sends `body` as GitHub would: signed with [`SECRET`], with GitHub's
    /// headers.
    pub async fn deliver(&self, event: &str, delivery_id: &str, body: &Value) -> reqwest::Response {
        let bytes = serde_json::to_vec(body).unwrap();
        self.deliver_raw(event, delivery_id, bytes).await
    }

    pub async fn deliver_raw(
        &self,
        event: &str,
        delivery_id: &str,
        bytes: Vec<u8>,
    ) -> reqwest::Response {
        let signature = ephemera_http::sign(SECRET.as_bytes(), &bytes);
        self.client
            .post(format!("{}/api/v1/github/webhook", self.address))
            .header("Content-Type", "application/json")
            .header("User-Agent", "GitHub-Hookshot/044aadd")
            .header("X-GitHub-Event", event)
            .header("X-GitHub-Delivery", delivery_id)
            .header("X-GitHub-Hook-ID", "292430182")
            .header("X-GitHub-Hook-Installation-Target-Type", "integration")
            .header("X-GitHub-Hook-Installation-Target-ID", "1")
            .header("X-Hub-Signature-256", signature)
            .body(bytes)
            .send()
            .await
            .expect("sending a delivery")
    }

    /// Delivers and returns the JSON answer, asserting a 200.
    pub async fn deliver_ok(&self, event: &str, delivery_id: &str, body: &Value) -> Value {
        let response = self.deliver(event, delivery_id, body).await;
        assert_eq!(response.status(), 200, "{event} {delivery_id}");
        response.json().await.unwrap()
    }

    pub async fn json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }
}

/// One of GitHub's documented examples vendored in fixtures/github.
pub fn payload(name: &str) -> Value {
    let example = ephemera_webhook_examples::find(name)
        .unwrap_or_else(|| panic!("no vendored example {name} in fixtures/github"));
    serde_json::from_str(example.body).unwrap()
}

/// A delivery id no other delivery of the test has.
pub fn delivery_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// GitHub's example `pull_request.{action}` (PR #2) with head commit
/// `head` as 40 hex digits, updated `updated_secs` after the example's
/// 16:00.
pub fn pr(action: &str, head: u32, updated_secs: u32) -> Value {
    let mut p = payload(&format!("pull_request.{action}"));
    p["pull_request"]["head"]["sha"] = serde_json::json!(format!("{head:040x}"));
    p["pull_request"]["updated_at"] = serde_json::json!(format!(
        "2019-05-15T16:{:02}:{:02}Z",
        updated_secs / 60,
        updated_secs % 60
    ));
    p
}

impl TestApp {
    /// Delivers `body` as a `pull_request` event under a fresh delivery id;
    /// asserts a 200 and returns the answer.
    pub async fn deliver_pr(&self, body: &Value) -> Value {
        self.deliver_ok("pull_request", &delivery_id(), body).await
    }

    /// Delivers GitHub's example suspension, of installation 1.
    pub async fn suspend_installation(&self) {
        let mut suspend = payload("installation.suspend");
        suspend["installation"]["id"] = serde_json::json!(1);
        self.deliver_ok("installation", &delivery_id(), &suspend)
            .await;
    }

    /// Opens PR #2 at commit 1 and runs the workers; returns its
    /// environment, asserted ready.
    pub async fn ready_environment(&self) -> Value {
        self.deliver_pr(&pr("opened", 1, 0)).await;
        self.drain().await;
        let env = self.only_environment().await;
        assert_eq!(env["status"], "ready", "{env}");
        env
    }

    /// The one environment there is (asserting there is exactly one).
    pub async fn only_environment(&self) -> Value {
        let envs = self.json("/api/v1/environments").await;
        assert_eq!(envs.as_array().unwrap().len(), 1, "{envs}");
        envs[0].clone()
    }

    /// Sends `method path` with the bearer [`TOKEN`], as an operator's
    /// write does.
    pub async fn write(&self, method: reqwest::Method, path: &str) -> reqwest::Response {
        self.client
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("sending a write")
    }
}

impl TestApp {
    /// Runs worker steps until nothing is due; returns what each did.
    pub async fn drain(&self) -> Vec<ephemera_application::reconciler::RunOutcome> {
        use ephemera_application::reconciler::RunOutcome;
        let mut done = Vec::new();
        for _ in 0..1000 {
            match self.reconciler.run_once().await.expect("a worker step") {
                RunOutcome::Idle => return done,
                other => done.push(other),
            }
        }
        panic!("work never ran out: {done:?}");
    }
}

impl TestApp {
    /// Delivers GitHub reports until none is due; returns what each did.
    pub async fn drain_reports(&self) -> Vec<ephemera_application::reporting::ReportOutcome> {
        use ephemera_application::reporting::ReportOutcome;
        let reports = self.reports.as_ref().expect("GitHub reporting configured");
        let mut done = Vec::new();
        for _ in 0..1000 {
            match reports.run_once().await.expect("a report step") {
                ReportOutcome::Idle => return done,
                other => done.push(other),
            }
        }
        panic!("reports never ran out: {done:?}");
    }
}
