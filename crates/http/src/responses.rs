//! The error answers operations share, described once: every one is a
//! `Problem` (RFC 9457), and the description says which headers come with
//! it (`Retry-After` on 503, `WWW-Authenticate` on 401).

use std::collections::BTreeMap;

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response};
use utoipa::{IntoResponses, ToSchema as _};

use crate::Problem;

fn problem(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/problem+json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(Problem::name())))
            .build(),
    )
}

fn bad_request() -> Response {
    problem("Malformed input (an id, filter, limit or cursor outside its documented format); `detail` names the parameter").build()
}

fn unauthorized(description: &str) -> Response {
    problem(description)
        .header(
            "WWW-Authenticate",
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::String))
                .description(Some("`Bearer realm=\"ephemera\"`"))
                .build(),
        )
        .build()
}

fn not_found() -> Response {
    problem("No such resource").build()
}

fn unavailable(description: &str) -> Response {
    problem(description)
        .header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(1)),
                )
                .description(Some("Seconds to wait before trying again"))
                .build(),
        )
        .build()
}

fn map(responses: impl IntoIterator<Item = (u16, Response)>) -> BTreeMap<String, RefOr<Response>> {
    responses
        .into_iter()
        .map(|(status, response)| (status.to_string(), RefOr::T(response)))
        .collect()
}

/// A read under `/api/v1`: 400, 401, 503.
pub(crate) struct ReadErrors;

impl IntoResponses for ReadErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        map([
            (400, bad_request()),
            (
                401,
                unauthorized(
                    "No or wrong bearer token: reads need EPHEMERA_API_TOKEN unless anonymous reads are on",
                ),
            ),
            (
                503,
                unavailable(
                    "The database is unavailable; nothing was read, retry after `Retry-After` seconds",
                ),
            ),
        ])
    }
}

/// A read of one resource: [`ReadErrors`] and 404.
pub(crate) struct ReadOneErrors;

impl IntoResponses for ReadOneErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut responses = ReadErrors::responses();
        responses.insert("404".into(), RefOr::T(not_found()));
        responses
    }
}

/// A repository's configuration: [`ReadOneErrors`], and a 503 that may
/// come from GitHub as well as the database.
pub(crate) struct ConfigReadErrors;

impl IntoResponses for ConfigReadErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut responses = ReadOneErrors::responses();
        responses.insert(
            "404".into(),
            RefOr::T(problem("No active installation of the App lists the repository").build()),
        );
        responses.insert(
            "503".into(),
            RefOr::T(unavailable(
                "The database or GitHub is unavailable; retry after `Retry-After` seconds",
            )),
        );
        responses
    }
}

/// A write: 400, 401, 404, 409, 503.
pub(crate) struct WriteErrors;

impl IntoResponses for WriteErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        map([
            (400, bad_request()),
            (
                401,
                unauthorized("No or wrong bearer token, or writes disabled"),
            ),
            (404, not_found()),
            (
                409,
                problem("The lifecycle does not allow it now; `detail` says why").build(),
            ),
            (
                503,
                unavailable(
                    "The database is unavailable; nothing was changed, retry after `Retry-After` seconds",
                ),
            ),
        ])
    }
}

/// `/metrics` on the API listener: 401 without the token.
pub(crate) struct MetricsErrors;

impl IntoResponses for MetricsErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        map([(
            401,
            unauthorized(
                "No or wrong bearer token: /metrics needs EPHEMERA_API_TOKEN like reads, unless anonymous reads are on",
            ),
        )])
    }
}
