use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use ephemera_application::ports::EnvironmentFilter;
use ephemera_application::queries::{
    GetEnvironmentByNamespaceError, GetEnvironmentError, ListEnvironmentsError,
};
use ephemera_application::{PageError, PageRequest};
use ephemera_domain::{
    Environment, EnvironmentId, EnvironmentStatus, Namespace, PrNumber, RepositoryFullName,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::pagination::page_response;
use crate::responses::{ReadErrors, ReadOneErrors};
use crate::{AppState, Problem, params};

/// An environment as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EnvironmentBody {
    id: i64,
    repository_full_name: String,
    repository_name: String,
    pr_number: u32,
    pr_title: String,
    branch_name: String,
    commit_sha: String,
    namespace: String,
    environment_url: Option<String>,
    #[schema(schema_with = status)]
    status: &'static str,
    installation_id: Option<i64>,
    owner: Option<OwnerBody>,
    error_message: Option<String>,
    status_reason: Option<String>,
    last_deployed_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    destroyed_at: Option<DateTime<Utc>>,
}

/// Every status an environment can be in, from the domain's own list.
fn status() -> utoipa::openapi::schema::Object {
    params::one_of(
        EnvironmentStatus::ALL.map(EnvironmentStatus::as_str),
        "`waiting`: over a cap on live previews, in line (`status_reason` says the place); `skipped`: a repository rule gives the PR no preview (`status_reason` names the rule)",
    )
    .examples(["ready"])
    .build()
}

/// The GitHub user who opened the PR.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OwnerBody {
    github_id: i64,
    login: String,
}

impl From<Environment> for EnvironmentBody {
    fn from(env: Environment) -> Self {
        Self {
            id: env.id.get(),
            repository_name: env.repository.name().to_owned(),
            repository_full_name: env.repository.to_string(),
            pr_number: env.pr_number.get(),
            commit_sha: env.commit_sha.to_string(),
            namespace: env.namespace.to_string(),
            environment_url: env.environment_url().map(str::to_owned),
            status: env.status().as_str(),
            installation_id: env.installation_id.map(|id| id.get()),
            error_message: env.error_message().map(str::to_owned),
            status_reason: env.status_reason().map(str::to_owned),
            last_deployed_at: env.last_deployed_at(),
            created_at: env.created_at,
            updated_at: env.updated_at,
            destroyed_at: env.destroyed_at(),
            pr_title: env.pr_title,
            branch_name: env.branch_name,
            owner: env.owner.map(|o| OwnerBody {
                github_id: o.github_id.get(),
                login: o.login,
            }),
        }
    }
}

/// `GET /api/v1/environments` query string. Each field's format is stated
/// once, in params.rs, for the description and the checks alike.
#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// `owner/name`, exactly as GitHub spells it.
    #[param(schema_with = params::repository)]
    repository: Option<String>,
    /// One status, e.g. `ready`.
    #[param(schema_with = params::environment_status)]
    status: Option<String>,
    /// `true` leaves out destroyed environments.
    #[param(schema_with = params::active_only)]
    active_only: Option<String>,
    /// A PR number; combine with `repository` for one PR.
    #[param(schema_with = params::pr_number)]
    pr_number: Option<i64>,
    /// Page size, 1 to 200 (default 50).
    #[validate(range(min = 1, max = 200))]
    #[param(schema_with = params::limit)]
    limit: Option<u32>,
    /// Where the next page starts; take it from the `Link` header.
    #[param(schema_with = params::cursor)]
    cursor: Option<String>,
}

/// The `{id}` of an environment in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct EnvironmentPath {
    /// Environment id
    #[param(schema_with = params::id)]
    id: String,
}

/// The `{namespace}` of `/environments/namespace/{namespace}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct NamespacePath {
    /// Kubernetes namespace of the preview
    #[param(schema_with = params::namespace)]
    namespace: String,
}

impl EnvironmentPath {
    pub(crate) fn id(&self) -> Result<EnvironmentId, Problem> {
        parse_environment_id(&self.id)
    }
}

impl ListQuery {
    fn try_into_domain(self) -> Result<(EnvironmentFilter, PageRequest), Problem> {
        self.validate()
            .map_err(|e| Problem::bad_request(validation_detail(&e)))?;
        let bad = |e: ephemera_domain::ValidationError| Problem::bad_request(e.to_string());
        let filter = EnvironmentFilter {
            repository: self
                .repository
                .as_deref()
                .map(RepositoryFullName::parse)
                .transpose()
                .map_err(bad)?,
            status: self
                .status
                .as_deref()
                .map(str::parse::<EnvironmentStatus>)
                .transpose()
                .map_err(bad)?,
            active_only: params::parse_bool("active_only", self.active_only.as_deref())?,
            pr_number: self.pr_number.map(PrNumber::new).transpose().map_err(bad)?,
            within: None,
            author: None,
            search: None,
        };
        let page = PageRequest::parse(self.limit, self.cursor.as_deref()).map_err(page_problem)?;
        Ok((filter, page))
    }
}

/// One line per invalid field, e.g. `limit: must be between 1 and 200`.
pub(crate) fn validation_detail(errors: &validator::ValidationErrors) -> String {
    let mut lines: Vec<String> = errors
        .field_errors()
        .iter()
        .map(|(field, errs)| {
            let why: Vec<String> = errs
                .iter()
                .map(|e| match e.code.as_ref() {
                    "range" => match (e.params.get("min"), e.params.get("max")) {
                        (Some(min), Some(max)) => format!("must be between {min} and {max}"),
                        _ => "is out of range".to_owned(),
                    },
                    "length" => match (e.params.get("min"), e.params.get("max")) {
                        (Some(min), Some(max)) => {
                            format!("must be {min} to {max} characters long")
                        }
                        _ => "has the wrong length".to_owned(),
                    },
                    other => other.to_owned(),
                })
                .collect();
            format!("{field}: {}", why.join(", "))
        })
        .collect();
    lines.sort();
    lines.join("; ")
}

pub(crate) fn page_problem(err: PageError) -> Problem {
    match err {
        PageError::InvalidLimit(_) => Problem::bad_request(format!("limit: {err}")),
        PageError::InvalidCursor => Problem::bad_request(format!("cursor: {err}")),
    }
}

pub(crate) fn parse_environment_id(raw: &str) -> Result<EnvironmentId, Problem> {
    raw.parse::<EnvironmentId>()
        .map_err(|e| Problem::bad_request(e.to_string()))
}

pub(crate) fn get_environment_problem(err: GetEnvironmentError) -> Problem {
    match err {
        GetEnvironmentError::NotFound(_) => Problem::not_found(err.to_string()),
        GetEnvironmentError::Failed(failure) => failure.into(),
    }
}

/// `GET /api/v1/environments`: newest first, filtered, keyset-paginated.
#[utoipa::path(get, path = "/api/v1/environments", operation_id = "list_environments", tag = "environments", params(ListQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "Environments, newest first; a `Link: <…>; rel=\"next\"` header points at the next page", body = [EnvironmentBody]), ReadErrors))]
pub(crate) async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, Problem> {
    let (filter, page) = query.into_inner().try_into_domain()?;
    let result = state
        .queries
        .list_environments(&filter, page)
        .await
        .map_err(|ListEnvironmentsError::Failed(failure)| Problem::from(failure))?;
    Ok(page_response(&req, result, EnvironmentBody::from))
}

/// `GET /api/v1/environments/{id}`.
#[utoipa::path(get, path = "/api/v1/environments/{id}", operation_id = "get_environment", tag = "environments",
    params(EnvironmentPath),
    security(("bearer" = [])),
    responses((status = 200, description = "The environment", body = EnvironmentBody), ReadOneErrors))]
pub(crate) async fn get(
    state: web::Data<AppState>,
    path: web::Path<EnvironmentPath>,
) -> Result<HttpResponse, Problem> {
    let id = path.id()?;
    let env = state
        .queries
        .get_environment(id)
        .await
        .map_err(get_environment_problem)?;
    Ok(HttpResponse::Ok().json(EnvironmentBody::from(env)))
}

/// `GET /api/v1/environments/namespace/{namespace}`.
#[utoipa::path(get, path = "/api/v1/environments/namespace/{namespace}", operation_id = "get_environment_by_namespace", tag = "environments",
    params(NamespacePath),
    security(("bearer" = [])),
    responses((status = 200, description = "The environment in that namespace", body = EnvironmentBody), ReadOneErrors))]
pub(crate) async fn by_namespace(
    state: web::Data<AppState>,
    path: web::Path<NamespacePath>,
) -> Result<HttpResponse, Problem> {
    let namespace =
        Namespace::parse(&path.namespace).map_err(|e| Problem::bad_request(e.to_string()))?;
    let env = state
        .queries
        .get_environment_by_namespace(&namespace)
        .await
        .map_err(|err| match err {
            GetEnvironmentByNamespaceError::NotFound(_) => Problem::not_found(err.to_string()),
            GetEnvironmentByNamespaceError::Failed(failure) => failure.into(),
        })?;
    Ok(HttpResponse::Ok().json(EnvironmentBody::from(env)))
}
