//! The actix-web adapter: REST API, health endpoints and (with later issues)
//! the GitHub webhook endpoint.
//!
//! Handlers parse requests into domain values, call application use cases
//! and map their errors once to RFC 9457 problem+json. This crate depends on
//! domain and application only, never on another adapter.

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
use actix_web::middleware::{NormalizePath, TrailingSlash};
use actix_web::{App, HttpServer, web};
use ephemera_application::commands::EnvironmentCommands;
use ephemera_application::delivery_log::DeliveryQueries;
use ephemera_application::ports::{HealthProbe, StatsProbe};
use ephemera_application::queries::EnvironmentQueries;
use ephemera_application::webhooks::IngestDelivery;
use secrecy::SecretString;
use tracing_actix_web::TracingLogger;

pub use metrics::Metrics;
pub use openapi::document as openapi_document;
pub use problem::Problem;
pub use webhook::{DEFAULT_MAX_BODY_BYTES, WebhookSettings, read_delivery, sign, verify_signature};

/// What handlers share: the use cases and probes, behind ports.
#[derive(Clone)]
pub struct AppState {
    pub queries: EnvironmentQueries,
    pub deliveries: DeliveryQueries,
    pub ingest: IngestDelivery,
    pub commands: EnvironmentCommands,
    pub health: Arc<dyn HealthProbe>,
    pub webhook: WebhookSettings,
    /// `EPHEMERA_API_TOKEN`: REST writes need it as a bearer token.
    pub api_token: Option<SecretString>,
    pub metrics: Arc<Metrics>,
    pub stats: Arc<dyn StatsProbe>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

/// Every route `routes` registers, as (method, path). The OpenAPI test
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

/// Every route of the service, for an actix `App`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(problem::query_config())
        .app_data(problem::path_config())
        .route("/metrics", web::get().to(metrics::metrics))
        .route("/api/openapi.json", web::get().to(openapi::openapi_json))
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
        .service(
            web::scope("/api/v1")
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
                .route("/github/webhook", web::post().to(webhook::receive))
                .route("/deliveries", web::get().to(deliveries::list))
                .route("/deliveries/{delivery_id}", web::get().to(deliveries::get)),
        );
}

/// Starts serving on `listener`; the returned server stops gracefully on
/// SIGTERM or ctrl-c (actix's own signal handling).
pub fn serve(listener: TcpListener, state: AppState) -> std::io::Result<Server> {
    let state = web::Data::new(state);
    let server = HttpServer::new(move || {
        let metrics = state.metrics.clone();
        App::new()
            .app_data(state.clone())
            .wrap_fn(move |req, srv| {
                let metrics = metrics.clone();
                let started = std::time::Instant::now();
                let method = req.method().to_string();
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
            .configure(routes)
            .default_service(web::to(problem::not_found_route))
    })
    .listen(listener)?
    .shutdown_timeout(30)
    .run();
    Ok(server)
}
