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

/// Readiness: every background worker of this process runs and the
/// database answers; 503 problem otherwise, so a load balancer stops sending
/// traffic (until the database is back, or the process is restarted).
#[utoipa::path(get, path = "/health/ready", operation_id = "readiness", tag = "health", responses((status = 200, description = "The workers run and the database answers", body = Health), (status = 503, description = "A background worker stopped, or the database does not answer", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let stopped = state.workers.stopped();
    if !stopped.is_empty() {
        // The cause is in the log, where the worker stopped.
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not-ready",
            format!(
                "background {} {} stopped; restart the process",
                if stopped.len() == 1 {
                    "worker"
                } else {
                    "workers"
                },
                stopped.join(", ")
            ),
        ));
    }
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
