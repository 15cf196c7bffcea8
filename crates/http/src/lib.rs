//! The actix-web adapter: REST API, health endpoints, metrics and the
//! GitHub webhook endpoint.
//!
//! Handlers parse requests into domain values, call application use cases
//! and map their errors once to RFC 9457 problem+json. This crate depends on
//! domain and application only, never on another adapter.

mod auth;
mod deliveries;
mod deployments;
mod environments;
mod health;
mod metrics;
mod openapi;
mod pagination;
mod problem;
mod webhook;
mod writes;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::{NormalizePath, TrailingSlash, from_fn};
use actix_web::{App, HttpServer, web};
use ephemera_application::commands::EnvironmentCommands;
use ephemera_application::delivery_log::DeliveryQueries;
use ephemera_application::ports::{HealthProbe, StatsProbe};
use ephemera_application::queries::EnvironmentQueries;
use ephemera_application::webhooks::IngestDelivery;
use ephemera_application::worker::WorkerHealth;
use tracing_actix_web::TracingLogger;

pub use auth::{Access, ApiToken, TokenTooShort};
pub use metrics::Metrics;
pub use openapi::document as openapi_document;
pub use problem::Problem;
pub use webhook::{
    DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_READ_TIMEOUT, MIN_SECRET_CHARS,
    WebhookSettings, read_delivery, sign, verify_signature,
};

/// What handlers share: the use cases and probes, behind ports.
#[derive(Clone)]
pub struct AppState {
    pub queries: EnvironmentQueries,
    pub deliveries: DeliveryQueries,
    pub ingest: IngestDelivery,
    pub commands: EnvironmentCommands,
    pub health: Arc<dyn HealthProbe>,
    /// Background workers of this process that stopped on their own.
    pub workers: WorkerHealth,
    pub webhook: WebhookSettings,
    /// Who may read and write `/api/v1` and read `/metrics`.
    pub access: Access,
    pub metrics: Arc<Metrics>,
    pub stats: Arc<dyn StatsProbe>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

/// Every route the service registers, as (method, path). The OpenAPI test
/// checks each is documented; keep the two in step.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/metrics"),
    ("get", "/api/openapi.json"),
    ("get", "/docs"),
    ("get", "/health"),
    ("get", "/health/live"),
    ("get", "/health/ready"),
    ("get", "/api/v1/environments"),
    ("get", "/api/v1/environments/namespace/{namespace}"),
    ("get", "/api/v1/environments/{id}"),
    ("delete", "/api/v1/environments/{id}"),
    ("post", "/api/v1/environments/{id}/redeploy"),
    ("get", "/api/v1/environments/{id}/deployments"),
    ("get", "/api/v1/deployments/{id}"),
    ("post", "/api/v1/github/webhook"),
    ("get", "/api/v1/deliveries"),
    ("get", "/api/v1/deliveries/{delivery_id}"),
];

/// Where `/metrics` is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MetricsRoute {
    /// On the API listener, behind the same access rules as reads.
    Guarded,
    /// Not on the API listener: a metrics listener of its own serves it.
    Elsewhere,
}

/// Every route of the API listener.
fn routes(cfg: &mut web::ServiceConfig, metrics_route: MetricsRoute) {
    cfg.app_data(problem::query_config())
        .app_data(problem::path_config());
    if metrics_route == MetricsRoute::Guarded {
        cfg.service(
            web::resource("/metrics")
                .wrap(from_fn(auth::require_token))
                .route(web::get().to(metrics::metrics)),
        );
    }
    cfg.route("/api/openapi.json", web::get().to(openapi::openapi_json))
        .route("/docs", web::get().to(openapi::docs))
        .route(
            "/docs/swagger-ui-bundle.js",
            web::get().to(openapi::swagger_ui_js),
        )
        .route(
            "/docs/swagger-ui.css",
            web::get().to(openapi::swagger_ui_css),
        )
        .service(
            web::scope("/health")
                .route("", web::get().to(health::health))
                .route("/live", web::get().to(health::live))
                .route("/ready", web::get().to(health::ready)),
        )
        // Public, with its own signature; registered before the guarded
        // scope so it matches first.
        .route("/api/v1/github/webhook", web::post().to(webhook::receive))
        .service(
            web::scope("/api/v1")
                .wrap(from_fn(auth::require_token))
                .route("/environments", web::get().to(environments::list))
                .route(
                    "/environments/namespace/{namespace}",
                    web::get().to(environments::by_namespace),
                )
                .route("/environments/{id}", web::get().to(environments::get))
                .route("/environments/{id}", web::delete().to(writes::destroy))
                .route(
                    "/environments/{id}/redeploy",
                    web::post().to(writes::redeploy),
                )
                .route(
                    "/environments/{id}/deployments",
                    web::get().to(deployments::list_for_environment),
                )
                .route("/deployments/{id}", web::get().to(deployments::get))
                .route("/deliveries", web::get().to(deliveries::list))
                .route("/deliveries/{delivery_id}", web::get().to(deliveries::get))
                // Unknown paths under /api/v1 answer 404 only to callers
                // who may read.
                .default_service(web::to(problem::not_found_route)),
        );
}

/// The running HTTP servers: the API and, when it has its own listener,
/// the metrics endpoint.
pub struct Servers {
    pub api: Server,
    pub metrics: Option<Server>,
}

impl std::fmt::Debug for Servers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Servers")
            .field("metrics", &self.metrics.is_some())
            .finish_non_exhaustive()
    }
}

/// Starts serving the API on `listener` and, when `metrics_listener` is
/// given, `/metrics` on it alone (without a token, for in-cluster
/// scraping; `/metrics` then leaves the API listener). Each stops
/// gracefully on SIGTERM or ctrl-c (actix's own signal handling).
pub fn serve(
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    state: AppState,
) -> std::io::Result<Servers> {
    let bodies = web::Data::from(webhook::BodyBudget::new(
        state.webhook.max_buffered_bytes,
        state.metrics.body_bytes_gauge(),
    ));
    let metrics_route = if metrics_listener.is_some() {
        MetricsRoute::Elsewhere
    } else {
        MetricsRoute::Guarded
    };
    let state = web::Data::new(state);
    let metrics = match metrics_listener {
        None => None,
        Some(listener) => {
            let state = state.clone();
            Some(
                HttpServer::new(move || {
                    App::new()
                        .app_data(state.clone())
                        .route("/metrics", web::get().to(metrics::metrics))
                        .default_service(web::to(problem::not_found_route))
                })
                .workers(1)
                .listen(listener)?
                .shutdown_timeout(5)
                .run(),
            )
        }
    };
    let server = HttpServer::new(move || {
        let metrics = state.metrics.clone();
        App::new()
            .app_data(state.clone())
            .app_data(bodies.clone())
            .wrap_fn(move |req, srv| {
                let metrics = metrics.clone();
                let started = std::time::Instant::now();
                let method = req.method().clone();
                let call = actix_web::dev::Service::call(srv, req);
                async move {
                    let response = call.await?;
                    // The route pattern, not the raw path: ids do not
                    // multiply the series.
                    let route = response
                        .request()
                        .match_pattern()
                        .unwrap_or_else(|| "unmatched".to_owned());
                    metrics.observe_http(
                        &method,
                        &route,
                        response.status().as_u16(),
                        started.elapsed(),
                    );
                    Ok(response)
                }
            })
            // Trailing slashes are accepted: /api/v1/environments/ works.
            .wrap(NormalizePath::new(TrailingSlash::Trim))
            .wrap(TracingLogger::default())
            .configure(|cfg| routes(cfg, metrics_route))
            .default_service(web::to(problem::not_found_route))
    })
    .listen(listener)?
    .shutdown_timeout(30)
    .run();
    Ok(Servers {
        api: server,
        metrics,
    })
}
