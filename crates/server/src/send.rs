//! `ephemera webhook send`: a signed delivery with GitHub's headers, so a
//! newcomer can watch a PR environment appear without GitHub.

use std::path::PathBuf;

use anyhow::Context as _;
use secrecy::{ExposeSecret, SecretString};

use crate::config::{self, Env};

#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("payload")
        .args(["example", "file", "list_examples"])
        .required(true)
))]
pub struct SendArgs {
    /// One of GitHub's documented examples, compiled into the binary, e.g.
    /// pull_request.opened (see --list-examples). The event is the name up
    /// to the first dot.
    #[arg(long, value_name = "NAME")]
    pub example: Option<String>,
    /// A JSON payload file to send instead of an example (needs --event).
    #[arg(long, requires = "event")]
    pub file: Option<PathBuf>,
    /// The event name (X-GitHub-Event), e.g. pull_request [default: from
    /// --example].
    #[arg(long)]
    pub event: Option<String>,
    /// Print the names of the compiled-in examples and exit.
    #[arg(long)]
    pub list_examples: bool,
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

/// The names `--list-examples` prints, one a line.
pub fn example_names() -> String {
    ephemera_webhook_examples::ALL
        .iter()
        .map(|example| format!("{}\n", example.name))
        .collect()
}

/// The event and body to send, from `--example` or `--file`.
fn payload(args: &SendArgs) -> anyhow::Result<(String, Vec<u8>)> {
    if let Some(path) = &args.file {
        let body = std::fs::read(path)
            .with_context(|| format!("--file: cannot read {}", path.display()))?;
        let event = args.event.clone().context("--file needs --event")?;
        return Ok((event, body));
    }
    let name = args.example.as_deref().unwrap_or_default();
    let example = ephemera_webhook_examples::find(name).with_context(|| {
        format!("--example: no example called {name:?}; `ephemera webhook send --list-examples` lists them")
    })?;
    let event = args
        .event
        .clone()
        .unwrap_or_else(|| example.event().to_owned());
    Ok((event, example.body.as_bytes().to_vec()))
}

/// Sends the delivery; reads `GITHUB_WEBHOOK_SECRET` only without
/// `--secret` and `EPHEMERA_LISTEN` only without `--url`.
pub async fn run(args: SendArgs, env: &Env<'_>) -> anyhow::Result<()> {
    let (event, body) = payload(&args)?;
    let secret = match args.secret {
        Some(secret) => SecretString::from(secret),
        None => config::webhook_secret(env)?.context(
            "no webhook secret: pass --secret or set GITHUB_WEBHOOK_SECRET (the server's value)",
        )?,
    };
    let url = match args.url {
        Some(url) => url,
        None => {
            let mut addr = config::listen(env)?;
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{addr}/api/v1/github/webhook")
        }
    };
    let delivery = args
        .delivery
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let installation_id = installation_id_in(&body);

    let mut request = reqwest::Client::new()
        .post(&url)
        .header("Content-Type", "application/json")
        .header("User-Agent", "GitHub-Hookshot/ephemera-cli")
        .header("X-GitHub-Event", &event)
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
