//! `loadgen`: drives a running ephemera with distinct, correctly signed
//! `pull_request` deliveries (`ingest`) or REST list reads (`read`) at a
//! fixed concurrency, for a count or a duration, and prints throughput,
//! latency percentiles and errors by status. Part of the bench harness
//! (`just bench`); no test asserts on its figures.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

#[derive(Debug, Parser)]
#[command(name = "loadgen", about = "Load generator for ephemera")]
struct Cli {
    /// Base URL of the service; several, comma-separated, take requests
    /// in turn (replicas behind no load balancer).
    #[arg(long, default_value = "http://127.0.0.1:8080", global = true)]
    url: String,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16, global = true)]
    concurrency: usize,
    /// Stop after this many requests…
    #[arg(long, default_value_t = 2000, global = true)]
    count: u64,
    /// …or after this long (e.g. 30s), whichever comes first.
    #[arg(long, global = true)]
    duration: Option<humantime::Duration>,
    /// Send at this many requests per second in all (open loop) instead of
    /// as fast as answers come; latency then counts from when each request
    /// was due, so a server falling behind shows it.
    #[arg(long, global = true)]
    rate: Option<f64>,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Distinct pull_request.opened deliveries (new repository, PR, SHA and
    /// delivery id each), signed with the secret.
    Ingest {
        #[arg(long, env = "GITHUB_WEBHOOK_SECRET")]
        secret: String,
        /// A pull_request payload file to vary [default: the compiled-in
        /// example pull_request.opened].
        #[arg(long)]
        payload: Option<PathBuf>,
        /// Offset for repository/PR numbers, so runs do not collide.
        #[arg(long, default_value_t = 0)]
        start: u64,
    },
    /// A rebase storm: request i is PR `i % prs + 1` of one repository at
    /// round `i / prs` (with --round added): round 0 opens the PR, each
    /// later round pushes a new commit (`synchronize`). The head of PR p at
    /// round r is `{p:020x}{r:020x}`.
    Storm {
        #[arg(long, env = "GITHUB_WEBHOOK_SECRET")]
        secret: String,
        #[arg(long, default_value_t = 200)]
        prs: u64,
        /// The round of request 0.
        #[arg(long, default_value_t = 0)]
        round: u64,
    },
    /// GET /api/v1/environments pages: the first page, or (with --deep) the
    /// page after a cursor deep in the chain.
    Read {
        /// Query string for the list, e.g. "active_only=true".
        #[arg(long, default_value = "")]
        query: String,
        /// Follow the Link header this many pages first and read that page.
        #[arg(long, default_value_t = 0)]
        deep: u32,
    },
    /// GET one path (e.g. /health/live): the framework's own floor.
    Get {
        #[arg(long, default_value = "/health/live")]
        path: String,
    },
}

#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    statuses: BTreeMap<String, u64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(cli.concurrency)
        .build()?;
    let bases: Vec<String> = cli
        .url
        .split(',')
        .map(|u| u.trim().trim_end_matches('/').to_owned())
        .collect();
    let base = bases[0].clone();

    let request: Arc<dyn Fn(u64) -> reqwest::RequestBuilder + Send + Sync> = match &cli.mode {
        Mode::Ingest {
            secret,
            payload,
            start,
        } => {
            let text = match payload {
                Some(path) => std::fs::read_to_string(path)
                    .with_context(|| format!("--payload: cannot read {}", path.display()))?,
                None => ephemera_webhook_examples::find("pull_request.opened")
                    .context("the compiled-in example pull_request.opened is missing")?
                    .body
                    .to_owned(),
            };
            let template: Value = serde_json::from_str(&text).context("--payload is not JSON")?;
            let (client, secret, url, start) = (
                client.clone(),
                secret.clone(),
                format!("{base}/api/v1/github/webhook"),
                *start,
            );
            Arc::new(move |i| {
                let n = start + i;
                let body = serde_json::to_vec(&vary(&template, n)).unwrap_or_default();
                let signature = ephemera_http::sign(secret.as_bytes(), &body);
                client
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .header("X-GitHub-Event", "pull_request")
                    .header("X-GitHub-Delivery", uuid::Uuid::new_v4().to_string())
                    .header("X-Hub-Signature-256", signature)
                    .body(body)
            })
        }
        Mode::Storm { secret, prs, round } => {
            let template: Value = serde_json::from_str(
                ephemera_webhook_examples::find("pull_request.opened")
                    .context("the compiled-in example pull_request.opened is missing")?
                    .body,
            )?;
            let (client, secret, prs, first) = (client.clone(), secret.clone(), *prs, *round);
            let urls: Vec<String> = bases
                .iter()
                .map(|b| format!("{b}/api/v1/github/webhook"))
                .collect();
            Arc::new(move |i| {
                let (pr, round) = (i % prs + 1, first + i / prs);
                let body = serde_json::to_vec(&storm(&template, pr, round)).unwrap_or_default();
                let signature = ephemera_http::sign(secret.as_bytes(), &body);
                client
                    .post(&urls[(i % urls.len() as u64) as usize])
                    .header("Content-Type", "application/json")
                    .header("X-GitHub-Event", "pull_request")
                    .header("X-GitHub-Delivery", uuid::Uuid::new_v4().to_string())
                    .header("X-Hub-Signature-256", signature)
                    .body(body)
            })
        }
        Mode::Read { query, deep } => {
            let url = deep_page(&client, &base, query, *deep).await?;
            let client = client.clone();
            Arc::new(move |_| client.get(&url))
        }
        Mode::Get { path } => {
            let (client, url) = (client.clone(), format!("{base}{path}"));
            Arc::new(move |_| client.get(&url))
        }
    };

    let next = Arc::new(AtomicU64::new(0));
    let deadline = cli.duration.map(|d| Instant::now() + Duration::from(d));
    let started = Instant::now();
    let workers: Vec<_> = (0..cli.concurrency)
        .map(|_| {
            let (next, request) = (next.clone(), request.clone());
            let (count, rate) = (cli.count, cli.rate);
            tokio::spawn(async move {
                let mut tally = Tally::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count || deadline.is_some_and(|d| Instant::now() >= d) {
                        break;
                    }
                    let sent = match rate {
                        Some(rate) if rate > 0.0 => {
                            let due = started + Duration::from_secs_f64(i as f64 / rate);
                            tokio::time::sleep_until(due.into()).await;
                            due
                        }
                        _ => Instant::now(),
                    };
                    let status = match request(i).send().await {
                        Ok(response) => {
                            let status = response.status().as_u16().to_string();
                            let _ = response.bytes().await;
                            status
                        }
                        Err(e) => format!(
                            "error: {}",
                            if e.is_connect() { "connect" } else { "other" }
                        ),
                    };
                    tally.latencies.push(sent.elapsed());
                    *tally.statuses.entry(status).or_default() += 1;
                }
                tally
            })
        })
        .collect();
    let mut all = Tally::default();
    for worker in workers {
        let tally = worker.await?;
        all.latencies.extend(tally.latencies);
        for (status, n) in tally.statuses {
            *all.statuses.entry(status).or_default() += n;
        }
    }
    let elapsed = started.elapsed();
    report(&cli, &all, elapsed);
    Ok(())
}

/// The template with a repository, PR number and head SHA of its own: each
/// `n` opens a new PR. (ephemera keys a PR's environment by GitHub's
/// repository id, which survives renames, so the id varies with the name;
/// with the template's one id every delivery renamed one repository.)
fn vary(template: &Value, n: u64) -> Value {
    let mut p = template.clone();
    let (owner, app) = (n % 97, n % 13);
    let repo = format!("load-org-{owner}/app-{app}");
    let number = n / (97 * 13) + 1;
    p["number"] = json!(number);
    p["pull_request"]["number"] = json!(number);
    set_repository(&mut p, &repo, 1_000_000 + owner * 13 + app);
    p["pull_request"]["head"]["sha"] = json!(format!("{n:040x}"));
    p
}

/// Makes `full_name` (`owner/name`) with GitHub's repository `id` the PR's
/// repository, as base and head (not a fork).
fn set_repository(p: &mut Value, full_name: &str, id: u64) {
    let name = full_name
        .split_once('/')
        .map_or(full_name, |(_, name)| name);
    for path in [
        "/repository",
        "/pull_request/head/repo",
        "/pull_request/base/repo",
    ] {
        if let Some(r) = p.pointer_mut(path) {
            r["full_name"] = json!(full_name);
            r["name"] = json!(name);
            r["id"] = json!(id);
        }
    }
}

/// PR `pr` of the storm's repository at `round`: opened at round 0, a new
/// head (and a later `updated_at`) each round after.
fn storm(template: &Value, pr: u64, round: u64) -> Value {
    let mut p = template.clone();
    let repo = "storm-org/app";
    p["action"] = json!(if round == 0 { "opened" } else { "synchronize" });
    p["number"] = json!(pr);
    // A second later each round (rounds stay under a day).
    let updated = format!(
        "2026-01-01T{:02}:{:02}:{:02}Z",
        round / 3600 % 24,
        round / 60 % 60,
        round % 60
    );
    let head = format!("{pr:020x}{round:020x}");
    let pull = &mut p["pull_request"];
    pull["number"] = json!(pr);
    pull["updated_at"] = json!(updated);
    pull["head"]["sha"] = json!(head);
    pull["labels"] = json!([]);
    set_repository(&mut p, repo, 424_242);
    p
}

/// Follows `deep` next-page links and returns the URL of that page.
async fn deep_page(
    client: &reqwest::Client,
    base: &str,
    query: &str,
    deep: u32,
) -> anyhow::Result<String> {
    let mut url = format!("{base}/api/v1/environments?{query}");
    for page in 0..deep {
        let response = client.get(&url).send().await?;
        let link = response
            .headers()
            .get("link")
            .and_then(|l| l.to_str().ok())
            .and_then(|l| l.split('<').nth(1)?.split('>').next().map(str::to_owned))
            .with_context(|| format!("no next page after page {page}"))?;
        url = link;
    }
    Ok(url)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn report(cli: &Cli, tally: &Tally, elapsed: Duration) {
    let mut sorted = tally.latencies.clone();
    sorted.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let n = sorted.len();
    let mode = match &cli.mode {
        Mode::Ingest { .. } => "ingest (signed pull_request.opened deliveries)".to_owned(),
        Mode::Storm { prs, round, .. } => {
            format!("storm ({prs} PRs of one repository, from round {round})")
        }
        Mode::Read { query, deep } => {
            format!("read /api/v1/environments?{query} ({deep} pages deep)")
        }
        Mode::Get { path } => format!("get {path}"),
    };
    println!("mode:        {mode}");
    println!(
        "requests:    {n} in {:.2}s at concurrency {}",
        elapsed.as_secs_f64(),
        cli.concurrency
    );
    println!(
        "throughput:  {:.1} req/s",
        n as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    println!(
        "latency ms:  p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
        ms(percentile(&sorted, 50.0)),
        ms(percentile(&sorted, 90.0)),
        ms(percentile(&sorted, 99.0)),
        ms(sorted.last().copied().unwrap_or_default())
    );
    let statuses: Vec<String> = tally
        .statuses
        .iter()
        .map(|(s, n)| format!("{s}: {n}"))
        .collect();
    println!("statuses:    {}", statuses.join(", "));
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn template() -> Value {
        let text = ephemera_webhook_examples::find("pull_request.opened")
            .expect("the example is compiled in")
            .body;
        serde_json::from_str(text).expect("the example is JSON")
    }

    #[test]
    fn each_ingest_delivery_opens_a_pr_of_its_own() {
        let template = template();
        let keys: HashSet<_> = (0..5_000)
            .map(|n| {
                let p = vary(&template, n);
                let repo = &p["repository"];
                assert_eq!(repo["id"], p["pull_request"]["base"]["repo"]["id"]);
                assert_eq!(
                    repo["full_name"],
                    p["pull_request"]["base"]["repo"]["full_name"]
                );
                (repo["id"].to_string(), p["number"].to_string())
            })
            .collect();
        assert_eq!(keys.len(), 5_000, "(repository id, PR number) repeats");
    }
}
