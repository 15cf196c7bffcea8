use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use ephemera_application::PageRequest;
use ephemera_application::queries::{GetDeploymentError, ListDeploymentsError};
use ephemera_domain::{Deployment, DeploymentId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::environments::{EnvironmentPath, page_problem, validation_detail};
use crate::pagination::page_response;
use crate::responses::ReadOneErrors;
use crate::{AppState, Problem, params};

/// A deployment as the API shows it; logs only when asked for one.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeploymentBody {
    id: i64,
    environment_id: i64,
    commit_sha: String,
    commit_message: Option<String>,
    /// queued, in_progress, success, failed or cancelled
    #[schema(example = "in_progress")]
    status: &'static str,
    started_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    /// Wall time from start to finish, once finished.
    duration_seconds: Option<f64>,
    error_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    logs: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl DeploymentBody {
    pub(crate) fn new(d: Deployment, with_logs: bool) -> Self {
        let (started_at, completed_at) = (d.started_at(), d.completed_at());
        let duration_seconds = match (started_at, completed_at) {
            (Some(start), Some(end)) => Some((end - start).num_milliseconds() as f64 / 1000.0),
            _ => None,
        };
        Self {
            id: d.id.get(),
            environment_id: d.environment_id.get(),
            commit_sha: d.commit_sha.to_string(),
            status: d.status().as_str(),
            started_at,
            completed_at,
            duration_seconds,
            error_message: d.error_message().map(str::to_owned),
            logs: with_logs.then(|| d.logs().to_owned()),
            commit_message: d.commit_message,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageQuery {
    /// Page size, 1 to 200 (default 50).
    #[validate(range(min = 1, max = 200))]
    #[param(schema_with = params::limit)]
    limit: Option<u32>,
    /// Where the next page starts; take it from the `Link` header.
    #[param(schema_with = params::cursor)]
    cursor: Option<String>,
}

/// The `{id}` of a deployment in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct DeploymentPath {
    /// Deployment id
    #[param(schema_with = params::id)]
    id: String,
}

/// `GET /api/v1/environments/{id}/deployments`: history, newest first.
#[utoipa::path(get, path = "/api/v1/environments/{id}/deployments", operation_id = "list_deployments", tag = "deployments",
    params(EnvironmentPath, PageQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "Deployments, newest first, without logs", body = [DeploymentBody]), ReadOneErrors))]
pub(crate) async fn list_for_environment(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<EnvironmentPath>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, Problem> {
    let id = path.id()?;
    query
        .validate()
        .map_err(|e| Problem::bad_request(validation_detail(&e)))?;
    let page = PageRequest::parse(query.limit, query.cursor.as_deref()).map_err(page_problem)?;
    let result = state
        .queries
        .list_deployments(id, page)
        .await
        .map_err(|err| match err {
            ListDeploymentsError::EnvironmentNotFound(_) => Problem::not_found(err.to_string()),
            ListDeploymentsError::Failed(failure) => failure.into(),
        })?;
    Ok(page_response(&req, result, |d| {
        DeploymentBody::new(d, false)
    }))
}

/// `GET /api/v1/deployments/{id}`: one deployment with its logs.
#[utoipa::path(get, path = "/api/v1/deployments/{id}", operation_id = "get_deployment", tag = "deployments",
    params(DeploymentPath),
    security(("bearer" = [])),
    responses((status = 200, description = "The deployment with its logs", body = DeploymentBody), ReadOneErrors))]
pub(crate) async fn get(
    state: web::Data<AppState>,
    path: web::Path<DeploymentPath>,
) -> Result<HttpResponse, Problem> {
    let id = path
        .id
        .parse::<DeploymentId>()
        .map_err(|e| Problem::bad_request(e.to_string()))?;
    let deployment = state
        .queries
        .get_deployment(id)
        .await
        .map_err(|err| match err {
            GetDeploymentError::NotFound(_) => Problem::not_found(err.to_string()),
            GetDeploymentError::Failed(failure) => failure.into(),
        })?;
    Ok(HttpResponse::Ok().json(DeploymentBody::new(deployment, true)))
}
