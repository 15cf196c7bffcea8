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
mod params;
mod problem;
mod repo_config;
mod responses;
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
use ephemera_application::repo_config::RepoConfigQueries;
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
    /// Repositories' effective `.github/ephemera.yml`.
    pub repo_configs: RepoConfigQueries,
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

/// The prefix of the guarded REST API.
const API_PREFIX: &str = "/api/v1";

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Guard {
    /// Anyone: the webhook (it has its own signature), the health probes,
    /// the API description and its UI, the configuration file's schema.
    Public,
    /// Under [`API_PREFIX`], behind the bearer token (auth.rs); unknown
    /// paths there answer 404 only to callers who may read.
    Token,
    /// `/metrics`: behind the token on the API listener, or served by a
    /// metrics listener of its own (then absent here).
    Metrics,
}

/// One route of the API listener.
pub(crate) struct Endpoint {
    pub(crate) method: Verb,
    /// The full path template, as the OpenAPI description writes it.
    pub(crate) path: &'static str,
    pub(crate) guard: Guard,
    /// The handler, given the route that already matches `method`.
    handler: fn(actix_web::Route) -> actix_web::Route,
}

/// The methods endpoints answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    Get,
    Post,
    Delete,
}

impl Verb {
    /// As an OpenAPI path item names it (for the test that holds the
    /// table to the description).
    #[cfg(test)]
    pub(crate) fn as_openapi(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Post => "post",
            Self::Delete => "delete",
        }
    }

    fn method(self) -> actix_web::http::Method {
        use actix_web::http::Method;
        match self {
            Self::Get => Method::GET,
            Self::Post => Method::POST,
            Self::Delete => Method::DELETE,
        }
    }
}

impl Endpoint {
    fn route(&self) -> actix_web::Route {
        (self.handler)(web::route().method(self.method.method()))
    }
}

const fn endpoint(
    method: Verb,
    path: &'static str,
    guard: Guard,
    handler: fn(actix_web::Route) -> actix_web::Route,
) -> Endpoint {
    Endpoint {
        method,
        path,
        guard,
        handler,
    }
}

/// Every route the API listener serves. The router registers exactly
/// these and nothing else, and the OpenAPI test checks they are exactly
/// the documented operations: a route added here without documentation,
/// or documented without being added, fails it.
pub(crate) const ENDPOINTS: &[Endpoint] = &[
    endpoint(Verb::Get, "/metrics", Guard::Metrics, |r| {
        r.to(metrics::metrics)
    }),
    endpoint(Verb::Get, "/api/openapi.json", Guard::Public, |r| {
        r.to(openapi::openapi_json)
    }),
    endpoint(Verb::Get, "/docs", Guard::Public, |r| r.to(openapi::docs)),
    endpoint(
        Verb::Get,
        "/docs/swagger-ui-bundle.js",
        Guard::Public,
        |r| r.to(openapi::swagger_ui_js),
    ),
    endpoint(Verb::Get, "/docs/swagger-ui.css", Guard::Public, |r| {
        r.to(openapi::swagger_ui_css)
    }),
    endpoint(Verb::Get, "/health", Guard::Public, |r| {
        r.to(health::health)
    }),
    endpoint(Verb::Get, "/health/live", Guard::Public, |r| {
        r.to(health::live)
    }),
    endpoint(Verb::Get, "/health/ready", Guard::Public, |r| {
        r.to(health::ready)
    }),
    // Public, with its own signature; registered before the guarded scope
    // so it matches first.
    endpoint(Verb::Post, "/api/v1/github/webhook", Guard::Public, |r| {
        r.to(webhook::receive)
    }),
    // Public: the schema holds no secrets and editors fetch it unaided.
    endpoint(Verb::Get, "/api/v1/config-schema", Guard::Public, |r| {
        r.to(repo_config::schema)
    }),
    endpoint(
        Verb::Get,
        "/api/v1/repositories/{owner}/{repo}/config",
        Guard::Token,
        |r| r.to(repo_config::effective),
    ),
    endpoint(Verb::Get, "/api/v1/environments", Guard::Token, |r| {
        r.to(environments::list)
    }),
    endpoint(
        Verb::Get,
        "/api/v1/environments/namespace/{namespace}",
        Guard::Token,
        |r| r.to(environments::by_namespace),
    ),
    endpoint(Verb::Get, "/api/v1/environments/{id}", Guard::Token, |r| {
        r.to(environments::get)
    }),
    endpoint(
        Verb::Delete,
        "/api/v1/environments/{id}",
        Guard::Token,
        |r| r.to(writes::destroy),
    ),
    endpoint(
        Verb::Post,
        "/api/v1/environments/{id}/redeploy",
        Guard::Token,
        |r| r.to(writes::redeploy),
    ),
    endpoint(
        Verb::Post,
        "/api/v1/environments/{id}/sleep",
        Guard::Token,
        |r| r.to(writes::sleep),
    ),
    endpoint(
        Verb::Post,
        "/api/v1/environments/{id}/wake",
        Guard::Token,
        |r| r.to(writes::wake),
    ),
    endpoint(
        Verb::Get,
        "/api/v1/environments/{id}/deployments",
        Guard::Token,
        |r| r.to(deployments::list_for_environment),
    ),
    endpoint(Verb::Get, "/api/v1/deployments/{id}", Guard::Token, |r| {
        r.to(deployments::get)
    }),
    endpoint(Verb::Get, "/api/v1/deliveries", Guard::Token, |r| {
        r.to(deliveries::list)
    }),
    endpoint(
        Verb::Get,
        "/api/v1/deliveries/{delivery_id}",
        Guard::Token,
        |r| r.to(deliveries::get),
    ),
];

/// Where `/metrics` is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MetricsRoute {
    /// On the API listener, behind the same access rules as reads.
    Guarded,
    /// Not on the API listener: a metrics listener of its own serves it.
    Elsewhere,
}

/// Every route of the API listener: [`ENDPOINTS`], each behind its guard.
fn routes(cfg: &mut web::ServiceConfig, metrics_route: MetricsRoute) {
    cfg.app_data(problem::query_config())
        .app_data(problem::path_config());
    let mut api = web::scope(API_PREFIX)
        .wrap(from_fn(auth::require_token))
        // Unknown paths under /api/v1 answer 404 only to callers who may
        // read.
        .default_service(web::to(problem::not_found_route));
    for endpoint in ENDPOINTS {
        match endpoint.guard {
            Guard::Public => {
                cfg.route(endpoint.path, endpoint.route());
            }
            Guard::Metrics => {
                if metrics_route == MetricsRoute::Guarded {
                    cfg.service(
                        web::resource(endpoint.path)
                            .wrap(from_fn(auth::require_token))
                            .route(endpoint.route()),
                    );
                }
            }
            Guard::Token => {
                // Every guarded path starts with the prefix (a test checks).
                let path = endpoint
                    .path
                    .strip_prefix(API_PREFIX)
                    .unwrap_or(endpoint.path);
                api = api.route(path, endpoint.route());
            }
        }
    }
    cfg.service(api);
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

/// Routes another inbound adapter adds to the API listener (the
/// dashboard), configured by the server that composes them.
pub type ExtraRoutes = Arc<dyn Fn(&mut web::ServiceConfig) + Send + Sync>;

/// Starts serving the API on `listener` (with `extra` routes beside it)
/// and, when `metrics_listener` is given, `/metrics` on it alone (without
/// a token, for in-cluster scraping; `/metrics` then leaves the API
/// listener). Each stops gracefully on SIGTERM or ctrl-c (actix's own
/// signal handling).
pub fn serve(
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    state: AppState,
    extra: Option<ExtraRoutes>,
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
        let extra = extra.clone();
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
            .configure(move |cfg| {
                if let Some(extra) = &extra {
                    extra(cfg);
                }
            })
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
