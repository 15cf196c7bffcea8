use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{AppState, Problem};

#[derive(Serialize, ToSchema)]
pub(crate) struct Health {
    #[schema(example = "ok")]
    status: &'static str,
    version: &'static str,
}

const HEALTHY: Health = Health {
    status: "ok",
    version: env!("CARGO_PKG_VERSION"),
};

/// Liveness: the process answers HTTP.
#[utoipa::path(get, path = "/health", operation_id = "health", tag = "health", responses((status = 200, description = "The process serves HTTP", body = Health)))]
pub(crate) async fn health() -> HttpResponse {
    HttpResponse::Ok().json(HEALTHY)
}

#[utoipa::path(get, path = "/health/live", operation_id = "liveness", tag = "health", responses((status = 200, description = "The process serves HTTP", body = Health)))]
pub(crate) async fn live() -> HttpResponse {
    HttpResponse::Ok().json(HEALTHY)
}

/// Readiness: the database answers; 503 problem when it does not, so a load
/// balancer stops sending traffic until it is back.
#[utoipa::path(get, path = "/health/ready", operation_id = "readiness", tag = "health", responses((status = 200, description = "The database answers", body = Health), (status = 503, description = "The database does not answer", body = Problem, content_type = "application/problem+json")))]
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
