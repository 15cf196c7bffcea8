//! Prometheus metrics at `/metrics` (text format): HTTP requests by route
//! and status with a latency histogram, webhook deliveries by event and
//! outcome, webhook refusals and the memory held by webhook bodies,
//! environments by status and the reconciler's backlog (read from the
//! database at scrape time), the GitHub outbox backlog, provisioner run
//! durations, GitHub API answers by operation and status and GitHub's
//! remaining rate limit.
//!
//! No label takes a value a client chose: methods outside a fixed set are
//! `OTHER`, routes are the matched pattern or `unmatched`, events outside
//! those ephemera handles are `other`. Each label has a small fixed set of
//! values, so no sender can mint series.

use std::time::Duration;

use actix_web::http::Method;
use actix_web::{HttpResponse, web};
use ephemera_application::ports::{GitHubObserver, WorkObserver};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::AppState;

/// Every metric ephemera exports.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    deliveries: IntCounterVec,
    refusals: IntCounterVec,
    body_bytes: IntGauge,
    environments: IntGaugeVec,
    backlog: IntGauge,
    outbox: IntGauge,
    provisioner_runs: HistogramVec,
    pruned: IntCounterVec,
    github_requests: IntCounterVec,
    github_rate_limit: IntGauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("ephemera".into()), None)?;
        let http_requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by method, route and status",
            ),
            &["method", "route", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency").buckets(
                vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ],
            ),
            &["method", "route"],
        )?;
        let deliveries = IntCounterVec::new(
            Opts::new(
                "webhook_deliveries_total",
                "Webhook deliveries by event and outcome",
            ),
            &["event", "outcome"],
        )?;
        let refusals = IntCounterVec::new(
            Opts::new(
                "webhook_refusals_total",
                "Webhook requests refused before a delivery was applied, by reason",
            ),
            &["reason"],
        )?;
        let body_bytes = IntGauge::new(
            "webhook_body_bytes",
            "Memory held by webhook bodies being read or handled, against EPHEMERA_WEBHOOK_MAX_BUFFERED_BYTES",
        )?;
        let environments = IntGaugeVec::new(
            Opts::new("environments", "Environments by status"),
            &["status"],
        )?;
        let backlog = IntGauge::new("reconciler_backlog", "Environments whose work is due now")?;
        let outbox = IntGauge::new("outbox_backlog", "Reports to GitHub not delivered yet")?;
        let provisioner_runs = HistogramVec::new(
            HistogramOpts::new(
                "provisioner_run_duration_seconds",
                "Provisioner run duration",
            )
            .buckets(vec![
                0.01, 0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0,
            ]),
            &["provisioner", "action", "outcome"],
        )?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(deliveries.clone()))?;
        registry.register(Box::new(refusals.clone()))?;
        registry.register(Box::new(body_bytes.clone()))?;
        registry.register(Box::new(environments.clone()))?;
        registry.register(Box::new(backlog.clone()))?;
        registry.register(Box::new(outbox.clone()))?;
        registry.register(Box::new(provisioner_runs.clone()))?;
        let pruned = IntCounterVec::new(
            Opts::new(
                "retention_pruned_total",
                "Records removed by the retention pass (deliveries, reports, logs)",
            ),
            &["kind"],
        )?;
        registry.register(Box::new(pruned.clone()))?;
        let github_requests = IntCounterVec::new(
            Opts::new(
                "github_api_requests_total",
                "GitHub API answers by operation (GitHub's operationId) and HTTP status",
            ),
            &["operation", "status"],
        )?;
        let github_rate_limit = IntGauge::new(
            "github_rate_limit_remaining",
            "x-ratelimit-remaining of GitHub's latest answer that had one",
        )?;
        registry.register(Box::new(github_requests.clone()))?;
        registry.register(Box::new(github_rate_limit.clone()))?;
        Ok(Self {
            registry,
            http_requests,
            http_duration,
            deliveries,
            refusals,
            body_bytes,
            environments,
            backlog,
            outbox,
            provisioner_runs,
            pruned,
            github_requests,
            github_rate_limit,
        })
    }

    pub(crate) fn observe_http(&self, method: &Method, route: &str, status: u16, took: Duration) {
        let method = method_label(method);
        self.http_requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.http_duration
            .with_label_values(&[method, route])
            .observe(took.as_secs_f64());
    }

    pub(crate) fn observe_delivery(&self, event: &str, outcome: &'static str) {
        // Only signed deliveries get here, but the event name is still a
        // header: keep unknown ones in one series all the same.
        let event = match event {
            "ping" | "pull_request" | "installation" | "installation_repositories" | "push" => {
                event
            }
            _ => "other",
        };
        self.deliveries.with_label_values(&[event, outcome]).inc();
    }

    /// A webhook request refused before anything was applied; `reason` is
    /// one of a fixed set chosen by the handler.
    pub(crate) fn observe_refusal(&self, reason: &'static str) {
        self.refusals.with_label_values(&[reason]).inc();
    }

    /// The gauge the webhook body budget keeps current.
    pub(crate) fn body_bytes_gauge(&self) -> IntGauge {
        self.body_bytes.clone()
    }
}

/// The standard methods by name; anything else, `OTHER`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

impl WorkObserver for Metrics {
    fn observe(&self, provisioner: &str, action: &str, outcome: &str, seconds: f64) {
        self.provisioner_runs
            .with_label_values(&[provisioner, action, outcome])
            .observe(seconds);
    }

    fn pruned(&self, kind: &str, count: u64) {
        // `kind` is one of three fixed names from the retention pass.
        self.pruned.with_label_values(&[kind]).inc_by(count);
    }
}

impl GitHubObserver for Metrics {
    fn request(&self, operation: &str, status: u16) {
        // `operation` is one of the adapter's fixed names, never a URL.
        self.github_requests
            .with_label_values(&[operation, &status.to_string()])
            .inc();
    }

    fn rate_limit_remaining(&self, remaining: u64) {
        self.github_rate_limit
            .set(i64::try_from(remaining).unwrap_or(i64::MAX));
    }
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "meta",
    security(("bearer" = [])),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"), crate::responses::MetricsErrors))]
pub(crate) async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let metrics = &state.metrics;
    match state.stats.environments_by_status().await {
        Ok(counts) => {
            metrics.environments.reset();
            for (status, count) in counts {
                metrics
                    .environments
                    .with_label_values(&[&status])
                    .set(count);
            }
        }
        Err(err) => tracing::warn!(error = format!("{err:#}"), "environment counts unavailable"),
    }
    match state.stats.work_backlog().await {
        Ok(n) => metrics.backlog.set(n),
        Err(err) => tracing::warn!(error = format!("{err:#}"), "backlog unavailable"),
    }
    match state.stats.report_backlog().await {
        Ok(n) => metrics.outbox.set(n),
        Err(err) => tracing::warn!(error = format!("{err:#}"), "outbox backlog unavailable"),
    }
    let mut out = Vec::new();
    if let Err(err) = TextEncoder::new().encode(&metrics.registry.gather(), &mut out) {
        tracing::error!(error = %err, "encoding metrics");
        return HttpResponse::InternalServerError().finish();
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_the_standard_set_are_other() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::OPTIONS), "OPTIONS");
        assert_eq!(method_label(&Method::TRACE), "OTHER");
        assert_eq!(method_label(&Method::CONNECT), "OTHER");
        assert_eq!(
            method_label(&Method::from_bytes(b"BREW").unwrap_or(Method::GET)),
            "OTHER"
        );
    }
}
