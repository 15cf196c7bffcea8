//! Shared by the black-box tests: the real application on port 0 over a
//! fresh database, and an HTTP client.

#![allow(dead_code, clippy::unwrap_used)]

use ephemera_persistence::testing::TestDatabase;
use ephemera_server::config::LogFormat;
use ephemera_server::{Application, Settings};

#[derive(Debug)]
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub database: TestDatabase,
}

impl TestApp {
    /// Builds the app exactly as `ephemera serve` does (including its own
    /// migration run) against `database`, and serves it in the background.
    pub async fn spawn(database: TestDatabase) -> Self {
        if std::env::var("TEST_LOG").is_ok() {
            ephemera_server::telemetry::init(LogFormat::Pretty);
        }
        let settings = Settings {
            database_url: database.url.clone(),
            listen: "127.0.0.1:0".parse().unwrap(),
            log_format: LogFormat::Pretty,
        };
        let app = Application::build(&settings)
            .await
            .expect("building the app");
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        Self {
            address,
            client: reqwest::Client::new(),
            database,
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("sending a request")
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
