//! `ephemera webhook send`: a signed delivery with GitHub's headers, so a
//! newcomer can watch a PR environment appear without GitHub.

use std::path::PathBuf;

use anyhow::Context as _;
use secrecy::{ExposeSecret, SecretString};

use crate::Settings;

#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// The event name (X-GitHub-Event), e.g. pull_request.
    #[arg(long)]
    pub event: String,
    /// The JSON payload to send, e.g. ../shared/github-payloads/pull_request.opened.json.
    #[arg(long)]
    pub file: PathBuf,
    /// Where to send it [default: http://<EPHEMERA_LISTEN>/api/v1/github/webhook].
    #[arg(long)]
    pub url: Option<String>,
    /// The webhook secret [default: GITHUB_WEBHOOK_SECRET].
    #[arg(long)]
    pub secret: Option<String>,
    /// Reuse a delivery id (X-GitHub-Delivery) instead of a fresh one, as a
    /// GitHub redelivery does.
    #[arg(long)]
    pub delivery: Option<String>,
}

pub async fn run(args: SendArgs, settings: &Settings) -> anyhow::Result<()> {
    let body = std::fs::read(&args.file)
        .with_context(|| format!("--file: cannot read {}", args.file.display()))?;
    let secret = match args.secret {
        Some(secret) => SecretString::from(secret),
        None => settings.webhook.secret.clone().context(
            "no webhook secret: pass --secret or set GITHUB_WEBHOOK_SECRET (the server's value)",
        )?,
    };
    let url = args.url.unwrap_or_else(|| {
        let mut addr = settings.listen;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("http://{addr}/api/v1/github/webhook")
    });
    let delivery = args
        .delivery
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let installation_id = installation_id_in(&body);

    let mut request = reqwest::Client::new()
        .post(&url)
        .header("Content-Type", "application/json")
        .header("User-Agent", "GitHub-Hookshot/ephemera-cli")
        .header("X-GitHub-Event", &args.event)
        .header("X-GitHub-Delivery", &delivery)
        .header("X-GitHub-Hook-ID", "0")
        .header(
            "X-Hub-Signature-256",
            ephemera_http::sign(secret.expose_secret().as_bytes(), &body),
        );
    if let Some(id) = installation_id {
        request = request
            .header("X-GitHub-Hook-Installation-Target-Type", "integration")
            .header("X-GitHub-Hook-Installation-Target-ID", id.to_string());
    }
    let response = request
        .body(body)
        .send()
        .await
        .with_context(|| format!("--url: cannot reach {url}"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    println!("delivery {delivery} -> HTTP {status}");
    println!("{text}");
    anyhow::ensure!(
        status.is_success(),
        "the server refused the delivery ({status})"
    );
    Ok(())
}

/// The installation id in the payload, if it has one (for the header GitHub
/// sends alongside).
fn installation_id_in(body: &[u8]) -> Option<i64> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value.get("installation")?.get("id")?.as_i64()
}
