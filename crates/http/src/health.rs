use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::{AppState, Problem};

#[derive(Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
}

const HEALTHY: Health = Health {
    status: "ok",
    version: env!("CARGO_PKG_VERSION"),
};

/// Liveness: the process answers HTTP.
pub(crate) async fn health() -> HttpResponse {
    HttpResponse::Ok().json(HEALTHY)
}

pub(crate) async fn live() -> HttpResponse {
    HttpResponse::Ok().json(HEALTHY)
}

/// Readiness: the database answers; 503 problem when it does not, so a load
/// balancer stops sending traffic until it is back.
pub(crate) async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    match state.health.check_database().await {
        Ok(()) => Ok(HttpResponse::Ok().json(Health {
            status: "ready",
            ..HEALTHY
        })),
        Err(err) => {
            tracing::warn!(error = format!("{err:#}"), "not ready");
            Err(Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not-ready",
                "the database does not answer",
            ))
        }
    }
}
