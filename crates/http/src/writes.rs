//! REST writes: redeploy and destroy, behind `Authorization: Bearer`.

use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use actix_web::{HttpRequest, HttpResponse, web};
use ephemera_application::commands::CommandError;
use secrecy::ExposeSecret;

use crate::deployments::DeploymentBody;
use crate::environments::{EnvironmentBody, parse_environment_id};
use crate::{AppState, Problem};

fn unauthorized(detail: &str) -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
}

/// Equal-length byte strings compared without an early exit.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn authorize(req: &HttpRequest, state: &AppState) -> Result<(), Problem> {
    let Some(token) = &state.api_token else {
        return Err(unauthorized(
            "writes are disabled: set EPHEMERA_API_TOKEN on the server and send `Authorization: Bearer <token>`",
        ));
    };
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| unauthorized("send `Authorization: Bearer <EPHEMERA_API_TOKEN>`"))?;
    if same(given.as_bytes(), token.expose_secret().as_bytes()) {
        Ok(())
    } else {
        Err(unauthorized("the bearer token is not EPHEMERA_API_TOKEN"))
    }
}

fn command_problem(err: CommandError) -> Problem {
    match err {
        CommandError::NotFound(_) => Problem::not_found(err.to_string()),
        CommandError::Conflict(why) => Problem::new(StatusCode::CONFLICT, "conflict", why),
        CommandError::Unavailable(why) => {
            tracing::warn!(error = %why, "database unavailable");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the database is unavailable; try again later",
            )
        }
        CommandError::Unexpected(e) => Problem::internal(&e),
    }
}

fn with_challenge(problem: Problem) -> HttpResponse {
    let mut response = actix_web::ResponseError::error_response(&problem);
    if problem.status == 401 {
        response.headers_mut().insert(
            WWW_AUTHENTICATE,
            actix_web::http::header::HeaderValue::from_static("Bearer realm=\"ephemera\""),
        );
    }
    response
}

/// `POST /api/v1/environments/{id}/redeploy`: 202 with the queued deployment.
#[utoipa::path(post, path = "/api/v1/environments/{id}/redeploy", operation_id = "redeploy_environment", tag = "environments",
    params(("id" = i64, Path, description = "Environment id")), security(("bearer" = [])),
    responses((status = 202, description = "A deployment of the current commit is queued", body = DeploymentBody), (status = 401, description = "No or wrong bearer token, or writes disabled", body = Problem, content_type = "application/problem+json"), (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json"), (status = 409, description = "The lifecycle does not allow it now", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn redeploy(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    let result = async {
        authorize(&req, &state)?;
        let id = parse_environment_id(&path)?;
        state.commands.redeploy(id).await.map_err(command_problem)
    }
    .await;
    match result {
        Ok(deployment) => HttpResponse::Accepted().json(DeploymentBody::new(deployment, false)),
        Err(problem) => with_challenge(problem),
    }
}

/// `DELETE /api/v1/environments/{id}`: 202 with the environment, now destroying.
#[utoipa::path(delete, path = "/api/v1/environments/{id}", operation_id = "destroy_environment", tag = "environments",
    params(("id" = i64, Path, description = "Environment id")), security(("bearer" = [])),
    responses((status = 202, description = "The environment, now destroying", body = EnvironmentBody), (status = 401, description = "No or wrong bearer token, or writes disabled", body = Problem, content_type = "application/problem+json"), (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json"), (status = 409, description = "The lifecycle does not allow it now", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn destroy(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    let result = async {
        authorize(&req, &state)?;
        let id = parse_environment_id(&path)?;
        state.commands.destroy(id).await.map_err(command_problem)
    }
    .await;
    match result {
        Ok(env) => HttpResponse::Accepted().json(EnvironmentBody::from(env)),
        Err(problem) => with_challenge(problem),
    }
}

#[cfg(test)]
mod tests {
    use super::same;

    #[test]
    fn comparison_needs_equal_bytes() {
        assert!(same(b"token", b"token"));
        assert!(!same(b"token", b"tokem"));
        assert!(!same(b"token", b"token2"));
        assert!(!same(b"", b"x"));
    }
}
