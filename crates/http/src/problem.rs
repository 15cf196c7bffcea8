//! RFC 9457 problem details: every error this API answers.

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, error, web};
use ephemera_application::queries::ReadFailure;
use serde::Serialize;
use utoipa::ToSchema;

/// An RFC 9457 `application/problem+json` answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem; documented in docs/api.md.
    #[serde(rename = "type")]
    #[schema(example = "/problems/not-found")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Headers the answer carries besides the body (`WWW-Authenticate`,
    /// `Retry-After`).
    #[serde(skip)]
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Problem {
    pub fn new(status: StatusCode, kind: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("/problems/{kind}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            headers: Vec::new(),
        }
    }

    /// The same problem, answered with `name: value` as well.
    pub fn with_header(mut self, name: HeaderName, value: &'static str) -> Self {
        self.headers.push((name, HeaderValue::from_static(value)));
        self
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid-request", detail)
    }

    /// The database cannot be reached right now: 503 with `Retry-After`,
    /// on every path alike. The cause goes to the log, not to the client.
    pub fn unavailable(cause: &(dyn std::error::Error + 'static), detail: &str) -> Self {
        tracing::warn!(error = %ErrorChain(cause), "database unavailable");
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
            .with_header(actix_web::http::header::RETRY_AFTER, "5")
    }

    /// Logs the whole cause chain and answers an opaque 500: internal text
    /// never reaches the client.
    pub fn internal(err: &anyhow::Error) -> Self {
        tracing::error!(error = format!("{err:#}"), "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed to answer; the cause is in its logs",
        )
    }
}

/// An error with its sources, `a: b: c`, for the log.
struct ErrorChain<'a>(&'a dyn std::error::Error);

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(err) = source {
            write!(f, ": {err}")?;
            source = err.source();
        }
        Ok(())
    }
}

/// The one mapping of a failed read: 503 when the database is unavailable,
/// an opaque 500 otherwise.
impl From<ReadFailure> for Problem {
    fn from(failure: ReadFailure) -> Self {
        match failure {
            ReadFailure::Unavailable { .. } => {
                Self::unavailable(&failure, "the database is unavailable; try again later")
            }
            ReadFailure::Unexpected(e) => Self::internal(&e),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.title, self.detail)
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let body = serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"));
        let mut response = HttpResponse::build(self.status_code());
        for (name, value) in &self.headers {
            response.insert_header((name.clone(), value.clone()));
        }
        response.content_type("application/problem+json").body(body)
    }
}

/// Query strings that do not deserialize are a 400 problem, not actix's
/// plain-text default.
pub(crate) fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        let detail = match &err {
            error::QueryPayloadError::Deserialize(e) => format!("invalid query string: {e}"),
            other => format!("invalid query string: {other}"),
        };
        Problem::bad_request(detail).into()
    })
}

pub(crate) fn path_config() -> web::PathConfig {
    web::PathConfig::default()
        .error_handler(|err, _req| Problem::bad_request(format!("invalid path: {err}")).into())
}

/// Answer for any request no route serves: `405` with `Allow` when the
/// path is a documented one and only the method is wrong, `404` otherwise.
pub(crate) async fn not_found_route(req: HttpRequest) -> Problem {
    let method = req.method().as_str();
    match crate::openapi::documented_methods(req.path()) {
        Some(allowed) if !allowed.contains(&method) => {
            let allow = allowed.join(", ");
            let mut problem = Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                format!(
                    "{} does not answer {method}; it answers {allow}",
                    req.path()
                ),
            );
            if let Ok(value) = HeaderValue::from_str(&allow) {
                problem
                    .headers
                    .push((actix_web::http::header::ALLOW, value));
            }
            problem
        }
        _ => Problem::not_found(format!("no route for {method} {}", req.path())),
    }
}

impl actix_web::Responder for Problem {
    type Body = actix_web::body::BoxBody;

    fn respond_to(self, _req: &HttpRequest) -> HttpResponse<Self::Body> {
        self.error_response()
    }
}
