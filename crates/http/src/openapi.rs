//! The OpenAPI description (utoipa) at `/api/openapi.json`, and a Swagger UI
//! at `/docs` whose assets are compiled into the binary: no CDN, works
//! offline.

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{deliveries, deployments, environments, health, metrics, repo_config, webhook, writes};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ephemera",
        description = "Preview environments for every pull request: environments, deployments, repositories' configuration, the webhook delivery log, health and metrics.",
        license(name = "Apache-2.0")
    ),
    paths(
        environments::list,
        environments::get,
        environments::by_namespace,
        writes::redeploy,
        writes::sleep,
        writes::wake,
        writes::destroy,
        deployments::list_for_environment,
        deployments::get,
        webhook::receive,
        deliveries::list,
        deliveries::get,
        repo_config::effective,
        repo_config::schema,
        health::health,
        health::live,
        health::ready,
        metrics::metrics,
        openapi_json,
        docs,
        swagger_ui_js,
        swagger_ui_css,
    ),
    modifiers(&BearerToken, &ParameterDetails),
    tags(
        (name = "environments", description = "One preview environment per pull request"),
        (name = "deployments", description = "One deployment per environment and commit"),
        (name = "webhooks", description = "GitHub webhook ingestion"),
        (name = "deliveries", description = "The webhook delivery log"),
        (name = "repositories", description = "Repositories' `.github/ephemera.yml`: its schema and the effective configuration"),
        (name = "health", description = "Liveness and readiness"),
        (name = "meta", description = "Metrics and this description"),
    )
)]
pub struct ApiDoc;

struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "EPHEMERA_API_TOKEN. Writes always need it; reads under /api/v1 and /metrics need it unless the server runs with EPHEMERA_ANONYMOUS_READS=true or listens on loopback without a token.",
                    ))
                    .build(),
            ),
        );
    }
}

/// What utoipa leaves out for `schema_with` parameters (params.rs): a path
/// parameter is required (OpenAPI demands it), and the description lives
/// on the parameter, where clients look for it.
struct ParameterDetails;

impl Modify for ParameterDetails {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::ParameterIn;
        use utoipa::openapi::{RefOr, Required, Schema};
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                for parameter in operation.parameters.iter_mut().flatten() {
                    if parameter.parameter_in == ParameterIn::Path {
                        parameter.required = Required::True;
                    }
                    if parameter.description.is_none()
                        && let Some(RefOr::T(Schema::Object(schema))) = &mut parameter.schema
                    {
                        parameter.description = schema.description.take();
                    }
                }
            }
        }
    }
}

/// The OpenAPI 3 document.
#[utoipa::path(get, path = "/api/openapi.json", operation_id = "openapi", tag = "meta",
    responses((status = 200, description = "This OpenAPI 3 document", content_type = "application/json")))]
pub(crate) async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

const DOCS_PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>ephemera API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({ url: "/api/openapi.json", dom_id: "#swagger-ui" });
  </script>
</body>
</html>
"##;

/// Interactive API documentation (Swagger UI, bundled).
#[utoipa::path(get, path = "/docs", operation_id = "docs", tag = "meta",
    responses((status = 200, description = "Swagger UI for this API", content_type = "text/html")))]
pub(crate) async fn docs() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(DOCS_PAGE)
}

/// Swagger UI's script, for `/docs`.
#[utoipa::path(get, path = "/docs/swagger-ui-bundle.js", operation_id = "docs_script", tag = "meta",
    responses((status = 200, description = "Swagger UI's script (bundled)", content_type = "application/javascript")))]
pub(crate) async fn swagger_ui_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/javascript")
        .insert_header(("Cache-Control", "public, max-age=86400"))
        .body(&include_bytes!("../assets/swagger-ui/swagger-ui-bundle.js")[..])
}

/// Swagger UI's style sheet, for `/docs`.
#[utoipa::path(get, path = "/docs/swagger-ui.css", operation_id = "docs_style", tag = "meta",
    responses((status = 200, description = "Swagger UI's style sheet (bundled)", content_type = "text/css")))]
pub(crate) async fn swagger_ui_css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css")
        .insert_header(("Cache-Control", "public, max-age=86400"))
        .body(&include_bytes!("../assets/swagger-ui/swagger-ui.css")[..])
}

/// The methods the description documents for `path`, if a documented path
/// template (`/api/v1/environments/{id}`) matches it. Read from the
/// description once, so the answer to a wrong method and the documentation
/// cannot disagree.
pub(crate) fn documented_methods(path: &str) -> Option<Vec<&'static str>> {
    static ROUTES: std::sync::OnceLock<Vec<(Vec<String>, Vec<&'static str>)>> =
        std::sync::OnceLock::new();
    let routes = ROUTES.get_or_init(|| {
        let doc = ApiDoc::openapi();
        doc.paths
            .paths
            .iter()
            .map(|(template, item)| {
                let segments = template.split('/').map(str::to_owned).collect();
                let methods = [
                    ("GET", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("PATCH", item.patch.is_some()),
                    ("DELETE", item.delete.is_some()),
                ]
                .into_iter()
                .filter_map(|(name, present)| present.then_some(name))
                .collect();
                (segments, methods)
            })
            .collect()
    });
    let wanted: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let mut found: Vec<&'static str> = Vec::new();
    for (template, methods) in routes {
        let matches = template.len() == wanted.len()
            && template
                .iter()
                .zip(&wanted)
                .all(|(t, w)| (t.starts_with('{') && t.ends_with('}') && !w.is_empty()) || t == w);
        if matches {
            for method in methods {
                if !found.contains(method) {
                    found.push(method);
                }
            }
        }
    }
    (!found.is_empty()).then_some(found)
}

/// The OpenAPI document as pretty JSON (for `ephemera openapi`).
pub fn document() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (method, path) of every operation the description documents.
    fn documented() -> Vec<(String, String)> {
        let doc: serde_json::Value = serde_json::from_str(&document()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let mut documented = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                documented.push((method.clone(), path.clone()));
            }
        }
        documented.sort();
        documented
    }

    /// The router registers exactly `ENDPOINTS`; this holds them to the
    /// description, so neither can gain a route the other lacks.
    #[test]
    fn every_route_is_documented_and_nothing_else() {
        let mut routes: Vec<_> = crate::ENDPOINTS
            .iter()
            .map(|e| (e.method.as_openapi().to_owned(), e.path.to_owned()))
            .collect();
        routes.sort();
        assert_eq!(documented(), routes);
    }

    #[test]
    fn guarded_routes_live_under_the_api_prefix_and_public_ones_are_few() {
        for endpoint in crate::ENDPOINTS {
            let under_api = endpoint.path.starts_with("/api/v1/") || endpoint.path == "/api/v1";
            match endpoint.guard {
                crate::Guard::Token => assert!(under_api, "{}", endpoint.path),
                crate::Guard::Public => assert!(
                    !under_api
                        || ["/api/v1/github/webhook", "/api/v1/config-schema"]
                            .contains(&endpoint.path),
                    "{} is public under /api/v1",
                    endpoint.path
                ),
                crate::Guard::Metrics => assert_eq!(endpoint.path, "/metrics"),
            }
        }
    }

    #[test]
    fn everything_but_the_webhook_probes_and_docs_declares_the_bearer_token() {
        let doc: serde_json::Value = serde_json::from_str(&document()).unwrap();
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        for endpoint in crate::ENDPOINTS {
            let (method, path) = (endpoint.method.as_openapi(), endpoint.path);
            let operation = &doc["paths"][path][method];
            if endpoint.guard == crate::Guard::Public {
                assert!(operation.get("security").is_none(), "{method} {path}");
            } else {
                assert_eq!(
                    operation["security"],
                    serde_json::json!([{ "bearer": [] }]),
                    "{method} {path}"
                );
                assert!(
                    operation["responses"].get("401").is_some(),
                    "{method} {path} documents its 401"
                );
            }
        }
    }

    /// Every parameter states its format: ids are 1 to 2^63 - 1, `limit`
    /// 1 to 200, strings have a pattern or an enumeration (so an empty
    /// one is invalid), and each pattern is one params.rs checks against
    /// its parser.
    #[test]
    fn every_parameter_states_its_exact_format() {
        let doc: serde_json::Value = serde_json::from_str(&document()).unwrap();
        let known = [
            crate::params::REPOSITORY,
            crate::params::NAMESPACE,
            crate::params::DELIVERY_ID,
            crate::params::EVENT,
            crate::params::CURSOR,
            crate::params::OWNER,
            crate::params::REPO,
            crate::params::GIT_REF,
            crate::params::tests::SIGNATURE,
        ];
        let mut seen = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let Some(parameters) = operation["parameters"].as_array() else {
                    continue;
                };
                for parameter in parameters {
                    seen += 1;
                    let name = parameter["name"].as_str().unwrap();
                    let schema = &parameter["schema"];
                    let what = format!("{method} {path} {name}: {schema}");
                    if parameter["in"] == "path" {
                        assert_eq!(parameter["required"], true, "{what}");
                    }
                    assert!(
                        parameter["description"]
                            .as_str()
                            .is_some_and(|d| !d.is_empty()),
                        "{what} has a description"
                    );
                    match schema["type"].as_str().unwrap() {
                        "integer" => {
                            assert_eq!(schema["minimum"], 1, "{what}");
                            let max = schema["maximum"].as_u64().unwrap();
                            match name {
                                "id" => assert_eq!(max, i64::MAX as u64, "{what}"),
                                "limit" => assert_eq!(max, 200, "{what}"),
                                "pr_number" => assert_eq!(max, u64::from(u32::MAX), "{what}"),
                                other => panic!("no rule for integer {other}: {what}"),
                            }
                        }
                        "string" => {
                            if let Some(pattern) = schema["pattern"].as_str() {
                                assert!(known.contains(&pattern), "{what}");
                            } else {
                                let values = schema["enum"].as_array().unwrap();
                                assert!(!values.is_empty(), "{what}");
                            }
                        }
                        "boolean" => {}
                        other => panic!("no rule for {other}: {what}"),
                    }
                }
            }
        }
        assert!(seen > 10, "only {seen} parameters");
    }

    /// Writes can be refused for bad input and while the database is away,
    /// and say so.
    #[test]
    fn writes_document_400_and_503() {
        let doc: serde_json::Value = serde_json::from_str(&document()).unwrap();
        for (method, path) in [
            ("post", "/api/v1/environments/{id}/redeploy"),
            ("post", "/api/v1/environments/{id}/sleep"),
            ("post", "/api/v1/environments/{id}/wake"),
            ("delete", "/api/v1/environments/{id}"),
        ] {
            let responses = &doc["paths"][path][method]["responses"];
            for status in ["202", "400", "401", "404", "409", "503"] {
                assert!(responses.get(status).is_some(), "{method} {path} {status}");
            }
            assert!(
                responses["503"]["headers"].get("Retry-After").is_some(),
                "{method} {path}"
            );
        }
    }
}
