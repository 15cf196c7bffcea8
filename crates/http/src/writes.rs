//! REST writes: redeploy, destroy, sleep and wake. The `/api/v1` scope's middleware
//! (auth.rs) lets them through only with `Authorization: Bearer`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use ephemera_application::commands::CommandError;

use crate::deployments::DeploymentBody;
use crate::environments::{EnvironmentBody, EnvironmentPath};
use crate::responses::WriteErrors;
use crate::{AppState, Problem};

fn command_problem(err: CommandError) -> Problem {
    match err {
        CommandError::NotFound(_) => Problem::not_found(err.to_string()),
        CommandError::Conflict(why) => Problem::new(StatusCode::CONFLICT, "conflict", why),
        CommandError::Unavailable(cause) => {
            Problem::unavailable(&cause, "the database is unavailable; try again later")
        }
        CommandError::Unexpected(e) => Problem::internal(&e),
    }
}

/// `202` with the environment a command moved on, or its problem.
fn accepted(
    moved: Result<ephemera_domain::Environment, CommandError>,
) -> Result<HttpResponse, Problem> {
    let env = moved.map_err(command_problem)?;
    Ok(HttpResponse::Accepted().json(EnvironmentBody::from(env)))
}

/// `POST /api/v1/environments/{id}/redeploy`: 202 with the queued deployment.
#[utoipa::path(post, path = "/api/v1/environments/{id}/redeploy", operation_id = "redeploy_environment", tag = "environments",
    params(EnvironmentPath), security(("bearer" = [])),
    responses((status = 202, description = "A deployment of the current commit is queued", body = DeploymentBody), WriteErrors))]
pub(crate) async fn redeploy(
    state: web::Data<AppState>,
    path: web::Path<EnvironmentPath>,
) -> Result<HttpResponse, Problem> {
    let id = path.id()?;
    let deployment = state.commands.redeploy(id).await.map_err(command_problem)?;
    Ok(HttpResponse::Accepted().json(DeploymentBody::new(deployment, false)))
}

/// `POST /api/v1/environments/{id}/sleep`: 202 with the environment, now
/// going to sleep (or already asleep).
#[utoipa::path(post, path = "/api/v1/environments/{id}/sleep", operation_id = "sleep_environment", tag = "environments",
    params(EnvironmentPath), security(("bearer" = [])),
    responses((status = 202, description = "The environment, going to sleep or asleep", body = EnvironmentBody), WriteErrors))]
pub(crate) async fn sleep(
    state: web::Data<AppState>,
    path: web::Path<EnvironmentPath>,
) -> Result<HttpResponse, Problem> {
    let id = path.id()?;
    accepted(
        state
            .commands
            .sleep(id, "sleep requested through the API")
            .await,
    )
}

/// `POST /api/v1/environments/{id}/wake`: 202 with the environment, now
/// waking (or already awake).
#[utoipa::path(post, path = "/api/v1/environments/{id}/wake", operation_id = "wake_environment", tag = "environments",
    params(EnvironmentPath), security(("bearer" = [])),
    responses((status = 202, description = "The environment, waking or awake", body = EnvironmentBody), WriteErrors))]
pub(crate) async fn wake(
    state: web::Data<AppState>,
    path: web::Path<EnvironmentPath>,
) -> Result<HttpResponse, Problem> {
    let id = path.id()?;
    accepted(
        state
            .commands
            .wake(id, "wake requested through the API")
            .await,
    )
}

/// `DELETE /api/v1/environments/{id}`: 202 with the environment, now destroying.
#[utoipa::path(delete, path = "/api/v1/environments/{id}", operation_id = "destroy_environment", tag = "environments",
    params(EnvironmentPath), security(("bearer" = [])),
    responses((status = 202, description = "The environment, now destroying", body = EnvironmentBody), WriteErrors))]
pub(crate) async fn destroy(
    state: web::Data<AppState>,
    path: web::Path<EnvironmentPath>,
) -> Result<HttpResponse, Problem> {
    let id = path.id()?;
    accepted(state.commands.destroy(id).await)
}
